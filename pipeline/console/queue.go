package console

import (
	"fmt"
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
	Rows        []AlertGroup
	Counts      []RuleCount
	Rules       []string
	Total       uint64 // alerts
	Groups      uint64 // rows (subject and rule)
	Page, Pages int
	HasNext     bool
	Back        string
	Severities  []string
	Kinds       []string
	Actions     []string
	Decided     []string
}

// parseQueueFilter reads the queue's filter from its query string.
func parseQueueFilter(q url.Values, now time.Time) QueueFilter {
	f := QueueFilter{Rule: strings.TrimSpace(q.Get("rule")), Severity: oneOf(q.Get("severity"), severities),
		SubjectKind: oneOf(q.Get("kind"), subjectKinds), Action: oneOf(q.Get("action"), alertKinds),
		Decided: oneOf(q.Get("decided"), decidedModes)}
	if f.Decided == "" {
		f.Decided = "open"
	}
	f.From, f.To = parseRange(q, now, 7*24*time.Hour)
	return f
}

// queue is the triage queue: the selected alerts grouped by subject and
// rule, highest score first, counted by rule, a page of groups at a time.
// Two ClickHouse queries.
func (s *Server) queue(w http.ResponseWriter, r *http.Request, ss session) {
	q := r.URL.Query()
	f := parseQueueFilter(q, s.opts.Now())
	page := atoiDefault(q.Get("p"), 1)
	f.Offset, f.Limit = (page-1)*pageSize, pageSize+1
	ctx, cancel := s.ctx(r)
	defer cancel()
	rows, err := s.opts.Store.QueueGroups(ctx, f)
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
			v.Groups += c.Groups
		}
		seen[c.Rule] = true
		v.Rules = append(v.Rules, c.Rule)
	}
	for _, rule := range s.opts.Rules {
		if !seen[rule.Name] {
			v.Rules = append(v.Rules, rule.Name)
		}
	}
	v.Pages = max(int((v.Groups+pageSize-1)/pageSize), 1)
	d := s.base(r, ss, "Queue", "queue")
	d.Data = v
	s.render(w, http.StatusOK, "queue", d)
}

// maxAck bounds the alerts one bulk acknowledge writes.
const maxAck = 5000

// bulkAck acknowledges the open alerts of the queue rows ticked: every
// undecided alert of those subjects and rules that the queue's filter
// (read from the page's own address) selects.
func (s *Server) bulkAck(w http.ResponseWriter, r *http.Request, ss session) {
	back := r.PostForm.Get("back")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" || len(reason) > 2000 {
		redirect(w, r, back, "err", "Give a reason to acknowledge (up to 2000 characters).")
		return
	}
	var groups []GroupRef
	for _, v := range r.PostForm["group"] {
		parts := strings.SplitN(v, "|", 3)
		if len(parts) == 3 && oneOf(parts[0], subjectKinds) != "" && parts[1] != "" && parts[2] != "" {
			groups = append(groups, GroupRef{SubjectKind: parts[0], Subject: parts[1], Rule: parts[2]})
		}
	}
	if len(groups) == 0 || len(groups) > 500 {
		redirect(w, r, back, "err", "Tick between 1 and 500 rows to acknowledge.")
		return
	}
	bq := url.Values{}
	if u, err := url.Parse(back); err == nil && localPath(back) {
		bq = u.Query()
	}
	f := parseQueueFilter(bq, s.opts.Now())
	ctx, cancel := s.ctx(r)
	defer cancel()
	found, err := s.opts.Store.OpenAlertsOf(ctx, f, groups, maxAck+1)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	if len(found) > maxAck {
		redirect(w, r, back, "err", fmt.Sprintf("Those rows hold more than %d open alerts: narrow the time range or tick fewer rows.", maxAck))
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
	s.log.Info("decision", zap.String("action", "acknowledge"), zap.String("user", ss.User), zap.Int("rows", len(groups)), zap.Int("alerts", len(ds)))
	redirect(w, r, back, "msg", plural(len(ds), "alert")+" of "+plural(len(groups), "row")+" acknowledged by "+ss.User+".")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
