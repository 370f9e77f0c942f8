package detectors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// evaluate runs the rules of h's kind on the windows that end at the call
// that just landed. now is the key's latest event time.
func (e *Engine) evaluate(h *heavy, now uint32, out *Output) {
	rules := e.byKind[h.kind]
	if len(rules) == 0 {
		return
	}
	clear(e.mvalid[:])
	for i, r := range rules {
		st := &h.rules[i]
		calls := h.rings[r.win].calls
		from := 0
		if st.until > now {
			from = int(st.level) + 1 // within the cooldown only a higher level may fire
			if from >= len(r.Levels) {
				continue
			}
		}
		if int64(calls) < r.gate[from] {
			continue
		}
		// Evaluate on every call while the window is small, then every few
		// calls: a busy key's metrics move slowly relative to its volume.
		if calls >= st.evalAt && calls-st.evalAt < 1+calls/32 {
			continue
		}
		st.evalAt = calls
		m := e.windowMetrics(h, r.win)
		for lv := len(r.Levels) - 1; lv >= from; lv-- {
			l := &r.Levels[lv]
			if int64(calls) < l.MinCalls {
				continue
			}
			e.stats.Evaluations++
			ok, err := l.When.Match(m)
			if err != nil {
				e.stats.RuleErrors[r.index]++
				e.stats.LastRuleError = fmt.Errorf("rule %q level %d: %w", r.Name, lv, err)
				continue
			}
			if ok {
				e.raise(h, r, st, lv, now, m, out)
				break
			}
		}
	}
}

// windowMetrics sums a busy key's window w into the engine's scratch
// metrics (computed once per key and record).
func (e *Engine) windowMetrics(h *heavy, w int) *schemas.Metrics {
	m := &e.metrics[w]
	if e.mvalid[w] {
		return m
	}
	e.mvalid[w] = true
	r := &h.rings[w]
	n := uint32(len(r.b))
	var calls, answered, short, rejected, talk, newCallees, newCallers, lightCalls, lightShort uint64
	var maxCallee, maxRej, maxSeq uint16
	for i := range r.b {
		b := &r.b[i]
		if b.idx == 0 || b.idx > r.head || b.idx+n <= r.head {
			continue
		}
		calls += uint64(b.calls)
		answered += uint64(b.answered)
		short += uint64(b.short)
		rejected += uint64(b.rejected)
		talk += uint64(b.talk)
		newCallees += uint64(b.newCallees)
		newCallers += uint64(b.newCallers)
		lightCalls += uint64(b.lightCalls)
		lightShort += uint64(b.lightShort)
		maxCallee = max(maxCallee, b.maxCallee)
		maxRej = max(maxRej, b.maxCalleeRej)
		maxSeq = max(maxSeq, b.maxSeq)
	}
	*m = schemas.Metrics{
		WindowS:           int64(e.windows[w]),
		Calls:             int64(calls),
		Answered:          int64(answered),
		ShortCalls:        int64(short),
		Rejected:          int64(rejected),
		TalkS:             int64(talk),
		DistinctCallees:   h.callees.estimate(uint32(newCallees)),
		MaxCalleeCalls:    int64(maxCallee),
		MaxCalleeRejected: int64(maxRej),
		MaxSeqRun:         int64(maxSeq),
	}
	if calls > 0 {
		m.AnswerRatio = float64(answered) / float64(calls)
		m.ShortRatio = float64(short) / float64(calls)
	}
	if answered > 0 {
		m.MeanTalkS = float64(talk) / float64(answered)
	}
	if h.kind.IsSource() {
		m.DistinctCallers = h.callers.estimate(uint32(newCallers))
		if m.DistinctCallers > 0 {
			m.CallsPerCaller = float64(calls) / float64(m.DistinctCallers)
		}
		m.LightCalls = int64(lightCalls)
		if lightCalls > 0 {
			m.LightShortRatio = float64(lightShort) / float64(lightCalls)
		}
	}
	return m
}

