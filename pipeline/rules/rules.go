// Package rules loads a rules file (YAML) into detector rules: it parses
// and checks the file, compiles each condition once with expr-lang/expr
// and derives the cheap volume gates. A bad file fails at load with a
// message naming the file, the rule and the problem.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// Set is a loaded rules file. It is read-only and safe to share; each
// engine takes its own copy of the rules with Rules.
type Set struct {
	rules []detectors.Rule
	lines []int // the line of each rule in the file
	// Allowlist exempts known legitimate bulk callers and sources.
	Allowlist *detectors.Allowlist
	// Source is where the set came from (a path), for messages.
	Source string

	numbers, prefixes, sources []string
	suspendFor                 map[string]time.Duration
}

// SuspendFor returns the rule's suspend_for: how long the hook
// dispatcher keeps its suspensions before releasing them unless an
// operator confirms; 0 when the rule sets none (until released).
func (s *Set) SuspendFor(rule string) time.Duration { return s.suspendFor[rule] }

// AllowlistEntries returns the allowlist as the file lists it: exact
// numbers, number prefixes and source identifiers.
func (s *Set) AllowlistEntries() (numbers, prefixes, sources []string) {
	return slices.Clone(s.numbers), slices.Clone(s.prefixes), slices.Clone(s.sources)
}

// file is the YAML layout of a rules file.
type file struct {
	Allowlist struct {
		Numbers  []string `yaml:"numbers"`
		Prefixes []string `yaml:"prefixes"`
		Sources  []string `yaml:"sources"`
	} `yaml:"allowlist"`
	Rules []yaml.Node `yaml:"rules"`
}

type level struct {
	MinCalls *int64 `yaml:"min_calls"`
	When     string `yaml:"when"`
	Severity string `yaml:"severity"`
	Action   string `yaml:"action"`
}

type rule struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Key         string  `yaml:"key"`
	Window      string  `yaml:"window"`
	Cooldown    string  `yaml:"cooldown"`
	Score       string  `yaml:"score"`
	Escalate    []level `yaml:"escalate"`
	// SuspendFor is read by the hook dispatcher, not the detectors.
	SuspendFor string `yaml:"suspend_for"`
	level      `yaml:",inline"`
}

// Load reads and compiles the rules file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules file: %w", err)
	}
	return Parse(data, path)
}

// Parse compiles a rules file's contents; source names it in messages.
func Parse(data []byte, source string) (*Set, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("rules file %s: %s", source, fmt.Sprintf(format, args...))
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail("empty file")
		}
		return nil, fail("%v", err)
	}
	if len(f.Rules) == 0 {
		return nil, fail("no rules")
	}
	set := &Set{Source: source, suspendFor: map[string]time.Duration{}}
	for _, n := range append(append([]string{}, f.Allowlist.Numbers...), f.Allowlist.Prefixes...) {
		if n == "" || (n[0] != '+' && !isDigits(n)) {
			return nil, fail("allowlist: %q is not an E.164 number or prefix (\"+1800…\")", n)
		}
	}
	set.Allowlist = detectors.NewAllowlist(f.Allowlist.Numbers, f.Allowlist.Prefixes, f.Allowlist.Sources)
	set.numbers, set.prefixes, set.sources = f.Allowlist.Numbers, f.Allowlist.Prefixes, f.Allowlist.Sources
	seen := map[string]int{}
	for i := range f.Rules {
		node := &f.Rules[i]
		var r rule
		if err := decodeStrict(node, &r); err != nil {
			return nil, fail("rule %d (line %d): %v", i+1, node.Line, err)
		}
		where := fmt.Sprintf("rule %q (line %d)", r.Name, node.Line)
		if r.Name == "" {
			where = fmt.Sprintf("rule %d (line %d)", i+1, node.Line)
			return nil, fail("%s: missing name", where)
		}
		if line, dup := seen[r.Name]; dup {
			return nil, fail("%s: name already used by the rule at line %d", where, line)
		}
		seen[r.Name] = node.Line
		dr, err := compileRule(&r)
		if err != nil {
			return nil, fail("%s: %v", where, err)
		}
		if r.SuspendFor != "" {
			d, err := ParseDuration(r.SuspendFor)
			if err != nil || d <= 0 {
				return nil, fail("%s: suspend_for %q must be a positive duration (24h, 7d)", where, r.SuspendFor)
			}
			suspends := false
			for _, l := range dr.Levels {
				suspends = suspends || l.Action == schemas.ActionSuspend
			}
			if !suspends {
				return nil, fail("%s: suspend_for needs action suspend on the rule or one of its levels", where)
			}
			set.suspendFor[r.Name] = d
		}
		set.rules = append(set.rules, dr)
		set.lines = append(set.lines, node.Line)
	}
	return set, nil
}

