package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// AllowEntry is one record of the dynamic allowlist topic (key
// AllowKey): a subject an operator released. Suspensions of it are
// refused (blocked_allowlist) by every dispatcher that has read it.
type AllowEntry struct {
	SubjectKind string    `json:"subject_kind"`
	Subject     string    `json:"subject"`
	DecisionID  string    `json:"decision_id"`
	Action      string    `json:"action"`
	By          string    `json:"by"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// AllowKey is the allowlist-topic key of a subject.
func AllowKey(kind, subject string) string { return kind + "/" + subject }

// SubjectState is one record of the state topic (key StateKey): the last
// suspension or release request of a subject on one endpoint and what
// became of it.
type SubjectState struct {
	Endpoint    string `json:"endpoint"`
	SubjectKind string `json:"subject_kind"`
	Subject     string `json:"subject"`
	// Action is the last request's action, suspend or release.
	Action    string `json:"action"`
	RequestID string `json:"request_id"`
	AlertID   string `json:"alert_id"`
	Rule      string `json:"rule,omitempty"`
	// Outcome is delivered, parked or held.
	Outcome string `json:"outcome"`
	// Since is, for a suspension, when the dispatcher first saw it (the
	// start of its subject period and budget count).
	Since time.Time `json:"since"`
	// At is when the outcome was reached.
	At        time.Time  `json:"at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Alert is the alert of the suspension, for the body of its release.
	Alert json.RawMessage `json:"alert,omitempty"`
}

// StateKey is the state-topic key of a subject on an endpoint.
func StateKey(endpoint, kind, subject string) string {
	return endpoint + "/" + kind + "/" + subject
}

// confirmKeyPrefix starts the state-topic key of a confirm marker
// (endpoint names cannot hold ':').
const confirmKeyPrefix = "confirm:"

// ConfirmKey is the state-topic key of subject's confirm marker.
func ConfirmKey(kind, subject string) string { return confirmKeyPrefix + kind + "/" + subject }