// raise records an alert of rule r at level lv for h and, unless quiet,
// appends it to out.
func (e *Engine) raise(h *heavy, r *compiledRule, st *ruleState, lv int, now uint32, m *schemas.Metrics, out *Output) {
	st.until = now + r.cooldown
	st.level = int8(lv)
	e.stats.Alerts++
	e.stats.RuleAlerts[r.index]++
	if e.quiet {
		return
	}
	l := &r.Levels[lv]
	ring := &h.rings[r.win]
	score := float64(m.ShortCalls)
	if r.Score != nil {
		if s, err := r.Score.Score(m); err == nil && !math.IsNaN(s) && !math.IsInf(s, 0) {
			score = s
		} else if err != nil {
			e.stats.RuleErrors[r.index]++
			e.stats.LastRuleError = fmt.Errorf("rule %q score: %w", r.Name, err)
		}
	}
	a := schemas.Alert{
		AlertID:     alertID(r.Name, h.kind, h.subject, l.Severity, now),
		Rule:        r.Name,
		Severity:    l.Severity,
		Action:      l.Action,
		SubjectKind: h.kind,
		Subject:     h.subject,
		WindowStart: tsTime(max(ring.start(), sub(ring.end(), e.windows[r.win]))),
		WindowEnd:   tsTime(ring.end()),
		DetectedAt:  tsTime(now),
		EmittedAt:   tsTime(max(e.emitAt, now)),
		Score:       math.Round(score*100) / 100,
		Metrics:     *m,
	}
	if h.kind.IsSource() {
		a.CallerIDs = e.callerIDs(h, sub(ring.end(), e.windows[r.win]))
	}
	a.Reason = reason(h.kind, h.subject, r, m, e.shortS)
	out.Alerts = append(out.Alerts, a)
}

// alertID is deterministic: the same rule, subject, severity and window
// position (the window's end: the event time of the record that crossed
// the threshold) give the same ID in a replay, a restart or another
// instance.
func alertID(rule string, kind schemas.SubjectKind, subject string, sev schemas.Severity, end uint32) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0, byte(kind), 0})
	h.Write([]byte(subject))
	var b [6]byte
	b[0], b[1] = 0, byte(sev)
	binary.BigEndian.PutUint32(b[2:], end)
	h.Write(b[:])
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// callerIDs lists the caller IDs a source carried since from, sorted.
func (e *Engine) callerIDs(h *heavy, from uint32) []string {
	var keys []uint64
	if h.callers.sketched() {
		for _, rc := range h.recent {
			if rc.ts >= from {
				keys = append(keys, rc.key)
			}
		}
	} else {
		h.callers.each(func(k uint64, last uint32) {
			if last >= from {
				keys = append(keys, k)
			}
		})
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if b, ok := unpackKey(e.buf[:0], k); ok {
			e.buf = b
			ids = append(ids, string(b))
		} else if name, ok := h.names[k]; ok {
			ids = append(ids, name)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > schemas.MaxAlertCallerIDs {
		ids = ids[:schemas.MaxAlertCallerIDs]
	}
	return ids
}

// reason writes the one-sentence explanation of an alert.
func reason(kind schemas.SubjectKind, subject string, r *compiledRule, m *schemas.Metrics, shortS uint32) string {
	var b strings.Builder
	win := FormatDuration(time.Duration(m.WindowS) * time.Second)
	pct := func(x float64) int { return int(math.Round(100 * x)) }
	if kind.IsSource() {
		fmt.Fprintf(&b, "%s %s carried %d calls in %s from %d caller IDs (%.1f calls each; %d calls from caller IDs used fewer than %d times, %d%% of them short)",
			kind, subject, m.Calls, win, m.DistinctCallers, m.CallsPerCaller, m.LightCalls, peerTimes, pct(m.LightShortRatio))
	} else {
		fmt.Fprintf(&b, "%s made %d calls in %s to %d different numbers", subject, m.Calls, win, m.DistinctCallees)
	}
	fmt.Fprintf(&b, "; %d%% unanswered or under %d s, %d%% answered", pct(m.ShortRatio), shortS, pct(m.AnswerRatio))
	if m.Answered > 0 {
		fmt.Fprintf(&b, " (mean talk %.0f s)", m.MeanTalkS)
	}
	if m.MaxCalleeCalls >= 3 {
		fmt.Fprintf(&b, "; called one number %d times, %d of them refused", m.MaxCalleeCalls, m.MaxCalleeRejected)
	}
	if m.MaxSeqRun >= 5 {
		fmt.Fprintf(&b, "; dialled %d consecutive numbers", m.MaxSeqRun)
	}
	b.WriteString(" — ")
	if r.Description != "" {
		b.WriteString(strings.TrimSuffix(r.Description, "."))
	} else {
		b.WriteString("matches rule " + r.Name)
	}
	b.WriteString(".")
	return b.String()
}
