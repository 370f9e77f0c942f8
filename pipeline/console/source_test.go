package console

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// testSources opens the pages of the day's top-scored trunk and IMEI:
// with store_cdrs, their chart (from the cdrs table) counts every call of
// the generated day through the source, and their recent CDRs and caller
// IDs are listed; without it, the page says the chart needs store_cdrs and
// shows the alerts' own figures.
func testSources(t *testing.T, d *testDay, ana *browser, noCDRs *browser) {
	for _, kind := range []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI} {
		t.Run(kind.String(), func(t *testing.T) {
			a := d.topAlert(kind)
			if a == nil {
				t.Fatalf("the generated day raised no %s alert", kind)
			}
			day := a.DetectedAt.UTC().Truncate(24 * time.Hour)
			from, to := day, day.Add(24*time.Hour)
			of := sourceOf(kind)
			calls, callers := map[string]bool{}, map[string]bool{}
			for i := range d.day.Records {
				c := &d.day.Records[i]
				if of(c) != a.Subject || c.StartMS < from.UnixMilli() || c.StartMS >= to.UnixMilli() {
					continue
				}
				id := c.CallID
				if id == "" {
					id = fmt.Sprintf("%+v", *c)
				}
				calls[id], callers[c.Caller] = true, true
			}
			points, err := d.store.SourceSeries(context.Background(), kind.String(), a.Subject, from, to, false, 10)
			if err != nil {
				t.Fatal(err)
			}
			var sum uint64
			for _, p := range points {
				sum += uint64(p.Calls)
				if p.ShortCalls > p.Calls || p.DistinctCallees > p.Calls || p.DistinctCallers > p.Calls || p.DistinctCallers == 0 {
					t.Errorf("point %+v: a count above the calls, or no caller", p)
				}
			}
			if len(points) == 0 || sum != uint64(len(calls)) {
				t.Errorf("%s %s: %d points counting %d calls; the day has %d calls through it", kind, a.Subject, len(points), sum, len(calls))
			}

			page := mustGet(t, ana, "/subject?kind="+kind.String()+"&id="+url.QueryEscape(a.Subject)+"&alert="+a.AlertID)
			for _, want := range []string{`<svg class="chart"`, `<polyline class="s-callers"`, "distinct caller IDs", "From the stored CDRs",
				"Caller IDs behind this source in the range", "<th>Caller</th>", "<th>IMSI</th>", "Recent CDRs"} {
				if !strings.Contains(page, want) {
					t.Errorf("the %s page lacks %q", kind, want)
				}
			}
			cdrs, err := d.store.SourceCDRs(context.Background(), kind.String(), a.Subject, a.WindowEnd, 50)
			if err != nil {
				t.Fatal(err)
			}
			if len(cdrs) == 0 || !strings.Contains(page, cdrs[0].CallID) || strings.Contains(page, "No stored CDRs.") {
				t.Errorf("the %s page does not list its %d recent CDRs", kind, len(cdrs))
			}
			for _, c := range cdrs {
				if c.Start.After(a.WindowEnd) || of(&schemas.CDR{Trunk: c.Trunk, IMEI: c.IMEI}) != a.Subject {
					t.Errorf("recent CDR %+v is not of %s %s up to %s", c, kind, a.Subject, a.WindowEnd)
				}
			}
			if got, err := d.store.SourceCallers(context.Background(), kind.String(), a.Subject, from, to, 200); err != nil || len(got) != min(len(callers), 200) {
				t.Errorf("%d caller IDs behind %s (%v), the day has %d", len(got), a.Subject, err, len(callers))
			}
			page = mustGet(t, ana, "/subject?kind="+kind.String()+"&id="+url.QueryEscape(a.Subject)+"&res=hour&from="+formValue(day.Add(-30*24*time.Hour)))
			if !strings.Contains(page, "per hour") || !strings.Contains(page, "shortened to its last 14 days") {
				t.Errorf("an hourly chart over 31 days is not shortened to 14")
			}

			page = mustGet(t, noCDRs, "/subject?kind="+kind.String()+"&id="+url.QueryEscape(a.Subject))
			for _, want := range []string{"needs <code>clickhouse.store_cdrs</code>", `<circle class="s-calls-key"`, "calls in the alert&#39;s window",
				"Raw CDRs are not stored"} {
				if !strings.Contains(page, want) {
					t.Errorf("the %s page without store_cdrs lacks %q", kind, want)
				}
			}
		})
	}
}

// topAlert is the highest-scored alert of a subject kind.
func (d *testDay) topAlert(kind schemas.SubjectKind) *schemas.Alert {
	var best *schemas.Alert
	for i := range d.alerts {
		if a := &d.alerts[i]; a.SubjectKind == kind && (best == nil || a.Score > best.Score) {
			best = a
		}
	}
	return best
}

func sourceOf(kind schemas.SubjectKind) func(*schemas.CDR) string {
	if kind == schemas.SubjectIMEI {
		return func(c *schemas.CDR) string { return c.IMEI }
	}
	return func(c *schemas.CDR) string { return c.Trunk }
}
