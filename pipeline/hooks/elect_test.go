package hooks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
)

// electedRun starts a dispatcher on the real broker that runs the retry
// topic only while elected in group+"-retry"; stop cancels it.
func electedRun(t *testing.T, kc *kafkaio.Client, alertsTopic, group string, cfg Config, rec Recorder) (*Dispatcher, func()) {
	t.Helper()
	d, _, stop := electedRunJoined(t, kc, alertsTopic, group, cfg, rec)
	return d, stop
}

// electedRunJoined is electedRun, also returning the check that its
// alerts reader joined a generation of group.
func electedRunJoined(t *testing.T, kc *kafkaio.Client, alertsTopic, group string, cfg Config, rec Recorder) (*Dispatcher, func() error, func()) {
	t.Helper()
	log := NewKafkaLog(kc)
	d, err := New(Options{Config: cfg, AlertsTopic: alertsTopic, Log: log, Recorder: rec, CommitInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	if err := log.EnsureTopics(ctx, d.Config(), -1); err != nil {
		t.Fatal(err)
	}
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: alertsTopic, Partitions: 2, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	el, err := NewKafkaElector(kc, group+"-retry", d.Config().HeldTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.opts.Elector = el
	src, err := NewAlertSource(kc, alertsTopic, group)
	if err != nil {
		t.Fatal(err)
	}
	joined := JoinedCheck(src, group)
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx, src) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
			src.Close()
			log.Close()
		})
	}
	t.Cleanup(stop)
	return d, joined, stop
}

// TestTwoDispatchers: two dispatchers on one alerts topic, a receiver
// that answers 503 to each request's first attempt and 200 after: every
// request is delivered, each webhook-id once, nothing parked, one retry
// runner at a time; when the runner stops with retries pending, the
// other one takes them over.
func TestTwoDispatchers(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	group := kafkatest.Name(t, "group") + "-hooks"
	var mu sync.Mutex
	attempts := map[string]int{}  // webhook-id -> attempts
	delivered := map[string]int{} // webhook-id -> 200s
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderID)
		mu.Lock()
		defer mu.Unlock()
		attempts[id]++
		if attempts[id] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered[id]++
	}))
	defer srv.Close()
	e := testEndpoint(t, "sps", 2*time.Second, time.Second, time.Second, time.Second, time.Second, time.Second)
	e.URL = srv.URL
	cfg := Config{Endpoints: []EndpointConfig{e}, Breaker: BreakerConfig{Failures: 1000, OpenFor: time.Second}}
	rec := &memRecorder{}
	d1, stop1 := electedRun(t, kc, alerts, group, cfg, rec)
	d2, stop2 := electedRun(t, kc, alerts, group, cfg, rec)
	defer stop2()

	// One runner at a time, ever.
	var both atomic.Int32
	sampler, stopSampler := context.WithCancel(context.Background())
	defer stopSampler()
	go func() {
		for sampler.Err() == nil {
			if d1.leading.Load() && d2.leading.Load() {
				both.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	leaders := func() int {
		n := 0
		for _, d := range []*Dispatcher{d1, d2} {
			if d.leading.Load() {
				n++
			}
		}
		return n
	}
	eventually(t, 40*time.Second, "a retry runner", func() bool { return leaders() == 1 })

	const n = 20
	batch := func(prefix, subjects string) []string {
		var ids []string
		for i := range n {
			a := testAlert(prefix+itoa(i), subjects+itoa(10+i))
			produceAlerts(t, kc, alerts, a)
			ids = append(ids, WebhookID(a.AlertID, ActionSuspend, "sps"))
		}
		return ids
	}
	deliveredAll := func(ids []string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if delivered[id] == 0 {
					return false
				}
			}
			return true
		}
	}
	first := batch("m1-", "+15550500")
	eventually(t, 40*time.Second, "the first batch delivered", deliveredAll(first))

	// Stop the runner while the second batch waits for its retries.
	second := batch("m2-", "+15550600")
	eventually(t, time.Minute, "the second batch's first attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range second {
			if attempts[id] == 0 {
				return false
			}
		}
		return true
	})
	runner, other := d1, d2
	stopRunner := stop1
	if d2.leading.Load() {
		runner, other, stopRunner = d2, d1, stop2
	}
	pendingAtStop := runner.Pending()
	stopRunner()
	eventually(t, 40*time.Second, "the other dispatcher to run the retries and deliver the second batch", deliveredAll(second))
	if !other.leading.Load() {
		t.Error("the remaining dispatcher does not run the retry topic")
	}
	t.Logf("runner stopped with %d retries pending; the other delivered them", pendingAtStop)

	mu.Lock()
	for id, c := range delivered {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	if len(delivered) != 2*n {
		t.Errorf("%d webhook-ids delivered, want %d", len(delivered), 2*n)
	}
	mu.Unlock()
	if b := both.Load(); b != 0 {
		t.Errorf("both dispatchers ran the retry topic at once (%d samples)", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if parked, err := Snapshot(ctx, NewKafkaLog(kc), alerts+".hooks-parked"); err != nil || len(parked) != 0 {
		t.Errorf("parked %d, %v", len(parked), err)
	}
	// The receiver answers before the dispatcher records the delivery:
	// give the last rows a moment.
	eventually(t, time.Minute, "a delivered row per request", func() bool {
		return rec.outcomes("sps")[OutcomeDelivered] >= 2*n
	})
	if o := rec.outcomes("sps"); o[OutcomeParked] != 0 || o[OutcomeDelivered] != 2*n {
		t.Errorf("outcomes %v, want %d delivered and none parked", o, 2*n)
	}
}
