package synth

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func caller(subject string, class Class) Label {
	return Label{Kind: "caller", Subject: subject, Class: class, Robo: class.Robo()}
}

func cdr(caller string, at time.Duration, trunk string) schemas.CDR {
	return schemas.CDR{Caller: caller, Callee: "+15550009999", StartMS: t0.Add(at).UnixMilli(), Trunk: trunk}
}

func callerAlert(subject string, at time.Duration) schemas.Alert {
	return schemas.Alert{Rule: "r", SubjectKind: schemas.SubjectCaller, Subject: subject, DetectedAt: t0.Add(at)}
}

func TestEvaluateWithoutAlerts(t *testing.T) {
	labels := []Label{caller("+1robo", Telemarketer), caller("+1ok", Ordinary)}
	rep := Evaluate(labels, []schemas.CDR{cdr("+1robo", 0, ""), cdr("+1ok", 0, "")}, nil)
	if rep.Precision != 0 || rep.Recall != 0 || rep.FlaggedRobo != 0 || rep.FlaggedLegit != 0 {
		t.Errorf("no alerts: precision %v recall %v flagged %d/%d, want zeros", rep.Precision, rep.Recall, rep.FlaggedRobo, rep.FlaggedLegit)
	}
	if rep.RoboCallers != 1 || !slices.Equal(rep.MissedRobo[Telemarketer], []string{"+1robo"}) {
		t.Errorf("no alerts: %d robo callers, missed %v", rep.RoboCallers, rep.MissedRobo)
	}
	if rep.RoboCalls != 1 || rep.Spared != 0 || rep.SparedRatio != 0 {
		t.Errorf("no alerts: robo calls %d, spared %d (%v)", rep.RoboCalls, rep.Spared, rep.SparedRatio)
	}
}

func TestEvaluateWithoutRoboDialers(t *testing.T) {
	labels := []Label{caller("+1ok", Courier)}
	rep := Evaluate(labels, []schemas.CDR{cdr("+1ok", 0, "")}, []schemas.Alert{callerAlert("+1ok", 0)})
	if rep.Recall != 0 || rep.RoboCallers != 0 || rep.SparedRatio != 0 {
		t.Errorf("no robo-dialers: recall %v, %d robo callers, spared ratio %v; want zeros, not NaN", rep.Recall, rep.RoboCallers, rep.SparedRatio)
	}
	if rep.Precision != 0 || rep.FlaggedLegit != 1 || !slices.Equal(rep.LegitFlagged[Courier], []string{"+1ok"}) {
		t.Errorf("a flagged courier: precision %v, flagged legit %d %v", rep.Precision, rep.FlaggedLegit, rep.LegitFlagged)
	}
}

// TestEvaluatePrecisionAndRecall: two of four robo-dialers flagged, one
// courier and one number the truth does not know flagged: precision 2/4,
// recall 2/4. Several alerts on one number count once.
func TestEvaluatePrecisionAndRecall(t *testing.T) {
	labels := []Label{
		caller("+1r1", Telemarketer), caller("+1r2", Harasser), caller("+1r3", WarDialler), caller("+1r4", WarDialler),
		caller("+1c", Courier), caller("+1o", Ordinary),
	}
	alerts := []schemas.Alert{
		callerAlert("+1r1", time.Minute), callerAlert("+1r1", 2*time.Minute), callerAlert("+1r2", 0),
		callerAlert("+1c", 0), callerAlert("+1stranger", 0),
	}
	rep := Evaluate(labels, nil, alerts)
	if rep.RoboCallers != 4 || rep.FlaggedRobo != 2 || rep.FlaggedLegit != 2 {
		t.Fatalf("robo %d, flagged robo %d, flagged legit %d; want 4, 2, 2", rep.RoboCallers, rep.FlaggedRobo, rep.FlaggedLegit)
	}
	if rep.Precision != 0.5 || rep.Recall != 0.5 {
		t.Errorf("precision %v recall %v, want 0.5 0.5", rep.Precision, rep.Recall)
	}
	if !slices.Equal(rep.LegitFlagged["unknown"], []string{"+1stranger"}) || !slices.Equal(rep.LegitFlagged[Courier], []string{"+1c"}) {
		t.Errorf("legit flagged %v", rep.LegitFlagged)
	}
	if !slices.Equal(rep.MissedRobo[WarDialler], []string{"+1r3", "+1r4"}) || len(rep.MissedRobo) != 1 {
		t.Errorf("missed %v, want the two war diallers", rep.MissedRobo)
	}
}

// TestEvaluateSourceAlerts: a source alert flags its source and every
// caller ID it lists; a flagged source the truth does not know is a false
// alarm; labelled sources are listed sorted, flagged or not.
func TestEvaluateSourceAlerts(t *testing.T) {
	labels := []Label{
		caller("+1p1", AIPool), caller("+1p2", AIPool), caller("+1p3", AIPool),
		{Kind: "trunk", Subject: "tr-voip-00", Class: AIPool, Robo: true},
		{Kind: "trunk", Subject: "tr-corp-00", Class: Switchboard},
		{Kind: "imei", Subject: "35000", Class: SIMRotation, Robo: true},
	}
	alerts := []schemas.Alert{
		{SubjectKind: schemas.SubjectTrunk, Subject: "tr-voip-00", DetectedAt: t0, CallerIDs: []string{"+1p1", "+1p2"}},
		{SubjectKind: schemas.SubjectIMEI, Subject: "35999", DetectedAt: t0},
	}
	rep := Evaluate(labels, nil, alerts)
	if rep.FlaggedRobo != 2 || rep.FlaggedLegit != 0 || !slices.Equal(rep.MissedRobo[AIPool], []string{"+1p3"}) {
		t.Errorf("flagged robo %d legit %d, missed %v; want the two listed pool numbers flagged", rep.FlaggedRobo, rep.FlaggedLegit, rep.MissedRobo)
	}
	var got []string
	for _, s := range rep.Sources {
		got = append(got, s.Kind+" "+s.Subject+" "+map[bool]string{true: "flagged", false: "not"}[s.Flagged])
	}
	if want := []string{"imei 35000 not", "trunk tr-corp-00 not", "trunk tr-voip-00 flagged"}; !slices.Equal(got, want) {
		t.Errorf("sources %v, want %v", got, want)
	}
	if !slices.Equal(rep.UnlabelledSources, []string{"imei 35999"}) {
		t.Errorf("unlabelled sources %v", rep.UnlabelledSources)
	}
}

