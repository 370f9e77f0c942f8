package schemas

import (
	"bytes"
	"io"
	"strconv"
)

// Columns of Asterisk's cdr_csv Master.csv.
const (
	astSrc         = 1
	astDst         = 2
	astCLID        = 4
	astChannel     = 5
	astStart       = 9
	astAnswer      = 10
	astEnd         = 11
	astBillsec     = 13
	astDisposition = 14
	astUniqueID    = 16
	astMinCols     = 16
	astMaxCols     = 18
)

// asteriskDecoder reads Asterisk cdr_csv Master.csv: no header, one call
// per line, columns accountcode, src, dst, dcontext, clid, channel,
// dstchannel, lastapp, lastdata, start, answer, end, duration, billsec,
// disposition, amaflags[, uniqueid[, userfield]].
//
// Mapping: caller = src, or the number in clid ("Name" <1234>) when src is
// empty; callee = dst; start, answer, end are "YYYY-MM-DD HH:MM:SS" wall
// clock in DecodeOptions.Location (an empty or all-zero answer means
// unanswered); duration_s = billsec; disposition from ANSWERED, NO ANSWER,
// BUSY, FAILED, CONGESTION; call_id = uniqueid; trunk from channel (see
// channelTrunk). Strings alias the decoder's buffers until the next Decode.
type asteriskDecoder struct {
	lines  lineReader
	opts   DecodeOptions
	fields [][]byte
	arena  []byte
}

func newAsteriskDecoder(r io.Reader, opts DecodeOptions) *asteriskDecoder {
	d := &asteriskDecoder{opts: opts, arena: make([]byte, 0, 256)}
	d.lines.init(r, opts.MaxRecordBytes)
	return d
}

// Decode implements Decoder.
func (d *asteriskDecoder) Decode(c *CDR) error {
	for {
		line, err := d.lines.next()
		if err != nil {
			return d.lines.wrapError(err, "asterisk")
		}
		if isBlank(line) {
			continue
		}
		if err := d.record(c, line); err != nil {
			return d.lines.recordError(err)
		}
		return nil
	}
}

func (d *asteriskDecoder) record(c *CDR, line []byte) error {
	d.arena = d.arena[:0]
	var problem string
	d.fields, problem = splitCSV(d.fields, &d.arena, line)
	if problem != "" {
		return &FieldError{Field: "asterisk", Problem: problem}
	}
	f := d.fields
	if len(f) < astMinCols || len(f) > astMaxCols {
		return &FieldError{Field: "asterisk", Problem: strconv.Itoa(len(f)) + " columns, want 16 to 18"}
	}
	c.Reset()
	src := trimSpace(f[astSrc])
	if len(src) == 0 {
		src = clidNumber(f[astCLID])
	}
	if len(src) > 0 {
		c.Caller = normalizeNumber(d.opts.Plan, &d.arena, src)
	}
	if dst := trimSpace(f[astDst]); len(dst) > 0 {
		c.Callee = normalizeNumber(d.opts.Plan, &d.arena, dst)
	}
	for _, t := range [...]struct {
		col, field int
	}{{astStart, fStartTime}, {astAnswer, fAnswerTime}, {astEnd, fEndTime}} {
		v := f[t.col]
		if isZeroDateTime(v) {
			continue
		}
		ms, ok := parseTextTime(v, d.opts.Location)
		if !ok {
			return &FieldError{Field: cdrFields[t.field], Problem: "not a date-time (YYYY-MM-DD HH:MM:SS)"}
		}
		setTime(c, t.field, ms)
	}
	if v := trimSpace(f[astBillsec]); len(v) > 0 {
		n, ok := parseDecimal(v)
		if !ok || !n.isInteger() {
			return &FieldError{Field: "duration_s", Problem: "billsec is not a whole number of seconds"}
		}
		c.SetDuration(n.durationS())
	}
	if v := trimSpace(f[astDisposition]); len(v) > 0 {
		disp, ok := ParseDisposition(v)
		if !ok {
			return &FieldError{Field: "disposition", Problem: "not ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION"}
		}
		c.Disposition = disp
	}
	if len(f) > astUniqueID {
		c.CallID = b2s(trimSpace(f[astUniqueID]))
	}
	c.Trunk = b2s(channelTrunk(f[astChannel], &d.arena))
	return c.Finalize()
}

