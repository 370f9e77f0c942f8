package stream

// Tests of the delivery protocol without a broker: the worker runs on
// fakes of the fetcher, producer, committer and admin seams.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
	"go.uber.org/zap/zaptest"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// fakeBroker holds partitions in memory.
type fakeBroker struct {
	mu    sync.Mutex
	parts map[topicPartition][]kafka.Message
	n     map[string]int
	// next is the next offset readers fetch, per partition.
	next map[topicPartition]int64
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{parts: map[topicPartition][]kafka.Message{}, n: map[string]int{}, next: map[topicPartition]int64{}}
}

func (b *fakeBroker) fetched(tp topicPartition) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next[tp]
}

func (b *fakeBroker) append(topic string, partition int, msgs ...kafka.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tp := topicPartition{topic, partition}
	for _, m := range msgs {
		m.Topic, m.Partition, m.Offset = topic, partition, int64(len(b.parts[tp]))
		b.parts[tp] = append(b.parts[tp], m)
	}
	b.n[topic] = max(b.n[topic], partition+1)
}

func (b *fakeBroker) Partitions(_ context.Context, topic string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[topic], nil
}

func (b *fakeBroker) EnsureTopics(_ context.Context, specs ...kafkaio.TopicSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range specs {
		b.n[s.Name] = max(b.n[s.Name], s.Partitions)
	}
	return nil
}

func (b *fakeBroker) Offsets(_ context.Context, topic string, partitions int) (first, next []int64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first, next = make([]int64, partitions), make([]int64, partitions)
	for p := range partitions {
		next[p] = int64(len(b.parts[topicPartition{topic, p}]))
	}
	return first, next, nil
}

func (b *fakeBroker) EndOffset(_ context.Context, topic string, partition int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int64(len(b.parts[topicPartition{topic, partition}])), nil
}

func (b *fakeBroker) OffsetAt(_ context.Context, topic string, partition int, t time.Time) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgs := b.parts[topicPartition{topic, partition}]
	for i, m := range msgs {
		if !m.Time.Before(t) {
			return int64(i), nil
		}
	}
	return int64(len(msgs)), nil
}

func (b *fakeBroker) MessageAt(_ context.Context, topic string, partition int, offset int64, _ int) (kafka.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msgs := b.parts[topicPartition{topic, partition}]
	if offset < 0 || offset >= int64(len(msgs)) {
		return kafka.Message{}, errors.New("offset out of range")
	}
	return msgs[offset], nil
}

func (b *fakeBroker) HeaderValues(_ context.Context, topic, name string, since time.Time, _ int) (map[string]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]bool{}
	for tp, msgs := range b.parts {
		if tp.topic != topic {
			continue
		}
		for _, m := range msgs {
			if !m.Time.Before(since) {
				if v := header(&m, name); v != nil {
					out[string(v)] = true
				}
			}
		}
	}
	return out, nil
}

func (b *fakeBroker) Reader(topic string, partition int, offset int64, _ int) (fetcher, error) {
	return &fakeReader{b: b, tp: topicPartition{topic, partition}, next: offset}, nil
}

type fakeReader struct {
	b    *fakeBroker
	tp   topicPartition
	next int64
	lag  atomic.Int64
}