// Confirmed is a confirm marker: an operator confirmed the suspension of
// the subject, so no expiry releases it.
type Confirmed struct {
	DecisionID string    `json:"decision_id"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
}

// budgetKeyPrefix starts the state-topic key of an endpoint's budget
// record (endpoint names cannot hold ':').
const budgetKeyPrefix = "budget:"

// BudgetKey is the state-topic key of endpoint's budget record.
func BudgetKey(endpoint string) string { return budgetKeyPrefix + endpoint }

// BudgetRecord is the state-topic record (key BudgetKey) of an
// endpoint's suspension budget: the admissions within the window and the
// last budget alert. Only the retry runner writes it, before each
// admitted attempt, so the next runner counts on from it.
type BudgetRecord struct {
	Endpoint string      `json:"endpoint"`
	Admitted []Admission `json:"admitted"`
	// AlertedAt is when the last suspension_budget_exceeded alert was
	// raised (one per window).
	AlertedAt time.Time `json:"alerted_at,omitzero"`
	At        time.Time `json:"at"`
}

// Admission is one suspension request counted against a budget.
type Admission struct {
	ID string `json:"id"`
	// Key is the rule with budget.per_rule, else "".
	Key string    `json:"key,omitempty"`
	At  time.Time `json:"at"`
}

// memory holds what the allowlist and state topics say. Safe for
// concurrent use.
type memory struct {
	mu        sync.Mutex
	allow     map[string]AllowEntry
	states    map[string]SubjectState
	confirmed map[string]Confirmed
	budgets   map[string]BudgetRecord // endpoint -> its budget record
	// flight counts suspensions being attempted per kind/subject, so a
	// release waits for them (never overtaken by a suspension).
	flight map[string]int
	landed chan struct{}
}

func newMemory() *memory {
	return &memory{allow: map[string]AllowEntry{}, states: map[string]SubjectState{}, confirmed: map[string]Confirmed{},
		budgets: map[string]BudgetRecord{}, flight: map[string]int{}, landed: make(chan struct{})}
}

// applyAllow applies one allowlist-topic record.
func (m *memory) applyAllow(msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(msg.Value) == 0 {
		delete(m.allow, string(msg.Key))
		return nil
	}
	var e AllowEntry
	if err := json.Unmarshal(msg.Value, &e); err != nil {
		return fmt.Errorf("cannot decode allowlist record: %w", err)
	}
	m.allow[string(msg.Key)] = e
	return nil
}

// addAllow puts e on the allowlist at once (before it is read back).
func (m *memory) addAllow(e AllowEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allow[AllowKey(e.SubjectKind, e.Subject)] = e
}

func (m *memory) allowed(kind, subject string) (AllowEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.allow[AllowKey(kind, subject)]
	return e, ok
}

// applyState applies one state-topic record.
func (m *memory) applyState(msg Message) error {
	key := string(msg.Key)
	m.mu.Lock()
	defer m.mu.Unlock()
	if rest, ok := strings.CutPrefix(key, confirmKeyPrefix); ok {
		if len(msg.Value) == 0 {
			delete(m.confirmed, rest)
			return nil
		}
		var c Confirmed
		if err := json.Unmarshal(msg.Value, &c); err != nil {
			return fmt.Errorf("cannot decode confirm record: %w", err)
		}
		m.confirmed[rest] = c
		return nil
	}
	if ep, ok := strings.CutPrefix(key, budgetKeyPrefix); ok {
		if len(msg.Value) == 0 {
			delete(m.budgets, ep)
			return nil
		}
		var b BudgetRecord
		if err := json.Unmarshal(msg.Value, &b); err != nil {
			return fmt.Errorf("cannot decode budget record: %w", err)
		}
		m.budgets[ep] = b
		return nil
	}
	if len(msg.Value) == 0 {
		delete(m.states, key)
		return nil
	}
	var s SubjectState
	if err := json.Unmarshal(msg.Value, &s); err != nil {
		return fmt.Errorf("cannot decode state record: %w", err)
	}
	m.states[key] = s
	return nil
}

func (m *memory) putState(s SubjectState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[StateKey(s.Endpoint, s.SubjectKind, s.Subject)] = s
}

// state returns the state of subject on endpoint.
func (m *memory) state(endpoint, kind, subject string) (SubjectState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[StateKey(endpoint, kind, subject)]
	return s, ok
}

func (m *memory) confirmedSince(kind, subject string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.confirmed[kind+"/"+subject]
	return ok && !c.At.Before(t)
}

// budget returns endpoint's budget record, if any.
func (m *memory) budget(endpoint string) (BudgetRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.budgets[endpoint]
	return b, ok
}

// subjectStates returns the states of subject on every endpoint.
func (m *memory) subjectStates(kind, subject string) []SubjectState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SubjectState
	for _, s := range m.states {
		if s.SubjectKind == kind && s.Subject == subject {
			out = append(out, s)
		}
	}
	return out
}

// suspensions returns every state whose last action is a suspension.
func (m *memory) suspensions() []SubjectState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SubjectState
	for _, s := range m.states {
		if s.Action == ActionSuspend {
			out = append(out, s)
		}
	}
	return out
}

// takeOff marks a suspension of kind/subject in flight, unless the
// subject is allowlisted (then false: do not attempt it). land ends it.
func (m *memory) takeOff(kind, subject string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := AllowKey(kind, subject)
	if _, ok := m.allow[key]; ok {
		return false
	}
	m.flight[key]++
	return true
}

func (m *memory) land(kind, subject string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := AllowKey(kind, subject)
	if m.flight[key]--; m.flight[key] <= 0 {
		delete(m.flight, key)
	}
	close(m.landed)
	m.landed = make(chan struct{})
}

// waitLanded waits until no suspension of kind/subject is in flight.
func (m *memory) waitLanded(ctx context.Context, kind, subject string) error {
	key := AllowKey(kind, subject)
	for {
		m.mu.Lock()
		n, ch := m.flight[key], m.landed
		m.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// readTopic reads topic to its current end and returns its live records
// by key.
func readTopic(ctx context.Context, f Follower, topic string) (map[string][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	live := map[string][]byte{}
	ready := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- f.Follow(ctx, topic, func(m Message) {
			mu.Lock()
			defer mu.Unlock()
			if len(m.Value) == 0 {
				delete(live, string(m.Key))
				return
			}
			live[string(m.Key)] = m.Value
		}, func() { once.Do(func() { close(ready) }) })
	}()
	select {
	case <-ready:
	case err := <-errc:
		if err == nil {
			err = errors.New("follow ended early")
		}
		return nil, fmt.Errorf("cannot read %s: %w", topic, err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cancel()
	<-errc
	mu.Lock()
	defer mu.Unlock()
	return live, nil
}
