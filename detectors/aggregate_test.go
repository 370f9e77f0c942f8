package detectors_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// latest keeps the highest version of each (caller, period) row, as the
// ClickHouse tables do; layout formats the period's start in the key.
func latest(rows []detectors.CallerPeriod, layout string) map[string]detectors.CallerPeriod {
	m := map[string]detectors.CallerPeriod{}
	for _, r := range rows {
		k := r.Caller + " " + r.Start.Format(layout)
		if old, ok := m[k]; !ok || r.Version >= old.Version {
			m[k] = r
		}
	}
	return m
}

func TestAggregatesAreExact(t *testing.T) {
	e := newEngine(t, detectors.Config{Aggregates: true, CallerFloor: 20}, nil, burstRule())
	var recs []schemas.CDR
	// A busy caller: 150 calls from 22:00 to 02:00 (across midnight), one
	// answered call in three; a quiet caller: 10 calls (below the floor).
	for i := range 150 {
		disp, talk := schemas.NoAnswer, int32(0)
		if i%3 == 0 {
			disp, talk = schemas.Answered, 40
		}
		recs = append(recs, rec(t, "+15550100001", fmt.Sprintf("+1555020%04d", i%100), 13*time.Hour+time.Duration(i)*96*time.Second, disp, talk))
	}
	for i := range 10 {
		recs = append(recs, rec(t, "+15550100002", "+15550200000", 13*time.Hour+time.Duration(i)*time.Minute, schemas.Answered, 60))
	}
	// Deliver them in start order, shuffled within a few minutes, as
	// collectors do.
	slices.SortStableFunc(recs, func(a, b schemas.CDR) int { return int(a.StartMS - b.StartMS) })
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range recs {
		j := min(len(recs)-1, i+rng.IntN(4))
		if recs[i].StartMS/1000/300 == recs[j].StartMS/1000/300 {
			recs[i], recs[j] = recs[j], recs[i]
		}
	}
	var out detectors.Output
	for i := range recs {
		e.Process(&recs[i], &out)
	}
	e.Flush(&out)

	days := latest(out.CallerDays, time.DateOnly)
	if len(days) != 2 {
		t.Fatalf("day rows %v, want the busy caller's two days", days)
	}
	// t0 is 09:00; 13h later is 22:00. Calls 0..74 fall before midnight
	// (75*96 s = 2 h).
	d1, d2 := days["+15550100001 2026-11-02"], days["+15550100001 2026-11-03"]
	if d1.Calls != 75 || d2.Calls != 75 || d1.Answered != 25 || d2.Answered != 25 {
		t.Fatalf("day rows %+v %+v", d1, d2)
	}
	if d1.TalkS != 25*40 || d1.ShortCalls != 50 || d1.DistinctCallees != 75 {
		t.Fatalf("day row %+v", d1)
	}
	hours := latest(out.CallerHours, time.RFC3339)
	var hourCalls uint32
	for _, h := range hours {
		if h.Caller != "+15550100001" {
			t.Fatalf("hour row for a caller below the floor: %+v", h)
		}
		hourCalls += h.Calls
	}
	// The floor (20 calls in the day) is crossed in the first hour, so
	// every hour has its row.
	if len(hours) != 4 || hourCalls != 150 {
		t.Fatalf("%d hour rows with %d calls, want 4 with 150: %v", len(hours), hourCalls, hours)
	}
	var minuteCalls uint32
	for _, m := range out.CallerMinutes {
		minuteCalls += m.Calls
	}
	// Minute rows start once the day reached the floor: the first 19
	// calls of each day are only in the day and hour rows.
	if minuteCalls != 150-2*19 {
		t.Fatalf("minute rows hold %d calls, want %d", minuteCalls, 150-2*19)
	}
	var netCalls uint64
	for _, n := range out.NetworkMinutes {
		netCalls += n.Calls
	}
	if netCalls != 160 {
		t.Fatalf("network minutes hold %d calls, want 160", netCalls)
	}
}
