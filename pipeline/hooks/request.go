package hooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is one webhook request to one endpoint, as the retry, parked and
// held topics store it (JSON, keyed by ID).
type Request struct {
	// ID is the webhook-id (WebhookID of alert, action and endpoint).
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	// Action is suspend or release.
	Action      string `json:"action"`
	AlertID     string `json:"alert_id"`
	Rule        string `json:"rule"`
	Subject     string `json:"subject"`
	SubjectKind string `json:"subject_kind"`
	// Body is the exact body sent on every attempt (base64 in JSON, so
	// its bytes never change on the way through the topics).
	Body []byte `json:"body"`
	// Attempts is the number of attempts made so far.
	Attempts int `json:"attempts"`
	// NextAt is when the next attempt is due.
	NextAt time.Time `json:"next_at"`
	// CreatedAt is when the dispatcher first saw the request.
	CreatedAt time.Time `json:"created_at"`
	// LastStatus and LastError describe the last failed attempt.
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Approved marks a request an operator let past the budget.
	Approved bool `json:"approved,omitempty"`
	// AwaitBudget marks a first attempt of an endpoint with a budget:
	// it waits in the retry topic until the retry runner (one process
	// among the dispatchers) counts it against the budget, then is
	// attempted or held.
	AwaitBudget bool `json:"await_budget,omitempty"`
	// HeldReason says why a held request is held.
	HeldReason string `json:"held_reason,omitempty"`
	// ExpiresAt is, for a suspension whose rule sets suspend_for, when
	// the subject is released unless an operator confirms it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Expiry marks the release sent at a suspension's ExpiresAt; it is
	// not sent when the subject was confirmed after CreatedAt.
	Expiry bool `json:"expiry,omitempty"`
	// DecisionID is, for a release an operator asked for, the decision;
	// the dispatcher allowlists the subject before attempting it.
	DecisionID string `json:"decision_id,omitempty"`
}

// Encode returns the request's JSON.
func (r *Request) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Only strings, ints, bytes and times: cannot fail.
		panic(fmt.Sprintf("hooks: cannot encode request %s: %v", r.ID, err))
	}
	return b
}

// DecodeRequest reads a request record.
func DecodeRequest(data []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("cannot decode hook request: %w", err)
	}
	if r.ID == "" || r.Endpoint == "" {
		return r, fmt.Errorf("hook request without id or endpoint: %.200s", data)
	}
	return r, nil
}

// disabledKeyPrefix starts the retry-topic key that marks an endpoint
// disabled (after a 410); a tombstone re-enables it.
const disabledKeyPrefix = "endpoint-disabled/"

// DisabledKey is the retry-topic key of endpoint's disabled marker.
func DisabledKey(endpoint string) string { return disabledKeyPrefix + endpoint }

// outcome is what one attempt's result means for the request.
type outcome uint8

const (
	outDelivered outcome = iota // 2xx
	outRetry                    // network error, timeout, 5xx, 408, 429
	outPark                     // any other status: do not retry
	outGone                     // 410: park, and disable the endpoint
)

func (o outcome) String() string {
	return [...]string{"delivered", "retry", "parked", "gone"}[o]
}

// classify maps an attempt's status (0 when err is set) to an outcome.
func classify(status int, err error) outcome {
	switch {
	case err != nil:
		return outRetry
	case status >= 200 && status < 300:
		return outDelivered
	case status == http.StatusGone:
		return outGone
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return outRetry
	}
	return outPark
}

// maxRetryAfter bounds how long a Retry-After header can delay a retry.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header (seconds or an HTTP date); 0 when
// absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
