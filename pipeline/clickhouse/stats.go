package clickhouse

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a Sink's counters since NewSink.
type Stats struct {
	// RowsWritten and Inserts count the rows and INSERTs the server
	// accepted, per table (TableAlerts, TableCallerMinute, …).
	RowsWritten map[string]uint64
	Inserts     map[string]uint64
	// InsertTime is the total time of the accepted INSERTs.
	InsertTime time.Duration
	// Retries counts failed INSERT attempts that were retried.
	Retries uint64
	// Failures counts INSERTs that failed for good (schema mismatch or an
	// unexpected error).
	Failures uint64
	// Writes counts Write calls that got an answer (WriteErrors of them
	// failed); WriteTime is their total latency, so WriteTime/Writes is
	// the mean time a partition worker waits for its rows to be durable.
	Writes      uint64
	WriteErrors uint64
	WriteTime   time.Duration
	// PendingRows are rows accepted from writers and not written yet.
	PendingRows int64
}

type tableCounters struct {
	rows, inserts atomic.Uint64
}

type sinkStats struct {
	tables                    map[string]*tableCounters // fixed keys: read-only after newSinkStats
	insertNanos               atomic.Int64
	retries, failures         atomic.Uint64
	writes, writeErrs         atomic.Uint64
	writeNanos                atomic.Int64
	pending                   atomic.Int64
	writeLatency              prometheus.Histogram
	insertLatency             *prometheus.HistogramVec
	rowsDesc, insertsDesc     *prometheus.Desc
	retriesDesc, failuresDesc *prometheus.Desc
	pendingDesc               *prometheus.Desc
}

func newSinkStats() *sinkStats {
	st := &sinkStats{tables: map[string]*tableCounters{}}
	for _, t := range tables {
		st.tables[t.name] = &tableCounters{}
	}
	st.writeLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cdrguard_clickhouse_write_duration_seconds",
		Help:    "Time a Sink.Write waited until ClickHouse accepted its rows.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms .. 41 s
	})
	st.insertLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cdrguard_clickhouse_insert_duration_seconds",
		Help:    "Duration of accepted INSERTs, per table.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
	}, []string{"table"})
	st.rowsDesc = prometheus.NewDesc("cdrguard_clickhouse_rows_written_total",
		"Rows ClickHouse accepted, per table.", []string{"table"}, nil)
	st.insertsDesc = prometheus.NewDesc("cdrguard_clickhouse_inserts_total",
		"INSERTs ClickHouse accepted, per table.", []string{"table"}, nil)
	st.retriesDesc = prometheus.NewDesc("cdrguard_clickhouse_insert_retries_total",
		"Failed INSERT attempts that were retried (transient errors).", nil, nil)
	st.failuresDesc = prometheus.NewDesc("cdrguard_clickhouse_insert_failures_total",
		"INSERTs that failed for good (schema mismatch or unexpected error).", nil, nil)
	st.pendingDesc = prometheus.NewDesc("cdrguard_clickhouse_pending_rows",
		"Rows accepted from writers and not yet written.", nil, nil)
	return st
}

func (st *sinkStats) observeInsert(table string, rows int, d time.Duration) {
	c := st.tables[table]
	c.rows.Add(uint64(rows))
	c.inserts.Add(1)
	st.insertNanos.Add(int64(d))
	st.insertLatency.WithLabelValues(table).Observe(d.Seconds())
}

func (st *sinkStats) observeWrite(d time.Duration, err error) {
	st.writes.Add(1)
	if err != nil {
		st.writeErrs.Add(1)
	}
	st.writeNanos.Add(int64(d))
	st.writeLatency.Observe(d.Seconds())
}

// Stats returns a snapshot of the Sink's counters. It is safe to call at
// any time from any goroutine.
func (s *Sink) Stats() Stats {
	st := s.stats
	out := Stats{
		RowsWritten: make(map[string]uint64, len(st.tables)),
		Inserts:     make(map[string]uint64, len(st.tables)),
		InsertTime:  time.Duration(st.insertNanos.Load()),
		Retries:     st.retries.Load(),
		Failures:    st.failures.Load(),
		Writes:      st.writes.Load(),
		WriteErrors: st.writeErrs.Load(),
		WriteTime:   time.Duration(st.writeNanos.Load()),
		PendingRows: st.pending.Load(),
	}
	for name, c := range st.tables {
		out.RowsWritten[name] = c.rows.Load()
		out.Inserts[name] = c.inserts.Load()
	}
	return out
}

// Register registers the Sink's metrics with reg: rows and INSERTs per
// table, retries, failures, pending rows, and histograms of Write and
// INSERT latency (names start with cdrguard_clickhouse_). Register one
// Sink per registry.
func (s *Sink) Register(reg prometheus.Registerer) error {
	return reg.Register(sinkCollector{s.stats})
}

// sinkCollector exposes sinkStats to Prometheus.
type sinkCollector struct{ st *sinkStats }

// Describe implements prometheus.Collector.
func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.st.rowsDesc
	ch <- c.st.insertsDesc
	ch <- c.st.retriesDesc
	ch <- c.st.failuresDesc
	ch <- c.st.pendingDesc
	c.st.writeLatency.Describe(ch)
	c.st.insertLatency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st
	for name, tc := range st.tables {
		ch <- prometheus.MustNewConstMetric(st.rowsDesc, prometheus.CounterValue, float64(tc.rows.Load()), name)
		ch <- prometheus.MustNewConstMetric(st.insertsDesc, prometheus.CounterValue, float64(tc.inserts.Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(st.retriesDesc, prometheus.CounterValue, float64(st.retries.Load()))
	ch <- prometheus.MustNewConstMetric(st.failuresDesc, prometheus.CounterValue, float64(st.failures.Load()))
	ch <- prometheus.MustNewConstMetric(st.pendingDesc, prometheus.GaugeValue, float64(st.pending.Load()))
	st.writeLatency.Collect(ch)
	st.insertLatency.Collect(ch)
}