// Check reports whether the set's rules can run with the detector
// configuration cfg, as detectors.Config.CheckRules does, before any
// engine is built: a rule whose window cfg does not define fails with the
// file and the rule's line, "rules file deploy/rules.yaml: line 12: rule
// "burst": window 2h is not one of the configured windows 5m, 1h, 24h".
// An invalid cfg fails on its own, without naming the file.
func (s *Set) Check(cfg detectors.Config) error {
	if err := cfg.CheckRules(nil); err != nil {
		return err
	}
	for i := range s.rules {
		if err := cfg.CheckRules(s.rules[i : i+1]); err != nil {
			return fmt.Errorf("rules file %s: line %d: %w", s.Source, s.lines[i], err)
		}
	}
	return nil
}

// Rules returns the rules for one engine. Compiled conditions carry their
// own evaluation machine, which is not goroutine-safe, so every engine
// gets fresh ones.
func (s *Set) Rules() []detectors.Rule {
	out := make([]detectors.Rule, len(s.rules))
	for i, r := range s.rules {
		r.Levels = append([]detectors.Level(nil), r.Levels...)
		for j := range r.Levels {
			r.Levels[j].When = &program{p: r.Levels[j].When.(*program).p}
		}
		if r.Score != nil {
			r.Score = &program{p: r.Score.(*program).p}
		}
		out[i] = r
	}
	return out
}

// Len returns the number of rules.
func (s *Set) Len() int { return len(s.rules) }

