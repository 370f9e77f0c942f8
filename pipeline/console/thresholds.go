package console

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// Check is one comparison of a rule's condition, evaluated on an alert's
// window: "short_ratio >= 0.75" with Left 0.93 and Right 0.75.
type Check struct {
	Expr        string
	Left, Right string // the two sides' values on the window
	Op          string
	OK          bool
}

// LevelWhy is one level of a rule evaluated on an alert's metrics.
type LevelWhy struct {
	Severity string
	Action   string
	MinCalls int64
	GateOK   bool // calls >= MinCalls
	Expr     string
	Checks   []Check
	Matched  bool // gate and condition hold
}

// RuleWhy says in numbers why an alert fired: its rule's levels with
// each comparison evaluated on the alert's window.
type RuleWhy struct {
	Rule        string
	Description string
	Window      string
	// Known is false when the rules file has no rule of that name (it
	// was renamed or removed since the alert).
	Known  bool
	Levels []LevelWhy
}

// Explain evaluates the rule an alert names on the alert's metrics.
func Explain(rules []detectors.Rule, a *schemas.Alert) RuleWhy {
	w := RuleWhy{Rule: a.Rule}
	for i := range rules {
		r := &rules[i]
		if r.Name != a.Rule {
			continue
		}
		w.Known, w.Description, w.Window = true, r.Description, r.Window.String()
		for _, l := range r.Levels {
			lw := LevelWhy{Severity: l.Severity.String(), Action: string(l.Action), MinCalls: l.MinCalls,
				GateOK: a.Metrics.Calls >= l.MinCalls, Expr: l.Expr}
			lw.Checks = checks(l.Expr, &a.Metrics)
			ok := lw.GateOK
			if l.When != nil {
				m, err := l.When.Match(&a.Metrics)
				ok = ok && err == nil && m
			}
			lw.Matched = ok
			w.Levels = append(w.Levels, lw)
		}
	}
	return w
}

// checks splits a condition at && and || into its comparisons and
// evaluates both sides of each.
func checks(src string, m *schemas.Metrics) []Check {
	tree, err := parser.Parse(src)
	if err != nil {
		return []Check{{Expr: src, Left: "cannot parse: " + err.Error()}}
	}
	var out []Check
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if ok {
			switch b.Operator {
			case "&&", "and", "||", "or":
				walk(b.Left)
				walk(b.Right)
				return
			case ">=", ">", "<=", "<", "==", "!=":
				c := Check{Expr: b.String(), Op: b.Operator, Left: eval(b.Left.String(), m), Right: eval(b.Right.String(), m)}
				c.OK = eval(b.String(), m) == "true"
				out = append(out, c)
				return
			}
		}
		out = append(out, Check{Expr: n.String(), Left: eval(n.String(), m), OK: eval(n.String(), m) == "true"})
	}
	walk(tree.Node)
	return out
}

// eval runs one expression on the metrics and formats the value.
func eval(src string, m *schemas.Metrics) string {
	p, err := expr.Compile(src, expr.Env(schemas.Metrics{}))
	if err != nil {
		return "?"
	}
	v, err := expr.Run(p, m)
	if err != nil {
		return "?"
	}
	switch x := v.(type) {
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func formatFloat(x float64) string {
	s := strconv.FormatFloat(x, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}
