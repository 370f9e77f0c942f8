package hooks

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/cdrguard/cdrguard/schemas"
)

// Decision actions (the decisions table's action column).
const (
	DecisionRelease       = "release"
	DecisionFalsePositive = "false_positive"
	DecisionConfirm       = "confirm"
	DecisionApprove       = "approve"
	DecisionReject        = "reject"
	DecisionRedeliver     = "redeliver"
	DecisionExpire        = "expire"
)

// Decision sources.
const (
	SourceAPI        = "api"
	SourceCLI        = "cli"
	SourceDispatcher = "dispatcher"
)

// Decision is one row of ClickHouse decisions: what a person (or the
// dispatcher on their behalf) decided about a subject.
type Decision struct {
	ID          string    `json:"decision_id"`
	Time        time.Time `json:"time"`
	SubjectKind string    `json:"subject_kind"`
	Subject     string    `json:"subject"`
	Action      string    `json:"action"`
	AlertID     string    `json:"alert_id,omitempty"`
	RequestID   string    `json:"request_id,omitempty"`
	By          string    `json:"by"`
	Reason      string    `json:"reason,omitempty"`
	Source      string    `json:"source"`
}

// DecisionRecorder keeps Decision rows (ClickHouse decisions).
type DecisionRecorder interface {
	// Record queues d and returns at once: a ClickHouse outage never
	// blocks a decision. Safe for concurrent use.
	Record(d Decision)
}

// FieldError is a bad field of a decision request; the API answers 400
// naming Field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// DecisionRequest is what an operator asks for: a release, a false
// positive or a confirm of subject.
type DecisionRequest struct {
	Subject     string `json:"subject"`
	SubjectKind string `json:"subject_kind"`
	Reason      string `json:"reason"`
	By          string `json:"by"`
	AlertID     string `json:"alert_id"`
	Action      string `json:"action"`
}

// validate checks r; allowed are the actions it may carry (the first is
// the default). It returns the subject kind.
func (r *DecisionRequest) validate(allowed ...string) (schemas.SubjectKind, error) {
	if r.SubjectKind == "" {
		r.SubjectKind = schemas.SubjectCaller.String()
	}
	kind, err := schemas.ParseSubjectKind(r.SubjectKind)
	if err != nil {
		return kind, &FieldError{"subject_kind", fmt.Sprintf("%q is not caller, trunk, imei, imsi or source_ip", r.SubjectKind)}
	}
	r.Subject = strings.TrimSpace(r.Subject)
	switch {
	case r.Subject == "":
		return kind, &FieldError{"subject", "is empty"}
	case kind == schemas.SubjectCaller && !isNumber(r.Subject):
		return kind, &FieldError{"subject", fmt.Sprintf("%q is not a number (digits, optional leading +)", r.Subject)}
	case len(r.Subject) > 128 || strings.ContainsFunc(r.Subject, unicode.IsControl):
		return kind, &FieldError{"subject", "must be at most 128 printable characters"}
	}
	if r.Action == "" {
		r.Action = allowed[0]
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == r.Action
	}
	if !ok {
		return kind, &FieldError{"action", fmt.Sprintf("%q is not %s", r.Action, strings.Join(allowed, " or "))}
	}
	if err := checkText("by", r.By, 128); err != nil {
		return kind, err
	}
	if err := checkText("reason", r.Reason, 2000); err != nil {
		return kind, err
	}
	if len(r.AlertID) > 128 || strings.ContainsFunc(r.AlertID, unicode.IsControl) {
		return kind, &FieldError{"alert_id", "must be at most 128 printable characters"}
	}
	return kind, nil
}

// checkText requires a non-blank value of at most max bytes.
func checkText(field, v string, max int) error {
	switch {
	case strings.TrimSpace(v) == "":
		return &FieldError{field, "is empty"}
	case len(v) > max:
		return &FieldError{field, fmt.Sprintf("is longer than %d bytes", max)}
	}
	return nil
}

// newDecisionID returns a fresh decision id, dec_ + 32 hex digits.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "dec_" + hex.EncodeToString(b[:])
}
