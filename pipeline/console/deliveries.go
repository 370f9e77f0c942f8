package console

import (
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

type deliveriesView struct {
	From, To  string
	Outcome   string
	Outcomes  []string
	Rows      []Delivery
	Pending   []Delivery
	Requested map[string]Decision
	Back      string
}

var outcomes = []string{"delivered", "retry", "queued", "parked", "held", "shadow", "blocked_protected", "blocked_allowlist", "duplicate", "rejected"}

// deliveries lists hook attempts and the held and parked requests.
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
	if v.Pending, err = s.opts.Store.Pending(ctx, since, 500); err != nil {
		s.failErr(w, r, ss, err)
		return
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
