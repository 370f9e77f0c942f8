package detectors_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// rec builds a finalized CDR starting at t0+at.
func rec(t testing.TB, caller, callee string, at time.Duration, disp schemas.Disposition, talk int32) schemas.CDR {
	t.Helper()
	c := schemas.CDR{Caller: caller, Callee: callee, StartMS: t0.Add(at).UnixMilli(), Disposition: disp}
	c.SetDuration(talk)
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

// burstRule fires on 30+ calls in an hour with 80% short calls, and
// escalates to critical at 100.
func burstRule() detectors.Rule {
	return detectors.Rule{
		Name: "burst", Kind: schemas.SubjectCaller, Window: time.Hour, Cooldown: 6 * time.Hour,
		Description: "test burst",
		Levels: []detectors.Level{
			{Severity: schemas.SeverityWarning, Action: schemas.ActionAlert, MinCalls: 30,
				When: detectors.ConditionFunc(func(m *schemas.Metrics) (bool, error) { return m.ShortRatio >= 0.8, nil })},
			{Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend, MinCalls: 100,
				When: detectors.ConditionFunc(func(m *schemas.Metrics) (bool, error) { return m.ShortRatio >= 0.8, nil })},
		},
	}
}

func newEngine(t testing.TB, cfg detectors.Config, allow *detectors.Allowlist, rules ...detectors.Rule) *detectors.Engine {
	t.Helper()
	e, err := detectors.NewEngine(cfg, rules, allow)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestBurstFlagsEarlyOnceAndEscalates(t *testing.T) {
	e := newEngine(t, detectors.Config{}, nil, burstRule())
	var out detectors.Output
	for i := range 200 {
		c := rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&c, &out)
	}
	if len(out.Alerts) != 0 {
		// Nothing leaves the engine before the watermark (latest start
		// minus 10 minutes of lateness) passes it.
		if first := out.Alerts[0].DetectedAt; first.After(t0.Add(200*10*time.Second - 10*time.Minute)) {
			t.Fatalf("alert detected at %v left the engine before the watermark passed it", first)
		}
	}
	e.Flush(&out)
	alerts := out.Alerts
	if len(alerts) != 2 {
		t.Fatalf("got %d alerts, want a warning and one escalation: %+v", len(alerts), alerts)
	}
	w, c := alerts[0], alerts[1]
	if w.Severity != schemas.SeverityWarning || c.Severity != schemas.SeverityCritical || c.Action != schemas.ActionSuspend {
		t.Fatalf("severities %v/%v, action %v", w.Severity, c.Severity, c.Action)
	}
	// The detailed windows start with the last call before the key
	// crossed the detail gate, so the first alert comes within a few
	// calls of the rule's 30.
	firstAt := int(alerts[0].DetectedAt.Sub(t0)/(10*time.Second)) + 1
	if firstAt > 40 {
		t.Fatalf("first alert at call %d, want within tens of calls", firstAt)
	}
	if w.Subject != "+15550100001" || w.SubjectKind != schemas.SubjectCaller || w.Rule != "burst" {
		t.Fatalf("alert subject %v %q rule %q", w.SubjectKind, w.Subject, w.Rule)
	}
	if w.Metrics.Calls < 30 || w.Metrics.DistinctCallees != w.Metrics.Calls || w.Metrics.ShortRatio != 1 || w.Metrics.AnswerRatio != 0 {
		t.Fatalf("metrics %+v", w.Metrics)
	}
	if !w.DetectedAt.Equal(t0.Add(time.Duration(firstAt-1) * 10 * time.Second)) {
		t.Fatalf("detected_at %v, want the start of call %d", w.DetectedAt, firstAt)
	}
	if w.WindowEnd.Sub(w.WindowStart) != time.Hour || w.WindowEnd.Before(w.DetectedAt) {
		t.Fatalf("window %v..%v", w.WindowStart, w.WindowEnd)
	}
	if w.Reason == "" || w.AlertID == c.AlertID || len(w.AlertID) != 32 {
		t.Fatalf("reason %q, ids %q %q", w.Reason, w.AlertID, c.AlertID)
	}
}

func TestAlertIDsAreDeterministic(t *testing.T) {
	run := func() []string {
		e := newEngine(t, detectors.Config{}, nil, burstRule())
		var out detectors.Output
		for i := range 150 {
			c := rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.Rejected, 0)
			e.Process(&c, &out)
		}
		e.Flush(&out)
		var ids []string
		for _, a := range out.Alerts {
			ids = append(ids, a.AlertID)
		}
		return ids
	}
	a, b := run(), run()
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("two runs gave %v and %v", a, b)
	}
}