func (r *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		r.b.mu.Lock()
		msgs := r.b.parts[r.tp]
		if r.next < int64(len(msgs)) {
			m := msgs[r.next]
			r.next++
			r.b.next[r.tp] = r.next
			r.lag.Store(int64(len(msgs)) - r.next)
			r.b.mu.Unlock()
			return m, nil
		}
		r.b.mu.Unlock()
		select {
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (r *fakeReader) Lag() int64   { return r.lag.Load() }
func (r *fakeReader) Close() error { return nil }

// fakeProducer appends what it writes to the broker, or fails while down.
// It counts writes started after the generation ended.
type fakeProducer struct {
	b        *fakeBroker
	down     atomic.Bool
	calls    atomic.Int64
	failures atomic.Int64
	genCtx   context.Context
	stale    atomic.Int64
}

func (p *fakeProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	p.calls.Add(1)
	if p.genCtx != nil && p.genCtx.Err() != nil {
		p.stale.Add(1)
	}
	if p.down.Load() {
		p.failures.Add(1)
		return errors.New("broker down")
	}
	for _, m := range msgs {
		p.b.append(m.Topic, m.Partition, m)
	}
	return nil
}

// fakeCommitter records commits, or refuses them as a coordinator refuses
// a stale generation.
type fakeCommitter struct {
	mu      sync.Mutex
	offsets map[topicPartition]int64
	refuse  atomic.Bool
}

func (c *fakeCommitter) CommitOffsets(offsets map[string]map[int]int64) error {
	if c.refuse.Load() {
		return errors.New("illegal generation")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offsets == nil {
		c.offsets = map[topicPartition]int64{}
	}
	for topic, parts := range offsets {
		for p, off := range parts {
			c.offsets[topicPartition{topic, p}] = off
		}
	}
	return nil
}

func (c *fakeCommitter) get(topic string, p int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off, ok := c.offsets[topicPartition{topic, p}]; ok {
		return off
	}
	return -1
}

// testJob is a job on fakes with the default rules, one input partition.
func testJob(t *testing.T, b *fakeBroker, p Producer) *job {
	t.Helper()
	set, err := rules.Load("../../deploy/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Kafka: &kafkaio.Client{}, Topic: "cdrs", Group: "g", AlertsTopic: "alerts", Rules: set,
		CreateTopics: true, Rows: true, CommitInterval: 10 * time.Millisecond, FlushInterval: 5 * time.Millisecond,
		MaxBatch: 200, MaxInFlight: 2, IdleRelease: -1, ShutdownTimeout: 2 * time.Second, Log: zaptest.NewLogger(t),
		Metrics: NewMetrics(nil)}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	j := &job{cfg: cfg, broker: b, producer: p, states: map[topicPartition]*partitionState{}, published: map[string]bool{}}
	b.mu.Lock()
	b.n["cdrs"] = max(b.n["cdrs"], 1)
	b.mu.Unlock()
	if err := j.topics(context.Background()); err != nil {
		t.Fatal(err)
	}
	return j
}

// records puts a small generated day into partition 0 of the input
// topic, stamped with the record's end as a switch would write it.
func records(b *fakeBroker, n int) []schemas.CDR {
	recs := synth.Generate(synth.Config{Seed: 3, Scale: 0.02}).Records
	recs = recs[:min(n, len(recs))]
	for i := range recs {
		b.append("cdrs", 0, kafka.Message{Key: []byte(recs[i].Caller), Value: schemas.AppendJSON(nil, &recs[i]),
			Time: time.UnixMilli(recs[i].StartMS).Add(time.Duration(recs[i].DurationS) * time.Second)})
	}
	return recs
}

// runWorker starts a worker on the input partition as a generation would;
// end cancels the generation (and the worker, as launch does) and returns
// the worker once it has stopped.
func runWorker(t *testing.T, j *job, com committer, committed int64) (w *worker, next int64, end func() *worker) {
	t.Helper()
	starts, err := j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: committed}}})
	if err != nil {
		t.Fatal(err)
	}
	w = newWorker(j, starts[0].st, com, starts[0].from)
	next = w.st.next // read before the worker goroutine starts writing it
	genCtx, endGen := context.WithCancel(context.Background())
	if p, ok := j.producer.(*fakeProducer); ok {
		p.genCtx = genCtx
	}
	wctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(genCtx, cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer stop()
		if err := w.run(wctx, context.Background(), genCtx); err != nil {
			t.Errorf("worker: %v", err)
		}
		if !w.clean {
			j.forget(w.st)
		}
	}()
	return w, next, func() *worker {
		endGen()
		<-done
		return w
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A generation that ends while outputs are not durable writes nothing
// more, commits nothing past what is durable, forgets the partition's
// state, and the partition restarts from its committed offset — never
// from where the worker had read.
func TestGenerationEndingWithUndurableOutputsRestartsFromCommitted(t *testing.T) {
	b := newFakeBroker()
	recs := records(b, 3000)
	p := &fakeProducer{b: b}
	j := testJob(t, b, p)
	com := &fakeCommitter{}

	// First part: outputs durable and committed.
	_, _, end := runWorker(t, j, com, -1)
	waitFor(t, "a commit", func() bool { return com.get("cdrs", 0) > 0 })
	// Then the broker refuses writes, the worker goes on reading.
	p.down.Store(true)
	waitFor(t, "failed writes", func() bool { return p.failures.Load() >= 2 })
	// Batches written just before the broker went away may still be
	// committed (the commit interval is 10 ms); once writes have failed
	// for a while, nothing more may be.
	waitFor(t, "more failed writes", func() bool { return p.failures.Load() >= 4 })
	committed := com.get("cdrs", 0)
	w := end()
	if p.stale.Load() != 0 {
		t.Errorf("%d writes started after the generation ended", p.stale.Load())
	}
	if got := com.get("cdrs", 0); got != committed {
		t.Errorf("committed moved from %d to %d after outputs failed", committed, got)
	}
	if w.clean {
		t.Fatal("worker ended clean although its outputs were not durable")
	}
	if w.st.next <= committed {
		t.Fatalf("test needs the worker to have read past the committed offset (next %d, committed %d)", w.st.next, committed)
	}
	if _, kept := j.states[topicPartition{"cdrs", 0}]; kept {
		t.Fatal("the partition's state was kept although outputs were lost")
	}

	// Next generation, same member: a fresh engine from the committed
	// offset, rebuilt from before it, and everything ends up durable.
	p.down.Store(false)
	w2, next2, end2 := runWorker(t, j, com, committed)
	if w2.st == w.st {
		t.Fatal("the new generation reused the old state")
	}
	if w2.start != committed || next2 > committed {
		t.Fatalf("restarted at %d (live from %d), want live from the committed offset %d and a rebuild before it", next2, w2.start, committed)
	}
	waitFor(t, "commits past the old committed offset", func() bool { return com.get("cdrs", 0) > committed })
	end2()
	_ = recs
}

// A worker whose generation ends with everything durable is clean, and
// the next generation keeps its state and goes on where it stopped.
func TestCleanGenerationKeepsState(t *testing.T) {
	b := newFakeBroker()
	records(b, 500)
	p := &fakeProducer{b: b}
	j := testJob(t, b, p)
	com := &fakeCommitter{}
	_, _, end := runWorker(t, j, com, -1)
	waitFor(t, "every record fetched", func() bool { return b.fetched(topicPartition{"cdrs", 0}) == 500 })
	// Let the flush ticks close and write what the last records produced.
	waitFor(t, "a commit", func() bool { return com.get("cdrs", 0) > 0 })
	time.Sleep(100 * time.Millisecond) // twenty flush intervals: nothing left open
	w := end()
	if !w.clean {
		t.Fatal("worker ended with undurable outputs although the producer never failed")
	}
	st := j.states[topicPartition{"cdrs", 0}]
	if st != w.st {
		t.Fatal("a clean partition's state was dropped")
	}
	starts, err := j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: st.committed}}})
	if err != nil {
		t.Fatal(err)
	}
	if starts[0].st != st || starts[0].from != st.next {
		t.Fatalf("next generation starts at %d with state %p, want %d with the kept state %p", starts[0].from, starts[0].st, st.next, st)
	}
	// Somebody else committed meanwhile: the state goes.
	starts, err = j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: st.committed + 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if starts[0].st == st {
		t.Fatal("kept the state although another member committed the partition")
	}
}

