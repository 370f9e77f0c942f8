package synth

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// Report scores alerts against a day's ground truth, the way a fraud team
// judges a rule set in a backtest.
type Report struct {
	// RoboCallers is the number of robo-dialer numbers in the truth;
	// FlaggedRobo how many of them were flagged; FlaggedLegit how many
	// legitimate numbers were. A number is flagged when an alert names it,
	// or a source alert lists it among its caller IDs.
	RoboCallers, FlaggedRobo, FlaggedLegit int
	// Precision and Recall at caller level.
	Precision, Recall float64
	// RoboCalls is the number of robo-dialers' calls; Spared those that
	// started at or after the first alert on their number or on a source
	// they came through (what suspending at alert time would have spared
	// their targets). SparedRatio is Spared / RoboCalls.
	RoboCalls, Spared int
	SparedRatio       float64
	// SparedEmitted and SparedEmittedRatio count instead the calls that
	// started at or after the first alert's EmittedAt: when the alert
	// left the engine, so when a suspension could first have acted.
	SparedEmitted      int
	SparedEmittedRatio float64
	// LegitFlagged lists flagged legitimate numbers per class, sorted.
	LegitFlagged map[Class][]string
	// MissedRobo lists robo-dialer numbers not flagged, per class, sorted.
	MissedRobo map[Class][]string
	// Sources lists each labelled source with whether it was flagged.
	Sources []SourceResult
	// UnlabelledSources lists flagged sources that are not in the truth
	// (ordinary subscribers' handsets, for instance): false alarms.
	UnlabelledSources []string
}

// SourceResult is one labelled source's outcome.
type SourceResult struct {
	Label
	Flagged bool
}

// Evaluate scores alerts against labels using the day's records for the
// timing of robo-dialers' calls.
func Evaluate(labels []Label, records []schemas.CDR, alerts []schemas.Alert) *Report {
	rep := &Report{LegitFlagged: map[Class][]string{}, MissedRobo: map[Class][]string{}}
	callers := map[string]*Label{}
	sources := map[string]*Label{}
	for i := range labels {
		l := &labels[i]
		if l.Kind == "caller" {
			callers[l.Subject] = l
		} else {
			sources[l.Kind+" "+l.Subject] = l
		}
	}
	// First alert time per flagged number and per flagged source.
	first := map[string]time.Time{}
	emitted := map[string]time.Time{}
	note := func(k string, a *schemas.Alert) {
		if f, ok := first[k]; !ok || a.DetectedAt.Before(f) {
			first[k] = a.DetectedAt
		}
		at := a.EmittedAt
		if at.IsZero() {
			at = a.DetectedAt // an alert from before emitted_at
		}
		if f, ok := emitted[k]; !ok || at.Before(f) {
			emitted[k] = at
		}
	}
	for i := range alerts {
		a := &alerts[i]
		if a.SubjectKind == schemas.SubjectCaller {
			note("caller "+a.Subject, a)
			continue
		}
		note(a.SubjectKind.String()+" "+a.Subject, a)
		for _, c := range a.CallerIDs {
			note("caller "+c, a)
		}
	}
	for _, l := range callers {
		_, flagged := first["caller "+l.Subject]
		switch {
		case l.Robo:
			rep.RoboCallers++
			if flagged {
				rep.FlaggedRobo++
			} else {
				rep.MissedRobo[l.Class] = append(rep.MissedRobo[l.Class], l.Subject)
			}
		case flagged:
			rep.FlaggedLegit++
			rep.LegitFlagged[l.Class] = append(rep.LegitFlagged[l.Class], l.Subject)
		}
	}
	for k := range first {
		if strings.HasPrefix(k, "caller ") {
			if _, ok := callers[strings.TrimPrefix(k, "caller ")]; !ok {
				rep.FlaggedLegit++ // a number not in the truth at all
				rep.LegitFlagged["unknown"] = append(rep.LegitFlagged["unknown"], strings.TrimPrefix(k, "caller "))
			}
		} else if _, ok := sources[k]; !ok {
			rep.UnlabelledSources = append(rep.UnlabelledSources, k)
		}
	}
	if n := rep.FlaggedRobo + rep.FlaggedLegit; n > 0 {
		rep.Precision = float64(rep.FlaggedRobo) / float64(n)
	}
	if rep.RoboCallers > 0 {
		rep.Recall = float64(rep.FlaggedRobo) / float64(rep.RoboCallers)
	}
	for i := range records {
		c := &records[i]
		l := callers[c.Caller]
		if l == nil || !l.Robo {
			continue
		}
		rep.RoboCalls++
		start := time.UnixMilli(c.StartMS)
		spared, sparedEmitted := false, false
		for _, k := range [...]string{"caller " + c.Caller, "trunk " + c.Trunk, "imei " + c.IMEI, "source_ip " + c.SourceIP, "imsi " + c.IMSI} {
			if t, ok := first[k]; ok && !start.Before(t) {
				spared = true
			}
			if t, ok := emitted[k]; ok && !start.Before(t) {
				sparedEmitted = true
			}
		}
		if spared {
			rep.Spared++
		}
		if sparedEmitted {
			rep.SparedEmitted++
		}
	}
	if rep.RoboCalls > 0 {
		rep.SparedRatio = float64(rep.Spared) / float64(rep.RoboCalls)
		rep.SparedEmittedRatio = float64(rep.SparedEmitted) / float64(rep.RoboCalls)
	}
	for _, l := range sources {
		_, flagged := first[l.Kind+" "+l.Subject]
		rep.Sources = append(rep.Sources, SourceResult{Label: *l, Flagged: flagged})
	}
	slices.SortFunc(rep.Sources, func(a, b SourceResult) int {
		return strings.Compare(a.Kind+a.Subject, b.Kind+b.Subject)
	})
	slices.Sort(rep.UnlabelledSources)
	// Sorted, so a report (and the examples Print shows) does not depend
	// on map order.
	for _, m := range []map[Class][]string{rep.LegitFlagged, rep.MissedRobo} {
		for _, l := range m {
			slices.Sort(l)
		}
	}
	return rep
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "caller level: precision %.4f, recall %.4f (%d of %d robo-dialer numbers flagged, %d legitimate numbers flagged)\n",
		r.Precision, r.Recall, r.FlaggedRobo, r.RoboCallers, r.FlaggedLegit)
	fmt.Fprintf(w, "robo calls after the first alert (spared by a suspension): %d of %d (%.2f%%); after it left the engine (emitted_at): %d (%.2f%%)\n",
		r.Spared, r.RoboCalls, 100*r.SparedRatio, r.SparedEmitted, 100*r.SparedEmittedRatio)
	for _, c := range sortedClasses(r.LegitFlagged) {
		fmt.Fprintf(w, "  legitimate %s flagged: %d, e.g. %s\n", c, len(r.LegitFlagged[c]), r.LegitFlagged[c][0])
	}
	for _, c := range sortedClasses(r.MissedRobo) {
		fmt.Fprintf(w, "  %s missed: %d, e.g. %s\n", c, len(r.MissedRobo[c]), r.MissedRobo[c][0])
	}
	for _, s := range r.Sources {
		if s.Flagged != s.Robo {
			fmt.Fprintf(w, "  source %s %s (%s): flagged=%v\n", s.Kind, s.Subject, s.Class, s.Flagged)
		}
	}
	if len(r.UnlabelledSources) > 0 {
		fmt.Fprintf(w, "  unlabelled sources flagged: %d, e.g. %s\n", len(r.UnlabelledSources), r.UnlabelledSources[0])
	}
}

func sortedClasses(m map[Class][]string) []Class {
	out := make([]Class, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
