package replay_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/replay"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// TestAlertsLeaveWithinTwoMinutes replays the default generated day with
// the default rules and configuration (end order) and holds the alerts
// to leaving the engine soon enough to act on: the share of robo-dialers' calls placed
// after the first alert's emitted_at, and how long after the record that
// raised it an alert leaves (emitted_at - detected_at).
func TestAlertsLeaveWithinTwoMinutes(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole generated day")
	}
	day := synth.Generate(synth.Config{Seed: 1})
	set, err := rules.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []schemas.Alert
	r := replay.New(eng, replay.Collect(&alerts), day.Labels)
	if err := r.Records(day.Records); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	rep := r.Score()
	var b bytes.Buffer
	rep.Print(&b)
	t.Logf("\n%s", b.String())
	if rep.Precision < 0.99 || rep.Recall < 0.98 {
		t.Errorf("precision %.4f, recall %.4f; want >= 0.99 and 0.98", rep.Precision, rep.Recall)
	}
	if rep.SparedEmittedRatio < 0.96 {
		t.Errorf("%.2f%% of robo-dialers' calls placed after the first alert left the engine, want >= 96%%", 100*rep.SparedEmittedRatio)
	}
	var lag []time.Duration
	for i := range alerts {
		a := &alerts[i]
		if a.EmittedAt.Before(a.DetectedAt) {
			t.Fatalf("alert %s left the engine at %v, before it was detected at %v", a.AlertID, a.EmittedAt, a.DetectedAt)
		}
		lag = append(lag, a.EmittedAt.Sub(a.DetectedAt))
	}
	slices.Sort(lag)
	p := func(q float64) time.Duration { return lag[int(q*float64(len(lag)-1))] }
	t.Logf("emitted_at - detected_at over %d alerts: median %v, p90 %v, p95 %v, p99 %v, max %v", len(lag), p(0.5), p(0.9), p(0.95), p(0.99), lag[len(lag)-1])
	// The rest is the calls' own length: a record exists only once its
	// call ended.
	if p(0.95) > 2*time.Minute {
		t.Errorf("95%% of alerts leave the engine within %v of the record that raised them, want 2m", p(0.95))
	}
}
