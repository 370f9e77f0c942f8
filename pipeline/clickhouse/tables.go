package clickhouse

import (
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// Table names, as in the migrations and in Stats.
const (
	TableAlerts        = "alerts"
	TableCallerMinute  = "caller_minute"
	TableCallerHourly  = "caller_hourly"
	TableCallerDaily   = "caller_daily"
	TableNetworkMinute = "network_minute"
	TableCDRs          = "cdrs"
	TableAllowlist     = "allowlist"
)

// table describes how a Rows field becomes one INSERT: the column list
// (explicit, as ClickHouse 18.x needs it) and a builder that turns the
// pending writes' rows into one slice per column, in that order, for
// clickhouse-go's columnar Append.
type table struct {
	name    string
	columns string
	count   func(r *request) int
	build   func(s *Sink, reqs []*request, n int) []any
}

// tables are written in this order in every flush: alerts first, so
// analysts see them soonest.
var tables = [...]table{
	{
		name: TableAlerts,
		columns: "alert_id, rule, severity, action, subject_kind, subject, window_start, window_end, detected_at, " +
			"score, reason, caller_ids, calls, answered, short_calls, rejected, talk_s, answer_ratio, short_ratio, " +
			"mean_talk_s, distinct_callees, max_callee_calls, max_callee_rejected, max_seq_run, distinct_callers, " +
			"calls_per_caller, light_calls, light_short_ratio, window_s, emitted_at",
		count: func(r *request) int { return len(r.rows.Alerts) },
		build: buildAlerts,
	},
	{
		name:    TableCallerMinute,
		columns: "caller, minute, calls, answered, short_calls, rejected, talk_s, distinct_callees",
		count:   func(r *request) int { return len(r.rows.CallerMinutes) },
		build:   buildCallerMinutes,
	},
	{
		name:    TableCallerHourly,
		columns: "caller, hour, calls, answered, short_calls, rejected, talk_s, distinct_callees, version",
		count:   func(r *request) int { return len(r.rows.CallerHours) },
		build:   buildCallerPeriods(func(r *Rows) []detectors.CallerPeriod { return r.CallerHours }),
	},
	{
		name:    TableCallerDaily,
		columns: "caller, day, calls, answered, short_calls, rejected, talk_s, distinct_callees, version",
		count:   func(r *request) int { return len(r.rows.CallerDays) },
		build:   buildCallerPeriods(func(r *Rows) []detectors.CallerPeriod { return r.CallerDays }),
	},
	{
		name:    TableNetworkMinute,
		columns: "minute, source_partition, calls, answered, short_calls, rejected, talk_s",
		count:   func(r *request) int { return len(r.rows.NetworkMinutes) },
		build:   buildNetworkMinutes,
	},
	{
		name: TableCDRs,
		columns: "call_id, call_id_synthetic, caller, callee, start_time, answer_time, end_time, duration_s, " +
			"disposition, attestation, cause_code, trunk, source_ip, imsi, imei, cell_id",
		count: func(r *request) int { return len(r.rows.CDRs) },
		build: buildCDRs,
	},
}

func buildAlerts(_ *Sink, reqs []*request, n int) []any {
	var (
		ids, rules, sevs, actions, kinds, subjects, reasons = mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
		starts, ends, detected, emitted                     = mk[time.Time](n), mk[time.Time](n), mk[time.Time](n), mk[time.Time](n)
		callerIDs                                           = mk[[]string](n)
		score, answerRatio, shortRatio, meanTalk, cpc, lsr  = mk[float64](n), mk[float64](n), mk[float64](n), mk[float64](n), mk[float64](n), mk[float64](n)
		calls, answered, short, rejected, talk              = mk[int64](n), mk[int64](n), mk[int64](n), mk[int64](n), mk[int64](n)
		distinctCallees, maxCallee, maxCalleeRej, maxSeq    = mk[int64](n), mk[int64](n), mk[int64](n), mk[int64](n)
		distinctCallers, light, windowS                     = mk[int64](n), mk[int64](n), mk[int64](n)
	)
	for _, r := range reqs {
		for i := range r.rows.Alerts {
			a := &r.rows.Alerts[i]
			m := &a.Metrics
			ids = append(ids, a.AlertID)
			rules = append(rules, a.Rule)
			sevs = append(sevs, a.Severity.String())
			actions = append(actions, string(a.Action))
			kinds = append(kinds, a.SubjectKind.String())
			subjects = append(subjects, a.Subject)
			starts = append(starts, a.WindowStart)
			ends = append(ends, a.WindowEnd)
			detected = append(detected, a.DetectedAt)
			at := a.EmittedAt
			if at.IsZero() {
				at = a.DetectedAt // written before alerts carried emitted_at
			}
			emitted = append(emitted, at)
			score = append(score, a.Score)
			reasons = append(reasons, a.Reason)
			ids := a.CallerIDs
			if ids == nil {
				ids = []string{}
			}
			callerIDs = append(callerIDs, ids)
			calls = append(calls, m.Calls)
			answered = append(answered, m.Answered)
			short = append(short, m.ShortCalls)
			rejected = append(rejected, m.Rejected)
			talk = append(talk, m.TalkS)
			answerRatio = append(answerRatio, m.AnswerRatio)
			shortRatio = append(shortRatio, m.ShortRatio)
			meanTalk = append(meanTalk, m.MeanTalkS)
			distinctCallees = append(distinctCallees, m.DistinctCallees)
			maxCallee = append(maxCallee, m.MaxCalleeCalls)
			maxCalleeRej = append(maxCalleeRej, m.MaxCalleeRejected)
			maxSeq = append(maxSeq, m.MaxSeqRun)
			distinctCallers = append(distinctCallers, m.DistinctCallers)
			cpc = append(cpc, m.CallsPerCaller)
			light = append(light, m.LightCalls)
			lsr = append(lsr, m.LightShortRatio)
			windowS = append(windowS, m.WindowS)
		}
	}
	return []any{ids, rules, sevs, actions, kinds, subjects, starts, ends, detected,
		score, reasons, callerIDs, calls, answered, short, rejected, talk, answerRatio, shortRatio,
		meanTalk, distinctCallees, maxCallee, maxCalleeRej, maxSeq, distinctCallers,
		cpc, light, lsr, windowS, emitted}
}

func buildCallerMinutes(_ *Sink, reqs []*request, n int) []any {
	callers, minutes := mk[string](n), mk[time.Time](n)
	calls, answered, short, rejected, talk, distinct := mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n)
	for _, r := range reqs {
		for i := range r.rows.CallerMinutes {
			m := &r.rows.CallerMinutes[i]
			callers = append(callers, m.Caller)
			minutes = append(minutes, m.Minute)
			calls = append(calls, m.Calls)
			answered = append(answered, m.Answered)
			short = append(short, m.ShortCalls)
			rejected = append(rejected, m.Rejected)
			talk = append(talk, m.TalkS)
			distinct = append(distinct, m.DistinctCallees)
		}
	}
	return []any{callers, minutes, calls, answered, short, rejected, talk, distinct}
}

