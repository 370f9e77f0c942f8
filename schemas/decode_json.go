package schemas

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// JSONParser parses canonical CDRs, one JSON object at a time, without
// allocating. The zero value is ready to use (with no number plan). It is
// not goroutine-safe: use one per goroutine.
//
// Strings in a parsed CDR alias the data given to Parse where they needed
// no unescaping or normalisation, and the parser's own buffer otherwise:
// they stay valid while data is unchanged and until the next Parse call.
// Use CDR.Clone to keep them longer.
type JSONParser struct {
	// Plan normalises caller and callee; nil knows no country code.
	Plan *NumberPlan

	arena []byte // unescaped and normalised strings, reset by Parse
	data  []byte // the object being parsed
	// badUTF8 is set by str when the string it read holds invalid UTF-8
	// or a \u escape of a lone surrogate.
	badUTF8 bool
}

// maxJSONDepth bounds the nesting of unknown values that Parse skips.
const maxJSONDepth = 64

// Parse fills c from data, which must hold exactly one JSON object
// (surrounding whitespace allowed), and calls c.Finalize. Unknown fields
// are skipped, null means absent and when a key repeats the last value
// wins; a known field's string must be valid UTF-8, with no escaped lone
// surrogate ("invalid UTF-8"). Errors are *FieldError: the field whose
// value is wrong, or field
// "json" for a syntax error, with the byte position in data. After an
// error c holds what was read so far.
func (p *JSONParser) Parse(c *CDR, data []byte) error {
	c.Reset()
	if p.arena == nil {
		p.arena = make([]byte, 0, 256)
	}
	p.arena = p.arena[:0]
	p.data = data
	p.badUTF8 = false
	err := p.object(c)
	p.data = nil // do not keep the caller's buffer alive
	if err != nil {
		return err
	}
	return c.Finalize()
}

// skipWS returns the position of the first non-whitespace byte of data at
// or after i.
func skipWS(data []byte, i int) int {
	for i < len(data) && wsTable[data[i]] {
		i++
	}
	return i
}

func (p *JSONParser) object(c *CDR) error {
	data := p.data
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return p.syntaxErrorAt(i)
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return p.syntaxErrorAt(i)
			}
			idx, n := knownKey(data[i+1:])
			if n > 0 {
				i += n + 2
			} else {
				mark := len(p.arena)
				key, next, err := p.str(i)
				if err != nil {
					return err
				}
				idx = fieldIndex(key)
				p.arena = p.arena[:mark] // an unescaped key is not kept
				p.badUTF8 = false        // nor checked, like skipped values
				i = next
			}
			var err error
			if i < len(data) && data[i] == ':' {
				i++
			} else {
				i = skipWS(data, i)
				if i >= len(data) || data[i] != ':' {
					return p.syntaxErrorAt(i)
				}
				i++
			}
			if i < len(data) && wsTable[data[i]] {
				i = skipWS(data, i)
			}
			if idx < 0 {
				i, err = p.skip(i, 0)
			} else {
				i, err = p.field(c, idx, i)
			}
			if err != nil {
				return err
			}
			if i < len(data) && wsTable[data[i]] {
				i = skipWS(data, i)
			}
			if i < len(data) && data[i] == ',' {
				i++
				if i < len(data) && wsTable[data[i]] {
					i = skipWS(data, i)
				}
				continue
			}
			if i < len(data) && data[i] == '}' {
				i++
				break
			}
			return p.syntaxErrorAt(i)
		}
	}
	i = skipWS(data, i)
	if i != len(data) {
		return &FieldError{Field: "json", Problem: "unexpected " + quoteByte(data[i]) +
			" after the object at byte " + strconv.Itoa(i)}
	}
	return nil
}

