package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/cdrguard/cdrguard/detectors"
)

// proxy is a TCP proxy to the test server that a test can take down: while
// down it cuts every open connection and closes new ones at once, as a
// server that crashed or a network that broke.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// proxiedServer starts a proxy to the test server and returns it with the
// test DSN pointed at it: CDRGUARD_CLICKHOUSE as host:port, or as a DSN
// whose credentials and settings are kept and whose (first) host is
// replaced by the proxy's.
func proxiedServer(t *testing.T) (*proxy, string) {
	t.Helper()
	dsn := testDSN(testAddr(t))
	opts, err := ch.ParseDSN(dsn)
	if err != nil || len(opts.Addr) == 0 {
		t.Fatalf("test DSN %q does not parse: %v", redactDSN(dsn), err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("test DSN %q does not parse as a URL: %v", redactDSN(dsn), err)
	}
	p := newProxy(t, opts.Addr[0])
	u.Host = p.addr()
	return p, u.String()
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

// cut takes the proxy down: open connections are closed, new ones are
// closed on accept.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// restore brings the proxy back up.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// TestSinkSurvivesOutage: writes made while ClickHouse is unreachable
// block, hold a bounded number of rows, and all succeed once it is back;
// no row is lost.
func TestSinkSurvivesOutage(t *testing.T) {
	p, dsn := proxiedServer(t)
	const maxRows = 500
	opts := Options{
		DSN:           dsn,
		Database:      randomDatabase(t),
		MaxRows:       maxRows,
		FlushWorkers:  1,
		FlushInterval: 10 * time.Millisecond,
		RetryInitial:  20 * time.Millisecond,
		RetryMax:      300 * time.Millisecond,
		DialTimeout:   time.Second,
		ReadTimeout:   5 * time.Second,
	}
	c := openTestClient(t, opts, true)
	s := newTestSink(t, c)
	ctx := ctxTimeout(t, 2*time.Minute)

	rows := func(w, i int) *Rows {
		r := &Rows{NetworkMinutes: []detectors.NetworkMinute{{Minute: ts("2026-11-26 00:00:00").Add(time.Duration(i) * time.Minute), Calls: 1}}}
		for j := range 99 {
			r.CallerMinutes = append(r.CallerMinutes, detectors.CallerMinute{
				Caller: fmt.Sprintf("+1555%03d%04d", w, j), Minute: ts("2026-11-26 00:00:00").Add(time.Duration(i) * time.Minute), Calls: 1})
		}
		return r
	}
	if err := s.Write(ctx, 0, rows(0, 0)); err != nil {
		t.Fatalf("write before the outage: %v", err)
	}

	p.cut()
	const writers, perWriter = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for i := range perWriter {
				errs <- s.Write(ctx, int32(w), rows(w, i))
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	// While the server is unreachable, no write completes, the sink
	// retries, and it holds at most (FlushWorkers+1) batches of MaxRows
	// rows plus one write's worth: the other writers wait. The outage has
	// lasted long enough when the sink has retried five times since the
	// cut and its pending rows held still over the last three retries (no
	// writer got rows in).
	base := s.Stats().Retries
	deadline := time.Now().Add(30 * time.Second)
	maxPending := int64(0)
	var seen []int64 // pending rows at each new retry
	for {
		select {
		case <-finished:
			t.Fatal("writes completed while ClickHouse was unreachable")
		case err := <-errs:
			t.Fatalf("a write returned while ClickHouse was unreachable: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		st := s.Stats()
		maxPending = max(maxPending, st.PendingRows)
		for n := int(st.Retries - base); len(seen) < n; {
			seen = append(seen, st.PendingRows)
		}
		if k := len(seen); k >= 5 && seen[k-1] > 0 && seen[k-1] == seen[k-2] && seen[k-2] == seen[k-3] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not settle within 30s of the outage: %d retries, pending rows at each: %v", st.Retries-base, seen)
		}
	}
	if bound := int64(2*(maxRows+100) + 100); maxPending > bound || maxPending == 0 {
		t.Errorf("pending rows peaked at %d during the outage, want between 1 and %d", maxPending, bound)
	}
	if s.Stats().Retries == 0 {
		t.Error("no retries during the outage")
	}

	p.restore()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("writes did not complete within a minute of ClickHouse coming back")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("write during the outage failed: %v", err)
		}
	}
	st := s.Stats()
	t.Logf("outage: %d retries, pending rows peaked at %d", st.Retries, maxPending)

	_, got := queryStrings(t, adminConn(t, opts.Database),
		"SELECT (SELECT count() FROM caller_minute FINAL), (SELECT sum(calls) FROM network_minute FINAL)")
	want := []string{fmt.Sprint(99 * (1 + writers*perWriter)), fmt.Sprint(1 + writers*perWriter)}
	if got[0][0] != want[0] || got[0][1] != want[1] {
		t.Errorf("after the outage: caller_minute rows, network calls = %v, want %v", got[0], want)
	}
}

// TestSinkCloseDuringOutage: Close with a deadline while ClickHouse is
// down gives up on the pending rows, fails their writers and returns.
func TestSinkCloseDuringOutage(t *testing.T) {
	p, dsn := proxiedServer(t)
	opts := Options{
		DSN:           dsn,
		Database:      randomDatabase(t),
		FlushInterval: 10 * time.Millisecond,
		RetryInitial:  20 * time.Millisecond,
		RetryMax:      100 * time.Millisecond,
		DialTimeout:   time.Second,
	}
	c := openTestClient(t, opts, true)
	s := c.NewSink()
	p.cut()
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), 0, sampleRows()) }()
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Retries == 0 {
		select {
		case err := <-done:
			t.Fatalf("the write returned while ClickHouse was unreachable: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the sink did not retry within 30s of the outage")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close during an outage = %v, want deadline exceeded", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrSchema) {
			t.Errorf("pending write after an abandoned Close = %v, want a failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pending write did not return after Close gave up")
	}
}
