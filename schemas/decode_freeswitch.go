package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// freeswitchDecoder reads FreeSWITCH mod_json_cdr CDRs: JSON objects one
// per line, concatenated, or pretty-printed. A framer splits the stream
// into top-level objects and encoding/json decodes each, so that a
// malformed object costs only itself: a '{' at the start of a line while an
// object is still open (mod_json_cdr indents nested values) is taken as the
// next object's start, and the open one is reported as truncated.
//
// RecordError.Line is the 1-based index of the object in the stream and
// RecordError.Offset the byte offset of its '{'.
//
// Fields: caller from variables.caller_id_number, else the first callflow
// caller_profile.caller_id_number (callflow may be an object or an array);
// callee from variables.destination_number, else caller_profile's; times
// from variables.start_uepoch/answer_uepoch/end_uepoch (µs) when set, else
// the *_epoch (s) ones, "0" meaning never; duration_s from billsec;
// cause_code from hangup_cause_q850 or the hangup_cause name; disposition
// answered when answered, else from hangup_cause; call_id from
// variables.uuid, the top-level uuid, or the caller profile's; trunk from
// sip_gateway_name; source_ip from sip_network_ip. Variable values are
// URL-decoded when they contain '%' (mod_json_cdr's encode-values).
type freeswitchDecoder struct {
	br    *bufio.Reader
	opts  DecodeOptions
	buf   []byte // the object being framed
	off   int64  // stream offset of the next byte in br
	index int64  // objects (and runs of garbage) seen
	bol   bool   // the next byte starts a line
	arena []byte
	rec   fsRecord
}

func newFreeSWITCHDecoder(r io.Reader, opts DecodeOptions) *freeswitchDecoder {
	return &freeswitchDecoder{br: bufio.NewReaderSize(r, 64<<10), opts: opts, bol: true}
}

// Decode implements Decoder.
func (d *freeswitchDecoder) Decode(c *CDR) error {
	start, problem, err := d.frame()
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("read freeswitch object %d: %w", d.index, err)
	}
	if problem != "" {
		return &RecordError{Line: d.index, Offset: start, Err: &FieldError{Field: "json", Problem: problem}}
	}
	if err := d.record(c); err != nil {
		return &RecordError{Line: d.index, Offset: start, Err: err}
	}
	return nil
}

// frame reads the next top-level object into d.buf. It returns the
// object's offset and, for a malformed one (already skipped), the problem.
func (d *freeswitchDecoder) frame() (start int64, problem string, err error) {
	// Skip whitespace; anything else before a '{' is garbage, skipped up to
	// the next '{' at the start of a line.
	for {
		b, err := d.br.ReadByte()
		if err != nil {
			return d.off, "", err
		}
		if b == '{' {
			break
		}
		if wsTable[b] {
			d.advance(b)
			continue
		}
		d.index++
		start = d.off
		d.advance(b)
		if err := d.resync(); err != nil && err != io.EOF {
			return start, "", err
		}
		return start, "unexpected " + quoteByte(b) + " where an object should start", nil
	}
	d.index++
	start = d.off
	d.advance('{')
	d.buf = append(d.buf[:0], '{')
	depth, inString, escaped, tooLong := 1, false, false, false
	for {
		b, err := d.br.ReadByte()
		if err == io.EOF {
			return start, "truncated object", nil
		}
		if err != nil {
			return start, "", err
		}
		if d.bol && b == '{' && !inString {
			// The next object starts: this one was cut short.
			_ = d.br.UnreadByte()
			return start, "truncated object", nil
		}
		d.advance(b)
		if !tooLong {
			if len(d.buf) >= d.opts.MaxRecordBytes {
				tooLong = true
				d.buf = d.buf[:0]
			} else {
				d.buf = append(d.buf, b)
			}
		}
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			case b == '\n':
				// A raw newline cannot be in a JSON string: the string
				// was cut short. Resynchronise on the next object.
				if err := d.resync(); err != nil && err != io.EOF {
					return start, "", err
				}
				return start, "unterminated string", nil
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			depth--
			if depth == 0 {
				if tooLong {
					return start, "object longer than " + strconv.Itoa(d.opts.MaxRecordBytes) + " bytes", nil
				}
				return start, "", nil
			}
		}
	}
}

// advance accounts for byte b having been consumed.
func (d *freeswitchDecoder) advance(b byte) {
	d.off++
	d.bol = b == '\n'
}

// resync skips input up to (not including) the next '{' that starts a line.
func (d *freeswitchDecoder) resync() error {
	for {
		if d.bol {
			next, err := d.br.Peek(1)
			if err != nil {
				return err
			}
			if next[0] == '{' {
				return nil
			}
		}
		b, err := d.br.ReadByte()
		if err != nil {
			return err
		}
		d.advance(b)
	}
}