// TestEvaluateSpared: a robo-dialer's call is spared when it starts at or
// after the first alert on its number or on a source it came through;
// legitimate numbers' calls do not count.
func TestEvaluateSpared(t *testing.T) {
	labels := []Label{caller("+1r", Telemarketer), caller("+1s", AIPool), caller("+1ok", Ordinary)}
	recs := []schemas.CDR{
		cdr("+1r", 0, ""), cdr("+1r", 59*time.Second, ""), // before the first alert
		cdr("+1r", time.Minute, ""), cdr("+1r", 3*time.Minute, ""), // at and after it
		cdr("+1s", 0, "tr-voip"), cdr("+1s", 10*time.Minute, "tr-voip"), // after the trunk's alert
		cdr("+1ok", 10*time.Minute, "tr-voip"),
	}
	alerts := []schemas.Alert{
		callerAlert("+1r", 2*time.Minute), callerAlert("+1r", time.Minute), // the earlier counts, in any order
		{SubjectKind: schemas.SubjectTrunk, Subject: "tr-voip", DetectedAt: t0.Add(5 * time.Minute)},
	}
	rep := Evaluate(labels, recs, alerts)
	if rep.RoboCalls != 6 || rep.Spared != 3 || rep.SparedRatio != 0.5 {
		t.Errorf("robo calls %d, spared %d (%v); want 6, 3 (0.5)", rep.RoboCalls, rep.Spared, rep.SparedRatio)
	}
	// Without emitted_at the detection time stands in.
	if rep.SparedEmitted != 3 {
		t.Errorf("spared after emission %d without emitted_at, want 3", rep.SparedEmitted)
	}
	// The caller alert left the engine two minutes after detection: the
	// call at 3 minutes is still spared, the one at 1 minute is not.
	alerts[1].EmittedAt = t0.Add(3 * time.Minute)
	alerts[0].EmittedAt = t0.Add(4 * time.Minute)
	rep = Evaluate(labels, recs, alerts)
	if rep.Spared != 3 || rep.SparedEmitted != 2 || rep.SparedEmittedRatio != 2.0/6 {
		t.Errorf("spared %d, after emission %d (%v); want 3, 2", rep.Spared, rep.SparedEmitted, rep.SparedEmittedRatio)
	}
	if rep.FlaggedRobo != 1 || rep.Recall != 0.5 {
		t.Errorf("a trunk alert listing no caller IDs flagged %d numbers (recall %v), want only +1r", rep.FlaggedRobo, rep.Recall)
	}
}

// TestEvaluateIsDeterministic: the lists of numbers, and so the examples
// a printed report gives, do not depend on map order.
func TestEvaluateIsDeterministic(t *testing.T) {
	var labels []Label
	var alerts []schemas.Alert
	for i := range 50 {
		n := strconv.Itoa(1000 + i)
		labels = append(labels, caller("+1r"+n, Harasser), caller("+1c"+n, Courier))
		alerts = append(alerts, callerAlert("+1c"+n, 0))
	}
	var first string
	for range 5 {
		var b bytes.Buffer
		Evaluate(labels, nil, alerts).Print(&b)
		if first == "" {
			first = b.String()
		} else if b.String() != first {
			t.Fatalf("two reports of the same input differ:\n%s\n%s", first, b.String())
		}
	}
	if !strings.Contains(first, "e.g. +1c1000") || !strings.Contains(first, "e.g. +1r1000") {
		t.Errorf("examples are not the first numbers:\n%s", first)
	}
}

func TestReportPrint(t *testing.T) {
	labels := []Label{caller("+1r", Telemarketer), caller("+1m", Harasser), caller("+1c", Courier),
		{Kind: "trunk", Subject: "tr-voip", Class: AIPool, Robo: true}}
	rep := Evaluate(labels, []schemas.CDR{cdr("+1r", time.Minute, "")},
		[]schemas.Alert{callerAlert("+1r", 0), callerAlert("+1c", 0), {SubjectKind: schemas.SubjectIMEI, Subject: "35999", DetectedAt: t0}})
	var b bytes.Buffer
	rep.Print(&b)
	for _, want := range []string{
		"precision 0.5000, recall 0.5000 (1 of 2 robo-dialer numbers flagged, 1 legitimate numbers flagged)",
		"1 of 1 (100.00%); after it left the engine (emitted_at): 1 (100.00%)",
		"legitimate courier flagged: 1, e.g. +1c",
		"harasser missed: 1, e.g. +1m",
		"source trunk tr-voip (ai_pool): flagged=false",
		"unlabelled sources flagged: 1, e.g. imei 35999",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
