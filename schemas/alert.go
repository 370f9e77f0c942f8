package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// Severity ranks alerts: info < warning < critical.
type Severity uint8

// Severities, in rising order.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

// ParseSeverity reads "info", "warning" or "critical".
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "info":
		return SeverityInfo, nil
	case "warning":
		return SeverityWarning, nil
	case "critical":
		return SeverityCritical, nil
	}
	return 0, fmt.Errorf("severity %q is not info, warning or critical", s)
}

// String returns the JSON name of s.
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityCritical:
		return "critical"
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Action is what a suspension system should do with an alert.
type Action string

// Actions.
const (
	// ActionAlert asks a fraud analyst to look.
	ActionAlert Action = "alert"
	// ActionSuspend asks the suspension system to suspend the subject.
	ActionSuspend Action = "suspend"
)

// SubjectKind is the kind of key an alert is about.
type SubjectKind uint8

// Subject kinds: the calling number, and the calling sources.
const (
	SubjectCaller SubjectKind = iota
	SubjectTrunk
	SubjectIMEI
	SubjectIMSI
	SubjectSourceIP
	// NumSubjectKinds is the number of subject kinds.
	NumSubjectKinds
)

var subjectKindNames = [...]string{"caller", "trunk", "imei", "imsi", "source_ip"}

// String returns the JSON name of k ("caller", "trunk", …).
func (k SubjectKind) String() string {
	if k < NumSubjectKinds {
		return subjectKindNames[k]
	}
	return fmt.Sprintf("subject_kind(%d)", uint8(k))
}

// ParseSubjectKind reads a subject kind's JSON name.
func ParseSubjectKind(s string) (SubjectKind, error) {
	for i, n := range subjectKindNames {
		if n == s {
			return SubjectKind(i), nil
		}
	}
	return 0, fmt.Errorf("subject kind %q is not one of caller, trunk, imei, imsi, source_ip", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k SubjectKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *SubjectKind) UnmarshalText(b []byte) error {
	v, err := ParseSubjectKind(string(b))
	*k = v
	return err
}

// IsSource reports whether k is a calling source rather than a number.
func (k SubjectKind) IsSource() bool { return k != SubjectCaller }

// Metrics are a window's figures for one key, as rules see them and as
// alerts report them. Rule conditions name the fields by their JSON names.
type Metrics struct {
	// WindowS is the window's length in seconds.
	WindowS int64 `json:"window_s" expr:"window_s"`
	// Calls is the number of call attempts.
	Calls int64 `json:"calls" expr:"calls"`
	// Answered is the number of answered calls.
	Answered int64 `json:"answered" expr:"answered"`
	// ShortCalls counts calls with less talk time than the short-call
	// threshold; unanswered calls count as short.
	ShortCalls int64 `json:"short_calls" expr:"short_calls"`
	// Rejected counts calls the callee rejected or was busy for.
	Rejected int64 `json:"rejected" expr:"rejected"`
	// TalkS is the total talk time in seconds.
	TalkS int64 `json:"talk_s" expr:"talk_s"`
	// AnswerRatio is Answered / Calls.
	AnswerRatio float64 `json:"answer_ratio" expr:"answer_ratio"`
	// ShortRatio is ShortCalls / Calls.
	ShortRatio float64 `json:"short_ratio" expr:"short_ratio"`
	// MeanTalkS is TalkS / Answered (0 with no answered call).
	MeanTalkS float64 `json:"mean_talk_s" expr:"mean_talk_s"`
	// DistinctCallees is the number of different numbers called; exact up
	// to a bound, estimated beyond it. Callee metrics (this and the
	// max_callee and max_seq_run ones) are kept for caller subjects only.
	DistinctCallees int64 `json:"distinct_callees" expr:"distinct_callees"`
	// MaxCalleeCalls is the most calls made to one callee.
	MaxCalleeCalls int64 `json:"max_callee_calls" expr:"max_callee_calls"`
	// MaxCalleeRejected is the most calls to one callee that the callee
	// refused: rejected, busy, or answered and hung up within the
	// short-call time.
	MaxCalleeRejected int64 `json:"max_callee_rejected" expr:"max_callee_rejected"`
	// MaxSeqRun is the longest run of consecutive callee numbers (+1555…01,
	// …02, …03): war-dialling.
	MaxSeqRun int64 `json:"max_seq_run" expr:"max_seq_run"`
	// DistinctCallers is the number of different caller IDs seen on a
	// source (0 for caller subjects).
	DistinctCallers int64 `json:"distinct_callers" expr:"distinct_callers"`
	// CallsPerCaller is Calls / DistinctCallers on a source: how lightly
	// each caller ID is used (0 for caller subjects).
	CallsPerCaller float64 `json:"calls_per_caller" expr:"calls_per_caller"`
	// LightCalls counts, on a source, the calls from caller IDs used
	// fewer than eight times in the window: the signature of a pool of
	// numbers each used lightly (0 for caller subjects).
	LightCalls int64 `json:"light_calls" expr:"light_calls"`
	// LightShortRatio is the share of LightCalls that were short.
	LightShortRatio float64 `json:"light_short_ratio" expr:"light_short_ratio"`
}

// Alert is one detection: a subject that matched a rule in a window.
type Alert struct {
	// AlertID is deterministic: a hash of the rule, the subject and the
	// window position, so a replay raises the same IDs and sinks can
	// deduplicate.
	AlertID string `json:"alert_id"`
	// Rule is the name of the rule that matched.
	Rule string `json:"rule"`
	// Severity is the rule's (or its escalation level's) severity.
	Severity Severity `json:"severity"`
	// Action is what the rule asks for.
	Action Action `json:"action"`
	// SubjectKind is the kind of key the alert is about.
	SubjectKind SubjectKind `json:"subject_kind"`
	// Subject is the number or source identifier.
	Subject string `json:"subject"`
	// WindowStart and WindowEnd bound the window the metrics describe.
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// DetectedAt is the start time of the record that crossed the
	// threshold (event time, not wall clock).
	DetectedAt time.Time `json:"detected_at"`
	// EmittedAt is the engine's event-time clock when the alert left the
	// engine: the earliest time of the stream's clock (its latest end
	// time seen, or with start order its latest start) at which the
	// engine runs the record that raised it. What a suspension acting on
	// the alert could spare starts here, not at DetectedAt.
	EmittedAt time.Time `json:"emitted_at"`
	// Score orders alerts for triage: higher is worse.
	Score float64 `json:"score"`
	// Metrics are the window's figures at detection.
	Metrics Metrics `json:"metrics"`
	// Reason is one sentence for a fraud analyst.
	Reason string `json:"reason"`
	// CallerIDs lists, for source alerts, caller IDs seen on the source in
	// the window (at most MaxAlertCallerIDs).
	CallerIDs []string `json:"caller_ids,omitempty"`
}

// MaxAlertCallerIDs bounds the caller IDs listed in one source alert.
const MaxAlertCallerIDs = 500

// AppendJSON appends the alert as one line of JSON (no trailing newline).
func (a *Alert) AppendJSON(dst []byte) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return dst, fmt.Errorf("cannot encode alert %s: %w", a.AlertID, err)
	}
	return append(dst, b...), nil
}
