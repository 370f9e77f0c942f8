package stream

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdrguard/cdrguard/schemas"
)

// Metrics are the job's Prometheus figures.
type Metrics struct {
	Records       *prometheus.CounterVec   // topic, partition, outcome
	Alerts        *prometheus.CounterVec   // rule, severity
	Lag           *prometheus.GaugeVec     // topic, partition
	Committed     *prometheus.GaugeVec     // topic, partition
	Held          *prometheus.GaugeVec     // topic, partition
	Watermark     *prometheus.GaugeVec     // topic, partition (Unix seconds)
	CommitLatency prometheus.Histogram     // from batch close to commit
	WriteLatency  *prometheus.HistogramVec // output: kafka, rows
	WriteRetries  *prometheus.CounterVec   // output
	Rebuilds      *prometheus.CounterVec   // topic
	Fenced        *prometheus.CounterVec   // topic, partition
	Keys          *prometheus.GaugeVec     // topic, partition, kind
	DetailedKeys  *prometheus.GaugeVec     // topic, partition, kind
	Late          *prometheus.CounterVec   // topic, partition
	StateBytes    *prometheus.GaugeVec     // topic, partition
}

// NewMetrics registers the job's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_records_total",
			Help: "Records taken from Kafka, by outcome (processed, dead_letter, rebuild, duplicate: a re-keyed record sent again by a replay, duplicate_cdr: a CDR delivered again within the dedup horizon)."},
			[]string{"topic", "partition", "outcome"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_alerts_total",
			Help: "Alerts published, by rule and severity."}, []string{"rule", "severity"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_consumer_lag",
			Help: "Messages between a partition's end and the next one the worker takes."}, []string{"topic", "partition"}),
		Committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_committed_offset",
			Help: "Last committed offset per partition."}, []string{"topic", "partition"}),
		Held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_held_records",
			Help: "Records the engine holds until the watermark passes them."}, []string{"topic", "partition"}),
		Watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_watermark_seconds",
			Help: "Event-time watermark per input partition, on end times (start times with detect.end_order off), as told to the source engines (Unix seconds)."}, []string{"topic", "partition"}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cdrguard_commit_latency_seconds",
			Help:    "Time from an output batch closing to its offset being committed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		WriteLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cdrguard_output_write_seconds",
			Help: "Time to make an output batch durable, by output.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)},
			[]string{"output"}),
		WriteRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_output_retries_total",
			Help: "Failed output writes that were retried, by output."}, []string{"output"}),
		Rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_rebuilds_total",
			Help: "Partitions whose windows were rebuilt after a rebalance or restart."}, []string{"topic"}),
		Keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_detector_keys",
			Help: "Keys (callers, sources) the engine keeps state for, by kind."}, []string{"topic", "partition", "kind"}),
		DetailedKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_detector_detailed_keys",
			Help: "Keys with detailed (per-window) state: the busy ones."}, []string{"topic", "partition", "kind"}),
		StateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_detector_state_bytes",
			Help: "The engine's estimate of the memory its state takes (per-key tables, busy keys' windows, held records, duplicate fingerprints)."},
			[]string{"topic", "partition"}),
		Late: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_late_records_total",
			Help: "Records that started more than the lateness behind the watermark (counted, not held)."}, []string{"topic", "partition"}),
		Fenced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_fenced_writes_total",
			Help: "Writes held back because the coordinator did not confirm this member's generation."}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.Records, m.Alerts, m.Lag, m.Committed, m.Held, m.Watermark, m.CommitLatency,
			m.WriteLatency, m.WriteRetries, m.Rebuilds, m.Fenced, m.Keys, m.DetailedKeys, m.Late, m.StateBytes)
	}
	return m
}

// partitionMetrics are one partition's series, resolved once.
type partitionMetrics struct {
	processed, deadLetter, rebuild, duplicate, duplicateCDR, fenced prometheus.Counter
	lag, committed, held, watermark                                 prometheus.Gauge
}

func (m *Metrics) partition(topic string, p int) *partitionMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	ps := strconv.Itoa(p)
	return &partitionMetrics{
		processed:    m.Records.WithLabelValues(topic, ps, "processed"),
		deadLetter:   m.Records.WithLabelValues(topic, ps, "dead_letter"),
		rebuild:      m.Records.WithLabelValues(topic, ps, "rebuild"),
		duplicate:    m.Records.WithLabelValues(topic, ps, "duplicate"),
		duplicateCDR: m.Records.WithLabelValues(topic, ps, "duplicate_cdr"),
		fenced:       m.Fenced.WithLabelValues(topic, ps),
		lag:          m.Lag.WithLabelValues(topic, ps),
		committed:    m.Committed.WithLabelValues(topic, ps),
		held:         m.Held.WithLabelValues(topic, ps),
		watermark:    m.Watermark.WithLabelValues(topic, ps),
	}
}

// The helpers below accept a nil *Metrics (no metrics).

func (m *Metrics) rebuilds(topic string) {
	if m != nil {
		m.Rebuilds.WithLabelValues(topic).Inc()
	}
}

func (m *Metrics) alert(a *schemas.Alert) {
	if m != nil {
		m.Alerts.WithLabelValues(a.Rule, a.Severity.String()).Inc()
	}
}

func (m *Metrics) writeLatency(output string, d time.Duration) {
	if m != nil {
		m.WriteLatency.WithLabelValues(output).Observe(d.Seconds())
	}
}

func (m *Metrics) retried(output string) {
	if m != nil {
		m.WriteRetries.WithLabelValues(output).Inc()
	}
}

func (m *Metrics) commitLatency(d time.Duration) {
	if m != nil {
		m.CommitLatency.Observe(d.Seconds())
	}
}

// removePartition deletes a partition's series, once this member no
// longer owns it, so dashboards do not show a revoked partition's last
// figures as current.
func (m *Metrics) removePartition(topic string, p int) {
	if m == nil {
		return
	}
	ps := strconv.Itoa(p)
	for _, outcome := range []string{"processed", "dead_letter", "rebuild", "duplicate", "duplicate_cdr"} {
		m.Records.DeleteLabelValues(topic, ps, outcome)
	}
	for _, g := range []*prometheus.GaugeVec{m.Lag, m.Committed, m.Held, m.Watermark} {
		g.DeleteLabelValues(topic, ps)
	}
	m.Fenced.DeleteLabelValues(topic, ps)
	m.Late.DeleteLabelValues(topic, ps)
	m.StateBytes.DeleteLabelValues(topic, ps)
	m.Keys.DeletePartialMatch(prometheus.Labels{"topic": topic, "partition": ps})
	m.DetailedKeys.DeletePartialMatch(prometheus.Labels{"topic": topic, "partition": ps})
}

// engineState publishes an engine's key counts and late records (called
// about once a second by the worker; late is the engine's total so far,
// lastLate what was published before).
func (m *Metrics) engineState(topic string, p int, eng interface {
	Keys(schemas.SubjectKind) (int, int)
	StateBytes() int64
}, kinds []schemas.SubjectKind, late, lastLate uint64) {
	if m == nil {
		return
	}
	ps := strconv.Itoa(p)
	m.StateBytes.WithLabelValues(topic, ps).Set(float64(eng.StateBytes()))
	for _, k := range kinds {
		keys, detailed := eng.Keys(k)
		m.Keys.WithLabelValues(topic, ps, k.String()).Set(float64(keys))
		m.DetailedKeys.WithLabelValues(topic, ps, k.String()).Set(float64(detailed))
	}
	if late > lastLate {
		m.Late.WithLabelValues(topic, ps).Add(float64(late - lastLate))
	}
}