// A stale generation's commits are refused; the worker does not pretend
// they happened.
func TestStaleGenerationCannotCommit(t *testing.T) {
	b := newFakeBroker()
	records(b, 400)
	p := &fakeProducer{b: b}
	j := testJob(t, b, p)
	com := &fakeCommitter{}
	com.refuse.Store(true)
	_, _, end := runWorker(t, j, com, -1)
	waitFor(t, "writes", func() bool { return p.calls.Load() >= 2 })
	w := end()
	if w.st.committed != 0 || com.get("cdrs", 0) != -1 {
		t.Fatalf("state says committed %d, coordinator %d; the coordinator refused every commit", w.st.committed, com.get("cdrs", 0))
	}
}

// The commit candidate never passes a record the engine holds.
func TestCommitCandidateNeverPassesHeldRecords(t *testing.T) {
	b := newFakeBroker()
	records(b, 1000)
	j := testJob(t, b, &fakeProducer{b: b})
	starts, err := j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(j, starts[0].st, &fakeCommitter{}, starts[0].from)
	r, _ := b.Reader("cdrs", 0, 0, 0)
	for i := range 1000 {
		m, _ := r.FetchMessage(context.Background())
		w.handle(&m)
		cand := w.commitCandidate()
		if tag, held := w.st.engine.Pending(); held && cand > tag {
			t.Fatalf("after offset %d: candidate %d passes the held record at %d", i, cand, tag)
		}
		if cand > w.st.next {
			t.Fatalf("after offset %d: candidate %d beyond the next offset %d", i, cand, w.st.next)
		}
	}
	if w.st.engine.Held() == 0 {
		t.Fatal("test needs records held for the lateness")
	}
}

