package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/stream"
	"github.com/cdrguard/cdrguard/schemas"
)

// brokers returns the test broker, skipping the test when none answers —
// or failing it when CDRGUARD_INTEGRATION=1 (make test), so a missing
// broker never passes silently there.
func brokers(t testing.TB) []string {
	t.Helper()
	addr := os.Getenv("CDRGUARD_KAFKA")
	if addr == "" {
		addr = "127.0.0.1:9092"
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CDRGUARD_INTEGRATION") == "1" {
			t.Fatalf("no Kafka broker at %s (make services-up starts one): %v", addr, err)
		}
		t.Skipf("no Kafka broker at %s; run make services-up (or make test)", addr)
	}
	conn.Close()
	return []string{addr}
}

func client(t testing.TB) *kafkaio.Client {
	t.Helper()
	kc, err := kafkaio.NewClient(kafkaio.Conn{Brokers: brokers(t), ClientID: "cdrguard-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// name returns a topic or group name unique to this test run.
func name(t testing.TB, what string) string {
	return fmt.Sprintf("test-%s-%s-%x", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), what, rand.Uint32())
}

// produce writes records into a new topic keyed by caller, in order,
// stamped with their end time as a switch would.
func produce(t testing.TB, kc *kafkaio.Client, topic string, partitions int, values [][]byte, keys [][]byte, times []time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	w := kc.NewWriter(nil)
	defer w.Close()
	msgs := make([]kafka.Message, 0, 2000)
	for i := 0; i < len(values); i += 2000 {
		msgs = msgs[:0]
		for j := i; j < min(i+2000, len(values)); j++ {
			msgs = append(msgs, kafka.Message{Topic: topic, Key: keys[j], Value: values[j], Time: times[j]})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

func produceCDRs(t testing.TB, kc *kafkaio.Client, topic string, partitions int, recs []schemas.CDR) {
	t.Helper()
	values, keys, times := make([][]byte, len(recs)), make([][]byte, len(recs)), make([]time.Time, len(recs))
	for i := range recs {
		values[i] = schemas.AppendJSON(nil, &recs[i])
		keys[i] = []byte(recs[i].Caller)
		times[i] = time.UnixMilli(max(recs[i].EndMS, recs[i].StartMS))
	}
	produce(t, kc, topic, partitions, values, keys, times)
}

// readAll reads every message of topic as it stands now.
func readAll(t testing.TB, kc *kafkaio.Client, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := kc.Partitions(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	first, next, err := kc.Offsets(ctx, topic, n)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for p := range n {
		if first[p] >= next[p] {
			continue
		}
		r, err := kc.NewReader(topic, p, first[p], 8<<20)
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset+1 >= next[p] {
				break
			}
		}
		r.Close()
	}
	return out
}

func alertsIn(t testing.TB, msgs []kafka.Message) []schemas.Alert {
	t.Helper()
	out := make([]schemas.Alert, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("alert %s: %v", m.Value, err)
		}
	}
	return out
}

// pairs returns the sorted "rule kind subject" pairs of alerts.
func pairs(alerts []schemas.Alert) []string {
	set := map[string]bool{}
	for _, a := range alerts {
		set[a.Rule+" "+a.SubjectKind.String()+" "+a.Subject] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func diff(a, b []string) (onlyA, onlyB []string) {
	in := func(s []string, x string) bool { _, ok := slices.BinarySearch(s, x); return ok }
	for _, x := range a {
		if !in(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

func defaultRules(t testing.TB) *rules.Set {
	t.Helper()
	set, err := rules.Load("../../deploy/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// replayAlerts runs records through one engine with every key kind, the
// way `cdrguard replay` does.
func replayAlerts(t testing.TB, recs []schemas.CDR) []schemas.Alert {
	t.Helper()
	set := defaultRules(t)
	e, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	var out detectors.Output
	for i := range recs {
		e.Process(&recs[i], &out)
	}
	e.Flush(&out)
	return out.Alerts
}

// job runs a streaming job in the background.
type job struct {
	cancel context.CancelFunc
	done   chan error
}

func testConfig(t testing.TB, kc *kafkaio.Client, topic, group, alerts string) stream.Config {
	t.Helper()
	return stream.Config{
		Kafka: kc, Topic: topic, Group: group, AlertsTopic: alerts, CreateTopics: true, ReplicationFactor: -1,
		Rules: defaultRules(t), IdleRelease: 2 * time.Second, CommitInterval: 200 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, ShutdownTimeout: 20 * time.Second,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

func start(t testing.TB, cfg stream.Config) *job {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{cancel: cancel, done: make(chan error, 1)}
	go func() { j.done <- stream.Run(ctx, cfg) }()
	return j
}

// stop asks the job to shut down and waits for it.
func (j *job) stop(t testing.TB) {
	t.Helper()
	j.cancel()
	select {
	case err := <-j.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("job: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("job did not stop within a minute")
	}
}

// waitCaughtUp waits until group has committed every topic to its end
// and the end stopped moving (outputs written, idle engines released).
func waitCaughtUp(t testing.TB, kc *kafkaio.Client, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	stable := 0
	var last string
	for time.Now().Before(deadline) {
		ok, state := caughtUp(kc, group, topics)
		if ok && state == last {
			stable++
			if stable >= 3 {
				return
			}
		} else {
			stable = 0
		}
		last = state
		time.Sleep(time.Second)
	}
	_, state := caughtUp(kc, group, topics)
	t.Fatalf("group %s did not catch up within %v: %s", group, timeout, state)
}

func caughtUp(kc *kafkaio.Client, group string, topics []string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := true
	var b strings.Builder
	for _, topic := range topics {
		n, err := kc.Partitions(ctx, topic)
		if err != nil || n == 0 {
			return false, fmt.Sprintf("%s: %v", topic, err)
		}
		_, next, err := kc.Offsets(ctx, topic, n)
		if err != nil {
			return false, err.Error()
		}
		committed, err := kc.Admin.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: topic, GroupId: group})
		if err != nil {
			return false, err.Error()
		}
		for p := range n {
			fmt.Fprintf(&b, "%s/%d %d/%d ", topic, p, committed[p], next[p])
			if committed[p] < next[p] {
				all = false
			}
		}
	}
	return all, b.String()
}

var dayCache sync.Map

// day returns a generated day (cached per seed and scale).
func day(seed uint64, scale float64) []schemas.CDR {
	key := fmt.Sprint(seed, scale)
	if v, ok := dayCache.Load(key); ok {
		return v.([]schemas.CDR)
	}
	recs := generate(seed, scale)
	dayCache.Store(key, recs)
	return recs
}
