package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/schemas"
)

type subjectView struct {
	Kind, Subject string
	Alerts        []schemas.Alert
	Selected      *schemas.Alert
	Why           RuleWhy
	Covering      Decision // latest decision covering the selected alert
	Chart         any      // template.HTML
	ChartFrom     string
	ChartTo       string
	Hourly        bool
	CallerIDs     []string
	// Callers are the caller IDs behind a source in the chart's range,
	// from its stored CDRs.
	Callers   []CallerCount
	StoreCDRs bool
	// Source says the subject is a source (not a caller); AlertFigures
	// that its chart shows its alerts' figures (store_cdrs is off).
	Source, AlertFigures bool
	// Shortened says the range asked for was longer than a source's
	// chart reads, and was cut to its last part (that long).
	Shortened  string
	ShortCallS int
	CDRs       []CDRRow
	Deliveries []Delivery
	State      subjectState
	Decisions  []Decision
	Verbs      []string
	Back       string
}

// subject is one number's or source's evidence page.
func (s *Server) subject(w http.ResponseWriter, r *http.Request, ss session) {
	q := r.URL.Query()
	kind := oneOf(q.Get("kind"), subjectKinds)
	if kind == "" {
		kind = "caller"
	}
	id := strings.TrimSpace(q.Get("id"))
	if id == "" {
		s.fail(w, r, ss, http.StatusBadRequest, "Name a subject: /subject?kind=caller&id=+15550100001")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	v := subjectView{Kind: kind, Subject: id, StoreCDRs: s.opts.StoreCDRs, Verbs: decideVerbs, Back: r.URL.RequestURI()}
	var err error
	if v.Alerts, err = s.opts.Store.SubjectAlerts(ctx, kind, id, 200); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	if v.Decisions, err = s.opts.Store.SubjectDecisions(ctx, kind, id, 200); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	for i := range v.Alerts {
		if v.Alerts[i].AlertID == q.Get("alert") {
			v.Selected = &v.Alerts[i]
		}
	}
	if v.Selected == nil && len(v.Alerts) > 0 {
		v.Selected = &v.Alerts[0] // the latest
	}
	if v.Selected != nil {
		v.Why = Explain(s.opts.Rules, v.Selected)
		v.Covering = covering(v.Selected, v.Decisions)
	}
	ids := map[string]bool{}
	for _, a := range v.Alerts {
		for _, c := range a.CallerIDs {
			if len(ids) < 500 {
				ids[c] = true
			}
		}
	}
	for c := range ids {
		v.CallerIDs = append(v.CallerIDs, c)
	}
	slices.Sort(v.CallerIDs)

	if err := s.traffic(ctx, &v, q); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	if v.Deliveries, err = s.opts.Store.SubjectDeliveries(ctx, kind, id, s.opts.Now().Add(-90*24*time.Hour), 100); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	if s.opts.Releaser == nil {
		v.State.Err = stateError(ErrNoReleaser)
	} else if view, err := s.subjectState(ctx, kind, id); err != nil {
		s.log.Warn("release api: no subject state", zap.String("subject", id), zap.Error(err))
		v.State.Err = stateError(err)
	} else {
		v.State = newSubjectState(view, v.Deliveries)
	}
	d := s.base(r, ss, id, "subject")
	d.Data = v
	s.render(w, http.StatusOK, "subject", d)
}

// traffic fills v's chart and recent CDRs: a caller's from the aggregate
// tables and its CDRs; a source's from its stored CDRs, or without them
// its alerts' own figures. At most three queries, each bounded by a time
// range and a LIMIT.
func (s *Server) traffic(ctx context.Context, v *subjectView, q url.Values) error {
	v.Source, v.ShortCallS = v.Kind != "caller", s.opts.ShortCallS
	v.Hourly = q.Get("res") == "hour"
	anchor := s.opts.Now().UTC()
	if v.Selected != nil {
		anchor = v.Selected.DetectedAt.UTC()
	}
	day := anchor.Truncate(24 * time.Hour)
	from, to := day, day.Add(24*time.Hour)
	step, longest := time.Minute, maxSourceMinuteRange
	if v.Hourly {
		from, step, longest = day.Add(-6*24*time.Hour), time.Hour, maxSourceHourRange
	}
	if f, ok := parseTime(q.Get("from")); ok {
		from = f
	}
	if t, ok := parseTime(q.Get("to")); ok && t.After(from) {
		to = t
	}
	if v.Source && s.opts.StoreCDRs && to.Sub(from) > longest {
		v.Shortened, from = days(longest), to.Add(-longest)
	}
	v.ChartFrom, v.ChartTo = formValue(from), formValue(to)
	before := s.opts.Now()
	if v.Selected != nil {
		before = v.Selected.WindowEnd
	}
	marks := make([]time.Time, 0, len(v.Alerts))
	for _, a := range v.Alerts {
		marks = append(marks, a.DetectedAt)
	}
	var err error
	var points []Point
	switch {
	case !v.Source:
		if points, err = s.opts.Store.CallerSeries(ctx, v.Subject, from, to, v.Hourly); err != nil {
			return err
		}
		v.Chart = renderChart(callerChart, points, from, to, step, marks)
		if s.opts.StoreCDRs {
			v.CDRs, err = s.opts.Store.RecentCDRs(ctx, v.Subject, before, 50)
		}
		return err
	case s.opts.StoreCDRs:
		if points, err = s.opts.Store.SourceSeries(ctx, v.Kind, v.Subject, from, to, v.Hourly, s.opts.ShortCallS); err != nil {
			return err
		}
		v.Chart = renderChart(sourceChart, points, from, to, step, marks)
		if v.Callers, err = s.opts.Store.SourceCallers(ctx, v.Kind, v.Subject, from, to, 200); err != nil {
			return err
		}
		v.CDRs, err = s.opts.Store.SourceCDRs(ctx, v.Kind, v.Subject, before, 50)
		return err
	default:
		v.AlertFigures = true
		if points, err = s.opts.Store.AlertSeries(ctx, v.Kind, v.Subject, from, to, v.Hourly); err != nil {
			return err
		}
		v.Chart = renderChart(alertFiguresChart, points, from, to, step, nil)
		return nil
	}
}

// days names d in days, or hours below a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// stateTimeout bounds the release API's answer on the subject page, so
// a hanging API delays the page by at most that.
const stateTimeout = 5 * time.Second

func (s *Server) subjectState(ctx context.Context, kind, id string) (hooks.SubjectView, error) {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	return s.opts.Releaser.SubjectState(ctx, kind, id)
}

// covering is the latest decision on a's subject that covers a.
func covering(a *schemas.Alert, ds []Decision) Decision {
	for _, d := range ds { // newest first
		switch {
		case d.AlertID == a.AlertID && slices.Contains(decideVerbs, d.Action):
			return d
		case d.Action != "acknowledge" && slices.Contains(decideVerbs, d.Action) && !d.Time.Before(a.DetectedAt):
			return d
		}
	}
	return Decision{}
}

// decide records one decision on a subject (and the alert it was made
// on): confirm and acknowledge are written here; release and false
// positive go through the release API, which records them.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, ss session) {
	f := r.PostForm
	back := f.Get("back")
	kind, subject, alertID := oneOf(f.Get("kind"), subjectKinds), strings.TrimSpace(f.Get("subject")), strings.TrimSpace(f.Get("alert_id"))
	action := oneOf(f.Get("action"), decideVerbs)
	reason := strings.TrimSpace(f.Get("reason"))
	switch {
	case kind == "" || subject == "":
		redirect(w, r, back, "err", "No subject to decide on.")
		return
	case action == "":
		redirect(w, r, back, "err", "Choose confirm, false positive, release or acknowledge.")
		return
	case reason == "" || len(reason) > 2000:
		redirect(w, r, back, "err", "Give a reason (up to 2000 characters).")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if alertID != "" {
		found, err := s.opts.Store.ExistingAlerts(ctx, []AlertRef{{SubjectKind: kind, Subject: subject, AlertID: alertID}})
		if err != nil {
			s.failErr(w, r, ss, err)
			return
		}
		if len(found) == 0 {
			redirect(w, r, back, "err", "No alert "+alertID+" on "+subject+".")
			return
		}
	} else if action == "acknowledge" {
		redirect(w, r, back, "err", "Acknowledge needs an alert.")
		return
	}
	var id string
	switch action {
	case "confirm", "acknowledge":
		id = NewDecisionID()
		err := s.opts.Store.InsertDecisions(ctx, []Decision{{Time: s.opts.Now().UTC(), ID: id, SubjectKind: kind, Subject: subject,
			Action: action, AlertID: alertID, By: ss.User, Reason: reason, Source: "console"}})
		if err != nil {
			s.failErr(w, r, ss, err)
			return
		}
	default:
		if s.opts.Releaser == nil {
			redirect(w, r, back, "err", ErrNoReleaser.Error())
			return
		}
		var err error
		id, err = s.opts.Releaser.Release(ctx, ReleaseRequest{Subject: subject, SubjectKind: kind, Reason: reason, By: ss.User,
			AlertID: alertID, Action: action})
		if err != nil {
			s.log.Warn("release failed", zap.String("user", ss.User), zap.String("subject", subject), zap.Error(err))
			msg := err.Error()
			if !errors.Is(err, ErrAPI) {
				msg = "The release API did not answer: " + msg
			}
			redirect(w, r, back, "err", msg)
			return
		}
	}
	s.log.Info("decision", zap.String("action", action), zap.String("user", ss.User), zap.String("subject_kind", kind),
		zap.String("subject", subject), zap.String("alert_id", alertID), zap.String("decision_id", id))
	msg := strings.ReplaceAll(action, "_", " ") + " recorded for " + subject + " by " + ss.User + " (decision " + id + ")."
	if action == "release" || action == "false_positive" {
		msg += " The dispatcher sends the releases and writes the decision to ClickHouse: it shows below within seconds."
	}
	redirect(w, r, back, "msg", msg)
}
