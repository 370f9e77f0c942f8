package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// WriteSummary writes, for people, what the replay read and rejected (by
// reason, with the first example of each), the engine's key counts, the
// alerts per rule and the top subjects by score. took is how long the
// replay ran, for the rate.
func (r *Replayer) WriteSummary(w io.Writer, took time.Duration, top int) {
	st := r.eng.Stats()
	rate := float64(r.records+r.rejected) / took.Seconds()
	fmt.Fprintf(w, "\n== cdrguard replay summary ==\n")
	fmt.Fprintf(w, "records read:   %d (%d rejected) in %.2fs, %.0f records/s\n", r.records+r.rejected, r.rejected, took.Seconds(), rate)
	if st.Late > 0 {
		fmt.Fprintf(w, "late records:   %d (start more than the allowed lateness behind the latest start)\n", st.Late)
	}
	if st.Duplicates > 0 {
		n, bytes := r.eng.Remembered()
		fmt.Fprintf(w, "duplicates:     %d (copies of a record taken within the dedup horizon; counted once; %d fingerprints remembered in %.1f MB)\n",
			st.Duplicates, n, float64(bytes)/(1<<20))
	}
	if st.Outliers > 0 {
		fmt.Fprintf(w, "outliers:       %d (start more than the allowed lateness ahead of the stream; held)\n", st.Outliers)
	}
	if len(r.rejects) > 0 {
		fmt.Fprintf(w, "rejected by reason:\n")
		reasons := make([]string, 0, len(r.rejects))
		for k := range r.rejects {
			reasons = append(reasons, k)
		}
		slices.SortFunc(reasons, func(a, b string) int {
			return cmp.Or(r.rejects[b].count-r.rejects[a].count, strings.Compare(a, b))
		})
		for _, k := range reasons {
			fmt.Fprintf(w, "  %7d  %s\n           e.g. %s\n", r.rejects[k].count, k, r.rejects[k].example)
		}
	}
	callers, detailed := r.eng.Keys(schemas.SubjectCaller)
	fmt.Fprintf(w, "keys tracked:   %d callers (%d in detail); %d promotions, %d evictions\n", callers, detailed, st.Promotions, st.Evictions)
	fmt.Fprintf(w, "alerts:         %d\n", r.alerts)
	for i, name := range r.eng.Rules() {
		if st.RuleAlerts[i] > 0 || st.RuleErrors[i] > 0 {
			fmt.Fprintf(w, "  %7d  %s", st.RuleAlerts[i], name)
			if st.RuleErrors[i] > 0 {
				fmt.Fprintf(w, " (%d evaluation errors, last: %v)", st.RuleErrors[i], st.LastRuleError)
			}
			fmt.Fprintln(w)
		}
	}
	keys := make([]string, 0, len(r.subjects))
	for k := range r.subjects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.subjects[b].score, r.subjects[a].score), strings.Compare(a, b))
	})
	if len(keys) > 0 {
		fmt.Fprintf(w, "top subjects (by score):\n")
	}
	for _, k := range keys[:min(top, len(keys))] {
		s := r.subjects[k]
		fmt.Fprintf(w, "  %-28s score %8.1f  %d alerts: %s\n", k, s.score, s.alerts, strings.Join(s.rules, ", "))
	}
}