// Acknowledgements in any order make only the durable prefix committable.
func TestDurabilityOutOfOrderAcks(t *testing.T) {
	f := func(commits []int64, order []int, want []int64) {
		t.Helper()
		var d durability
		var bs []*batch
		for _, c := range commits {
			b := d.open()
			b.commit = c
			bs = append(bs, b)
		}
		d.open() // the open batch
		for i, k := range order {
			if got := d.ack(bs[k].seq, bs[k].commit); got != want[i] {
				t.Errorf("commits %v, acks %v: after ack %d committable %d, want %d", commits, order, k, got, want[i])
			}
		}
		if !d.allDurable() {
			t.Errorf("commits %v, acks %v: not all durable after every ack", commits, order)
		}
	}
	f([]int64{10, 20, 30}, []int{0, 1, 2}, []int64{10, 20, 30})
	f([]int64{10, 20, 30}, []int{2, 1, 0}, []int64{-1, -1, 30})
	f([]int64{10, 20, 30}, []int{1, 0, 2}, []int64{-1, 20, 30})
	f([]int64{10, -1, 30}, []int{0, 2, 1}, []int64{10, 10, 30})
	f([]int64{-1, -1}, []int{1, 0}, []int64{-1, -1})
	var d durability
	b := d.open()
	if d.allDurable() != true {
		t.Error("nothing closed yet: all durable")
	}
	d.open()
	if d.allDurable() {
		t.Error("a closed batch not acknowledged: not all durable")
	}
	d.ack(b.seq, 5)
	d.ack(b.seq, 5) // twice: no harm
	if !d.allDurable() || d.committable != 5 {
		t.Errorf("after acking the closed batch: all durable %v, committable %d", d.allDurable(), d.committable)
	}
}

