package schemas

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Disposition is how a call ended, as the fraud rules see it.
type Disposition uint8

// Dispositions. DispositionUnknown only exists between decoding and
// Finalize, which derives a disposition from the times and the cause code.
const (
	DispositionUnknown Disposition = iota
	Answered
	NoAnswer
	Busy
	Failed
	Rejected
)

var dispositionNames = [...]string{"", "answered", "no_answer", "busy", "failed", "rejected"}

// String returns the canonical JSON name of d ("answered", "no_answer", …).
func (d Disposition) String() string {
	if int(d) < len(dispositionNames) {
		return dispositionNames[d]
	}
	return "disposition(" + strconv.Itoa(int(d)) + ")"
}

// ParseDisposition maps a canonical disposition name, or a common switch
// spelling of it (Asterisk's "ANSWERED", "NO ANSWER", "BUSY", "FAILED",
// "CONGESTION"), to a Disposition. Matching ignores case; spaces and dashes
// count as underscores. ok is false for anything else.
func ParseDisposition(b []byte) (d Disposition, ok bool) {
	if len(b) == 0 || len(b) > 16 {
		return DispositionUnknown, false
	}
	var buf [16]byte
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ' || c == '-':
			c = '_'
		}
		buf[i] = c
	}
	switch string(buf[:len(b)]) { // no allocation: the compiler converts in place
	case "answered", "answer":
		return Answered, true
	case "no_answer", "noanswer", "unanswered", "cancel", "cancelled", "canceled":
		return NoAnswer, true
	case "busy":
		return Busy, true
	case "failed", "congestion", "chanunavail":
		return Failed, true
	case "rejected", "declined":
		return Rejected, true
	}
	return DispositionUnknown, false
}

// CDR is the canonical call-detail record: one call attempt as the switch
// saw it. Times are Unix milliseconds of event time; zero means absent.
//
// Strings filled in by a decoder may alias the decoder's buffers (see the
// decoders' docs): they stay valid until the next call on that decoder. Call
// Clone to keep a CDR longer.
type CDR struct {
	// CallID identifies the call at the switch; may be empty.
	CallID string
	// Caller is the calling number, in E.164 ("+15550100001") where it is a
	// phone number, or as given where it is an opaque identifier.
	Caller string
	// Callee is the called number, normalised like Caller.
	Callee string
	// StartMS is when the call attempt started (Unix ms). Required.
	StartMS int64
	// AnswerMS is when the callee answered, 0 if it did not or if unknown.
	AnswerMS int64
	// EndMS is when the call ended, 0 if unknown.
	EndMS int64
	// DurationS is the talk time in seconds, 0 when unanswered. Finalize
	// derives it from the times when the source did not give it.
	DurationS int32
	// Disposition is how the call ended. Finalize derives it from the times
	// and cause code when the source did not give it.
	Disposition Disposition
	// Attestation is the STIR/SHAKEN attestation level 'A', 'B', 'C', or 0.
	Attestation byte
	// CauseCode is the Q.850 release cause, 0 if unknown.
	CauseCode uint16
	// Trunk is the SIP trunk or interconnect the call came in on.
	Trunk string
	// SourceIP is the signalling source address.
	SourceIP string
	// IMSI is the SIM's subscriber identity (mobile originated calls).
	IMSI string
	// IMEI is the handset's equipment identity (mobile originated calls).
	IMEI string
	// CellID is the serving cell.
	CellID string

	// durationSet records that DurationS came from the source, so that
	// Finalize does not derive it again. Decoders set it with SetDuration.
	durationSet bool
}

// Reset clears c for reuse by a decoder.
func (c *CDR) Reset() { *c = CDR{} }

// SetDuration records a talk time given by the source (seconds).
func (c *CDR) SetDuration(s int32) { c.DurationS, c.durationSet = s, true }

// HasDuration reports whether the talk time came from the source rather
// than being derived.
func (c *CDR) HasDuration() bool { return c.durationSet }

// Clone returns a copy of c whose strings own their memory.
func (c *CDR) Clone() CDR {
	d := *c
	d.CallID = strings.Clone(c.CallID)
	d.Caller = strings.Clone(c.Caller)
	d.Callee = strings.Clone(c.Callee)
	d.Trunk = strings.Clone(c.Trunk)
	d.SourceIP = strings.Clone(c.SourceIP)
	d.IMSI = strings.Clone(c.IMSI)
	d.IMEI = strings.Clone(c.IMEI)
	d.CellID = strings.Clone(c.CellID)
	return d
}

// Start returns the start time as a time.Time in UTC.
func (c *CDR) Start() time.Time { return time.UnixMilli(c.StartMS).UTC() }

// Short reports whether the call counts as short: unanswered, or answered
// with less than shortS seconds of talk.
func (c *CDR) Short(shortS int32) bool {
	return c.Disposition != Answered || c.DurationS < shortS
}

