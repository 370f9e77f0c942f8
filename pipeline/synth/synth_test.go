package synth

import (
	"cmp"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// testScale keeps every population (one AI pool, one SIM box, ...) at a
// few tens of thousands of records.
const testScale = 0.05

var (
	smallOnce sync.Once
	smallDay  *Day
)

// small is the day most tests read; generated once.
func small(t *testing.T) *Day {
	t.Helper()
	smallOnce.Do(func() { smallDay = Generate(Config{Seed: 7, Scale: testScale}) })
	return smallDay
}

func TestSameSeedSameDay(t *testing.T) {
	a := small(t)
	b := Generate(Config{Seed: 7, Scale: testScale})
	if !reflect.DeepEqual(a.Records, b.Records) {
		t.Error("two days generated with seed 7 have different records")
	}
	if !reflect.DeepEqual(a.Labels, b.Labels) {
		t.Error("two days generated with seed 7 have different labels")
	}
	c := Generate(Config{Seed: 8, Scale: testScale})
	if len(c.Records) == len(a.Records) && reflect.DeepEqual(a.Records[:100], c.Records[:100]) {
		t.Error("seeds 7 and 8 give the same day")
	}
}

// TestRecordsComeInArrivalOrder: a record arrives when its call ends plus
// up to two seconds of mediation, in shipping batches of BatchSeconds
// shuffled within the batch. So a record can come before one that ended
// earlier only when both can fall into the same batch.
func TestRecordsComeInArrivalOrder(t *testing.T) {
	for _, batch := range []int{30, 300} {
		d := small(t)
		if batch != 30 {
			d = Generate(Config{Seed: 7, Scale: testScale, BatchSeconds: batch})
		}
		period := int64(batch) * 1000
		maxLow := int64(-1) // the latest batch a record seen so far must be in, at the earliest
		inversions := 0
		for i := range d.Records {
			c := &d.Records[i]
			low, high := c.EndMS/period, (c.EndMS+1999)/period
			if high < maxLow {
				t.Fatalf("batch %ds: record %d (call %s, ended %v) arrives after one that cannot ship before batch %d",
					batch, i, c.CallID, time.UnixMilli(c.EndMS).UTC(), maxLow)
			}
			maxLow = max(maxLow, low)
			if i > 0 && c.EndMS < d.Records[i-1].EndMS {
				inversions++
			}
		}
		// Shuffled within batches: end times are far from sorted.
		if inversions < len(d.Records)/10 {
			t.Errorf("batch %ds: only %d of %d records end before the record ahead of them; batches are not shuffled",
				batch, inversions, len(d.Records))
		}
	}
}

// TestRecordsAreWellFormed: every record is a valid CDR of the generated
// UTC day, with its times in order and its talk time where it belongs.
func TestRecordsAreWellFormed(t *testing.T) {
	day := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	d := Generate(Config{Seed: 3, Scale: 0.02, Day: day.Add(15 * time.Hour)})
	ids := map[string]bool{}
	for i := range d.Records {
		c := d.Records[i]
		if ids[c.CallID] {
			t.Fatalf("call ID %s twice", c.CallID)
		}
		ids[c.CallID] = true
		if s := c.Start(); s.Before(day) || !s.Before(day.AddDate(0, 0, 1)) {
			t.Fatalf("call %s starts at %v, outside %v", c.CallID, s, day.Format(time.DateOnly))
		}
		if c.EndMS < c.StartMS {
			t.Fatalf("call %s ends before it starts", c.CallID)
		}
		if c.Disposition == schemas.Answered {
			if c.AnswerMS < c.StartMS || c.EndMS-c.AnswerMS != int64(c.DurationS)*1000 || c.DurationS < 1 {
				t.Fatalf("answered call %s: start %d answer %d end %d talk %ds", c.CallID, c.StartMS, c.AnswerMS, c.EndMS, c.DurationS)
			}
		} else if c.AnswerMS != 0 || c.DurationS != 0 {
			t.Fatalf("%s call %s has an answer time or talk time", c.Disposition, c.CallID)
		}
		if err := c.Finalize(); err != nil {
			t.Fatalf("call %s does not validate: %v", c.CallID, err)
		}
	}
}

// TestScaleMultipliesVolume: doubling the scale roughly doubles the day,
// and the ordinary subscribers exactly.
func TestScaleMultipliesVolume(t *testing.T) {
	a := Generate(Config{Seed: 5, Scale: 0.1})
	b := Generate(Config{Seed: 5, Scale: 0.2})
	if r := float64(len(b.Records)) / float64(len(a.Records)); r < 1.6 || r > 2.4 {
		t.Errorf("scale 0.2 gives %d records, scale 0.1 %d: ratio %.2f, want about 2", len(b.Records), len(a.Records), r)
	}
	count := func(d *Day, class Class) int {
		n := 0
		for _, l := range d.Labels {
			if l.Kind == "caller" && l.Class == class {
				n++
			}
		}
		return n
	}
	if na, nb := count(a, Ordinary), count(b, Ordinary); na != 10000 || nb != 20000 {
		t.Errorf("ordinary subscribers at scale 0.1 and 0.2: %d and %d, want 10000 and 20000", na, nb)
	}
	if na, nb := count(a, Courier), count(b, Courier); nb != 2*na {
		t.Errorf("couriers at scale 0.1 and 0.2: %d and %d, want twice as many", na, nb)
	}
}

// calls groups a day's records by caller and by labelled source.
type calls struct {
	byCaller map[string][]*schemas.CDR
	bySource map[string][]*schemas.CDR // "kind subject"
}

func index(d *Day) calls {
	ix := calls{byCaller: map[string][]*schemas.CDR{}, bySource: map[string][]*schemas.CDR{}}
	for i := range d.Records {
		c := &d.Records[i]
		ix.byCaller[c.Caller] = append(ix.byCaller[c.Caller], c)
		for _, s := range [...]string{"trunk " + c.Trunk, "imei " + c.IMEI, "source_ip " + c.SourceIP} {
			if !strings.HasSuffix(s, " ") {
				ix.bySource[s] = append(ix.bySource[s], c)
			}
		}
	}
	for _, m := range []map[string][]*schemas.CDR{ix.byCaller, ix.bySource} {
		for _, cs := range m {
			slices.SortFunc(cs, func(a, b *schemas.CDR) int { return cmp.Compare(a.StartMS, b.StartMS) })
		}
	}
	return ix
}

// TestLabelsMatchRecords: every caller has exactly one label, every label
// counts the calls the records hold, Robo follows the class, and every
// labelled source carries calls.
func TestLabelsMatchRecords(t *testing.T) {
	d := small(t)
	ix := index(d)
	seen := map[string]bool{}
	classes := map[Class]int{}
	for _, l := range d.Labels {
		k := l.Kind + " " + l.Subject
		if seen[k] {
			t.Fatalf("%s labelled twice", k)
		}
		seen[k] = true
		if l.Robo != l.Class.Robo() {
			t.Errorf("%s: class %s but robo=%v", k, l.Class, l.Robo)
		}
		var got int
		switch l.Kind {
		case "caller":
			got = len(ix.byCaller[l.Subject])
			if got == 0 && l.Class != Ordinary && l.Class != SIMRotation && l.Class != AIPool && l.Class != SIMBox && l.Class != SpreadPool {
				t.Errorf("%s (%s) makes no call", k, l.Class)
			}
		case "trunk", "imei", "source_ip":
			got = len(ix.bySource[k])
			if got == 0 {
				t.Errorf("labelled source %s (%s) carries no call", k, l.Class)
			}
		default:
			t.Errorf("%s: unknown kind %q", k, l.Kind)
		}
		if got != l.Calls {
			t.Errorf("%s (%s): label says %d calls, the records hold %d", k, l.Class, l.Calls, got)
		}
		if l.Kind == "caller" {
			classes[l.Class]++
		}
	}
	for caller := range ix.byCaller {
		if !seen["caller "+caller] {
			t.Errorf("caller %s has no label", caller)
		}
	}
	for _, c := range []Class{Ordinary, Courier, Switchboard, CallCentre, BulkNotifier, Enterprise, CallbackDesk,
		Telemarketer, NewHire, LowAndSlow, SIMRotation, SIMBox, AIPool, SpreadPool, PitchDialler, Harasser, Redialler, WarDialler} {
		if classes[c] == 0 {
			t.Errorf("no caller of class %s at scale %v", c, testScale)
		}
	}
}

// profile is what a caller's or a source's calls look like.
type profile struct {
	calls, answered, short, distinct int
	topCallee                        int // calls to the most-called callee
	medianTalk                       int32
}

func profileOf(cs []*schemas.CDR) profile {
	p := profile{calls: len(cs)}
	callees := map[string]int{}
	var talks []int32
	for _, c := range cs {
		callees[c.Callee]++
		p.topCallee = max(p.topCallee, callees[c.Callee])
		if c.Short(10) {
			p.short++
		}
		if c.Disposition == schemas.Answered {
			p.answered++
			talks = append(talks, c.DurationS)
		}
	}
	p.distinct = len(callees)
	if len(talks) > 0 {
		slices.Sort(talks)
		p.medianTalk = talks[len(talks)/2]
	}
	return p
}

func (p profile) shortRatio() float64    { return float64(p.short) / float64(p.calls) }
func (p profile) answeredRatio() float64 { return float64(p.answered) / float64(p.calls) }
func (p profile) distinctRatio() float64 { return float64(p.distinct) / float64(p.calls) }

// TestClassesBehaveAsLabelled: each class's numbers and sources show the
// behaviour the rules look for (or must not mistake): robo-dialers make
// many short calls to many callees, harassers many calls to one, war
// diallers walk a number block, SIM boxes and AI pools spread calls over
// many caller IDs on one source; couriers, switchboards, call centres and
// ordinary subscribers look like what they are.
func TestClassesBehaveAsLabelled(t *testing.T) {
	d := small(t)
	ix := index(d)
	check := func(k string, l Label, ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf("%s %s: "+format, append([]any{l.Class, k}, args...)...)
		}
	}
	var ordinaryCalls, ordinaryCallers int
	// Switchboards' and call centres' numbers make few calls each: judged
	// as a class. A retry is a call to a callee whose last call from the
	// number went unanswered.
	pooled := map[Class][]*schemas.CDR{}
	retries, quickRetries := map[Class]int{}, map[Class]int{}
	for _, l := range d.Labels {
		k := l.Kind + " " + l.Subject
		if l.Kind != "caller" {
			p := profileOf(ix.bySource[k])
			callers := map[string]bool{}
			for _, c := range ix.bySource[k] {
				callers[c.Caller] = true
			}
			switch l.Class {
			case AIPool:
				check(k, l, len(callers) >= 100, "%d caller IDs, want at least 100", len(callers))
				check(k, l, p.calls >= 1000 && p.shortRatio() >= 0.8, "%d calls, %.2f short", p.calls, p.shortRatio())
				for _, c := range ix.bySource[k] {
					if c.Attestation != 'C' {
						t.Errorf("%s call %s has attestation %c, want C", k, c.CallID, c.Attestation)
						break
					}
				}
			case SIMRotation:
				check(k, l, len(callers) >= 20, "%d caller IDs, want at least 20", len(callers))
				check(k, l, p.calls >= 300 && p.shortRatio() >= 0.8, "%d calls, %.2f short", p.calls, p.shortRatio())
				for c := range callers {
					if n := len(ix.byCaller[c]); n > 30 {
						t.Errorf("%s: SIM %s makes %d calls, want a light use of each", k, c, n)
					}
				}
			case SIMBox:
				// A module of the gateway: SIMs from the bank, each seated
				// for a few dozen calls over all the modules.
				check(k, l, len(callers) >= 10, "%d caller IDs, want a SIM bank's worth", len(callers))
				check(k, l, p.calls >= 200 && p.shortRatio() >= 0.8, "%d calls, %.2f short", p.calls, p.shortRatio())
				for c := range callers {
					if n := len(ix.byCaller[c]); n > 50 {
						t.Errorf("%s: SIM %s makes %d calls, want a few dozen at most", k, c, n)
					}
				}
			case SpreadPool:
				// Thin: a few dozen calls an hour on each trunk, each
				// caller ID used a few times a day on it.
				check(k, l, len(callers) >= 100, "%d caller IDs, want at least 100", len(callers))
				check(k, l, p.shortRatio() >= 0.8, "%.2f short", p.shortRatio())
				if perHour := float64(p.calls) / 13; perHour > 90 {
					t.Errorf("%s: %.0f calls an hour, want a thin share of the pool", k, perHour)
				}
			case Switchboard, CallCentre, BulkNotifier, CallbackDesk:
				check(k, l, p.answeredRatio() >= 0.5, "%.2f answered", p.answeredRatio())
			case Enterprise:
				check(k, l, len(callers) >= 200, "%d direct-dial numbers, want hundreds", len(callers))
				check(k, l, p.answeredRatio() >= 0.5 && p.medianTalk >= 100, "%.2f answered, median talk %ds", p.answeredRatio(), p.medianTalk)
			}
			continue
		}
		cs := ix.byCaller[l.Subject]
		if len(cs) == 0 {
			continue
		}
		p := profileOf(cs)
		switch l.Class {
		case Telemarketer, NewHire:
			check(k, l, p.calls >= 400, "%d calls, want hundreds", p.calls)
			check(k, l, p.distinctRatio() >= 0.85, "%d distinct callees in %d calls", p.distinct, p.calls)
			check(k, l, p.shortRatio() >= 0.8, "%.2f of calls short or unanswered", p.shortRatio())
		case LowAndSlow:
			check(k, l, p.calls >= 300 && p.shortRatio() >= 0.8, "%d calls, %.2f short", p.calls, p.shortRatio())
			perHour := map[int64]int{}
			for _, c := range cs {
				perHour[c.StartMS/3600000]++
			}
			for h, n := range perHour {
				check(k, l, n <= 100, "%d calls in hour %d: not low and slow", n, h%24)
			}
		case SIMRotation, AIPool, SIMBox:
			check(k, l, p.calls <= 60, "%d calls, want a light use of each number", p.calls)
		case SpreadPool:
			check(k, l, p.calls <= 30, "%d calls, want a few a day", p.calls)
		case PitchDialler:
			// Answered and cut off within seconds; few rejections.
			check(k, l, p.calls >= 300 && p.distinctRatio() >= 0.9, "%d calls to %d callees", p.calls, p.distinct)
			check(k, l, p.answeredRatio() >= 0.6 && p.medianTalk <= 15, "%.2f answered, median talk %ds", p.answeredRatio(), p.medianTalk)
		case Redialler:
			// Everyone who refused is called again, several times.
			refused, again := map[string]int{}, 0
			for _, c := range cs {
				if refused[c.Callee] > 0 {
					again++
				}
				if c.Disposition == schemas.Rejected || c.Disposition == schemas.Busy || c.Short(10) && c.Disposition == schemas.Answered {
					refused[c.Callee]++
				}
			}
			check(k, l, p.calls >= 50 && p.shortRatio() >= 0.8, "%d calls, %.2f short", p.calls, p.shortRatio())
			check(k, l, again >= p.calls/5, "%d of %d calls to someone who had refused", again, p.calls)
			check(k, l, p.topCallee >= 3 && p.topCallee <= 9, "at most %d calls to one callee, want a few to each refuser", p.topCallee)
		case Harasser:
			check(k, l, p.topCallee >= 8, "at most %d calls to one callee, want at least 8", p.topCallee)
			check(k, l, p.distinct <= 7, "%d distinct callees, want a victim or two and a few others", p.distinct)
		case WarDialler:
			check(k, l, p.calls >= 200 && p.distinctRatio() == 1, "%d calls to %d callees", p.calls, p.distinct)
			steps := 0
			for i := 1; i < len(cs); i++ {
				a, b := cs[i-1].Callee, cs[i].Callee
				na, _ := strconv.Atoi(a[len(a)-4:])
				nb, _ := strconv.Atoi(b[len(b)-4:])
				if a[:len(a)-4] == b[:len(b)-4] && nb == na+1 {
					steps++
				}
			}
			check(k, l, steps == len(cs)-1, "%d of %d calls dial the next number of the block", steps, len(cs)-1)
		case Courier:
			check(k, l, p.calls >= 80 && p.answeredRatio() >= 0.75, "%d calls, %.2f answered", p.calls, p.answeredRatio())
			check(k, l, p.distinctRatio() >= 0.75, "%d distinct callees in %d calls", p.distinct, p.calls)
			for _, c := range cs {
				if h := c.Start().Hour(); h < 8 || h > 19 {
					t.Errorf("%s call at %v: couriers work 8:00-19:00", k, c.Start())
					break
				}
			}
		case CallbackDesk:
			// The same customers several times a day, some lines busy,
			// mostly conversations.
			check(k, l, p.calls >= 2*p.distinct, "%d calls to %d customers, want several each", p.calls, p.distinct)
			check(k, l, p.answeredRatio() >= 0.5 && p.medianTalk >= 100, "%.2f answered, median talk %ds", p.answeredRatio(), p.medianTalk)
			busy := 0
			for _, c := range cs {
				if c.Disposition == schemas.Busy {
					busy++
				}
			}
			check(k, l, busy >= p.calls/10, "%d of %d calls busy", busy, p.calls)
		case Enterprise:
			check(k, l, p.calls <= 20, "%d calls, want a direct-dial line's few", p.calls)
		case Switchboard, CallCentre:
			pooled[l.Class] = append(pooled[l.Class], cs...)
			last := map[string]*schemas.CDR{}
			for _, c := range cs {
				if prev := last[c.Callee]; prev != nil && prev.Disposition != schemas.Answered {
					retries[l.Class]++
					if c.StartMS-prev.StartMS < 1800*1000 {
						quickRetries[l.Class]++
					}
				}
				last[c.Callee] = c
			}
		case BulkNotifier:
			check(k, l, strings.HasPrefix(l.Subject, "+1800555"), "not under the allowlisted prefix +1800555")
			check(k, l, p.calls == 1000, "%d calls, want 1000", p.calls)
		case Ordinary:
			ordinaryCalls += p.calls
			ordinaryCallers++
			check(k, l, p.calls <= 60 && p.distinct <= 40, "%d calls to %d callees: not an ordinary subscriber", p.calls, p.distinct)
		}
	}
	for class, minAnswered := range map[Class]float64{Switchboard: 0.7, CallCentre: 0.5} {
		p := profileOf(pooled[class])
		if p.answeredRatio() < minAnswered || p.medianTalk < 100 {
			t.Errorf("%s numbers: %.2f of %d calls answered, median talk %ds; want long answered calls", class, p.answeredRatio(), p.calls, p.medianTalk)
		}
	}
	// Call centres retry an unanswered callback half an hour or more later
	// (a customer called again sooner is a chance draw of the same number).
	if r, q := retries[CallCentre], quickRetries[CallCentre]; r < 50 || float64(q) > 0.05*float64(r) {
		t.Errorf("call centres: %d of %d retries within half an hour", q, r)
	}
	if mean := float64(ordinaryCalls) / float64(ordinaryCallers); mean < 1.5 || mean > 6 {
		t.Errorf("ordinary subscribers make %.1f calls a day on average, want a few", mean)
	}
}

func TestDefaults(t *testing.T) {
	d := Generate(Config{Seed: 1, Scale: 0.01, BulkPrefix: "+1888000"})
	var bulk int
	for _, l := range d.Labels {
		if l.Class == BulkNotifier && l.Kind == "caller" {
			bulk++
			if !strings.HasPrefix(l.Subject, "+1888000") {
				t.Errorf("bulk notifier %s not under the configured prefix", l.Subject)
			}
		}
	}
	if bulk == 0 {
		t.Error("no bulk notifier")
	}
	want := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	if got := d.Records[0].Start().Truncate(24 * time.Hour); !got.Equal(want) {
		t.Errorf("default day %v, want %v", got, want)
	}
}
