package console

import (
	"errors"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
)

// subjectState is the suspension and delivery state of a subject as the
// subject page shows it: the release API's view, with the times the API
// does not give filled in from the hook_deliveries ledger.
type subjectState struct {
	// Err says, in plain words, why the state is unknown; the rest of
	// the page is still shown.
	Err         string
	Allowlisted bool
	Allowlist   hooks.AllowEntry
	Confirmed   *hooks.Confirmed
	Endpoints   []endpointState
}

// endpointState is one endpoint's row of the state table.
type endpointState struct {
	Endpoint  string
	RequestID string
	Action    string // suspend or release
	Outcome   string // delivered, parked, held
	AlertID   string
	// Since is when the outcome was reached: the API's suspended_since
	// for a delivered suspension, otherwise the time of the request's
	// latest ledger row with that outcome (zero when not recorded).
	Since     time.Time
	ExpiresAt time.Time
	Pending   []string
	Held      []string
	Parked    []string
}

// Suspended reports whether the endpoint holds a delivered suspension.
func (e endpointState) Suspended() bool {
	return e.Action == hooks.ActionSuspend && e.Outcome == hooks.OutcomeDelivered
}

// newSubjectState builds the state from the API's view; ledger are the
// subject's hook_deliveries rows, newest first.
func newSubjectState(v hooks.SubjectView, ledger []Delivery) subjectState {
	s := subjectState{Allowlisted: v.Allowlisted, Confirmed: v.Confirmed}
	if v.Allowlist != nil {
		s.Allowlist = *v.Allowlist
	}
	for _, e := range v.Endpoints {
		es := endpointState{Endpoint: e.Endpoint, RequestID: e.LastRequestID, Action: e.Action, Outcome: e.Outcome, AlertID: e.AlertID,
			Pending: e.Pending, Held: e.Held, Parked: e.Parked}
		if e.SuspendedSince != nil {
			es.Since = *e.SuspendedSince
		} else {
			for _, d := range ledger {
				if d.RequestID == e.LastRequestID && d.Endpoint == e.Endpoint && d.Outcome == e.Outcome {
					es.Since = d.Time
					break
				}
			}
		}
		if e.ExpiresAt != nil {
			es.ExpiresAt = *e.ExpiresAt
		}
		s.Endpoints = append(s.Endpoints, es)
	}
	return s
}

// stateError words why the release API gave no state.
func stateError(err error) string {
	switch {
	case errors.Is(err, ErrNoReleaser):
		return "No release API is configured (console.release_api.url): the suspension state is not known here."
	case errors.Is(err, ErrAPI):
		return "The release API refused to give the suspension state (" + err.Error() + ")."
	}
	return "The release API cannot be reached, so the suspension state is unknown right now (" + err.Error() + "). The rest of this page is from ClickHouse."
}
