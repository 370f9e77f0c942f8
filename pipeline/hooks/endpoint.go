package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	// Do sends req and returns the response or a transport error; it
	// honours req's context. Safe for concurrent use.
	Do(req *http.Request) (*http.Response, error)
}

// NewHTTPClient returns the client for ep: ep.Timeout per attempt, no
// redirects followed (a redirect is an answer: parked, not retried).
func NewHTTPClient(ep Endpoint) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{
		Timeout:   ep.Timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// job is one request handed to an endpoint's workers.
type job struct {
	req Request
	// fromRetry: the request is in the retry topic; resolving it writes
	// its tombstone or its next record.
	fromRetry bool
	// done is called once the request is resolved (nil for retries).
	done func()
	// ctx bounds the attempt and its writes; nil: the dispatcher's work
	// context. A retry carries its leadership term's.
	ctx context.Context
	// term is, for a retry, the leadership term that handed it over: a
	// retry taken from the queue after its term ended is not attempted.
	term context.Context
	// finish is called once a worker is done with the job, resolved or
	// not (nil: nothing to call).
	finish func()
}

// endpoint is one receiver's state: queue, breaker, budget window and the
// subjects it got recently.
type endpoint struct {
	Endpoint
	doer    Doer
	queue   chan job
	breaker *gobreaker.CircuitBreaker[attemptResult]

	mu       sync.Mutex
	subjects map[string]time.Time // kind/subject -> last admission

	// The budget, counted only by the retry runner, during its term
	// (loaded at the term's start from the state topic): admitted holds
	// the admissions in the window, oldest first. budgetMu is held from
	// the count to the budget record's write, so records are written in
	// the order of the counts.
	budgetMu sync.Mutex
	admitted []Admission
	alerted  time.Time // last budget alert
}

// attemptResult is what one HTTP attempt gave.
type attemptResult struct {
	status     int
	err        error
	latency    time.Duration
	retryAfter time.Duration
	out        outcome
}

// errRetryable tells the breaker an attempt failed.
var errRetryable = errors.New("retryable failure")

func newEndpoint(ep Endpoint, doer Doer, cfg Config) *endpoint {
	e := &endpoint{Endpoint: ep, doer: doer, queue: make(chan job, cfg.QueueSize),
		subjects: map[string]time.Time{}}
	failures := uint32(cfg.Breaker.Failures)
	e.breaker = gobreaker.NewCircuitBreaker[attemptResult](gobreaker.Settings{
		Name:        ep.Name,
		MaxRequests: 1,
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
	})
	return e
}

// offer queues j without blocking; false when the queue is full.
func (e *endpoint) offer(j job) bool {
	select {
	case e.queue <- j:
		return true
	default:
		return false
	}
}

// admitSubject reports whether the subject may get a suspension request
// now (none within period), and remembers it when so.
func (e *endpoint) admitSubject(req *Request, now time.Time, period time.Duration) bool {
	key := req.SubjectKind + "/" + req.Subject
	e.mu.Lock()
	defer e.mu.Unlock()
	if last, ok := e.subjects[key]; ok && now.Sub(last) < period {
		return false
	}
	e.subjects[key] = now
	if len(e.subjects) > 100_000 { // forget the old ones
		for k, t := range e.subjects {
			if now.Sub(t) >= period {
				delete(e.subjects, k)
			}
		}
	}
	return true
}

// countBudget counts a suspension request against the budget (the
// caller holds budgetMu): ok when it fits in the window (counted, unless
// it was counted already: then again is true and nothing changed), or
// not (not counted; raise says whether to raise the budget alert, once
// per window). count is the requests in the window with this one.
func (e *endpoint) countBudget(req *Request, now time.Time) (ok, again, raise bool, count int) {
	b := e.Budget
	key := ""
	if b.PerRule {
		key = req.Rule
	}
	i := 0
	for i < len(e.admitted) && now.Sub(e.admitted[i].At) >= b.Per {
		i++
	}
	e.admitted = e.admitted[i:]
	n := 0
	for _, a := range e.admitted {
		if a.ID == req.ID {
			// Counted by a runner that stopped before its attempt.
			return true, true, false, 0
		}
		if a.Key == key {
			n++
		}
	}
	if n >= b.Requests {
		raise = e.alerted.IsZero() || now.Sub(e.alerted) >= b.Per
		if raise {
			e.alerted = now
		}
		return false, false, raise, n
	}
	e.admitted = append(e.admitted, Admission{ID: req.ID, Key: key, At: now})
	return true, false, false, n + 1
}

// loadBudget sets the budget window (the caller holds budgetMu).
func (e *endpoint) loadBudget(admitted []Admission, alerted time.Time) {
	slices.SortFunc(admitted, func(a, b Admission) int { return a.At.Compare(b.At) })
	e.admitted, e.alerted = admitted, alerted
}

// attempt sends req once.
func (e *endpoint) attempt(ctx context.Context, req *Request, now func() time.Time) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	start := now()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(req.Body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("cannot build request: %w", err), out: outPark}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "cdrguard-hooks")
	hr.Header.Set(HeaderID, req.ID)
	hr.Header.Set(HeaderTimestamp, strconv.FormatInt(start.Unix(), 10))
	hr.Header.Set(HeaderSignature, Sign(e.Secrets, req.ID, start, req.Body))
	resp, err := e.doer.Do(hr)
	if err != nil {
		return attemptResult{err: err, latency: now().Sub(start), out: outRetry}
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	r := attemptResult{status: resp.StatusCode, latency: now().Sub(start), out: classify(resp.StatusCode, nil)}
	if r.out != outDelivered {
		r.err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(snippet)))
		if r.out == outRetry {
			r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), now())
		}
	}
	return r
}

// nextWait is the wait before the retry after attempts attempts: the
// schedule's entry with ±10 % jitter, at least Retry-After; false when
// the schedule is exhausted.
func (e *endpoint) nextWait(attempts int, retryAfter time.Duration) (time.Duration, bool) {
	if attempts < 1 || attempts > len(e.RetrySchedule) {
		return 0, false
	}
	d := e.RetrySchedule[attempts-1]
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	return max(d, retryAfter), true
}

// seed remembers a suspension admitted at since (read back at start)
// for the subject period.
func (e *endpoint) seed(kind, subject string, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := kind + "/" + subject
	if last, ok := e.subjects[key]; !ok || since.After(last) {
		e.subjects[key] = since
	}
}