// field reads the value at data[i] of the known field idx into c and
// returns the position after it.
func (p *JSONParser) field(c *CDR, idx int, i int) (int, error) {
	data := p.data
	if i >= len(data) {
		return i, p.syntaxErrorAt(i)
	}
	switch data[i] {
	case '"':
		// Fast paths for values that cannot hold escapes: date-times and
		// E.164 numbers are read in place.
		switch idx {
		case fStartTime, fAnswerTime, fEndTime:
			if ms, n, ok := parseDateTimePrefix(data[i+1:], false, nil); ok && i+1+n < len(data) && data[i+1+n] == '"' {
				setTime(c, idx, ms)
				return i + n + 2, nil
			}
		case fCaller, fCallee:
			if j := e164Prefix(data[i+1:]); j > 0 && i+1+j < len(data) && data[i+1+j] == '"' {
				if idx == fCaller {
					c.Caller = b2s(data[i+1 : i+1+j])
				} else {
					c.Callee = b2s(data[i+1 : i+1+j])
				}
				return i + j + 2, nil
			}
		}
		s, next, err := p.str(i)
		if err != nil {
			return next, err
		}
		if p.badUTF8 {
			return next, &FieldError{Field: cdrFields[idx], Problem: "invalid UTF-8"}
		}
		return next, p.stringValue(c, idx, s)
	case 'n':
		if !hasLiteral(data[i:], "null") {
			return i, p.syntaxErrorAt(i)
		}
		clearField(c, idx)
		return i + 4, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		d, n := scanNumber(data[i:])
		if n == 0 {
			return i, p.syntaxErrorAt(i + 1)
		}
		return i + n, numberValue(c, idx, d)
	}
	// A value of the wrong kind: report the field when the value is
	// valid JSON, the syntax error otherwise.
	next, err := p.skip(i, 0)
	if err != nil {
		return next, err
	}
	if idx == fStartTime || idx == fAnswerTime || idx == fEndTime ||
		idx == fDurationS || idx == fCauseCode {
		return next, &FieldError{Field: cdrFields[idx], Problem: "not a string or number"}
	}
	return next, &FieldError{Field: cdrFields[idx], Problem: "not a string"}
}

func (p *JSONParser) stringValue(c *CDR, idx int, s []byte) error {
	switch idx {
	case fCaller:
		c.Caller = normalizeNumber(p.Plan, &p.arena, s)
	case fCallee:
		c.Callee = normalizeNumber(p.Plan, &p.arena, s)
	case fStartTime, fAnswerTime, fEndTime:
		ms, ok := parseDateTime(s, false, nil)
		if !ok {
			return &FieldError{Field: cdrFields[idx], Problem: "not an RFC 3339 date-time"}
		}
		setTime(c, idx, ms)
	case fDisposition:
		if len(s) == 0 {
			c.Disposition = DispositionUnknown
			return nil
		}
		d, ok := ParseDisposition(s)
		if !ok {
			return &FieldError{Field: "disposition", Problem: "not answered, no_answer, busy, failed or rejected"}
		}
		c.Disposition = d
	case fAttestation:
		if len(s) == 0 {
			c.Attestation = 0
			return nil
		}
		a, ok := parseAttestation(s)
		if !ok {
			return &FieldError{Field: "attestation", Problem: "not A, B or C"}
		}
		c.Attestation = a
	case fDurationS, fCauseCode:
		return &FieldError{Field: cdrFields[idx], Problem: "not a number"}
	default:
		*stringField(c, idx) = b2s(s)
	}
	return nil
}

func numberValue(c *CDR, idx int, d decimal) error {
	switch idx {
	case fStartTime, fAnswerTime, fEndTime:
		ms, ok := d.epochMS()
		if !ok {
			return &FieldError{Field: cdrFields[idx], Problem: "Unix time out of range"}
		}
		setTime(c, idx, ms)
	case fDurationS:
		c.SetDuration(d.durationS())
	case fCauseCode:
		cc, ok := d.causeCode()
		if !ok {
			return &FieldError{Field: "cause_code", Problem: "not an integer 0..127"}
		}
		c.CauseCode = cc
	default:
		return &FieldError{Field: cdrFields[idx], Problem: "not a string"}
	}
	return nil
}

func setTime(c *CDR, idx int, ms int64) {
	switch idx {
	case fStartTime:
		c.StartMS = ms
	case fAnswerTime:
		c.AnswerMS = ms
	case fEndTime:
		c.EndMS = ms
	}
}

// clearField sets field idx of c to absent (JSON null).
func clearField(c *CDR, idx int) {
	switch idx {
	case fCaller:
		c.Caller = ""
	case fCallee:
		c.Callee = ""
	case fStartTime, fAnswerTime, fEndTime:
		setTime(c, idx, 0)
	case fDurationS:
		c.DurationS, c.durationSet = 0, false
	case fDisposition:
		c.Disposition = DispositionUnknown
	case fCauseCode:
		c.CauseCode = 0
	case fAttestation:
		c.Attestation = 0
	default:
		*stringField(c, idx) = ""
	}
}

