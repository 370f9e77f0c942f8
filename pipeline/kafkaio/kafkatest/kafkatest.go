// Package kafkatest holds helpers for tests that talk to a real Kafka
// broker: find it (or skip, or fail under CDRGUARD_INTEGRATION=1), name
// topics, produce, read a topic back, wait for a consumer group to catch
// up, and compute what a replay of the same records raises.
package kafkatest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/replay"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/schemas"
)

// Replay runs records through one engine with every key kind and the
// rules file at rulesPath, the way `cdrguard replay` does (replay.Alerts):
// what a streaming run of the same records must raise.
func Replay(t testing.TB, rulesPath string, recs []schemas.CDR) []schemas.Alert {
	t.Helper()
	set, err := rules.Load(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := replay.Alerts(e, recs)
	if err != nil {
		t.Fatal(err)
	}
	return alerts
}

// Brokers returns the test broker ($CDRGUARD_KAFKA, default
// 127.0.0.1:9092), skipping the test when none answers — or failing it
// when CDRGUARD_INTEGRATION=1 (make test), so a missing broker never
// passes silently there.
func Brokers(t testing.TB) []string {
	t.Helper()
	addr := brokerAddr()
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

// brokerAddr is the test broker's address: $CDRGUARD_KAFKA, default
// 127.0.0.1:9092.
func brokerAddr() string {
	if addr := os.Getenv("CDRGUARD_KAFKA"); addr != "" {
		return addr
	}
	return "127.0.0.1:9092"
}

// Client returns a client of the test broker, closed with the test.
func Client(t testing.TB) *kafkaio.Client {
	t.Helper()
	kc, err := kafkaio.NewClient(kafkaio.Conn{Brokers: Brokers(t), ClientID: "cdrguard-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// Name returns a topic or group name unique to this test run. When the
// test passes, the topic of that name and the job's topics derived from
// it (<topic>.sources, <topic>.dlq, ...) are deleted, so
// repeated runs do not pile partitions up on the shared test broker; a
// failed test keeps them for a look.
func Name(t testing.TB, what string) string {
	name := fmt.Sprintf("test-%s-%s-%x", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), what, rand.Uint32())
	t.Cleanup(func() {
		if !t.Failed() {
			deleteTopics(t, name)
		}
	})
	return name
}

// deleteTopics deletes the test broker's topic name and the topics named
// name.<anything>, best effort: a failure is logged, never fails the test.
func deleteTopics(t testing.TB, name string) {
	addr := brokerAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kc, err := kafkaio.NewClient(kafkaio.Conn{Brokers: []string{addr}, ClientID: "cdrguard-test"})
	if err != nil {
		t.Logf("cleanup: cannot delete topics %s: %v", name, err)
		return
	}
	defer kc.Close()
	meta, err := kc.Admin.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Logf("cleanup: cannot list topics to delete %s: %v", name, err)
		return
	}
	var names []string
	for _, tp := range meta.Topics {
		if tp.Name == name || strings.HasPrefix(tp.Name, name+".") {
			names = append(names, tp.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	if _, err := kc.Admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names}); err != nil {
		t.Logf("cleanup: cannot delete topics %v: %v", names, err)
	}
}

// Produce writes messages into topic (created with partitions when
// missing), in order; a zero time means the time of writing.
func Produce(t testing.TB, kc *kafkaio.Client, topic string, partitions int, values, keys [][]byte, times []time.Time) {
	t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i := range values {
		msgs[i] = kafka.Message{Key: keys[i], Value: values[i], Time: times[i]}
	}
	if err := kc.Produce(context.Background(), topic, kafkaio.ProduceOptions{Partitions: partitions}, msgs); err != nil {
		t.Fatal(err)
	}
}

// ProduceCDRs writes records keyed by caller, in order, stamped with the
// time they are written (see kafkaio.Client.ProduceCDRs).
func ProduceCDRs(t testing.TB, kc *kafkaio.Client, topic string, partitions int, recs []schemas.CDR) {
	t.Helper()
	if err := kc.ProduceCDRs(context.Background(), topic, kafkaio.ProduceOptions{Partitions: partitions}, recs); err != nil {
		t.Fatal(err)
	}
}

// ReadAll reads every message of topic as it stands now.
func ReadAll(t testing.TB, kc *kafkaio.Client, topic string) []kafka.Message {
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

// Alerts decodes alert messages.
func Alerts(t testing.TB, msgs []kafka.Message) []schemas.Alert {
	t.Helper()
	out := make([]schemas.Alert, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Value, &out[i]); err != nil {
			t.Fatalf("alert %s: %v", m.Value, err)
		}
	}
	return out
}

// Pairs returns the sorted "rule kind subject" pairs of alerts.
func Pairs(alerts []schemas.Alert) []string {
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

// SamePairs fails the test for every pair in only one of want and got.
func SamePairs(t testing.TB, what string, want, got []string) {
	t.Helper()
	in := func(s []string, x string) bool { _, ok := slices.BinarySearch(s, x); return ok }
	bad := 0
	for _, x := range want {
		if !in(got, x) {
			t.Errorf("%s: missing %s", what, x)
			bad++
		}
	}
	for _, x := range got {
		if !in(want, x) {
			t.Errorf("%s: extra %s", what, x)
			bad++
		}
	}
	if bad == 0 {
		t.Logf("%s: the same %d (rule, subject) pairs", what, len(want))
	}
}

// NoDuplicateIDs fails the test when an alert ID was published twice.
func NoDuplicateIDs(t testing.TB, alerts []schemas.Alert) {
	t.Helper()
	seen := map[string]bool{}
	dups := 0
	for _, a := range alerts {
		if seen[a.AlertID] {
			dups++
			if dups <= 5 {
				t.Errorf("alert ID %s (%s %s) published twice", a.AlertID, a.Rule, a.Subject)
			}
		}
		seen[a.AlertID] = true
	}
	if dups > 5 {
		t.Errorf("... %d duplicate alert IDs in all", dups)
	}
}

// WaitCaughtUp waits until group has committed every topic to its end
// and that state held for three checks a second apart. An admin call that
// fails is retried until the deadline, and the last failure is part of
// the message the test fails with.
func WaitCaughtUp(t testing.TB, kc *kafkaio.Client, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stable := 0
	var last string
	var lastErr error
	for {
		ok, state, err := CaughtUp(ctx, kc, group, topics)
		switch {
		case err != nil:
			lastErr, stable, last = err, 0, ""
		case ok && state == last:
			stable++
			if stable >= 3 {
				return
			}
		default:
			stable, last = 0, state
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				t.Fatalf("group %s did not catch up within %v: last state %s; last error: %v", group, timeout, last, lastErr)
			}
			t.Fatalf("group %s did not catch up within %v: %s", group, timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// Committed returns how many messages of topic group has committed, over
// all partitions (a partition without a commit counts 0). It fails the
// test when the broker cannot say — a topic that does not exist, an admin
// call or a partition that answers with an error — so "the offsets did
// not move" is never read from a failed call.
func Committed(t testing.TB, kc *kafkaio.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := GroupOffsets(ctx, kc, group, topic)
	if err != nil {
		t.Fatalf("committed offsets: %v", err)
	}
	var n int64
	for _, o := range offs {
		n += max(o, 0)
	}
	return n
}

// GroupOffsets returns the offset group has committed on each partition
// of topic, -1 where it has committed none. Unlike kafka-go's
// ConsumerOffsets, a missing topic and per-partition errors are errors.
func GroupOffsets(ctx context.Context, kc *kafkaio.Client, group, topic string) ([]int64, error) {
	n, err := kc.Partitions(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("cannot read offsets of group %s on %s: %w", group, topic, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("cannot read offsets of group %s on %s: the topic does not exist", group, topic)
	}
	parts := make([]int, n)
	for p := range parts {
		parts[p] = p
	}
	resp, err := kc.Admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("cannot fetch offsets of group %s on %s: %w", group, topic, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("offsets of group %s on %s: %w", group, topic, resp.Error)
	}
	out := make([]int64, n)
	answered := make([]bool, n)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offset of group %s on %s/%d: %w", group, topic, po.Partition, po.Error)
		}
		if po.Partition < 0 || po.Partition >= n {
			continue
		}
		out[po.Partition], answered[po.Partition] = po.CommittedOffset, true
	}
	for p, ok := range answered {
		if !ok {
			return nil, fmt.Errorf("offsets of group %s on %s: partition %d did not answer", group, topic, p)
		}
	}
	return out, nil
}

// CaughtUp reports whether group has committed every partition of topics
// to its end, with a description of where it stands. An error means the
// broker could not say.
func CaughtUp(ctx context.Context, kc *kafkaio.Client, group string, topics []string) (bool, string, error) {
	all := true
	var b strings.Builder
	for _, topic := range topics {
		committed, err := GroupOffsets(ctx, kc, group, topic)
		if err != nil {
			return false, "", err
		}
		first, next, err := kc.Offsets(ctx, topic, len(committed))
		if err != nil {
			return false, "", err
		}
		for p := range committed {
			fmt.Fprintf(&b, "%s/%d %d/%d ", topic, p, committed[p], next[p])
			// A partition that holds nothing is caught up without a commit.
			if committed[p] < next[p] && next[p] > first[p] {
				all = false
			}
		}
	}
	return all, b.String(), nil
}

// SameAlerts fails the test unless got holds exactly the alerts of want,
// alert for alert: the same IDs, each with the same JSON (rule, subject,
// severity, action, window, detection time, figures, reason), and no ID
// twice.
func SameAlerts(t testing.TB, what string, want, got []schemas.Alert) {
	t.Helper()
	NoDuplicateIDs(t, got)
	key := func(a *schemas.Alert) string {
		b, err := a.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	wantSet, gotSet := map[string]bool{}, map[string]bool{}
	for i := range want {
		wantSet[key(&want[i])] = true
	}
	for i := range got {
		gotSet[key(&got[i])] = true
	}
	var missing, extra []string
	for k := range wantSet {
		if !gotSet[k] {
			missing = append(missing, k)
		}
	}
	for k := range gotSet {
		if !wantSet[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for i, k := range missing {
		if i == 10 {
			t.Errorf("%s: … %d more missing", what, len(missing)-10)
			break
		}
		t.Errorf("%s: missing %s", what, k)
	}
	for i, k := range extra {
		if i == 10 {
			t.Errorf("%s: … %d more extra", what, len(extra)-10)
			break
		}
		t.Errorf("%s: extra %s", what, k)
	}
	if len(missing) == 0 && len(extra) == 0 {
		t.Logf("%s: the same %d alerts, alert for alert", what, len(want))
	}
}
