package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// HookType is the type of a suspension webhook request (the body's
// "type").
type HookType string

// Hook types.
const (
	// HookSuspend asks the receiver to suspend the subject.
	HookSuspend HookType = "number.suspend"
	// HookRelease asks the receiver to lift a suspension of the subject.
	HookRelease HookType = "number.release"
)

// HookBody is the JSON body of a suspension webhook request, as
// HookSchemaJSON describes it. Receivers get exactly these bytes, signed
// per Standard Webhooks v1.
type HookBody struct {
	// Type is number.suspend or number.release.
	Type HookType `json:"type"`
	// Subject and SubjectKind are the alert's.
	Subject     string      `json:"subject"`
	SubjectKind SubjectKind `json:"subject_kind"`
	// Alert is the alert object as it was published on the alerts topic,
	// byte for byte. For a release it is the alert of the suspension being
	// lifted.
	Alert json.RawMessage `json:"alert"`
	// ExpiresAt is, for a suspension whose rule sets suspend_for, when
	// cdrguard will release the subject unless an operator confirms it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Reason is, for a release, the operator's reason.
	Reason string `json:"reason,omitempty"`
}

// AppendJSON appends the body as one line of JSON.
func (b *HookBody) AppendJSON(dst []byte) ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return dst, fmt.Errorf("cannot encode %s body for %s: %w", b.Type, b.Subject, err)
	}
	return append(dst, out...), nil
}

// ParseAlertJSON decodes one alert as Alert.AppendJSON writes it (one
// alerts-topic message). Unknown fields are errors, so a producer of a
// newer format is noticed rather than half read; alert_id, rule and
// subject must not be empty, and severity, action and subject_kind must
// be known names.
func ParseAlertJSON(data []byte, a *Alert) error {
	*a = Alert{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil {
		return fmt.Errorf("cannot decode alert: %w", err)
	}
	if dec.More() {
		return errors.New("cannot decode alert: data after the object")
	}
	switch {
	case a.AlertID == "":
		return errors.New("alert has no alert_id")
	case a.Rule == "":
		return fmt.Errorf("alert %s has no rule", a.AlertID)
	case a.Subject == "":
		return fmt.Errorf("alert %s has no subject", a.AlertID)
	case a.Severity < SeverityInfo || a.Severity > SeverityCritical:
		return fmt.Errorf("alert %s has no severity", a.AlertID)
	case a.Action != ActionAlert && a.Action != ActionSuspend:
		return fmt.Errorf("alert %s: action %q is not alert or suspend", a.AlertID, a.Action)
	}
	return nil
}
