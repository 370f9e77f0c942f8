package hooks

import "time"

// Outcomes of a Delivery row.
const (
	// OutcomeDelivered: the receiver answered 2xx.
	OutcomeDelivered = "delivered"
	// OutcomeRetry: the attempt failed and the request waits in the
	// retry topic.
	OutcomeRetry = "retry"
	// OutcomeQueued: not attempted yet (queue full or circuit open); the
	// request waits in the retry topic.
	OutcomeQueued = "queued"
	// OutcomeParked: the request is in the parked topic.
	OutcomeParked = "parked"
	// OutcomeHeld: over the budget, held for approval.
	OutcomeHeld = "held"
	// OutcomeShadow: shadow mode, what would have been sent; not sent.
	OutcomeShadow = "shadow"
	// OutcomeProtected: a protected number; never sent.
	OutcomeProtected = "blocked_protected"
	// OutcomeAllowlisted: on the allowlist at dispatch time; not sent.
	OutcomeAllowlisted = "blocked_allowlist"
	// OutcomeDuplicate: the subject got a request within the subject
	// period; not sent.
	OutcomeDuplicate = "duplicate"
	// OutcomeRejected: an operator rejected the held request.
	OutcomeRejected = "rejected"
	// OutcomeCancelled: a pending or held suspension, or a pending
	// expiry release, cancelled by a release or a confirm; not sent.
	OutcomeCancelled = "cancelled"
)

// Delivery is one row of ClickHouse hook_deliveries: an attempt, or a
// decision not to send.
type Delivery struct {
	RequestID   string
	AlertID     string
	Endpoint    string
	Action      string
	Subject     string
	SubjectKind string
	Rule        string
	// Attempt is the attempt's number from 1; 0 for a decision without
	// an attempt.
	Attempt    int
	StatusCode int
	Latency    time.Duration
	Error      string
	Outcome    string
	Mode       string
	Time       time.Time
	// NextAt is the next attempt's time for OutcomeRetry and
	// OutcomeQueued.
	NextAt time.Time
	// Body is the body sent, or in shadow mode the body that would have
	// been sent.
	Body []byte
}

// Recorder keeps Delivery rows (ClickHouse hook_deliveries).
type Recorder interface {
	// Record queues d and returns at once: it never blocks a delivery.
	// Safe for concurrent use.
	Record(d Delivery)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(Delivery)

// Record calls f.
func (f RecorderFunc) Record(d Delivery) { f(d) }
