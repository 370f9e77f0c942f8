package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/stream"
	"github.com/cdrguard/cdrguard/schemas"
)

// TestEndToEndMatchesReplay produces a generated day, runs the job and
// reads the alerts topic: the same (rule, subject) pairs as a replay of
// the same records, and no alert ID twice.
func TestEndToEndMatchesReplay(t *testing.T) {
	kc := kafkatest.Client(t)
	recs := day(11, 0.2)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 6, recs)

	j := start(t, testConfig(t, kc, topic, group, alerts))
	kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
	j.stop(t)

	msgs := kafkatest.ReadAll(t, kc, alerts)
	got := kafkatest.Alerts(t, msgs)
	kafkatest.SameAlerts(t, "stream vs replay", replayAlerts(t, recs), got)
	// Every alert is a keyed, self-describing message.
	for _, m := range msgs {
		var id string
		for _, h := range m.Headers {
			if h.Key == "alert_id" {
				id = string(h.Value)
			}
		}
		if id == "" || len(m.Key) == 0 {
			t.Errorf("alert message without key or alert_id header: %+v", m)
		}
	}
}

// TestTwoInstancesMatchOne runs two instances in one group on a
// 6-partition topic: they raise what one instance raises, source alerts
// included.
func TestTwoInstancesMatchOne(t *testing.T) {
	kc := kafkatest.Client(t)
	recs := day(12, 0.2)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 6, recs)

	// Each instance has its own metrics: both must have taken records.
	cfgA, cfgB := testConfig(t, kc, topic, group, alerts), testConfig(t, kc, topic, group, alerts)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	cfgA.Metrics, cfgB.Metrics = stream.NewMetrics(regA), stream.NewMetrics(regB)
	a := start(t, cfgA)
	b := start(t, cfgB)
	kafkatest.WaitCaughtUp(t, kc, group, 6*time.Minute, topic, topic+".sources")
	a.stop(t)
	b.stop(t)
	if pa, pb := processed(t, regA), processed(t, regB); pa == 0 || pb == 0 {
		t.Errorf("records taken by the instances: %v and %v; both should have owned partitions", pa, pb)
	} else {
		t.Logf("records taken by the instances: %v and %v", pa, pb)
	}

	got := kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts))
	want := replayAlerts(t, recs)
	kafkatest.SameAlerts(t, "two instances vs one", want, got)
	sources := 0
	for _, a := range got {
		if a.SubjectKind.IsSource() {
			sources++
		}
	}
	if sources == 0 {
		t.Error("no source alert from two instances")
	}
	kafkatest.SamePairs(t, "two instances vs one", kafkatest.Pairs(want), kafkatest.Pairs(got))
	kafkatest.NoDuplicateIDs(t, got)
}