func decodeStrict(n *yaml.Node, v any) error {
	// yaml.Node.Decode has no KnownFields switch: re-encode and decode
	// strictly so a misspelt key in a rule is an error too.
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func compileRule(r *rule) (detectors.Rule, error) {
	out := detectors.Rule{Name: r.Name, Description: strings.TrimSpace(r.Description)}
	if r.Key == "" {
		return out, fmt.Errorf("missing key (one of caller, trunk, imei, imsi, source_ip)")
	}
	kind, err := schemas.ParseSubjectKind(r.Key)
	if err != nil {
		return out, fmt.Errorf("key: %v", err)
	}
	out.Kind = kind
	if out.Window, err = ParseDuration(r.Window); err != nil {
		return out, fmt.Errorf("window: %v", err)
	}
	if r.Cooldown == "" {
		return out, fmt.Errorf("missing cooldown (for example 6h)")
	}
	if out.Cooldown, err = ParseDuration(r.Cooldown); err != nil {
		return out, fmt.Errorf("cooldown: %v", err)
	}
	if r.Score != "" {
		p, err := expr.Compile(r.Score, expr.Env(schemas.Metrics{}), expr.AsFloat64())
		if err != nil {
			return out, fmt.Errorf("score: %v", oneLine(err))
		}
		out.Score = &program{p: p}
	}
	levels := append([]level{r.level}, r.Escalate...)
	for i, l := range levels {
		name := "when"
		if i > 0 {
			name = fmt.Sprintf("escalate[%d].when", i-1)
		}
		dl, err := compileLevel(&l)
		if err != nil {
			return out, fmt.Errorf("%s: %v", strings.TrimSuffix(name, ".when"), err)
		}
		out.Levels = append(out.Levels, dl)
	}
	for i := 1; i < len(out.Levels); i++ {
		if out.Levels[i].Severity <= out.Levels[i-1].Severity {
			return out, fmt.Errorf("escalate[%d]: severity %v must be higher than %v", i-1, out.Levels[i].Severity, out.Levels[i-1].Severity)
		}
	}
	return out, out.Validate()
}

func compileLevel(l *level) (detectors.Level, error) {
	var out detectors.Level
	if strings.TrimSpace(l.When) == "" {
		return out, fmt.Errorf("missing when (a condition such as `calls >= 100 && short_ratio > 0.8`)")
	}
	p, err := expr.Compile(l.When, expr.Env(schemas.Metrics{}), expr.AsBool())
	if err != nil {
		return out, fmt.Errorf("when: %v", oneLine(err))
	}
	out.When = &program{p: p}
	out.Expr = l.When
	if l.Severity == "" {
		return out, fmt.Errorf("missing severity (info, warning or critical)")
	}
	if out.Severity, err = schemas.ParseSeverity(l.Severity); err != nil {
		return out, err
	}
	switch schemas.Action(l.Action) {
	case schemas.ActionAlert, schemas.ActionSuspend:
		out.Action = schemas.Action(l.Action)
	case "":
		out.Action = schemas.ActionAlert
	default:
		return out, fmt.Errorf("action %q is not alert or suspend", l.Action)
	}
	if l.MinCalls != nil {
		out.MinCalls = *l.MinCalls
		if out.MinCalls < 1 {
			return out, fmt.Errorf("min_calls %d must be at least 1", out.MinCalls)
		}
	} else if g, ok := callsGate(p.Node()); ok {
		out.MinCalls = g
	} else {
		return out, fmt.Errorf("no volume gate: set min_calls, or require `calls >= N` in the condition")
	}
	return out, nil
}

// callsGate finds `calls >= N` or `calls > N` among the top-level
// conjuncts of a condition: the smallest call count for which it can hold.
func callsGate(n ast.Node) (int64, bool) {
	switch n := n.(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			l, lok := callsGate(n.Left)
			r, rok := callsGate(n.Right)
			switch {
			case lok && rok:
				return max(l, r), true
			case lok:
				return l, true
			case rok:
				return r, true
			}
			return 0, false
		case ">=", ">":
			id, ok := n.Left.(*ast.IdentifierNode)
			if !ok || id.Value != "calls" {
				return 0, false
			}
			v, ok := number(n.Right)
			if !ok {
				return 0, false
			}
			g := int64(math.Ceil(v))
			if n.Operator == ">" && float64(g) == v {
				g++
			}
			return max(g, 1), true
		}
	}
	return 0, false
}

func number(n ast.Node) (float64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return float64(n.Value), true
	case *ast.FloatNode:
		return n.Value, true
	}
	return 0, false
}

// program is a compiled expression; it evaluates against the metrics.
type program struct {
	p  *vm.Program
	vm vm.VM
}

// Match implements detectors.Condition.
func (p *program) Match(m *schemas.Metrics) (bool, error) {
	v, err := p.vm.Run(p.p, m)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition gave %T, not a bool", v)
	}
	return b, nil
}

// Score implements detectors.Scorer.
func (p *program) Score(m *schemas.Metrics) (float64, error) {
	v, err := p.vm.Run(p.p, m)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("score gave %T, not a number", v)
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// ParseDuration reads durations as rules files write them: Go durations
// ("90s", "5m", "1h30m") plus days ("1d", "7d").
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("missing duration")
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration (use 90s, 5m, 1h or 1d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (use 90s, 5m, 1h or 1d)", s)
	}
	return d, nil
}