// buildCallerPeriods returns the builder of a caller_hourly or
// caller_daily insert from the rows that pick selects; both tables have
// the same columns, the period's start second.
func buildCallerPeriods(pick func(r *Rows) []detectors.CallerPeriod) func(*Sink, []*request, int) []any {
	return func(_ *Sink, reqs []*request, n int) []any {
		callers, starts, versions := mk[string](n), mk[time.Time](n), mk[uint64](n)
		calls, answered, short, rejected, talk, distinct := mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n), mk[uint32](n)
		for _, r := range reqs {
			rows := pick(&r.rows)
			for i := range rows {
				p := &rows[i]
				callers = append(callers, p.Caller)
				starts = append(starts, p.Start)
				calls = append(calls, p.Calls)
				answered = append(answered, p.Answered)
				short = append(short, p.ShortCalls)
				rejected = append(rejected, p.Rejected)
				talk = append(talk, p.TalkS)
				distinct = append(distinct, p.DistinctCallees)
				versions = append(versions, p.Version)
			}
		}
		return []any{callers, starts, calls, answered, short, rejected, talk, distinct, versions}
	}
}

func buildNetworkMinutes(_ *Sink, reqs []*request, n int) []any {
	minutes, parts := mk[time.Time](n), mk[int32](n)
	calls, answered, short, rejected, talk := mk[uint64](n), mk[uint64](n), mk[uint64](n), mk[uint64](n), mk[uint64](n)
	for _, r := range reqs {
		for i := range r.rows.NetworkMinutes {
			m := &r.rows.NetworkMinutes[i]
			minutes = append(minutes, m.Minute)
			parts = append(parts, r.partition)
			calls = append(calls, m.Calls)
			answered = append(answered, m.Answered)
			short = append(short, m.ShortCalls)
			rejected = append(rejected, m.Rejected)
			talk = append(talk, m.TalkS)
		}
	}
	return []any{minutes, parts, calls, answered, short, rejected, talk}
}

