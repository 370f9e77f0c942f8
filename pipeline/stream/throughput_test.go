package stream_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/loader"
	"github.com/cdrguard/cdrguard/pipeline/stream"
)

// TestE2EThroughput is the end-to-end measurement behind `make bench-e2e`
// (skipped unless CDRGUARD_BENCH_E2E=1): a pre-filled 6-partition topic
// of a generated day, drained bare with kafka-go and then consumed by
// the job; both rates are measured in the same run on the same topic.
// CDRGUARD_BENCH_SCALE sets the day's scale (default 1: ~490k records).
// When a ClickHouse server answers on 127.0.0.1:9000 the job is measured
// again with the sink on.
func TestE2EThroughput(t *testing.T) {
	if os.Getenv("CDRGUARD_BENCH_E2E") != "1" {
		t.Skip("a measurement, not a test: make bench-e2e")
	}
	scale := 1.0
	if s := os.Getenv("CDRGUARD_BENCH_SCALE"); s != "" {
		var err error
		if scale, err = strconv.ParseFloat(s, 64); err != nil {
			t.Fatal(err)
		}
	}
	kc := kafkatest.Client(t)
	recs := day(1, scale)
	topic := kafkatest.Name(t, "cdrs")
	kafkatest.ProduceCDRs(t, kc, topic, 6, recs)
	n := int64(len(recs))

	drain := bareDrain(t, kc, topic, 6)
	t.Logf("bare kafka-go drain: %d records in %v: %.0f records/s", n, drain.Round(time.Millisecond), float64(n)/drain.Seconds())

	group, alerts := kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	cfg := testConfig(t, kc, topic, group, alerts)
	cfg.CommitInterval = time.Second // the default
	if v := os.Getenv("CDRGUARD_BENCH_MAXBATCH"); v != "" {
		cfg.MaxBatch, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("CDRGUARD_BENCH_INFLIGHT"); v != "" {
		cfg.MaxInFlight, _ = strconv.Atoi(v)
	}
	total, steady := consume(t, kc, cfg, n)
	drainRate := float64(n) / drain.Seconds()
	rate := 0.8 * float64(n) / steady.Seconds()
	t.Logf("cdrguard run: %d records committed in %v from start (joining the group, creating topics, and the idle release of the last records included)",
		n, total.Round(time.Millisecond))
	t.Logf("cdrguard run, sustained (10%% to 90%% of the records committed): %.0f records/s, %.0f%% of the bare drain", rate, 100*rate/drainRate)

	// The same with the ClickHouse sink on, when a server answers.
	addr := "127.0.0.1:9000"
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Logf("no ClickHouse at %s: the sink is not measured", addr)
		return
	} else {
		c.Close()
	}
	db := fmt.Sprintf("bench_%x", time.Now().UnixNano()&0xffffff)
	var err error
	opts := clickhouse.Options{DSN: "clickhouse://" + addr + "/" + db, FlushInterval: 250 * time.Millisecond}
	if v := os.Getenv("CDRGUARD_BENCH_CH_FLUSH"); v != "" {
		if opts.FlushInterval, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	client, err := clickhouse.Open(context.Background(), opts, cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		client.Close()
		if conn, err := ch.Open(&ch.Options{Addr: []string{addr}}); err == nil {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
	}()
	if err := client.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink := client.NewSink()
	defer sink.Close(context.Background())
	cfg.Group = kafkatest.Name(t, "group-ch")
	cfg.AlertsTopic = kafkatest.Name(t, "alerts-ch")
	cfg.Rows = true
	// The loader runs beside the job, as in `cdrguard run` with a DSN.
	lctx, lcancel := context.WithCancel(context.Background())
	loaded := make(chan error, 1)
	go func() {
		loaded <- loader.Run(lctx, loader.Config{Kafka: kc, Group: cfg.Group + "-clickhouse",
			RowsTopic: cfg.Topic + ".rows", AlertsTopic: cfg.AlertsTopic, Log: cfg.Log,
			Open: func(context.Context) (loader.Store, func(), error) { return sink, func() {}, nil }})
	}()
	total, steady = consume(t, kc, cfg, n)
	rate = 0.8 * float64(n) / steady.Seconds()
	lcancel()
	if err := <-loaded; err != nil {
		t.Error(err)
	}
	t.Logf("cdrguard run with rows for ClickHouse (loader beside it): %d records in %v from start; sustained %.0f records/s, %.0f%% of the bare drain; sink %+v",
		n, total.Round(time.Millisecond), rate, 100*rate/drainRate, sink.Stats())
}

// bareDrain reads every message of topic with one kafka-go reader per
// partition, concurrently, and returns how long it took.
func bareDrain(t *testing.T, kc *kafkaio.Client, topic string, partitions int) time.Duration {
	t.Helper()
	ctx := context.Background()
	_, next, err := kc.Offsets(ctx, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var read atomic.Int64
	start := time.Now()
	for p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := kc.NewReader(topic, p, 0, 8<<20)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				read.Add(1)
				if m.Offset+1 >= next[p] {
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// consume runs the job until it has committed all n input records and
// returns how long that took, and how long it took from 10% to 90% of the
// records committed.
func consume(t *testing.T, kc *kafkaio.Client, cfg stream.Config, n int64) (total, steady time.Duration) {
	t.Helper()
	began := time.Now()
	j := start(t, cfg)
	var at10, at90 time.Time
	for {
		c := kafkatest.Committed(t, kc, cfg.Group, cfg.Topic)
		now := time.Now()
		if at10.IsZero() && c >= n/10 {
			at10 = now
		}
		if at90.IsZero() && c >= n*9/10 {
			at90 = now
		}
		if c >= n {
			break
		}
		if now.Sub(began) > 10*time.Minute {
			t.Fatal("not done within 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	total = time.Since(began)
	j.stop(t)
	return total, at90.Sub(at10)
}
