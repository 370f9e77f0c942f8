package hooks

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"
)

// scheduler holds what the retry topic says is pending, and hands each
// request to its endpoint when due. Its state changes only from what is
// read back from the topics (apply), so a request being attempted stays
// "in flight" until the record that resolves it (a newer attempt, or a
// tombstone) comes back: it is never attempted twice at once.
type scheduler struct {
	now func() time.Time

	mu       sync.Mutex
	entries  map[string]*entry
	due      dueHeap
	held     map[string]Request
	parked   map[string]Request
	disabled map[string]bool
	wake     chan struct{}
}

type entry struct {
	req      Request
	at       time.Time // when to hand it over (NextAt, or later when the queue was full)
	inflight bool
}

type dueItem struct {
	at time.Time
	id string
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newScheduler(now func() time.Time) *scheduler {
	return &scheduler{now: now, entries: map[string]*entry{}, held: map[string]Request{}, parked: map[string]Request{},
		disabled: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// applyRetry applies one retry-topic record.
func (s *scheduler) applyRetry(m Message) (err error) {
	key := string(m.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep, ok := strings.CutPrefix(key, disabledKeyPrefix); ok {
		if len(m.Value) == 0 {
			delete(s.disabled, ep)
		} else {
			s.disabled[ep] = true
		}
		return nil
	}
	if len(m.Value) == 0 {
		delete(s.entries, key)
		return nil
	}
	req, err := DecodeRequest(m.Value)
	if err != nil {
		return err
	}
	s.entries[key] = &entry{req: req, at: req.NextAt}
	heap.Push(&s.due, dueItem{at: req.NextAt, id: key})
	s.poke()
	return nil
}

// applySet applies a held- or parked-topic record to the set of IDs there.
func (s *scheduler) applySet(set map[string]Request, m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(m.Value) == 0 {
		delete(set, string(m.Key))
		return
	}
	r, err := DecodeRequest(m.Value)
	if err != nil {
		r = Request{ID: string(m.Key)} // still known: never sent again
	}
	set[string(m.Key)] = r
}

// requests returns the pending requests.
func (s *scheduler) requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.req)
	}
	return out
}

// subject returns the pending, held and parked requests of subject.
func (s *scheduler) subject(kind, subject string) (pending, held, parked []Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.req.SubjectKind == kind && e.req.Subject == subject {
			pending = append(pending, e.req)
		}
	}
	for _, r := range s.held {
		if r.SubjectKind == kind && r.Subject == subject {
			held = append(held, r)
		}
	}
	for _, r := range s.parked {
		if r.SubjectKind == kind && r.Subject == subject {
			parked = append(parked, r)
		}
	}
	return pending, held, parked
}

// known reports whether a request is pending, held or parked already.
func (s *scheduler) known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.entries[id]
	_, held := s.held[id]
	_, parked := s.parked[id]
	return pending || held || parked
}

// isHeld reports whether request id is in the held topic.
func (s *scheduler) isHeld(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[id]
	return ok
}

// isDisabled reports whether endpoint was disabled by a 410.
func (s *scheduler) isDisabled(endpoint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disabled[endpoint]
}

// resetInflight makes every pending request due again at its time: at
// the start of a leadership term, a request handed over in an earlier
// term and not resolved (its attempt cut short) is attempted again.
func (s *scheduler) resetInflight() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.entries {
		if e.inflight {
			e.inflight = false
			heap.Push(&s.due, dueItem{at: e.at, id: id})
		}
	}
	s.poke()
}

// counts returns, by endpoint, the held, parked and pending requests, and
// the endpoints disabled by a 410.
func (s *scheduler) counts() (held, parked, pending map[string]int, disabled map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, parked, pending, disabled = map[string]int{}, map[string]int{}, map[string]int{}, map[string]bool{}
	for _, r := range s.held {
		held[r.Endpoint]++
	}
	for _, r := range s.parked {
		parked[r.Endpoint]++
	}
	for _, e := range s.entries {
		pending[e.req.Endpoint]++
	}
	for ep, d := range s.disabled {
		disabled[ep] = d
	}
	return held, parked, pending, disabled
}

// pending returns the number of requests in the retry topic.
func (s *scheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// run hands due requests to submit until ctx ends. submit returns false
// when the endpoint cannot take the request now; it is offered again a
// second later.
func (s *scheduler) run(ctx context.Context, submit func(Request) bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := s.dispatchDue(submit)
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// dispatchDue submits every due request and returns the wait until the
// next one is due.
func (s *scheduler) dispatchDue(submit func(Request) bool) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var retry []dueItem
	defer func() {
		for _, it := range retry {
			heap.Push(&s.due, it)
		}
	}()
	for s.due.Len() > 0 {
		it := s.due[0]
		e := s.entries[it.id]
		if e == nil || e.inflight || !e.at.Equal(it.at) {
			heap.Pop(&s.due) // stale
			continue
		}
		if it.at.After(now) {
			return it.at.Sub(now)
		}
		heap.Pop(&s.due)
		if submit(e.req) {
			e.inflight = true
			continue
		}
		e.at = now.Add(time.Second)
		retry = append(retry, dueItem{at: e.at, id: it.id})
	}
	if len(retry) > 0 {
		return time.Second
	}
	return time.Hour
}
