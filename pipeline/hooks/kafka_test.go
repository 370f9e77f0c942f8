package hooks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/schemas"
)

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kafkaRun starts a dispatcher on the real broker; stop cancels it.
func kafkaRun(t *testing.T, kc *kafkaio.Client, alertsTopic, group string, cfg Config, rec Recorder) (*Dispatcher, func()) {
	t.Helper()
	log := NewKafkaLog(kc)
	d, err := New(Options{Config: cfg, AlertsTopic: alertsTopic, Log: log, Recorder: rec, CommitInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	if err := log.EnsureTopics(ctx, d.Config(), -1); err != nil {
		t.Fatal(err)
	}
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: alertsTopic, Partitions: 2, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	src, err := NewAlertSource(kc, alertsTopic, group)
	if err != nil {
		t.Fatal(err)
	}
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
	return d, stop
}

func produceAlerts(t *testing.T, kc *kafkaio.Client, topic string, alerts ...schemas.Alert) {
	t.Helper()
	values, keys, times := make([][]byte, len(alerts)), make([][]byte, len(alerts)), make([]time.Time, len(alerts))
	for i, a := range alerts {
		values[i], _ = a.AppendJSON(nil)
		keys[i] = []byte(a.Subject)
	}
	kafkatest.Produce(t, kc, topic, 2, values, keys, times)
}

// TestKafkaDelivery runs the dispatcher against the real broker and a
// real HTTP server: retries then delivery with one webhook-id, 400
// parked at once, 429 with Retry-After honoured, an endpoint that is down
// for the whole test not delaying another, and a restart during retries
// delivering everything, parking nothing.
func TestKafkaDelivery(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	group := kafkatest.Name(t, "group") + "-hooks"

	var mu sync.Mutex
	hits := map[string][]got{} // path -> requests
	downOK := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path] = append(hits[r.URL.Path], got{id: r.Header.Get(HeaderID), at: time.Now()})
		n := len(hits[r.URL.Path])
		ok := downOK
		mu.Unlock()
		switch r.URL.Path {
		case "/flaky":
			if n <= 2 {
				w.WriteHeader(503)
				return
			}
		case "/bad":
			w.WriteHeader(400)
			return
		case "/busy":
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(429)
				return
			}
		case "/down":
			if !ok {
				w.WriteHeader(503)
				return
			}
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	sched := []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second, 2 * time.Second, 2 * time.Second}
	ep := func(name string) EndpointConfig {
		e := testEndpoint(t, name, sched...)
		e.URL = srv.URL + "/" + name
		return e
	}
	cfg := Config{Endpoints: []EndpointConfig{ep("flaky"), ep("bad"), ep("busy"), ep("down"), ep("up")},
		Breaker: BreakerConfig{Failures: 100, OpenFor: time.Second}}
	rec := &memRecorder{}
	_, stop := kafkaRun(t, kc, alerts, group, cfg, rec)

	start := time.Now()
	produceAlerts(t, kc, alerts, testAlert("k1", "+15550300001"))
	count := func(path string) int { mu.Lock(); defer mu.Unlock(); return len(hits[path]) }
	eventually(t, time.Minute, "up, flaky, bad and busy to be done", func() bool {
		return count("/up") == 1 && count("/flaky") == 3 && count("/bad") == 1 && count("/busy") == 2
	})
	mu.Lock()
	upAt := hits["/up"][0].at.Sub(start)
	flaky := slices.Clone(hits["/flaky"])
	busy := slices.Clone(hits["/busy"])
	mu.Unlock()
	t.Logf("up delivered %v after the alert was produced", upAt)
	if upAt > 5*time.Second {
		t.Errorf("up waited %v", upAt)
	}
	if flaky[0].id != flaky[1].id || flaky[1].id != flaky[2].id {
		t.Errorf("flaky saw ids %v", flaky)
	}
	if d := busy[1].at.Sub(busy[0].at); d < time.Second {
		t.Errorf("busy retried after %v, Retry-After said 1s", d)
	}
	parked := func() []Request {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		reqs, err := Snapshot(ctx, NewKafkaLog(kc), alerts+".hooks-parked")
		if err != nil {
			t.Fatal(err)
		}
		return reqs
	}
	if p := parked(); len(p) != 1 || p[0].Endpoint != "bad" || p[0].LastStatus != 400 {
		t.Errorf("parked %+v, want bad's request", p)
	}
	// down is still failing: its request waits in the retry topic.
	if count("/down") < 2 {
		eventually(t, time.Minute, "down's retries", func() bool { return count("/down") >= 2 })
	}
	stop() // like a crash during retries: nothing is resolved at the stop
	mu.Lock()
	downOK = true
	mu.Unlock()
	_, stop2 := kafkaRun(t, kc, alerts, group, cfg, rec)
	defer stop2()
	eventually(t, time.Minute, "down delivered after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		h := hits["/down"]
		return len(h) > 0 && h[len(h)-1].at.After(start) && rec.outcomes("down")[OutcomeDelivered] == 1
	})
	mu.Lock()
	ids := map[string]bool{}
	for _, g := range hits["/down"] {
		ids[g.id] = true
	}
	mu.Unlock()
	if len(ids) != 1 {
		t.Errorf("down saw %d webhook-ids, want 1", len(ids))
	}
	if p := parked(); len(p) != 1 {
		t.Errorf("parked %d after the restart, want bad's 1", len(p))
	}
	eventually(t, time.Minute, "the alert's offset committed", func() bool { return kafkatest.Committed(t, kc, group, alerts) == 1 })
}

