package replay

import (
	"fmt"
	"io"
	"slices"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// AlertFunc receives each alert a replay raises, in the order the engine
// raises them. a is valid only during the call. An error stops the
// replay and is returned by the Replayer method that raised the alert.
type AlertFunc func(a *schemas.Alert) error

// JSONLines returns an AlertFunc that writes each alert to w as one line
// of JSON (schemas.Alert.AppendJSON). Buffer w: every alert is one Write.
func JSONLines(w io.Writer) AlertFunc {
	var buf []byte
	return func(a *schemas.Alert) error {
		var err error
		if buf, err = a.AppendJSON(buf[:0]); err != nil {
			return fmt.Errorf("cannot encode alert %s: %w", a.AlertID, err)
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("cannot write alerts: %w", err)
		}
		return nil
	}
}

// Collect returns an AlertFunc that appends a copy of each alert to
// *dst.
func Collect(dst *[]schemas.Alert) AlertFunc {
	return func(a *schemas.Alert) error {
		*dst = append(*dst, *a)
		return nil
	}
}

// Replayer runs records through one engine, in input order. Make one with
// New.
type Replayer struct {
	eng      *detectors.Engine
	onAlert  AlertFunc
	out      detectors.Output
	records  int
	rejected int
	rejects  map[string]*rejectInfo
	alerts   int
	subjects map[string]*subjectInfo
	// With ground truth: the robo-dialers' calls and every alert.
	truth     []synth.Label
	robo      map[string]bool
	roboCalls []schemas.CDR
	kept      []schemas.Alert
}

type rejectInfo struct {
	count   int
	example string
}

type subjectInfo struct {
	kind   schemas.SubjectKind
	alerts int
	score  float64
	rules  []string
}

// New returns a Replayer that runs records through eng and hands the
// alerts to onAlert. truth, when not nil, are the ground-truth labels
// Score measures the alerts against; the Replayer then keeps every alert
// and the robo-dialers' records until it is dropped.
func New(eng *detectors.Engine, onAlert AlertFunc, truth []synth.Label) *Replayer {
	r := &Replayer{eng: eng, onAlert: onAlert, rejects: map[string]*rejectInfo{}, subjects: map[string]*subjectInfo{}}
	if truth != nil {
		r.truth = truth
		r.robo = map[string]bool{}
		for _, l := range truth {
			if l.Kind == "caller" && l.Robo {
				r.robo[l.Subject] = true
			}
		}
	}
	return r
}

// Records runs recs through the engine, in order. The engine does not
// retain the records' strings.
func (r *Replayer) Records(recs []schemas.CDR) error {
	for i := range recs {
		if err := r.process(&recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// process runs one decoded record.
func (r *Replayer) process(c *schemas.CDR) error {
	r.records++
	if r.robo[c.Caller] {
		r.roboCalls = append(r.roboCalls, c.Clone())
	}
	r.eng.Process(c, &r.out)
	if r.out.Len() > 0 {
		defer r.out.Reset()
		return r.emit(&r.out)
	}
	return nil
}

// Flush ends the replay: the engine runs the records it still holds, and
// their alerts go to the AlertFunc. Call it once, after the last input.
func (r *Replayer) Flush() error {
	var o detectors.Output
	r.eng.Flush(&o)
	return r.emit(&o)
}

// emit hands the alerts in o to the AlertFunc and counts them. Aggregates
// are not part of a replay's output.
func (r *Replayer) emit(o *detectors.Output) error {
	for i := range o.Alerts {
		a := &o.Alerts[i]
		if err := r.onAlert(a); err != nil {
			return err
		}
		r.alerts++
		if r.truth != nil {
			r.kept = append(r.kept, *a)
		}
		key := a.SubjectKind.String() + " " + a.Subject
		s := r.subjects[key]
		if s == nil {
			s = &subjectInfo{kind: a.SubjectKind}
			r.subjects[key] = s
		}
		s.alerts++
		s.score = max(s.score, a.Score)
		if !slices.Contains(s.rules, a.Rule) {
			s.rules = append(s.rules, a.Rule)
		}
	}
	return nil
}

// Score measures the alerts raised so far against the ground truth given
// to New; nil without one.
func (r *Replayer) Score() *synth.Report {
	if r.truth == nil {
		return nil
	}
	return synth.Evaluate(r.truth, r.roboCalls, r.kept)
}

// Alerts returns what eng raises over recs, Flush included: what a replay
// (or a streaming run) of the same records must raise.
func Alerts(eng *detectors.Engine, recs []schemas.CDR) ([]schemas.Alert, error) {
	var out []schemas.Alert
	r := New(eng, Collect(&out), nil)
	if err := r.Records(recs); err != nil {
		return nil, err
	}
	if err := r.Flush(); err != nil {
		return nil, err
	}
	return out, nil
}