// record decodes d.buf into c.
func (d *freeswitchDecoder) record(c *CDR) error {
	d.rec = fsRecord{}
	if err := json.Unmarshal(d.buf, &d.rec); err != nil {
		return &FieldError{Field: "json", Problem: err.Error()}
	}
	c.Reset()
	d.arena = d.arena[:0]
	v, p := &d.rec.Variables, &d.rec.Callflow.CallerProfile

	caller := fsUnescape(v.CallerIDNumber)
	if caller == "" {
		caller = string(p.CallerIDNumber)
	}
	callee := fsUnescape(v.DestinationNumber)
	if callee == "" {
		callee = string(p.DestinationNumber)
	}
	if caller != "" {
		c.Caller = normalizeNumber(d.opts.Plan, &d.arena, []byte(caller))
	}
	if callee != "" {
		c.Callee = normalizeNumber(d.opts.Plan, &d.arena, []byte(callee))
	}
	for _, t := range [...]struct {
		field  int
		us, ss fsString
	}{{fStartTime, v.StartUEpoch, v.StartEpoch}, {fAnswerTime, v.AnswerUEpoch, v.AnswerEpoch}, {fEndTime, v.EndUEpoch, v.EndEpoch}} {
		ms, ok := fsEpochMS(t.us, t.ss)
		if !ok {
			return &FieldError{Field: cdrFields[t.field], Problem: "epoch is not a Unix time"}
		}
		setTime(c, t.field, ms)
	}
	if s := strings.TrimSpace(fsUnescape(v.Billsec)); s != "" {
		n, ok := parseDecimal([]byte(s))
		if !ok || !n.isInteger() {
			return &FieldError{Field: "duration_s", Problem: "billsec is not a whole number of seconds"}
		}
		c.SetDuration(n.durationS())
	}
	cause := strings.ToUpper(strings.TrimSpace(fsUnescape(v.HangupCause)))
	if q := strings.TrimSpace(fsUnescape(v.HangupCauseQ850)); q != "" {
		if n, ok := parseDecimal([]byte(q)); ok {
			if cc, ok := n.causeCode(); ok {
				c.CauseCode = cc
			}
		}
	}
	if c.CauseCode == 0 {
		c.CauseCode = fsCauseQ850[cause]
	}
	if c.AnswerMS != 0 {
		c.Disposition = Answered
	} else {
		// Unknown (0) for most causes: Finalize derives it from the code.
		c.Disposition = fsCauseDisposition[cause]
	}
	c.CallID = firstNonEmpty(fsUnescape(v.UUID), string(d.rec.UUID), string(p.UUID))
	c.Trunk = fsUnescape(v.SIPGatewayName)
	c.SourceIP = fsUnescape(v.SIPNetworkIP)
	return c.Finalize()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// fsUnescape URL-decodes a mod_json_cdr variable value that holds an
// escape. Path unescaping keeps '+' as it is (mod_json_cdr writes '+' as
// %2B). A value that is not valid URL encoding is kept as it is; one that
// decodes to invalid UTF-8 is returned so, for Finalize to reject.
func fsUnescape(s fsString) string {
	if strings.IndexByte(string(s), '%') < 0 {
		return string(s)
	}
	if u, err := url.PathUnescape(string(s)); err == nil {
		return u
	}
	return string(s)
}

// fsEpochMS reads a time from its microsecond epoch us, else its second
// epoch s; "" and "0" mean absent.
func fsEpochMS(us, s fsString) (int64, bool) {
	if v := strings.TrimSpace(fsUnescape(us)); v != "" && v != "0" {
		n, ok := parseDecimal([]byte(v))
		us, ok2 := n.round(0)
		if !ok || !ok2 {
			return 0, false
		}
		// Truncate to the millisecond, as RFC 3339 times are.
		ms := us / 1000
		if us < 0 && us%1000 != 0 {
			ms--
		}
		return ms, true
	}
	v := strings.TrimSpace(fsUnescape(s))
	if v == "" || v == "0" {
		return 0, true
	}
	n, ok := parseDecimal([]byte(v))
	if !ok {
		return 0, false
	}
	return n.round(3)
}

// fsRecord is the part of a mod_json_cdr object the decoder reads.
type fsRecord struct {
	UUID      fsString    `json:"uuid"`
	Variables fsVariables `json:"variables"`
	Callflow  fsCallflow  `json:"callflow"`
}

type fsVariables struct {
	UUID              fsString `json:"uuid"`
	CallerIDNumber    fsString `json:"caller_id_number"`
	DestinationNumber fsString `json:"destination_number"`
	StartEpoch        fsString `json:"start_epoch"`
	AnswerEpoch       fsString `json:"answer_epoch"`
	EndEpoch          fsString `json:"end_epoch"`
	StartUEpoch       fsString `json:"start_uepoch"`
	AnswerUEpoch      fsString `json:"answer_uepoch"`
	EndUEpoch         fsString `json:"end_uepoch"`
	Billsec           fsString `json:"billsec"`
	HangupCause       fsString `json:"hangup_cause"`
	HangupCauseQ850   fsString `json:"hangup_cause_q850"`
	SIPGatewayName    fsString `json:"sip_gateway_name"`
	SIPNetworkIP      fsString `json:"sip_network_ip"`
}

// fsCallflow is the first callflow entry: mod_json_cdr writes callflow as
// an object in some versions and an array in others.
type fsCallflow struct {
	CallerProfile fsProfile `json:"caller_profile"`
}

type fsProfile struct {
	UUID              fsString `json:"uuid"`
	CallerIDNumber    fsString `json:"caller_id_number"`
	DestinationNumber fsString `json:"destination_number"`
}

// UnmarshalJSON accepts an object or an array of objects (keeping the
// first).
func (f *fsCallflow) UnmarshalJSON(b []byte) error {
	b = bytes.TrimLeft(b, " \t\r\n")
	type plain fsCallflow
	switch {
	case len(b) > 0 && b[0] == '[':
		var all []plain
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		if len(all) > 0 {
			*f = fsCallflow(all[0])
		}
		return nil
	case len(b) > 0 && b[0] == '{':
		return json.Unmarshal(b, (*plain)(f))
	}
	return nil // null or an unexpected kind: no callflow
}

// fsString is a variable value: a string, or the text of a number or
// boolean; null and containers read as "". A string that is not valid
// UTF-8, or escapes a lone surrogate, reads as fsInvalid (encoding/json
// would quietly make it U+FFFD), so that Finalize rejects the field.
type fsString string

// fsInvalid stands for a string that was not valid UTF-8.
const fsInvalid fsString = "\xff"

// UnmarshalJSON implements json.Unmarshaler.
func (s *fsString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = fsString(v)
		if !validJSONText(b) {
			*s = fsInvalid
		}
		return nil
	}
	switch {
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9') || b[0] == 't' || b[0] == 'f'):
		*s = fsString(b)
	default:
		*s = ""
	}
	return nil
}