// wsTable marks JSON whitespace.
var wsTable = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// keyPatterns holds, for each known field, its name followed by '"' as two
// little-endian words with masks, for knownKey.
var keyPatterns = func() (t [numFields]struct{ w0, m0, w1, m1 uint64 }) {
	for f, name := range cdrFields {
		var pat, mask [16]byte
		copy(pat[:], name+`"`)
		for i := 0; i <= len(name); i++ {
			mask[i] = 0xFF
		}
		t[f].w0, t[f].m0 = binary.LittleEndian.Uint64(pat[:8]), binary.LittleEndian.Uint64(mask[:8])
		t[f].w1, t[f].m1 = binary.LittleEndian.Uint64(pat[8:]), binary.LittleEndian.Uint64(mask[8:])
	}
	return t
}()

// keyCandidates lists the known fields by the first byte of their name.
var keyCandidates = func() (t [256][]int8) {
	for f, name := range cdrFields {
		t[name[0]] = append(t[name[0]], int8(f))
	}
	return t
}()

// knownKey matches the start of b (just after a key's opening quote)
// against the known field names followed by '"', 16 bytes at a time. It
// returns the field and its name's length, or n == 0 when there is no
// match or b is too short to tell (the caller then scans the key).
func knownKey(b []byte) (idx, n int) {
	if len(b) < 16 {
		return -1, 0
	}
	x0 := binary.LittleEndian.Uint64(b)
	x1 := binary.LittleEndian.Uint64(b[8:])
	for _, f := range keyCandidates[b[0]] {
		k := &keyPatterns[f]
		if x0&k.m0 == k.w0 && x1&k.m1 == k.w1 {
			return int(f), len(cdrFields[f])
		}
	}
	return -1, 0
}

// e164Prefix returns the length of the E.164 number ('+' and 1 to 18
// digits) at the start of b, or 0.
func e164Prefix(b []byte) int {
	if len(b) < 2 || b[0] != '+' {
		return 0
	}
	i := 1
	for i < len(b) && i <= 19 && b[i]-'0' <= 9 {
		i++
	}
	if i == 1 || i > 19 {
		return 0
	}
	return i
}

// hasLiteral reports whether b starts with lit.
func hasLiteral(b []byte, lit string) bool {
	return len(b) >= len(lit) && string(b[:len(lit)]) == lit
}

// strPlain marks the bytes that a JSON string holds as they are: ASCII
// other than '"', '\\' and control characters (other bytes need UTF-8
// validation).
var strPlain = func() (t [256]bool) {
	for i := 0x20; i < utf8.RuneSelf; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

// Bit patterns for scanning eight bytes at a time.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// plainPrefix returns the length of the run of bytes at the start of b that
// a JSON string holds as they are (see strPlain).
func plainPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (swarLo * '"')
		e := x ^ (swarLo * '\\')
		// A set high bit marks a quote, a backslash, a byte < 0x20 or a
		// byte >= 0x80; the lowest one is exact.
		t := ((q - swarLo) &^ q) | ((e - swarLo) &^ e) | ((x - swarLo*0x20) &^ x) | x
		if t &= swarHi; t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	return i
}

// str reads the string at data[at] (a '"') and returns it and the
// position after it. The result aliases p.data when the string has no
// escape, and p.arena otherwise. Invalid UTF-8 and escaped lone surrogates
// set p.badUTF8 (and read as U+FFFD).
func (p *JSONParser) str(at int) ([]byte, int, error) {
	data := p.data
	start := at + 1
	i := start
	i += plainPrefix(data[start:])
	if i < len(data) && data[i] == '"' {
		return data[start:i], i + 1, nil
	}
	mark := len(p.arena)
	p.arena = append(p.arena, data[start:i]...)
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			return p.arena[mark:], i + 1, nil
		case c == '\\':
			n, err := p.unescape(i)
			if err != nil {
				return nil, i, err
			}
			i += n
		case c < 0x20:
			return nil, i, p.syntaxErrorAt(i)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				p.badUTF8 = true
				p.arena = utf8.AppendRune(p.arena, utf8.RuneError)
			} else {
				p.arena = append(p.arena, data[i:i+size]...)
			}
			i += size
		default:
			p.arena = append(p.arena, c)
			i++
		}
	}
	return nil, i, p.syntaxErrorAt(i)
}