// TestKafkaThroughput measures deliveries per second to a local receiver
// and the time from an alert on the topic to the receiver's 200, for an
// endpoint without a budget (first attempts made at once) and one with a
// budget it never reaches (first attempts through the retry runner).
func TestKafkaThroughput(t *testing.T) {
	t.Run("no budget", func(t *testing.T) { kafkaThroughput(t, nil) })
	t.Run("budget", func(t *testing.T) { kafkaThroughput(t, &BudgetConfig{Requests: 1_000_000, Per: time.Hour}) })
}

func kafkaThroughput(t *testing.T, budget *BudgetConfig) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	group := kafkatest.Name(t, "group") + "-hooks"
	n := 2000
	if budget != nil {
		n = 400 // budgeted requests pass one at a time through the runner
	}
	var mu sync.Mutex
	var lat []time.Duration
	var first, last time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	}))
	defer srv.Close()
	e := testEndpoint(t, "sps")
	e.URL = srv.URL
	e.Budget = budget
	cfg := Config{Endpoints: []EndpointConfig{e}, SubjectPeriod: time.Nanosecond, Workers: 16, QueueSize: 4096}
	sentAt := map[string]time.Time{}
	rec := RecorderFunc(func(d Delivery) {
		if d.Outcome != OutcomeDelivered {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := d.Time.Add(d.Latency)
		if first.IsZero() {
			first = now
		}
		last = now
		if at, ok := sentAt[d.AlertID]; ok {
			lat = append(lat, now.Sub(at))
		}
	})
	_, stop := kafkaRun(t, kc, alerts, group, cfg, rec)
	defer stop()
	// Warm up, then write alerts one batch at a time, noting when each
	// batch is acknowledged (on the topic).
	w := kc.NewWriter(nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := 0; i < n; i += 100 {
		var msgs []kafka.Message
		var ids []string
		for j := i; j < i+100; j++ {
			a := testAlert("t"+itoa(j), "+1555040"+itoa(10000+j))
			v, _ := a.AppendJSON(nil)
			msgs = append(msgs, kafka.Message{Topic: alerts, Key: []byte(a.Subject), Value: v})
			ids = append(ids, a.AlertID)
		}
		// Noted before the write: the figure includes the produce.
		mu.Lock()
		for _, id := range ids {
			sentAt[id] = time.Now()
		}
		mu.Unlock()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	// Only completion is asserted: the figures are logged, and a loaded
	// machine may take long to deliver them all.
	eventually(t, 3*time.Minute, "every delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= n })

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	rate := float64(n) / last.Sub(first).Seconds()
	if len(lat) != n {
		t.Errorf("%d deliveries, want %d", len(lat), n)
	}
	t.Logf("%d deliveries in %v: %.0f/s; alert on topic -> receiver's 200: median %v, p99 %v",
		n, last.Sub(first).Round(time.Millisecond), rate, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
}
