package console

import (
	"net/http"
	"time"
)

type qualityView struct {
	From, To string
	Rules    []ruleQuality
	Shadow   []ShadowStats
}

type ruleQuality struct {
	RuleStats
	Description string
	Suspends    bool // a level of the rule asks for suspension
	Known       bool
}

// quality is the page a fraud manager reads before switching a rule
// from shadow to enforce: per rule, alerts, decided, false-positive
// share, and what shadow-mode endpoints would have suspended.
func (s *Server) quality(w http.ResponseWriter, r *http.Request, ss session) {
	from, to := parseRange(r.URL.Query(), s.opts.Now(), 30*24*time.Hour)
	ctx, cancel := s.ctx(r)
	defer cancel()
	stats, err := s.opts.Store.RuleQuality(ctx, from, to)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	shadow, err := s.opts.Store.Shadow(ctx, from, to)
	if err != nil {
		s.failErr(w, r, ss, err)
		return
	}
	v := qualityView{From: formValue(from), To: formValue(to), Shadow: shadow}
	byName := map[string]RuleStats{}
	for _, st := range stats {
		byName[st.Rule] = st
	}
	for _, rule := range s.opts.Rules {
		rq := ruleQuality{RuleStats: byName[rule.Name], Description: rule.Description, Known: true}
		rq.Rule = rule.Name
		for _, l := range rule.Levels {
			if l.Action == "suspend" {
				rq.Suspends = true
			}
		}
		delete(byName, rule.Name)
		v.Rules = append(v.Rules, rq)
	}
	for _, st := range stats { // rules no longer in the rules file
		if _, ok := byName[st.Rule]; ok {
			v.Rules = append(v.Rules, ruleQuality{RuleStats: st})
		}
	}
	d := s.base(r, ss, "Rule quality", "quality")
	d.Data = v
	s.render(w, http.StatusOK, "quality", d)
}