// The least watermark over the input partitions: nothing until all have
// reported, idle partitions left out, all idle gives the greatest, and a
// partition's watermark never goes back.
func TestUpstreamWatermark(t *testing.T) {
	type report struct {
		src  int
		wm   int64
		idle bool
	}
	cases := []struct {
		name    string
		parts   int
		reports []report
		want    int64
		ok      bool
	}{
		{"not all reported", 3, []report{{0, 100, false}, {1, 200, false}}, 0, false},
		{"least", 3, []report{{0, 100, false}, {1, 200, false}, {2, 150, false}}, 100, true},
		{"idle left out", 3, []report{{0, 100, true}, {1, 200, false}, {2, 150, false}}, 150, true},
		{"all idle", 2, []report{{0, 100, true}, {1, 200, true}}, 200, true},
		{"never back", 2, []report{{0, 100, false}, {1, 300, false}, {0, 50, false}}, 100, true},
		{"idle again busy", 2, []report{{0, 100, true}, {1, 300, false}, {0, 120, false}}, 120, true},
	}
	for _, c := range cases {
		u := newUpstream(c.parts)
		var got int64
		var ok bool
		for _, r := range c.reports {
			got, ok = u.at(r.src, r.wm, r.idle)
		}
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// A record far ahead of its partition's stream (within max_future) does
// not move the watermark the partition reports to the source engines.
func TestWatermarkIgnoresOutlierRecord(t *testing.T) {
	b := newFakeBroker()
	records(b, 2000)
	j := testJob(t, b, &fakeProducer{b: b})
	starts, err := j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(j, starts[0].st, &fakeCommitter{}, starts[0].from)
	r, _ := b.Reader("cdrs", 0, 0, 0)
	for range 1000 {
		m, _ := r.FetchMessage(context.Background())
		w.handle(&m)
	}
	before := w.watermark()
	// One record five hours ahead of everything else.
	c := schemas.CDR{Caller: "+15550199999", Callee: "+15550100001", StartMS: w.st.engine.Latest() + 5*3600*1000}
	m := kafka.Message{Offset: 1000, Value: schemas.AppendJSON(nil, &c)}
	w.now = time.UnixMilli(c.StartMS) // within max_future of the wall clock
	w.handle(&m)
	after := w.watermark()
	if before.end == 0 || before.start == 0 {
		t.Fatalf("no watermark after 1000 records: %+v", before)
	}
	for _, d := range []int64{after.start - before.start, after.end - before.end} {
		if d > int64(time.Hour/time.Millisecond) {
			t.Fatalf("one record 5 h ahead moved the watermarks from %+v to %+v", before, after)
		}
	}
}

// Packs carry each record's end (version 3), so that source engines run
// records in the input engines' end order; version 2 packs, without
// ends, are still read.
func TestPackCarriesEnds(t *testing.T) {
	p := newPacker("s", 0, 1)
	recs := synth.Generate(synth.Config{Seed: 5, Scale: 0.002}).Records
	var want []schemas.CDR
	for i := range recs {
		if recs[i].Trunk != "" && len(want) < 50 {
			p.add(&recs[i], int64(i))
			want = append(want, recs[i])
		}
	}
	msgs := p.flush(nil, marks{start: 1, end: 2})
	if len(msgs) != 1 || msgs[0].Value[1] != 3 {
		t.Fatalf("%d packs, want 1 of version 3", len(msgs))
	}
	if s, e := string(header(&msgs[0], hdrWatermark)), string(header(&msgs[0], hdrEndWatermark)); s != "1" || e != "2" {
		t.Fatalf("watermark headers %q and %q, want 1 and 2", s, e)
	}
	var got []schemas.CDR
	err := unpack(msgs[0].Value, 0, func(c *schemas.CDR, _ int64) {
		if c.Trunk != "" {
			got = append(got, *c)
		}
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d trunk records unpacked (%v), want %d", len(got), err, len(want))
	}
	ends := 0
	for i := range want {
		if got[i].EndMS != want[i].EndMS || got[i].StartMS != want[i].StartMS || got[i].DurationS != want[i].DurationS {
			t.Fatalf("record %d: start %d end %d talk %d, packed %d %d %d", i, got[i].StartMS, got[i].EndMS, got[i].DurationS,
				want[i].StartMS, want[i].EndMS, want[i].DurationS)
		}
		if want[i].EndMS != 0 {
			ends++
		}
	}
	if ends == 0 {
		t.Fatal("no record with an end time: the test shows nothing")
	}
	// Version 2: offset 7, start, talk 12 s, answered, trunk, caller, id.
	v2 := []byte{'P', 2, 1, 7}
	v2 = binary.AppendVarint(v2, want[0].StartMS)
	v2 = append(v2, 12, byte(schemas.Answered), 0, 2, '+', '1', 2, 't', '1')
	var old []schemas.CDR
	var seqs []int64
	if err := unpack(v2, 0, func(c *schemas.CDR, seq int64) { old, seqs = append(old, *c), append(seqs, seq) }); err != nil {
		t.Fatal(err)
	}
	if len(old) != 1 || old[0].EndMS != 0 || old[0].DurationS != 12 || old[0].Trunk != "t1" || seqs[0] != 7*int64(len(sourceFields)) {
		t.Fatalf("version 2 pack read as %+v (seq %v)", old, seqs)
	}
}

// Rebuild start times: one longest window plus the lateness before the
// last committed record, and no later than its UTC day's start with day
// rows.
func TestRewindTime(t *testing.T) {
	at := time.Date(2026, 11, 26, 15, 30, 0, 0, time.UTC)
	dc := detectors.Config{Lateness: 10 * time.Minute, Windows: []detectors.Window{{Size: time.Hour, Buckets: 12}}}
	f := func(at time.Time, dc detectors.Config, dayRows bool, want time.Time, wantOK bool) {
		t.Helper()
		got, ok := rewindTime(at, dc, dayRows)
		if ok != wantOK || (ok && !got.Equal(want)) {
			t.Errorf("rewindTime(%v, day rows %v) = %v %v, want %v %v", at, dayRows, got, ok, want, wantOK)
		}
	}
	f(at, dc, false, at.Add(-time.Hour-11*time.Minute), true)
	f(at, dc, true, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).Add(-11*time.Minute), true)
	f(at, detectors.Config{}, false, at.Add(-24*time.Hour-11*time.Minute), true) // default windows: 24 h longest
	f(time.UnixMilli(1000), dc, false, time.Time{}, false)                       // no usable time
}

// FuzzUnpack parses bytes as read back from the internal topic: it never
// panics, and what it accepts has callers, sources and times in range.
func FuzzUnpack(f *testing.F) {
	p := newPacker("s", 0, 1)
	recs := synth.Generate(synth.Config{Seed: 5, Scale: 0.002}).Records
	for i := range recs[:50] {
		p.add(&recs[i], int64(i))
	}
	for _, m := range p.flush(nil, marks{}) {
		f.Add(m.Value)
	}
	f.Add([]byte("P\x01\x00"))
	f.Add([]byte("P\x01\x01\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = unpack(data, 0, func(c *schemas.CDR, _ int64) {
			if c.Caller == "" || c.StartMS < schemas.MinStartMS || c.StartMS >= schemas.MaxStartMS {
				t.Fatalf("unpack accepted a record out of range: %+v", c)
			}
			if c.Trunk == "" && c.IMEI == "" && c.IMSI == "" && c.SourceIP == "" {
				t.Fatalf("unpack accepted a record without a source: %+v", c)
			}
		})
	})
}

