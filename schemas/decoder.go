package schemas

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Decoder reads CDRs from a stream; not goroutine-safe.
//
// Strings in a decoded CDR may alias the decoder's buffers: they are valid
// until the next Decode call. Use CDR.Clone to keep a record longer.
type Decoder interface {
	// Decode fills c with the next record. It returns io.EOF at the end
	// of input; a *RecordError for a malformed record that it skipped
	// (call Decode again to go on); any other error means the input
	// itself is unreadable (stop).
	Decode(c *CDR) error
}

// DecodeOptions configure NewDecoder.
type DecodeOptions struct {
	// Plan normalises caller and callee numbers; nil knows no country
	// code, so only "+…" and international-prefix numbers become E.164.
	Plan *NumberPlan
	// Location is the time zone of wall-clock times written without an
	// offset (Asterisk, and zoneless times in CSV); nil means UTC.
	Location *time.Location
	// MaxRecordBytes bounds one record (a line; a JSON object for
	// freeswitch). A longer record is skipped as a *RecordError without
	// being buffered whole. 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int
}

// DefaultMaxRecordBytes is the record size limit when
// DecodeOptions.MaxRecordBytes is 0.
const DefaultMaxRecordBytes = 1 << 20

// Formats lists the input formats NewDecoder accepts.
var Formats = []string{"jsonl", "csv", "asterisk", "freeswitch"}

// NewDecoder returns a decoder of format (one of Formats, any case)
// reading r. Caller and callee are normalised with opts.Plan; every record
// goes through CDR.Finalize, whose *FieldError becomes the record's
// *RecordError. A string field that is not valid UTF-8 (in JSON, also a
// \u escape of a lone UTF-16 surrogate) makes the record a *RecordError
// whose *FieldError names the field, with Problem "invalid UTF-8"; decoded
// strings are therefore always valid UTF-8.
//
//   - "jsonl": canonical CDRs (cdr.schema.json), one JSON object per line,
//     read by JSONParser; blank lines are skipped. RecordError.Line is the
//     line.
//   - "csv": canonical CDRs as CSV. The first line is a header of field
//     names (any case; unknown columns ignored); missing required columns
//     make the first Decode fail with an error that is not a *RecordError.
//     Each record is one line with as many fields as the header (RFC 4180
//     quoting, but a quoted field cannot span lines); an empty value is
//     absent; times are RFC 3339, zoneless "YYYY-MM-DD HH:MM:SS" in
//     opts.Location, or Unix epochs.
//   - "asterisk": Asterisk cdr_csv Master.csv (16 to 18 columns, no
//     header). caller = src, or the number in clid when src is empty;
//     callee = dst; start/answer/end are wall clock in opts.Location (an
//     empty answer means unanswered); duration_s = billsec; disposition
//     from ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION; call_id =
//     uniqueid; trunk from channel: the per-call suffix is dropped
//     ("-0000001f", IAX2/DAHDI call numbers, Local's ";1"), SIP/PJSIP/IAX2
//     give the peer ("SIP/provider-a-0000001f" → "provider-a"), Local
//     gives "Local/<context>" and DAHDI "DAHDI/<channel or group>".
//   - "freeswitch": FreeSWITCH mod_json_cdr objects, one per line,
//     concatenated or pretty-printed. Numbers and uuid from variables, else
//     from the first callflow caller_profile; times from the *_uepoch (µs)
//     or *_epoch (s) variables; duration_s = billsec; cause_code from
//     hangup_cause_q850 or the hangup_cause name, which also gives the
//     disposition of unanswered calls; trunk = sip_gateway_name; source_ip
//     = sip_network_ip; URL-encoded values are decoded. A '{' at the start
//     of a line while an object is open ends that object as truncated.
//     RecordError.Line is the object's 1-based index in the stream.
func NewDecoder(format string, r io.Reader, opts DecodeOptions) (Decoder, error) {
	if r == nil {
		return nil, errors.New("new CDR decoder: nil reader")
	}
	if opts.MaxRecordBytes < 0 {
		return nil, fmt.Errorf("new CDR decoder: negative MaxRecordBytes %d", opts.MaxRecordBytes)
	}
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	switch strings.ToLower(format) {
	case "jsonl":
		return newJSONLDecoder(r, opts), nil
	case "csv":
		return newCSVDecoder(r, opts), nil
	case "asterisk":
		return newAsteriskDecoder(r, opts), nil
	case "freeswitch":
		return newFreeSWITCHDecoder(r, opts), nil
	}
	return nil, fmt.Errorf("new CDR decoder: unknown format %q (valid: %s)", format, strings.Join(Formats, ", "))
}

// jsonlDecoder reads canonical JSON CDRs, one per line.
type jsonlDecoder struct {
	lines lineReader
	p     JSONParser
}

func newJSONLDecoder(r io.Reader, opts DecodeOptions) *jsonlDecoder {
	d := &jsonlDecoder{}
	d.lines.init(r, opts.MaxRecordBytes)
	d.p.Plan = opts.Plan
	return d
}

// Decode implements Decoder. Blank lines are skipped.
func (d *jsonlDecoder) Decode(c *CDR) error {
	for {
		line, err := d.lines.next()
		if err != nil {
			return d.lines.wrapError(err, "json")
		}
		if isBlank(line) {
			continue
		}
		if err := d.p.Parse(c, line); err != nil {
			return d.lines.recordError(err)
		}
		return nil
	}
}

// isBlank reports whether b holds only whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if !wsTable[c] {
			return false
		}
	}
	return true
}
