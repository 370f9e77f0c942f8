package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
)

type deliveriesView struct {
	From, To  string
	Outcome   string
	Outcomes  []string
	Rows      []Delivery
	Pending   []waitingRow
	Held      int
	Parked    int
	Requested map[string]Decision
	// Source says where Pending comes from; WaitingErr why the topics
	// could not be read (the ledger is shown instead).
	Source     string
	WaitingErr string
	Back       string
}

// waitingRow is one request waiting for a supervisor.
type waitingRow struct {
	Outcome     string // held or parked
	RequestID   string
	Endpoint    string
	Action      string
	SubjectKind string
	Subject     string
	Rule        string
	AlertID     string
	Since       time.Time
	Attempts    int
	Why         string
}

var outcomes = []string{"delivered", "retry", "queued", "parked", "held", "shadow", "blocked_protected", "blocked_allowlist", "duplicate", "rejected", "cancelled"}

// waitingTimeout bounds the read of the held and parked topics.
const waitingTimeout = 10 * time.Second

// deliveries lists hook attempts and the held and parked requests: from
// the dispatcher's topics when Options.Waiting is set, else (or when
// they cannot be read) from the hook_deliveries ledger. Three ClickHouse
// queries at most.
func (s *Server) deliveries(w http.ResponseWriter, r *http.Request, ss session) {
	q := r.URL.Query()
	now := s.opts.Now()
	from, to := parseRange(q, now, 7*24*time.Hour)
	v := deliveriesView{From: formValue(from), To: formValue(to), Outcome: oneOf(q.Get("outcome"), outcomes), Outcomes: outcomes,
		Back: r.URL.RequestURI()}
	ctx, cancel := s.ctx(r)
	defer cancel()
	var err error
	if v.Rows, err = s.opts.Store.Deliveries(ctx, from, to, v.Outcome, 500); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	since := now.Add(-30 * 24 * time.Hour)
	if s.opts.Waiting != nil {
		wctx, wcancel := context.WithTimeout(ctx, waitingTimeout)
		held, parked, err := s.opts.Waiting.Waiting(wctx)
		wcancel()
		if err == nil {
			v.Source = "the dispatcher's held and parked topics"
			for _, list := range []struct {
				outcome string
				reqs    []hooks.Request
			}{{hooks.OutcomeHeld, held}, {hooks.OutcomeParked, parked}} {
				for _, q := range list.reqs {
					why := q.LastError
					if list.outcome == hooks.OutcomeHeld {
						why = q.HeldReason
					}
					v.Pending = append(v.Pending, waitingRow{Outcome: list.outcome, RequestID: q.ID, Endpoint: q.Endpoint, Action: q.Action,
						SubjectKind: q.SubjectKind, Subject: q.Subject, Rule: q.Rule, AlertID: q.AlertID, Since: q.CreatedAt,
						Attempts: q.Attempts, Why: why})
				}
			}
		} else {
			s.log.Warn("cannot read the held and parked topics", zap.Error(err))
			v.WaitingErr = "The held and parked topics cannot be read (" + err.Error() + "): below is what the hook_deliveries ledger last recorded."
		}
	}
	if v.Source == "" {
		v.Source = "the hook_deliveries ledger (last 30 days)"
		pending, err := s.opts.Store.Pending(ctx, since, 500)
		if err != nil {
			s.failErr(w, r, ss, err)
			return
		}
		for _, p := range pending {
			v.Pending = append(v.Pending, waitingRow{Outcome: p.Outcome, RequestID: p.RequestID, Endpoint: p.Endpoint, Action: p.Action,
				SubjectKind: p.SubjectKind, Subject: p.Subject, Rule: p.Rule, AlertID: p.AlertID, Since: p.Time, Attempts: int(p.Attempt), Why: p.Error})
		}
	}
	for _, p := range v.Pending {
		if p.Outcome == hooks.OutcomeHeld {
			v.Held++
		} else {
			v.Parked++
		}
	}
	if v.Requested, err = s.opts.Store.RequestDecisions(ctx, since); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	d := s.base(r, ss, "Deliveries", "deliveries")
	d.Data = v
	s.render(w, http.StatusOK, "deliveries", d)
}

// heldAction approves or rejects a held suspension (supervisors).
func (s *Server) heldAction(w http.ResponseWriter, r *http.Request, ss session) {
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "reject" {
		http.NotFound(w, r)
		return
	}
	s.supervise(w, r, ss, verb, func(id, reason string) error {
		ctx, cancel := s.ctx(r)
		defer cancel()
		return s.opts.Releaser.Held(ctx, id, verb == "approve", ss.User, reason)
	})
}

// redeliver queues a parked request again (supervisors).
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request, ss session) {
	s.supervise(w, r, ss, "redeliver", func(id, reason string) error {
		ctx, cancel := s.ctx(r)
		defer cancel()
		return s.opts.Releaser.Redeliver(ctx, id, ss.User, reason)
	})
}

func (s *Server) supervise(w http.ResponseWriter, r *http.Request, ss session, verb string, do func(id, reason string) error) {
	back := r.PostForm.Get("back")
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	switch {
	case reason == "" || len(reason) > 2000:
		redirect(w, r, back, "err", "Give a reason (up to 2000 characters).")
		return
	case s.opts.Releaser == nil:
		redirect(w, r, back, "err", ErrNoReleaser.Error())
		return
	}
	if err := do(id, reason); err != nil {
		s.log.Warn("supervisor action failed", zap.String("action", verb), zap.String("user", ss.User), zap.String("request_id", id), zap.Error(err))
		redirect(w, r, back, "err", err.Error())
		return
	}
	s.log.Info("decision", zap.String("action", verb), zap.String("user", ss.User), zap.String("request_id", id))
	redirect(w, r, back, "msg", verb+" of "+id+" sent by "+ss.User+".")
}