// A member that was away longer than its lease (paused, or cut off from
// the coordinator) writes nothing until the coordinator accepts a commit
// from its generation again.
func TestPausedMemberWritesOnlyOnceConfirmed(t *testing.T) {
	b := newFakeBroker()
	records(b, 3000)
	p := &fakeProducer{b: b}
	j := testJob(t, b, p)
	var skew atomic.Int64
	j.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	j.cfg.SessionTimeout, j.cfg.RebalanceTimeout = 10*time.Second, 30*time.Second
	com := &fakeCommitter{}
	_, _, end := runWorker(t, j, com, -1)
	waitFor(t, "writes", func() bool { return p.calls.Load() >= 2 })
	// The member "wakes up" after a pause longer than its lease, and the
	// coordinator no longer knows it.
	com.refuse.Store(true)
	skew.Store(int64(time.Minute))
	calls := p.calls.Load()
	more := newFakeBroker()
	records(more, 200)
	b.append("cdrs", 0, more.parts[topicPartition{"cdrs", 0}]...) // more records to write
	waitFor(t, "a refused confirmation", func() bool {
		return testutilFenced(j) > 0
	})
	if p.calls.Load() > calls+1 { // at most the write that was in flight
		t.Fatalf("%d writes after the lease ran out and the coordinator refused the member", p.calls.Load()-calls)
	}
	// Confirmed again: writes resume.
	com.refuse.Store(false)
	waitFor(t, "writes after confirmation", func() bool { return p.calls.Load() > calls+1 })
	end()
}

func testutilFenced(j *job) float64 {
	var m dto.Metric
	_ = j.cfg.Metrics.Fenced.WithLabelValues("cdrs", "0").Write(&m)
	return m.GetCounter().GetValue()
}

// When an input partition replays from its committed offset, it packs the
// same records again at other boundaries; the source worker takes each
// record once.
func TestSourceTakesReplayedRecordsOnce(t *testing.T) {
	b := newFakeBroker()
	recs := synth.Generate(synth.Config{Seed: 7, Scale: 0.02}).Records
	j := testJob(t, b, &fakeProducer{b: b})
	st, err := j.newState("cdrs.sources", 0)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(j, st, &fakeCommitter{}, 0)
	var withSource []int
	for i := range recs {
		if recs[i].Trunk != "" || recs[i].IMEI != "" || recs[i].IMSI != "" || recs[i].SourceIP != "" {
			withSource = append(withSource, i)
		}
		if len(withSource) == 40 {
			break
		}
	}
	if len(withSource) < 40 {
		t.Fatal("test needs 40 records with a source")
	}
	packOf := func(offsets []int) kafka.Message {
		p := newPacker("cdrs.sources", 0, 1)
		for _, off := range offsets {
			p.add(&recs[off], int64(off))
		}
		msgs := p.flush(nil, marks{})
		if len(msgs) != 1 {
			t.Fatalf("%d packs, want 1", len(msgs))
		}
		return msgs[0]
	}
	taken := func() uint64 { return w.st.engine.Stats().Records }
	var off int64
	take := func(m kafka.Message) {
		m.Offset = off
		off++
		w.handle(&m)
	}
	take(packOf(withSource[:20]))   // first run: records 0–19
	take(packOf(withSource[10:30])) // replay from 10, new boundary: only 20–29 are new
	take(packOf(withSource[15:25])) // entirely taken before: dropped
	take(packOf(withSource[30:]))
	want := 0
	for _, i := range withSource {
		c := recs[i]
		for _, f := range sourceFields {
			if f.get(&c) != "" {
				want++
			}
		}
	}
	if got := taken(); got != uint64(want) {
		t.Fatalf("source engine took %d source records, want %d (each once)", got, want)
	}
}

