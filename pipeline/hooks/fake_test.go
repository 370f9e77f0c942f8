package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/schemas"
)

// memLog is an in-memory Log and alerts source for the unit tests.
type memLog struct {
	mu        sync.Mutex
	topics    map[string][]Message
	changed   chan struct{}
	committed map[int]int64 // alerts partition 0 only: next offset
	failing   bool
	follows   map[string]map[*atomic.Int64]bool // topic -> messages applied by each Follow
}

func newMemLog() *memLog {
	return &memLog{topics: map[string][]Message{}, changed: make(chan struct{}), committed: map[int]int64{}, follows: map[string]map[*atomic.Int64]bool{}}
}

func (l *memLog) Produce(_ context.Context, msgs ...Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing {
		return errors.New("broker down")
	}
	for _, m := range msgs {
		l.topics[m.Topic] = append(l.topics[m.Topic], m)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

func (l *memLog) Follow(ctx context.Context, topic string, apply func(Message), ready func()) error {
	var applied atomic.Int64
	l.mu.Lock()
	end := len(l.topics[topic])
	if l.follows[topic] == nil {
		l.follows[topic] = map[*atomic.Int64]bool{}
	}
	l.follows[topic][&applied] = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.follows[topic], &applied)
		l.mu.Unlock()
	}()
	i := 0
	readyDone := false
	for {
		l.mu.Lock()
		msgs := l.topics[topic][i:]
		ch := l.changed
		l.mu.Unlock()
		for _, m := range msgs {
			apply(m)
			i++
			applied.Store(int64(i))
		}
		if !readyDone && i >= end {
			ready()
			readyDone = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (l *memLog) Sync(ctx context.Context, topic string) error {
	l.mu.Lock()
	end := int64(len(l.topics[topic]))
	var follows []*atomic.Int64
	for f := range l.follows[topic] {
		follows = append(follows, f)
	}
	l.mu.Unlock()
	if len(follows) == 0 {
		return errors.New("nothing follows " + topic)
	}
	for _, f := range follows {
		for f.Load() < end {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

func (l *memLog) messages(topic string) []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.topics[topic]...)
}

// live returns the keys of topic not deleted by a later tombstone.
func (l *memLog) live(topic string) map[string]Message {
	out := map[string]Message{}
	for _, m := range l.messages(topic) {
		if len(m.Value) == 0 {
			delete(out, string(m.Key))
		} else {
			out[string(m.Key)] = m
		}
	}
	return out
}

// memSource reads topic "alerts" (one partition) from the committed
// offset, as a restarted consumer group would.
type memSource struct {
	l    *memLog
	next int64
}

func (l *memLog) source() *memSource {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &memSource{l: l, next: l.committed[0]}
}

func (s *memSource) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		s.l.mu.Lock()
		msgs := s.l.topics["alerts"]
		ch := s.l.changed
		s.l.mu.Unlock()
		if int(s.next) < len(msgs) {
			m := msgs[s.next]
			s.next++
			return kafka.Message{Topic: "alerts", Partition: 0, Offset: s.next - 1, Key: m.Key, Value: m.Value}, nil
		}
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-ch:
		}
	}
}

func (s *memSource) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	for _, m := range msgs {
		s.l.committed[m.Partition] = max(s.l.committed[m.Partition], m.Offset+1)
	}
	return nil
}

func (l *memLog) committedAlerts() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed[0]
}

// handlerDoer serves requests with an http.Handler in process.
type handlerDoer struct{ h http.Handler }

func (d handlerDoer) Do(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// testAlert returns a suspension alert of subject.
func testAlert(id, subject string) schemas.Alert {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	return schemas.Alert{AlertID: id, Rule: "dialling_burst", Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend,
		SubjectKind: schemas.SubjectCaller, Subject: subject, WindowStart: t0, WindowEnd: t0.Add(5 * time.Minute),
		DetectedAt: t0.Add(4 * time.Minute), Score: 90, Metrics: schemas.Metrics{WindowS: 300, Calls: 80}, Reason: "test"}
}

func (l *memLog) produceAlerts(t testing.TB, alerts ...schemas.Alert) {
	t.Helper()
	for _, a := range alerts {
		v, err := a.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Produce(context.Background(), Message{Topic: "alerts", Key: []byte(a.Subject), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
}

// memRecorder keeps Delivery rows.
type memRecorder struct {
	mu   sync.Mutex
	rows []Delivery
}

func (r *memRecorder) Record(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, d)
}

func (r *memRecorder) outcomes(endpoint string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, d := range r.rows {
		if endpoint == "" || d.Endpoint == endpoint {
			out[d.Outcome]++
		}
	}
	return out
}

// testEndpoint is an endpoint config with a fresh secret in the
// environment and a short schedule.
func testEndpoint(t testing.TB, name string, schedule ...time.Duration) EndpointConfig {
	t.Helper()
	env := "CDRGUARD_TEST_SECRET_" + name
	t.Setenv(env, newSecretText(t))
	if schedule == nil {
		schedule = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	}
	return EndpointConfig{Name: name, URL: "https://" + name + ".example/hooks", SecretEnv: env, Timeout: 5 * time.Second, RetrySchedule: schedule}
}

func itoa(i int) string { return strconv.Itoa(i) }

func getenv(k string) string { return os.Getenv(k) }

func jsonUnmarshalStrict(b []byte, v any) error { return json.Unmarshal(b, v) }