// fsCauseQ850 maps FreeSWITCH hangup cause names to Q.850 cause values, for
// CDRs without hangup_cause_q850. Names outside Q.850 are left out.
var fsCauseQ850 = map[string]uint16{
	"UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
	"CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16,
	"USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20,
	"CALL_REJECTED": 21, "NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23,
	"EXCHANGE_ROUTING_ERROR": 25, "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28,
	"FACILITY_REJECTED": 29, "RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31,
	"NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38, "NORMAL_TEMPORARY_FAILURE": 41,
	"SWITCH_CONGESTION": 42, "ACCESS_INFO_DISCARDED": 43, "REQUESTED_CHAN_UNAVAIL": 44,
	"PRE_EMPTED": 45, "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52,
	"INCOMING_CALL_BARRED": 54, "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58,
	"SERVICE_UNAVAILABLE": 63, "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66,
	"FACILITY_NOT_IMPLEMENTED": 69, "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81,
	"INCOMPATIBLE_DESTINATION": 88, "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96,
	"MESSAGE_TYPE_NONEXIST": 97, "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100,
	"WRONG_CALL_STATE": 101, "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103,
	"PROTOCOL_ERROR": 111, "INTERWORKING": 127,
}

// fsCauseDisposition gives the disposition of an unanswered call for the
// hangup causes that the Q.850 value alone would misread; the others are
// derived from the cause code by Finalize.
var fsCauseDisposition = map[string]Disposition{
	"USER_BUSY":           Busy,
	"NO_ANSWER":           NoAnswer,
	"NO_USER_RESPONSE":    NoAnswer,
	"ORIGINATOR_CANCEL":   NoAnswer, // the caller hung up while it rang
	"PROGRESS_TIMEOUT":    NoAnswer,
	"ALLOTTED_TIMEOUT":    NoAnswer,
	"LOSE_RACE":           NoAnswer, // another leg of a forked call answered
	"PICKED_OFF":          NoAnswer,
	"CALL_REJECTED":       Rejected,
	"USER_NOT_REGISTERED": Failed,
	"MEDIA_TIMEOUT":       Failed,
}

// validJSONText reports whether the JSON text b is valid UTF-8 and its \u
// escapes pair every surrogate.
func validJSONText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // a one-character escape, \\ included
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok || !utf16IsSurrogate(r) {
			i += 5
			continue
		}
		if r >= 0xDC00 || len(b) < i+12 || b[i+6] != '\\' || b[i+7] != 'u' {
			return false
		}
		if r2, ok := hex4(b[i+8:]); !ok || r2 < 0xDC00 || r2 > 0xDFFF {
			return false
		}
		i += 11
	}
	return true
}