// Validity bounds. A start time outside them is an absurd time (a zeroed
// clock, a unit mix-up) and the record is rejected rather than allowed to
// move the watermark.
const (
	// MinStartMS is 2000-01-01T00:00:00Z.
	MinStartMS int64 = 946684800000
	// MaxStartMS is 2100-01-01T00:00:00Z.
	MaxStartMS int64 = 4102444800000
	// MaxCallMS is the longest call accepted: 2 days. Longer durations are
	// switch errors.
	MaxCallMS int64 = 2 * 24 * 3600 * 1000
	// MaxFieldLen bounds every string field, so a hostile record cannot make
	// a detector keep megabytes per key.
	MaxFieldLen = 128
)

// Finalize derives what the source left out (talk time, disposition) and
// validates the record: times, bounds, and string fields that are at most
// MaxFieldLen bytes of valid UTF-8. It returns a *FieldError naming the
// first bad field.
// It does not allocate.
func (c *CDR) Finalize() error {
	if c.Caller == "" {
		return errMissing("caller")
	}
	if c.Callee == "" {
		return errMissing("callee")
	}
	if c.StartMS == 0 {
		return errMissing("start_time")
	}
	if c.StartMS < MinStartMS || c.StartMS >= MaxStartMS {
		return &FieldError{Field: "start_time", Problem: "outside 2000-01-01..2100-01-01"}
	}
	if c.AnswerMS != 0 && (c.AnswerMS < c.StartMS || c.AnswerMS-c.StartMS > MaxCallMS) {
		return &FieldError{Field: "answer_time", Problem: "before start_time or more than 2 days after it"}
	}
	if c.EndMS != 0 {
		if c.EndMS < c.StartMS || c.EndMS-c.StartMS > MaxCallMS {
			return &FieldError{Field: "end_time", Problem: "before start_time or more than 2 days after it"}
		}
		if c.AnswerMS != 0 && c.EndMS < c.AnswerMS {
			return &FieldError{Field: "end_time", Problem: "before answer_time"}
		}
	}
	if c.durationSet && (c.DurationS < 0 || int64(c.DurationS)*1000 > MaxCallMS) {
		return &FieldError{Field: "duration_s", Problem: "negative or longer than 2 days"}
	}
	for _, f := range [...]struct {
		name string
		v    string
	}{{"caller", c.Caller}, {"callee", c.Callee}, {"call_id", c.CallID}, {"trunk", c.Trunk},
		{"source_ip", c.SourceIP}, {"imsi", c.IMSI}, {"imei", c.IMEI}, {"cell_id", c.CellID}} {
		if len(f.v) > MaxFieldLen {
			return &FieldError{Field: f.name, Problem: "longer than 128 bytes"}
		}
		if !utf8.ValidString(f.v) {
			return &FieldError{Field: f.name, Problem: "invalid UTF-8"}
		}
	}
	switch c.Attestation {
	case 0, 'A', 'B', 'C':
	default:
		return &FieldError{Field: "attestation", Problem: "not A, B or C"}
	}

	if c.Disposition == DispositionUnknown {
		c.Disposition = deriveDisposition(c)
	}
	if !c.durationSet {
		c.DurationS = deriveDuration(c)
		c.durationSet = true
	}
	if c.Disposition != Answered {
		// Talk time only exists for answered calls; some switches report
		// ringing time as duration on unanswered attempts.
		c.DurationS = 0
	}
	return nil
}

func deriveDisposition(c *CDR) Disposition {
	if c.AnswerMS != 0 || (c.durationSet && c.DurationS > 0) {
		return Answered
	}
	switch c.CauseCode {
	case 17: // user busy
		return Busy
	case 18, 19: // no user responding, no answer
		return NoAnswer
	case 21: // call rejected
		return Rejected
	case 0, 16, 31: // unknown, normal clearing, normal unspecified
		return NoAnswer
	}
	return Failed
}

func deriveDuration(c *CDR) int32 {
	if c.Disposition != Answered {
		return 0
	}
	from := c.AnswerMS
	if from == 0 {
		from = c.StartMS
	}
	if c.EndMS == 0 || c.EndMS < from {
		return 0
	}
	return int32((c.EndMS - from + 500) / 1000)
}

// FieldError says which field of a record is wrong and why.
type FieldError struct {
	// Field is the canonical JSON name of the field ("start_time").
	Field string
	// Problem says what is wrong, in words ("missing", "not a time").
	Problem string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Problem }

func errMissing(field string) *FieldError { return &FieldError{Field: field, Problem: "missing"} }

// RecordError locates a malformed record in its input. Decoders return it
// for a record they skip; the next call moves on to the next record.
type RecordError struct {
	// Line is the 1-based line (or record number for formats without
	// lines), 0 if not known.
	Line int64
	// Offset is the byte offset of the record's start in its input.
	Offset int64
	// Err is the cause, usually a *FieldError.
	Err error
}

func (e *RecordError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("record at line %d (offset %d): %v", e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("record at offset %d: %v", e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