// isZeroDateTime reports whether v is an empty time or the all-zero
// "0000-00-00 00:00:00" some Asterisk back ends write for "never".
func isZeroDateTime(v []byte) bool {
	for _, c := range trimSpace(v) {
		switch c {
		case '0', '-', ':', ' ':
		default:
			return false
		}
	}
	return true
}

// clidNumber returns the number of a caller ID: "1234" from
// `"Alice" <1234>`, or the whole value when it looks like a bare number
// (digits, '+' and formatting). It returns nil otherwise.
func clidNumber(clid []byte) []byte {
	clid = trimSpace(clid)
	if lt := bytes.LastIndexByte(clid, '<'); lt >= 0 {
		if gt := bytes.IndexByte(clid[lt:], '>'); gt > 0 {
			return trimSpace(clid[lt+1 : lt+gt])
		}
		return nil
	}
	for _, c := range clid {
		if (c < '0' || c > '9') && c != '+' && c != ' ' && c != '-' && c != '(' && c != ')' && c != '.' {
			return nil
		}
	}
	return clid
}

// channelTrunk derives the trunk from an Asterisk channel name
// ("TECH/resource-suffix"):
//
//   - the per-call suffix is removed: ";1"/";2" (",1" in old versions) of
//     Local channels, then "-" and 8 hex digits ("-0000001f"), or for IAX2
//     and DAHDI "-" and a decimal call number;
//   - SIP, PJSIP, IAX2 and other peer-based techs give the bare peer name:
//     "SIP/provider-a-0000001f" → "provider-a", "PJSIP/trunk1-00000a1b" →
//     "trunk1";
//   - Local channels give "Local/" and the dialplan context, which is
//     stable across calls unlike the extension: "Local/100@from-internal-
//     0000a1b2;1" → "Local/from-internal";
//   - DAHDI (and Zap) channels keep the tech and the channel or group/span
//     ("DAHDI/23-1" → "DAHDI/23", "DAHDI/i1/5551234-1" → "DAHDI/i1");
//   - a value without '/' is taken as it is.
//
// The result aliases ch, or *arena for Local channels.
func channelTrunk(ch []byte, arena *[]byte) []byte {
	ch = trimSpace(ch)
	slash := bytes.IndexByte(ch, '/')
	if slash <= 0 {
		return ch
	}
	tech, rest := ch[:slash], ch[slash+1:]
	if k := bytes.LastIndexAny(rest, ";,"); k >= 0 {
		rest = rest[:k]
	}
	decimalSuffix := equalFoldASCII(tech, "IAX2") || equalFoldASCII(tech, "DAHDI") || equalFoldASCII(tech, "Zap")
	if dash := bytes.LastIndexByte(rest, '-'); dash >= 0 {
		sfx := rest[dash+1:]
		if (decimalSuffix && len(sfx) > 0 && allIn(sfx, false)) || (len(sfx) == 8 && allIn(sfx, true)) {
			rest = rest[:dash]
		}
	}
	switch {
	case equalFoldASCII(tech, "Local"):
		if at := bytes.IndexByte(rest, '@'); at >= 0 {
			mark := len(*arena)
			*arena = append(*arena, "Local/"...)
			*arena = append(*arena, rest[at+1:]...)
			return (*arena)[mark:]
		}
		return ch[:slash+1+len(rest)]
	case equalFoldASCII(tech, "DAHDI") || equalFoldASCII(tech, "Zap"):
		if k := bytes.IndexByte(rest, '/'); k >= 0 {
			rest = rest[:k]
		}
		return ch[:slash+1+len(rest)]
	}
	return rest
}

// allIn reports whether b is all decimal digits, or hex digits when hex.
func allIn(b []byte, hex bool) bool {
	for _, c := range b {
		isDigit := c >= '0' && c <= '9'
		isHex := (c|0x20) >= 'a' && (c|0x20) <= 'f'
		if !isDigit && (!hex || !isHex) {
			return false
		}
	}
	return true
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}