func buildCDRs(s *Sink, reqs []*request, n int) []any {
	ids, synthetic := mk[string](n), mk[uint8](n)
	callers, callees := mk[string](n), mk[string](n)
	starts, answers, ends := mk[time.Time](n), mk[*time.Time](n), mk[*time.Time](n)
	durations, causes := mk[uint32](n), mk[uint16](n)
	dispositions, attestations, trunks, ips, imsis, imeis, cells := mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	pseudo := s.opts.PseudonymizeCallees
	for _, r := range reqs {
		for i := range r.rows.CDRs {
			c := &r.rows.CDRs[i]
			id, syn := c.CallID, uint8(0)
			if id == "" {
				id, syn = SyntheticCallID(c), 1
			}
			ids = append(ids, id)
			synthetic = append(synthetic, syn)
			callers = append(callers, c.Caller)
			callee := c.Callee
			if pseudo {
				callee = Pseudonymize(s.opts.PseudonymKey, callee)
			}
			callees = append(callees, callee)
			starts = append(starts, time.UnixMilli(c.StartMS).UTC())
			answers = append(answers, optTime(c.AnswerMS))
			ends = append(ends, optTime(c.EndMS))
			durations = append(durations, uint32(max(c.DurationS, 0)))
			dispositions = append(dispositions, c.Disposition.String())
			att := ""
			if c.Attestation != 0 {
				att = string(rune(c.Attestation))
			}
			attestations = append(attestations, att)
			causes = append(causes, c.CauseCode)
			trunks = append(trunks, c.Trunk)
			ips = append(ips, c.SourceIP)
			imsis = append(imsis, c.IMSI)
			imeis = append(imeis, c.IMEI)
			cells = append(cells, c.CellID)
		}
	}
	return []any{ids, synthetic, callers, callees, starts, answers, ends, durations,
		dispositions, attestations, causes, trunks, ips, imsis, imeis, cells}
}

// optTime maps a Unix millisecond time to a nullable column value: 0 is
// absent.
func optTime(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// mk makes an empty slice with room for n values.
func mk[T any](n int) []T { return make([]T, 0, n) }

// copyRows copies r so that the Sink owns what it writes: a Write that
// gives up (its ctx ends) leaves its rows with the Sink, and the caller
// may reuse its slices and decoder buffers at once.
func copyRows(r *Rows, storeCDRs bool) Rows {
	c := Rows{
		Alerts:         append([]schemas.Alert(nil), r.Alerts...),
		CallerMinutes:  append(r.CallerMinutes[:0:0], r.CallerMinutes...),
		CallerHours:    append(r.CallerHours[:0:0], r.CallerHours...),
		CallerDays:     append(r.CallerDays[:0:0], r.CallerDays...),
		NetworkMinutes: append(r.NetworkMinutes[:0:0], r.NetworkMinutes...),
	}
	for i := range c.Alerts {
		c.Alerts[i].CallerIDs = append([]string(nil), c.Alerts[i].CallerIDs...)
	}
	if storeCDRs && len(r.CDRs) > 0 {
		c.CDRs = make([]schemas.CDR, len(r.CDRs))
		for i := range r.CDRs {
			c.CDRs[i] = r.CDRs[i].Clone()
		}
	}
	return c
}