func TestAnsweredLongCallsDoNotFlag(t *testing.T) {
	e := newEngine(t, detectors.Config{}, nil, burstRule())
	var out detectors.Output
	for i := range 300 { // a switchboard: hundreds of long answered calls
		c := rec(t, "+15550100002", fmt.Sprintf("+1555030%04d", i), time.Duration(i)*90*time.Second, schemas.Answered, 240)
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if len(out.Alerts) != 0 {
		t.Fatalf("switchboard flagged: %+v", out.Alerts[0])
	}
}

func TestAllowlistExempts(t *testing.T) {
	allow := detectors.NewAllowlist(nil, []string{"+1800555"}, nil)
	e := newEngine(t, detectors.Config{}, allow, burstRule())
	var out detectors.Output
	for i := range 200 {
		c := rec(t, "+18005550100", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&c, &out)
		d := rec(t, "+15550100009", fmt.Sprintf("+1555040%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&d, &out)
	}
	e.Flush(&out)
	for _, a := range out.Alerts {
		if a.Subject == "+18005550100" {
			t.Fatalf("allowlisted number flagged: %+v", a)
		}
	}
	if len(out.Alerts) == 0 {
		t.Fatal("the number that is not allowlisted was not flagged")
	}
	if e.Stats().Exempted != 1 {
		t.Fatalf("exempted = %d, want 1", e.Stats().Exempted)
	}
}

func TestQuietModeRebuildsCooldowns(t *testing.T) {
	e := newEngine(t, detectors.Config{}, nil, burstRule())
	var out detectors.Output
	e.SetQuiet(true)
	for i := range 60 {
		c := rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&c, &out)
	}
	if out.Len() != 0 {
		t.Fatalf("quiet engine emitted %d items", out.Len())
	}
	e.SetQuiet(false)
	for i := 60; i < 90; i++ {
		c := rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if len(out.Alerts) != 0 {
		t.Fatalf("the warning raised while quiet was raised again: %+v", out.Alerts)
	}
	for i := 90; i < 160; i++ {
		c := rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i), time.Duration(i)*10*time.Second, schemas.NoAnswer, 0)
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if len(out.Alerts) != 1 || out.Alerts[0].Severity != schemas.SeverityCritical {
		t.Fatalf("after the rebuild: %+v, want only the escalation", out.Alerts)
	}
}

func TestRepeatHarassment(t *testing.T) {
	rule := detectors.Rule{
		Name: "repeat", Kind: schemas.SubjectCaller, Window: 24 * time.Hour, Cooldown: 24 * time.Hour,
		Levels: []detectors.Level{{Severity: schemas.SeverityWarning, Action: schemas.ActionAlert, MinCalls: 5,
			When: detectors.ConditionFunc(func(m *schemas.Metrics) (bool, error) {
				return m.MaxCalleeCalls >= 5 && m.MaxCalleeRejected >= 4, nil
			})}},
	}
	e := newEngine(t, detectors.Config{}, nil, rule)
	var out detectors.Output
	// An ordinary day around it, then the victim called again and again.
	for i := range 3 {
		c := rec(t, "+15550100003", fmt.Sprintf("+1555050%04d", i), time.Duration(i)*time.Hour, schemas.Answered, 120)
		e.Process(&c, &out)
	}
	for i := range 6 {
		c := rec(t, "+15550100003", "+15550999999", 4*time.Hour+time.Duration(i)*20*time.Minute, schemas.Rejected, 0)
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if len(out.Alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(out.Alerts))
	}
	if m := out.Alerts[0].Metrics; m.MaxCalleeCalls < 5 || m.MaxCalleeRejected < 4 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestSourceAlertListsCallerIDs(t *testing.T) {
	rule := detectors.Rule{
		Name: "pool", Kind: schemas.SubjectTrunk, Window: time.Hour, Cooldown: time.Hour,
		Levels: []detectors.Level{{Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend, MinCalls: 100,
			When: detectors.ConditionFunc(func(m *schemas.Metrics) (bool, error) {
				return m.DistinctCallers >= 20 && m.CallsPerCaller <= 10, nil
			})}},
	}
	e := newEngine(t, detectors.Config{}, nil, rule)
	var out detectors.Output
	for i := range 120 {
		c := rec(t, fmt.Sprintf("+1555060%04d", i%40), fmt.Sprintf("+1555070%04d", i), time.Duration(i)*15*time.Second, schemas.NoAnswer, 0)
		c.Trunk = "tr-voip-01"
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if len(out.Alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(out.Alerts))
	}
	a := out.Alerts[0]
	if a.SubjectKind != schemas.SubjectTrunk || a.Subject != "tr-voip-01" || a.Metrics.DistinctCallers != 40 {
		t.Fatalf("alert %v %q distinct callers %d", a.SubjectKind, a.Subject, a.Metrics.DistinctCallers)
	}
	if len(a.CallerIDs) != 40 || a.CallerIDs[0] != "+15550600000" || !slices.IsSorted(a.CallerIDs) {
		t.Fatalf("caller IDs %v", a.CallerIDs)
	}
}

func TestIdleKeysAreEvicted(t *testing.T) {
	e := newEngine(t, detectors.Config{}, nil, burstRule())
	var out detectors.Output
	for i := range 1000 {
		c := rec(t, fmt.Sprintf("+1555080%04d", i), "+15550999999", time.Duration(i)*time.Second, schemas.Answered, 60)
		e.Process(&c, &out)
	}
	e.Flush(&out)
	if n, _ := e.Keys(schemas.SubjectCaller); n != 1000 {
		t.Fatalf("tracking %d callers, want 1000", n)
	}
	// A day and a half later only the new caller is left.
	c := rec(t, "+15550100005", "+15550999999", 36*time.Hour, schemas.Answered, 60)
	e.Process(&c, &out)
	e.Flush(&out)
	if n, _ := e.Keys(schemas.SubjectCaller); n != 1 {
		t.Fatalf("tracking %d callers after they idled out, want 1", n)
	}
	if e.Stats().Evictions != 1000 {
		t.Fatalf("evictions = %d", e.Stats().Evictions)
	}
}

func TestBadConfigIsRejected(t *testing.T) {
	f := func(cfg detectors.Config, rules []detectors.Rule, want string) {
		t.Helper()
		_, err := detectors.NewEngine(cfg, rules, nil)
		if err == nil || !contains(err.Error(), want) {
			t.Fatalf("error %v, want one containing %q", err, want)
		}
	}
	f(detectors.Config{Windows: []detectors.Window{{Size: 30 * time.Second, Buckets: 10}}}, nil, "windows[0].size 30s")
	f(detectors.Config{Windows: []detectors.Window{{Size: time.Hour, Buckets: 7}}}, nil, "not a whole number of seconds")
	f(detectors.Config{SketchSlots: 1000}, nil, "sketch_slots 1000")
	r := burstRule()
	r.Window = 2 * time.Hour
	f(detectors.Config{}, []detectors.Rule{r}, `rule "burst": window 2h is not one of the configured windows 5m, 1h, 24h`)
	r = burstRule()
	r.Levels[1].Severity = schemas.SeverityInfo
	f(detectors.Config{}, []detectors.Rule{r}, "does not rise")
	f(detectors.Config{}, []detectors.Rule{burstRule(), burstRule()}, "defined twice")
}

func contains(s, sub string) bool { return len(sub) == 0 || len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// flagged runs records through an engine with the default rules and
// returns the set of "rule subject-kind subject" it raised.
func flagged(t testing.TB, cfg detectors.Config, recs []schemas.CDR) map[string]bool {
	t.Helper()
	set := defaultRules(t)
	e := newEngine(t, cfg, set.Allowlist, set.Rules()...)
	var out detectors.Output
	got := map[string]bool{}
	collect := func() {
		for _, a := range out.Alerts {
			got[a.Rule+" "+a.SubjectKind.String()+" "+a.Subject] = true
		}
		out.Reset()
	}
	for i := range recs {
		e.Process(&recs[i], &out)
		collect()
	}
	e.Flush(&out)
	collect()
	return got
}

// TestArrivalOrderWithinLatenessDoesNotChangeResults shuffles a generated
// day within the allowed lateness, the way collectors deliver records out
// of order, and checks that the same subjects are flagged by the same
// rules: with end order (the default) records delayed up to the end
// lateness after their end, with start order up to the lateness after
// their start.
func TestArrivalOrderWithinLatenessDoesNotChangeResults(t *testing.T) {
	day := synth.Generate(synth.Config{Seed: 7, Scale: 0.25})
	for _, c := range []struct {
		name  string
		cfg   detectors.Config
		delay func(c *schemas.CDR, rng *rand.Rand) int64
	}{
		{"end order", detectors.Config{}, func(c *schemas.CDR, rng *rand.Rand) int64 {
			return c.EndMS + rng.Int64N((70 * time.Second).Milliseconds())
		}},
		{"start order", detectors.Config{StartOrder: true}, func(c *schemas.CDR, rng *rand.Rand) int64 {
			return c.StartMS + rng.Int64N((10 * time.Minute).Milliseconds())
		}},
	} {
		base := flagged(t, c.cfg, day.Records)
		if len(base) < 50 {
			t.Fatalf("%s: only %d flags in the generated day", c.name, len(base))
		}
		for _, seed := range []uint64{1, 2} {
			rng := rand.New(rand.NewPCG(seed, 99))
			type item struct {
				at int64
				c  schemas.CDR
			}
			items := make([]item, len(day.Records))
			for i, r := range day.Records {
				items[i] = item{at: c.delay(&r, rng), c: r}
			}
			slices.SortStableFunc(items, func(a, b item) int { return int(a.at - b.at) })
			shuffled := make([]schemas.CDR, len(items))
			for i := range items {
				shuffled[i] = items[i].c
			}
			got := flagged(t, c.cfg, shuffled)
			for k := range base {
				if !got[k] {
					t.Errorf("%s, seed %d: %s flagged in arrival order but not when shuffled", c.name, seed, k)
				}
			}
			for k := range got {
				if !base[k] {
					t.Errorf("%s, seed %d: %s flagged when shuffled but not in arrival order", c.name, seed, k)
				}
			}
		}
	}
}

func TestCheckRules(t *testing.T) {
	hourly := burstRule()
	daily := burstRule()
	daily.Name, daily.Window = "daily", 24*time.Hour
	odd := burstRule()
	odd.Name, odd.Window = "odd", 90*time.Minute
	short := []detectors.Window{{Size: 5 * time.Minute, Buckets: 5}, {Size: time.Hour, Buckets: 12}}
	for _, tc := range []struct {
		name  string
		cfg   detectors.Config
		rules []detectors.Rule
		want  string // "" for no error
	}{
		{"default windows", detectors.Config{}, []detectors.Rule{hourly, daily}, ""},
		{"no rules", detectors.Config{Windows: short}, nil, ""},
		{"window not in the default set", detectors.Config{}, []detectors.Rule{hourly, odd},
			`rule "odd": window 90m is not one of the configured windows 5m, 1h, 24h`},
		{"window dropped from the configuration", detectors.Config{Windows: short}, []detectors.Rule{hourly, daily},
			`rule "daily": window 24h is not one of the configured windows 5m, 1h`},
		{"bad configuration first", detectors.Config{Lateness: -time.Second}, []detectors.Rule{odd},
			"invalid detector config: lateness -1s must be between 0 and 24h"},
		{"duplicate name", detectors.Config{}, []detectors.Rule{hourly, hourly}, `rule "burst" is defined twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.CheckRules(tc.rules)
			_, engErr := detectors.NewEngine(tc.cfg, tc.rules, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckRules: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("CheckRules: %v, want %q", err, tc.want)
			case fmt.Sprint(err) != fmt.Sprint(engErr):
				t.Fatalf("CheckRules says %v, NewEngine %v", err, engErr)
			}
		})
	}
}
