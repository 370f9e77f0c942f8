package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// chartSeries is one line of a chart.
type chartSeries struct {
	name, class string
	value       func(Point) uint32
}

// chartKind is what a chart shows: its series in drawing order, and
// whether it draws a dot per point (figures of separate alerts) instead
// of a line with the periods without a point at zero (traffic).
type chartKind struct {
	series []chartSeries
	dots   bool
}

var (
	seriesCalls   = chartSeries{"calls", "s-calls", func(p Point) uint32 { return p.Calls }}
	seriesShort   = chartSeries{"short calls", "s-short", func(p Point) uint32 { return p.ShortCalls }}
	seriesCallees = chartSeries{"distinct callees", "s-callees", func(p Point) uint32 { return p.DistinctCallees }}
	seriesCallers = chartSeries{"distinct caller IDs", "s-callers", func(p Point) uint32 { return p.DistinctCallers }}

	// callerChart is a caller's traffic (caller_minute, caller_hourly).
	callerChart = chartKind{series: []chartSeries{seriesCalls, seriesShort, seriesCallees}}
	// sourceChart is a source's traffic, from its stored CDRs.
	sourceChart = chartKind{series: []chartSeries{seriesCalls, seriesShort, seriesCallees, seriesCallers}}
	// alertFiguresChart is the calls and short calls of a subject's alert
	// windows, at their detection times.
	alertFiguresChart = chartKind{dots: true, series: []chartSeries{
		{"calls in the alert's window", "s-calls", seriesCalls.value},
		{"short calls in the window", "s-short", seriesShort.value},
	}}
)

// renderChart draws kind's series in [from, to) at one point per step as
// an SVG (no script) with a red mark at each alert time. The output holds
// only numbers and escaped text.
func renderChart(kind chartKind, points []Point, from, to time.Time, step time.Duration, marks []time.Time) template.HTML {
	const (
		w, h             = 960.0, 280.0
		left, right      = 48.0, 12.0
		top, bottom      = 16.0, 40.0
		maxPoints        = 3000
		plotW, plotH     = w - left - right, h - top - bottom
		ticks, yTickStep = 8, 4
	)
	n := int(to.Sub(from) / step)
	if n < 1 || n > maxPoints {
		return template.HTML(`<p class="muted">No chart for this range.</p>`)
	}
	vals := make([][]uint32, len(kind.series))
	for i := range vals {
		vals[i] = make([]uint32, n)
	}
	has := make([]bool, n)
	var top1 uint32 = 1
	for _, p := range points {
		k := int(p.T.Sub(from) / step)
		if k < 0 || k >= n {
			continue
		}
		has[k] = true
		for i, s := range kind.series {
			v := s.value(p)
			vals[i][k] = v
			top1 = max(top1, v)
		}
	}
	x := func(k float64) float64 { return left + plotW*k/float64(n) }
	y := func(v uint32) float64 { return top + plotH - plotH*float64(v)/float64(top1) }
	names := make([]string, len(kind.series))
	for i, s := range kind.series {
		names[i] = s.name
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h,
		html.EscapeString(strings.Join(names, ", ")+" per "+stepName(step)))
	for i := 0; i <= yTickStep; i++ {
		v := uint32(float64(top1) * float64(i) / yTickStep)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f" text-anchor="end">%d</text>`,
			left, w-right, y(v), y(v), left-6, y(v)+4, v)
	}
	for i := 0; i <= ticks; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / ticks))
		label := t.UTC().Format("15:04")
		if to.Sub(from) > 48*time.Hour {
			label = t.UTC().Format("01-02")
		}
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(float64(n)*float64(i)/ticks), h-bottom+16, label)
	}
	for _, m := range marks {
		if m.Before(from) || !m.Before(to) {
			continue
		}
		xm := x(float64(m.Sub(from)) / float64(step))
		fmt.Fprintf(&b, `<line class="mark" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"><title>alert %s</title></line>`,
			xm, xm, top, top+plotH, html.EscapeString(m.UTC().Format(time.DateTime)))
	}
	for i, s := range kind.series {
		if kind.dots {
			for k, v := range vals[i] {
				if has[k] {
					fmt.Fprintf(&b, `<circle class="%s-key" cx="%.1f" cy="%.1f" r="3"/>`, s.class, x(float64(k)+0.5), y(v))
				}
			}
			continue
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="`, s.class)
		for k, v := range vals[i] {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(float64(k)+0.5), y(v))
		}
		b.WriteString(`"/>`)
	}
	lx := left
	for _, s := range kind.series {
		fmt.Fprintf(&b, `<rect class="%s-key" x="%.1f" y="%.1f" width="12" height="4"/><text class="legend" x="%.1f" y="%.1f">%s</text>`,
			s.class, lx, h-12, lx+16, h-7, html.EscapeString(s.name))
		lx += 24 + 6.5*float64(len(s.name))
	}
	fmt.Fprintf(&b, `<text class="legend" x="%.1f" y="%.1f">per %s, UTC; red: alerts</text>`, lx, h-7, stepName(step))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text only
}

func stepName(step time.Duration) string {
	if step >= time.Hour {
		return "hour"
	}
	return "minute"
}