// TestPoisonRecordsGoToDeadLetters sends malformed records among valid
// ones: they land in the dead-letter topic with the reason, source topic,
// partition and offset in headers, and the valid records around them are
// processed (a burst among them is flagged).
func TestPoisonRecordsGoToDeadLetters(t *testing.T) {
	kc := kafkatest.Client(t)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	var values, keys [][]byte
	var times []time.Time
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	add := func(key string, v []byte) {
		values, keys, times = append(values, v), append(keys, []byte(key)), append(times, base)
	}
	// A burst: 60 unanswered calls in 10 minutes to different numbers.
	burst := func(i int) {
		c := schemas.CDR{Caller: "+15550100001", Callee: "+1555020" + pad4(i), StartMS: base.Add(time.Duration(i) * 10 * time.Second).UnixMilli(),
			Disposition: schemas.NoAnswer}
		c.SetDuration(0)
		add(c.Caller, schemas.AppendJSON(nil, &c))
	}
	poison := map[string]string{
		"malformed JSON":  `{"caller":"+15550100001","callee":`,
		"missing caller":  `{"callee":"+15550100002","start_time":"` + base.Format(time.RFC3339) + `"}`,
		"absurd time":     `{"caller":"+15550100001","callee":"+15550100002","start_time":"9999-12-31T00:00:00Z"}`,
		"future time":     `{"caller":"+15550100001","callee":"+15550100002","start_time":"2099-01-01T00:00:00Z"}`,
		"one megabyte":    `{"caller":"+15550100001","callee":"+15550100002","start_time":"` + base.Format(time.RFC3339) + `","note":"` + strings.Repeat("x", 1<<20) + `"}`,
		"not JSON at all": "\x00\x01\x02",
	}
	order := []string{"malformed JSON", "missing caller", "absurd time", "future time", "one megabyte", "not JSON at all"}
	for i := range 60 {
		burst(i)
		if i%10 == 5 {
			add("+15550100001", []byte(poison[order[i/10]]))
		}
	}
	kafkatest.Produce(t, kc, topic, 1, values, keys, times)

	cfg := testConfig(t, kc, topic, group, alerts)
	j := start(t, cfg)
	kafkatest.WaitCaughtUp(t, kc, group, 3*time.Minute, topic)
	j.stop(t)

	dead := kafkatest.ReadAll(t, kc, topic+".dlq")
	if len(dead) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(poison))
	}
	wantReason := map[string]string{
		"malformed JSON": "field json", "missing caller": "field caller: missing", "absurd time": "field start_time",
		"future time": "ahead of the wall clock", "one megabyte": "larger than the 1048576-byte limit", "not JSON at all": "field json",
	}
	for i, m := range dead {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		kind := order[i]
		if !strings.Contains(h["cdrguard-error"], wantReason[kind]) {
			t.Errorf("%s: error header %q, want it to contain %q", kind, h["cdrguard-error"], wantReason[kind])
		}
		if h["cdrguard-topic"] != topic || h["cdrguard-partition"] != "0" || h["cdrguard-offset"] == "" {
			t.Errorf("%s: headers %v", kind, h)
		}
		if string(m.Value) != poison[kind] {
			t.Errorf("%s: dead letter value differs from the record (%d bytes)", kind, len(m.Value))
		}
	}
	got := kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts))
	if len(got) == 0 || got[0].Subject != "+15550100001" {
		t.Fatalf("the burst around the poison records was not flagged: %+v", got)
	}
}

func pad4(i int) string {
	s := "0000" + itoa(i)
	return s[len(s)-4:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestGracefulShutdownLeavesTheGroup stops a job with records held and
// checks that it commits what is durable and leaves the group at once, so
// another member takes the partitions without waiting for the session
// timeout.
func TestGracefulShutdownLeavesTheGroup(t *testing.T) {
	kc := kafkatest.Client(t)
	recs := day(13, 0.05)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 2, recs)
	cfg := testConfig(t, kc, topic, group, alerts)
	cfg.SessionTimeout = 30 * time.Second
	j := start(t, cfg)
	kafkatest.WaitCaughtUp(t, kc, group, 3*time.Minute, topic, topic+".sources")
	began := time.Now()
	j.stop(t)
	if took := time.Since(began); took > cfg.ShutdownTimeout {
		t.Fatalf("shutdown took %v", took)
	}
	// A new member gets a generation well before the 30 s session
	// timeout would have expired the old one.
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: group, Brokers: kc.Conn.Brokers, Topics: []string{topic},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	joinedAt := time.Now()
	gen, err := g.Next(ctx)
	if err != nil {
		t.Fatalf("no generation for a new member: %v", err)
	}
	if wait := time.Since(joinedAt); wait > 15*time.Second {
		t.Fatalf("a new member waited %v: the old one did not leave", wait)
	}
	for _, pa := range gen.Assignments[topic] {
		if pa.Offset <= 0 {
			t.Errorf("partition %d: committed offset %d after a graceful stop", pa.ID, pa.Offset)
		}
	}
}
