package schemas

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends c as one canonical JSON object (no newline) to dst and
// returns the extended buffer. Fields come in CDRFields order; empty
// optional fields (empty strings, zero times, unknown disposition, cause 0,
// no attestation) are left out, while duration_s is written whenever it is
// set or non-zero. Times are RFC 3339 UTC with milliseconds
// ("2026-11-02T09:15:04.123Z"); a time whose year RFC 3339 cannot write is
// written as a number of Unix milliseconds. Strings are escaped as JSON
// needs, invalid UTF-8 becoming U+FFFD. It does not allocate when dst has
// room.
func AppendJSON(dst []byte, c *CDR) []byte {
	dst = append(dst, '{')
	first := true
	key := func(idx int) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, cdrFields[idx]...)
		dst = append(dst, '"', ':')
	}
	str := func(idx int, s string) {
		if s != "" {
			key(idx)
			dst = appendJSONString(dst, s)
		}
	}
	tm := func(idx int, ms int64) {
		if ms != 0 {
			key(idx)
			dst = appendJSONTime(dst, ms)
		}
	}
	str(fCallID, c.CallID)
	str(fCaller, c.Caller)
	str(fCallee, c.Callee)
	tm(fStartTime, c.StartMS)
	tm(fAnswerTime, c.AnswerMS)
	tm(fEndTime, c.EndMS)
	if c.durationSet || c.DurationS != 0 {
		key(fDurationS)
		dst = strconv.AppendInt(dst, int64(c.DurationS), 10)
	}
	if c.Disposition != DispositionUnknown && int(c.Disposition) < len(dispositionNames) {
		key(fDisposition)
		dst = append(dst, '"')
		dst = append(dst, dispositionNames[c.Disposition]...)
		dst = append(dst, '"')
	}
	if c.CauseCode != 0 {
		key(fCauseCode)
		dst = strconv.AppendUint(dst, uint64(c.CauseCode), 10)
	}
	str(fTrunk, c.Trunk)
	str(fSourceIP, c.SourceIP)
	str(fIMSI, c.IMSI)
	str(fIMEI, c.IMEI)
	str(fCellID, c.CellID)
	if c.Attestation != 0 {
		key(fAttestation)
		a := [1]byte{c.Attestation}
		dst = appendJSONString(dst, b2s(a[:]))
	}
	return append(dst, '}')
}

func appendJSONTime(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	if out, ok := appendRFC3339MS(dst, ms); ok {
		return append(out, '"')
	}
	return strconv.AppendInt(dst[:len(dst)-1], ms, 10)
}

// jsonSafe marks the bytes written into a JSON string as they are.
var jsonSafe = func() (t [256]bool) {
	for i := 0x20; i < utf8.RuneSelf; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size // valid UTF-8 goes as it is
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
