package hooks

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics are the dispatcher's Prometheus series. The counters and the
// histogram are updated as requests are handled; the gauges are read from
// the dispatcher's state at each scrape (collector), so they can never
// drift from what the topics say.
type metrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	badAlerts  prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_hook_deliveries_total",
			Help: "Rows of hook_deliveries written by this dispatcher: attempts and decisions not to send, by endpoint, action and outcome " +
				"(delivered, retry, queued, parked, held, shadow, blocked_protected, blocked_allowlist, duplicate, rejected, cancelled)."},
			[]string{"endpoint", "action", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_hook_attempts_total",
			Help: "HTTP attempts by endpoint and answer: 2xx, 3xx, 4xx, 5xx, or error (network error or timeout)."},
			[]string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cdrguard_hook_request_seconds",
			Help:    "Time of one HTTP attempt, from sending the request to reading the answer, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"endpoint"}),
		badAlerts: prometheus.NewCounter(prometheus.CounterOpts{Name: "cdrguard_hook_bad_alerts_total",
			Help: "Messages of the alerts topic this dispatcher could not decode and set aside in the hooks dead-letter topic."}),
	}
}

// statusClass is the attempts_total status label of an attempt.
func statusClass(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Gauge descriptions, read at scrape time by dispatcherCollector.
var (
	descHeld = prometheus.NewDesc("cdrguard_hook_held_requests",
		"Suspension requests held for approval (held topic), by endpoint.", []string{"endpoint"}, nil)
	descParked = prometheus.NewDesc("cdrguard_hook_parked_requests",
		"Requests parked (parked topic) waiting for an operator's redelivery, by endpoint.", []string{"endpoint"}, nil)
	descPending = prometheus.NewDesc("cdrguard_hook_pending_retries",
		"Requests waiting in the retry topic (retries, queued requests, releases, expiry releases), by endpoint.", []string{"endpoint"}, nil)
	descBreaker = prometheus.NewDesc("cdrguard_hook_breaker_state",
		"Circuit breaker of the endpoint in this dispatcher: 0 closed, 1 half-open, 2 open.", []string{"endpoint"}, nil)
	descDisabled = prometheus.NewDesc("cdrguard_hook_endpoint_disabled",
		"1 while the endpoint is disabled after an HTTP 410 (until cdrguard hooks enable), else 0.", []string{"endpoint"}, nil)
	descQueue = prometheus.NewDesc("cdrguard_hook_queue_length",
		"Requests in the endpoint's in-memory queue waiting for a worker.", []string{"endpoint"}, nil)
	descLeader = prometheus.NewDesc("cdrguard_hook_retry_leader",
		"1 while this dispatcher is the one that runs the retry topic (elected), else 0.", nil, nil)
	descReady = prometheus.NewDesc("cdrguard_hook_ready",
		"1 once the dispatcher has read its retry, held, parked, allowlist and state topics, else 0.", nil, nil)
)

// dispatcherCollector reads the gauges from d at each scrape.
type dispatcherCollector struct{ d *Dispatcher }

// Describe implements prometheus.Collector.
func (c dispatcherCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeld, descParked, descPending, descBreaker, descDisabled, descQueue, descLeader, descReady} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c dispatcherCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	held, parked, pending, disabled := d.sched.counts()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	for _, e := range d.endpoints {
		gauge(descHeld, float64(held[e.Name]), e.Name)
		gauge(descParked, float64(parked[e.Name]), e.Name)
		gauge(descPending, float64(pending[e.Name]), e.Name)
		gauge(descBreaker, breakerValue(e.breaker.State()), e.Name)
		dis := 0.0
		if disabled[e.Name] {
			dis = 1
		}
		gauge(descDisabled, dis, e.Name)
		gauge(descQueue, float64(len(e.queue)), e.Name)
	}
	gauge(descLeader, boolValue(d.leading.Load()))
	gauge(descReady, boolValue(d.ready.Load()))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// breakerValue maps gobreaker's states to the gauge's values.
func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// register registers the dispatcher's metrics on reg.
func (d *Dispatcher) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{d.metrics.deliveries, d.metrics.attempts, d.metrics.latency, d.metrics.badAlerts, dispatcherCollector{d}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
