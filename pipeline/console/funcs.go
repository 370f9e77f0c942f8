package console

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() || t.Unix() <= 0 {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"num": formatFloat,
	"pct": func(x float64) string { return formatFloat(100*x) + "%" },
	"add": func(a, b int) int { return a + b },
	// with returns the request's query with one parameter set (page
	// links that keep the filters).
	"link": func(base string, q url.Values, kv ...string) string {
		c := url.Values{}
		for k, v := range q {
			c[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				c.Del(kv[i])
			} else {
				c.Set(kv[i], kv[i+1])
			}
		}
		if len(c) == 0 {
			return base
		}
		return base + "?" + c.Encode()
	},
	"subjectURL": func(kind, subject string) string {
		return "/subject?" + url.Values{"kind": {kind}, "id": {subject}}.Encode()
	},
	"alertURL": func(kind, subject, alertID string) string {
		return "/subject?" + url.Values{"kind": {kind}, "id": {subject}, "alert": {alertID}}.Encode()
	},
	"ref":   func(kind, subject, alertID string) string { return kind + "|" + subject + "|" + alertID },
	"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}

// Form values the queue's selects offer.
var (
	severities   = []string{"info", "warning", "critical"}
	subjectKinds = []string{"caller", "trunk", "imei", "imsi", "source_ip"}
	alertKinds   = []string{"alert", "suspend"}
	decidedModes = []string{"open", "decided", "all"}
	decideVerbs  = []string{"confirm", "false_positive", "release", "acknowledge"}
)

func oneOf(v string, allowed []string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return ""
}

// timeLayouts are what range fields accept (HTML datetime-local and
// date inputs, and full timestamps).
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339, time.DateTime}

func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, strings.TrimSpace(s), time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseRange reads from and to (UTC); missing ends default to the last d
// up to now (to rounded up to the next minute).
func parseRange(q url.Values, now time.Time, d time.Duration) (from, to time.Time) {
	to, ok := parseTime(q.Get("to"))
	if !ok {
		to = now.UTC().Truncate(time.Minute).Add(time.Minute)
	}
	from, ok = parseTime(q.Get("from"))
	if !ok || !from.Before(to) {
		from = to.Add(-d)
	}
	return from, to
}

func formValue(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def
	}
	return n
}