// unescape appends the escape at data[i] (a backslash) to the arena and
// returns its length.
func (p *JSONParser) unescape(i int) (int, error) {
	data := p.data
	if i+1 >= len(data) {
		return 0, p.syntaxErrorAt(i + 1)
	}
	var c byte
	switch data[i+1] {
	case '"', '\\', '/':
		c = data[i+1]
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := hex4(data[i+2:])
		if !ok {
			return 0, p.syntaxErrorAt(i)
		}
		n := 6
		if utf16IsSurrogate(r) {
			// A pair \uD83D\uDE00; a lone surrogate is not UTF-8.
			r2, ok2 := rune(0), false
			if r < 0xDC00 && len(data) >= i+12 && data[i+6] == '\\' && data[i+7] == 'u' {
				r2, ok2 = hex4(data[i+8:])
			}
			if ok2 && r2 >= 0xDC00 && r2 <= 0xDFFF {
				r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				n = 12
			} else {
				r = utf8.RuneError
				p.badUTF8 = true
			}
		}
		p.arena = utf8.AppendRune(p.arena, r)
		return n, nil
	default:
		return 0, p.syntaxErrorAt(i + 1)
	}
	p.arena = append(p.arena, c)
	return 2, nil
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipString returns the position after the string at data[i] (a '"'),
// validating its escapes.
func (p *JSONParser) skipString(i int) (int, error) {
	data := p.data
	i++
	for i < len(data) {
		i += plainPrefix(data[i:])
		if i >= len(data) {
			break
		}
		switch c := data[i]; {
		case c >= utf8.RuneSelf:
			i++ // skipped strings need no UTF-8 check
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(data) {
				return i, p.syntaxErrorAt(i + 1)
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(data[i+2:]); !ok {
					return i, p.syntaxErrorAt(i)
				}
				i += 6
			default:
				return i, p.syntaxErrorAt(i + 1)
			}
		default:
			return i, p.syntaxErrorAt(i)
		}
	}
	return i, p.syntaxErrorAt(i)
}

// skip returns the position after the JSON value at data[i].
func (p *JSONParser) skip(i, depth int) (int, error) {
	data := p.data
	if i >= len(data) {
		return i, p.syntaxErrorAt(i)
	}
	switch data[i] {
	case '"':
		return p.skipString(i)
	case '{', '[':
		if depth >= maxJSONDepth {
			return i, &FieldError{Field: "json", Problem: "nested deeper than " +
				strconv.Itoa(maxJSONDepth) + " levels at byte " + strconv.Itoa(i)}
		}
		return p.skipContainer(i, depth)
	case 't':
		if hasLiteral(data[i:], "true") {
			return i + 4, nil
		}
	case 'f':
		if hasLiteral(data[i:], "false") {
			return i + 5, nil
		}
	case 'n':
		if hasLiteral(data[i:], "null") {
			return i + 4, nil
		}
	default:
		if _, n := scanNumber(data[i:]); n > 0 {
			return i + n, nil
		}
	}
	return i, p.syntaxErrorAt(i)
}

// skipContainer returns the position after the object or array at
// data[i].
func (p *JSONParser) skipContainer(i, depth int) (int, error) {
	data := p.data
	isObject := data[i] == '{'
	end := byte(']')
	if isObject {
		end = '}'
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == end {
		return i + 1, nil
	}
	for {
		i = skipWS(data, i)
		var err error
		if isObject {
			if i >= len(data) || data[i] != '"' {
				return i, p.syntaxErrorAt(i)
			}
			if i, err = p.skipString(i); err != nil {
				return i, err
			}
			i = skipWS(data, i)
			if i >= len(data) || data[i] != ':' {
				return i, p.syntaxErrorAt(i)
			}
			i = skipWS(data, i+1)
		}
		if i, err = p.skip(i, depth+1); err != nil {
			return i, err
		}
		i = skipWS(data, i)
		if i < len(data) && data[i] == ',' {
			i++
			continue
		}
		if i < len(data) && data[i] == end {
			return i + 1, nil
		}
		return i, p.syntaxErrorAt(i)
	}
}

// syntaxErrorAt reports the byte at i as unexpected.
func (p *JSONParser) syntaxErrorAt(i int) error {
	if i >= len(p.data) {
		return &FieldError{Field: "json", Problem: "unexpected end of input at byte " + strconv.Itoa(len(p.data))}
	}
	return &FieldError{Field: "json", Problem: "unexpected " + quoteByte(p.data[i]) + " at byte " + strconv.Itoa(i)}
}

// quoteByte shows b in an error message: 'x' when printable ASCII, a hex
// escape otherwise.
func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return "'" + string(rune(b)) + "'"
	}
	return "byte 0x" + strconv.FormatUint(uint64(b)|0x100, 16)[1:]
}
