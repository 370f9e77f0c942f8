package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

const pageSize = 50

type queueView struct {
	Query       url.Values
	Filter      QueueFilter
	From, To    string
	Rows        []AlertRow
	Counts      []RuleCount
	Rules       []string
	Total       uint64
	Page, Pages int
	HasNext     bool
	Back        string
	Severities  []string
	Kinds       []string
	Actions     []string
	Decided     []string
}

// queue is the triage queue: open alerts by score, filtered, counted by
// rule, a page at a time. Two ClickHouse queries.
func (s *Server) queue(w http.ResponseWriter, r *http.Request, ss session) {
	q := r.URL.Query()
	f := QueueFilter{Rule: strings.TrimSpace(q.Get("rule")), Severity: oneOf(q.Get("severity"), severities),
		SubjectKind: oneOf(q.Get("kind"), subjectKinds), Action: oneOf(q.Get("action"), alertKinds),
		Decided: oneOf(q.Get("decided"), decidedModes)}
	if f.Decided == "" {
		f.Decided = "open"
	}
	f.From, f.To = parseRange(q, s.opts.Now(), 7*24*time.Hour)
	page := atoiDefault(q.Get("p"), 1)
	f.Offset, f.Limit = (page-1)*pageSize, pageSize+1
	ctx, cancel := s.ctx(r)
	defer cancel()
	rows, err := s.opts.Store.Queue(ctx, f)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	counts, err := s.opts.Store.QueueCounts(ctx, f)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	v := queueView{Query: q, Filter: f, From: formValue(f.From), To: formValue(f.To), Counts: counts, Page: page,
		Back: r.URL.RequestURI(), Severities: severities, Kinds: subjectKinds, Actions: alertKinds, Decided: decidedModes}
	if len(rows) > pageSize {
		rows, v.HasNext = rows[:pageSize], true
	}
	v.Rows = rows
	seen := map[string]bool{}
	for _, c := range counts {
		if f.Rule == "" || c.Rule == f.Rule {
			v.Total += c.Count
		}
		seen[c.Rule] = true
		v.Rules = append(v.Rules, c.Rule)
	}
	for _, rule := range s.opts.Rules {
		if !seen[rule.Name] {
			v.Rules = append(v.Rules, rule.Name)
		}
	}
	v.Pages = int((v.Total + pageSize - 1) / pageSize)
	d := s.base(r, ss, "Queue", "queue")
	d.Data = v
	s.render(w, http.StatusOK, "queue", d)
}

// bulkAck acknowledges the alerts ticked in the queue.
func (s *Server) bulkAck(w http.ResponseWriter, r *http.Request, ss session) {
	back := r.PostForm.Get("back")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		redirect(w, r, back, "err", "Give a reason to acknowledge.")
		return
	}
	var refs []AlertRef
	for _, v := range r.PostForm["alert"] {
		parts := strings.SplitN(v, "|", 3)
		if len(parts) == 3 && oneOf(parts[0], subjectKinds) != "" {
			refs = append(refs, AlertRef{SubjectKind: parts[0], Subject: parts[1], AlertID: parts[2]})
		}
	}
	if len(refs) == 0 || len(refs) > 500 {
		redirect(w, r, back, "err", "Tick between 1 and 500 alerts to acknowledge.")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	found, err := s.opts.Store.ExistingAlerts(ctx, refs)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	now := s.opts.Now().UTC()
	ds := make([]Decision, 0, len(found))
	for _, a := range found {
		ds = append(ds, Decision{Time: now, ID: NewDecisionID(), SubjectKind: a.SubjectKind, Subject: a.Subject, Action: "acknowledge",
			AlertID: a.AlertID, By: ss.User, Reason: reason, Source: "console"})
	}
	if err := s.opts.Store.InsertDecisions(ctx, ds); err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	s.log.Info("decision", zap.String("action", "acknowledge"), zap.String("user", ss.User), zap.Int("alerts", len(ds)))
	redirect(w, r, back, "msg", plural(len(ds), "alert")+" acknowledged by "+ss.User+".")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