// The engine's state reaches the metrics: keys by kind, detailed keys,
// late records; a revoked partition's series go.
func TestEngineStateMetrics(t *testing.T) {
	b := newFakeBroker()
	records(b, 2000)
	j := testJob(t, b, &fakeProducer{b: b})
	starts, err := j.prepare(context.Background(), map[string][]kafka.PartitionAssignment{"cdrs": {{ID: 0, Offset: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(j, starts[0].st, &fakeCommitter{}, starts[0].from)
	r, _ := b.Reader("cdrs", 0, 0, 0)
	for range 2000 {
		m, _ := r.FetchMessage(context.Background())
		w.handle(&m)
	}
	w.publishState()
	gauge := func(v *prometheus.GaugeVec, kind string) float64 {
		var m dto.Metric
		_ = v.WithLabelValues("cdrs", "0", kind).Write(&m)
		return m.GetGauge().GetValue()
	}
	keys, detailed := w.st.engine.Keys(schemas.SubjectCaller)
	if keys == 0 || gauge(j.cfg.Metrics.Keys, "caller") != float64(keys) || gauge(j.cfg.Metrics.DetailedKeys, "caller") != float64(detailed) {
		t.Fatalf("metrics say %v keys (%v detailed), the engine %d (%d)", gauge(j.cfg.Metrics.Keys, "caller"),
			gauge(j.cfg.Metrics.DetailedKeys, "caller"), keys, detailed)
	}
	var sb dto.Metric
	_ = j.cfg.Metrics.StateBytes.WithLabelValues("cdrs", "0").Write(&sb)
	if sb.GetGauge().GetValue() <= 0 || sb.GetGauge().GetValue() != float64(w.st.engine.StateBytes()) {
		t.Fatalf("state bytes metric %v, engine %d", sb.GetGauge().GetValue(), w.st.engine.StateBytes())
	}
	j.cfg.Metrics.removePartition("cdrs", 0)
	if n := testutil.CollectAndCount(j.cfg.Metrics.Keys); n != 0 {
		t.Fatalf("%d key series left after the partition was revoked", n)
	}
}

type countingRoundTripper struct{ n atomic.Int64 }

func (c *countingRoundTripper) RoundTrip(context.Context, net.Addr, kafka.Request) (kafka.Response, error) {
	c.n.Add(1)
	return nil, nil
}

// The fenced transport sends no produce request once the member's lease
// has run out (a process frozen mid-write resumes and would send it), and
// sends again once a commit renewed the lease; other requests always go.
func TestFencedTransportHoldsProduceRequestsPastTheLease(t *testing.T) {
	var skew atomic.Int64
	j := &job{cfg: Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}}
	next := &countingRoundTripper{}
	ft := fencedTransport{next: next, j: j}
	j.renewLease(time.Now().Add(5 * time.Second))
	if _, err := ft.RoundTrip(context.Background(), nil, &produce.Request{}); err != nil || next.n.Load() != 1 {
		t.Fatalf("within the lease: %v, %d sent", err, next.n.Load())
	}
	skew.Store(int64(time.Minute)) // frozen for a minute
	if _, err := ft.RoundTrip(context.Background(), nil, &produce.Request{}); !errors.Is(err, errLeaseExpired) || next.n.Load() != 1 {
		t.Fatalf("past the lease: %v, %d sent", err, next.n.Load())
	}
	if _, err := ft.RoundTrip(context.Background(), nil, &metadata.Request{}); err != nil || next.n.Load() != 2 {
		t.Fatalf("metadata past the lease: %v, %d sent", err, next.n.Load())
	}
	j.renewLease(time.Now().Add(2 * time.Minute))
	if _, err := ft.RoundTrip(context.Background(), nil, &produce.Request{}); err != nil || next.n.Load() != 3 {
		t.Fatalf("after a renewal: %v, %d sent", err, next.n.Load())
	}
}

// Copies of records (a mediation system delivering some twice) are
// dropped at the input partition, before they are re-keyed, and counted
// as duplicate_cdr; a worker rebuilt from an earlier offset remembers the
// same records, so copies after its restart point are dropped too.
func TestInputDropsDuplicatesBeforeRekeying(t *testing.T) {
	// From the day's busy hours: copies come well within the horizon.
	recs := synth.Generate(synth.Config{Seed: 3, Scale: 0.02}).Records
	recs = recs[len(recs)/2 : len(recs)/2+1500]
	var msgs []kafka.Message
	var copies []int // offsets of the copies
	sources := func(c *schemas.CDR) (n int) {
		for _, f := range sourceFields {
			if f.get(c) != "" {
				n++
			}
		}
		return n
	}
	var order []int // record index per offset
	for i := range recs {
		order = append(order, i)
		if i >= 50 && i%10 == 0 && sources(&recs[i-50]) > 0 {
			copies = append(copies, len(order))
			order = append(order, i-50) // delivered again 50 records later
		}
	}
	for _, i := range order {
		msgs = append(msgs, kafka.Message{Key: []byte(recs[i].Caller), Value: schemas.AppendJSON(nil, &recs[i])})
	}
	b := newFakeBroker()
	b.append("cdrs", 0, msgs...)
	j := testJob(t, b, &fakeProducer{b: b})
	// run takes every message with a worker that rebuilds below start and
	// returns it and how many source records it packed.
	run := func(start int64) (*worker, int) {
		st, err := j.newState("cdrs", 0)
		if err != nil {
			t.Fatal(err)
		}
		w := newWorker(j, st, &fakeCommitter{}, start)
		r, _ := b.Reader("cdrs", 0, 0, 0)
		for range msgs {
			m, err := r.FetchMessage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w.handle(&m)
		}
		packed := 0
		for i := range w.packs.packs {
			packed += w.packs.packs[i].count
		}
		return w, packed
	}
	dupMetric := func() float64 {
		var m dto.Metric
		_ = j.cfg.Metrics.Records.WithLabelValues("cdrs", "0", "duplicate_cdr").Write(&m)
		return m.GetCounter().GetValue()
	}
	w, packed := run(0)
	want := 0
	for i := range recs {
		want += sources(&recs[i])
	}
	if got := w.st.engine.Stats().Duplicates; got != uint64(len(copies)) || dupMetric() != float64(len(copies)) {
		t.Fatalf("%d duplicates dropped, %v counted, want %d", got, dupMetric(), len(copies))
	}
	if packed != want {
		t.Fatalf("%d source records re-keyed, want %d (each record once)", packed, want)
	}
	// Restart at the offset of a copy whose original came before it.
	restart := int64(copies[len(copies)/2])
	wantLive := 0
	for off := restart; off < int64(len(order)); off++ {
		if !slices.Contains(copies, int(off)) {
			wantLive += sources(&recs[order[off]])
		}
	}
	before := dupMetric()
	w2, packed2 := run(restart)
	if w2.st.engine.Stats().Duplicates != uint64(len(copies)) {
		t.Fatalf("rebuilt worker dropped %d duplicates, the first %d", w2.st.engine.Stats().Duplicates, len(copies))
	}
	if packed2 != wantLive {
		t.Fatalf("rebuilt worker re-keyed %d source records after its restart point, want %d", packed2, wantLive)
	}
	liveCopies := 0
	for _, c := range copies {
		if int64(c) >= restart {
			liveCopies++
		}
	}
	if got := dupMetric() - before; got != float64(liveCopies) {
		t.Fatalf("rebuilt worker counted %v duplicates, want %d (the rebuild's are quiet)", got, liveCopies)
	}
}
