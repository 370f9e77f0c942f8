package detectors

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// Condition decides whether a window's metrics match a rule. The engine
// calls it only after the rule's volume gate (MinCalls) passed. An error is
// counted against the rule and treated as no match. Implementations are
// called from one goroutine per engine.
type Condition interface {
	Match(m *schemas.Metrics) (bool, error)
}

// ConditionFunc adapts a function to Condition.
type ConditionFunc func(m *schemas.Metrics) (bool, error)

// Match calls f.
func (f ConditionFunc) Match(m *schemas.Metrics) (bool, error) { return f(m) }

// Scorer computes an alert's triage score from its window's metrics.
type Scorer interface {
	Score(m *schemas.Metrics) (float64, error)
}

// Level is one severity step of a rule. A rule raises its highest level
// whose condition matches.
type Level struct {
	// Severity of alerts raised at this level.
	Severity schemas.Severity
	// Action asked of the suspension system.
	Action schemas.Action
	// MinCalls is the cheap volume gate: the condition is not evaluated
	// while the window holds fewer calls.
	MinCalls int64
	// When is the condition over the window's metrics.
	When Condition
	// Expr is the condition's source text, for messages.
	Expr string
}

// Rule is one detection rule: a condition over one window of one kind of
// key, raised at most once per cooldown per subject unless it escalates.
type Rule struct {
	// Name identifies the rule in alerts and metrics.
	Name string
	// Description says what the rule catches, in words; it ends the
	// alert's reason.
	Description string
	// Kind is the kind of key the rule watches.
	Kind schemas.SubjectKind
	// Window is the size of the window the rule reads; it must be one of
	// the engine's windows.
	Window time.Duration
	// Levels are the rule's severity steps in rising severity; at least
	// one.
	Levels []Level
	// Cooldown is the minimum event time between two alerts of this rule
	// for one subject, unless a higher level matches.
	Cooldown time.Duration
	// Score computes the alert score; nil scores by short calls in the
	// window.
	Score Scorer
}

// Validate checks the rule on its own; messages name the rule and field.
func (r *Rule) Validate() error {
	if r.Name == "" {
		return fmt.Errorf("rule without a name")
	}
	if r.Kind >= schemas.NumSubjectKinds {
		return fmt.Errorf("rule %q: unknown key kind %d", r.Name, r.Kind)
	}
	if len(r.Levels) == 0 {
		return fmt.Errorf("rule %q: no condition", r.Name)
	}
	if r.Cooldown < 0 {
		return fmt.Errorf("rule %q: cooldown %v is negative", r.Name, r.Cooldown)
	}
	for i, l := range r.Levels {
		switch {
		case l.When == nil:
			return fmt.Errorf("rule %q: level %d has no condition", r.Name, i)
		case l.Severity < schemas.SeverityInfo || l.Severity > schemas.SeverityCritical:
			return fmt.Errorf("rule %q: level %d: bad severity %d", r.Name, i, l.Severity)
		case l.Action != schemas.ActionAlert && l.Action != schemas.ActionSuspend:
			return fmt.Errorf("rule %q: level %d: action %q is not alert or suspend", r.Name, i, l.Action)
		case l.MinCalls < 1:
			return fmt.Errorf("rule %q: level %d: min_calls %d must be at least 1", r.Name, i, l.MinCalls)
		case i > 0 && l.Severity <= r.Levels[i-1].Severity:
			return fmt.Errorf("rule %q: level %d: severity %v does not rise above %v", r.Name, i, l.Severity, r.Levels[i-1].Severity)
		}
	}
	return nil
}

// Allowlist exempts known legitimate bulk callers (and sources) from
// alerts. Exact numbers and prefixes are compared after E.164
// normalisation. It is read-only after construction and safe to share.
type Allowlist struct {
	numbers  map[string]struct{}
	prefixes []string
	sources  map[string]struct{}
}

// NewAllowlist builds an allowlist from exact numbers, number prefixes and
// source identifiers (trunk names, IMEIs, IMSIs, IP addresses).
func NewAllowlist(numbers, prefixes, sources []string) *Allowlist {
	a := &Allowlist{numbers: map[string]struct{}{}, sources: map[string]struct{}{}}
	for _, n := range numbers {
		a.numbers[n] = struct{}{}
	}
	for _, s := range sources {
		a.sources[s] = struct{}{}
	}
	a.prefixes = slices.Clone(prefixes)
	slices.Sort(a.prefixes)
	return a
}

// Exempt reports whether subject of the given kind is allowlisted.
func (a *Allowlist) Exempt(kind schemas.SubjectKind, subject string) bool {
	if a == nil {
		return false
	}
	if kind.IsSource() {
		_, ok := a.sources[subject]
		return ok
	}
	if _, ok := a.numbers[subject]; ok {
		return true
	}
	return a.PrefixOf(subject) != ""
}

// PrefixOf returns the allowlisted prefix that number starts with, or "".
func (a *Allowlist) PrefixOf(number string) string {
	if a == nil {
		return ""
	}
	for _, p := range a.prefixes {
		if strings.HasPrefix(number, p) {
			return p
		}
	}
	return ""
}

// Len returns the number of entries.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.numbers) + len(a.prefixes) + len(a.sources)
}
