package schemas

import (
	"bytes"
	"strconv"
	"time"
)

// splitCSV splits one CSV line into fields, appending them to fields[:0].
// Quoting follows RFC 4180 except that a quoted field cannot span lines:
// CDR fields never hold a newline, and this way one stray quote cannot
// swallow the records after it. A quote inside an unquoted field is kept
// as it is. Fields alias line, or *arena when they had doubled quotes. On
// a malformed line it returns a non-empty problem.
func splitCSV(fields [][]byte, arena *[]byte, line []byte) (out [][]byte, problem string) {
	fields = fields[:0]
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			open := i
			i++
			start, doubled := i, false
			for {
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					return fields, "unterminated quoted field at byte " + strconv.Itoa(open)
				}
				i += j + 1
				if i < len(line) && line[i] == '"' {
					doubled = true
					i++
					continue
				}
				break
			}
			f := line[start : i-1]
			if doubled {
				mark := len(*arena)
				for k := 0; k < len(f); k++ {
					*arena = append(*arena, f[k])
					if f[k] == '"' {
						k++ // skip the second quote of the pair
					}
				}
				f = (*arena)[mark:]
			}
			fields = append(fields, f)
			if i == len(line) {
				return fields, ""
			}
			if line[i] != ',' {
				return fields, "unexpected " + quoteByte(line[i]) + " after quoted field at byte " + strconv.Itoa(i)
			}
			i++
			continue
		}
		j := bytes.IndexByte(line[i:], ',')
		if j < 0 {
			return append(fields, line[i:]), ""
		}
		fields = append(fields, line[i:i+j])
		i += j + 1
	}
}

// requiredFields are the fields Finalize insists on.
var requiredFields = [...]int{fCaller, fCallee, fStartTime}

// setTextField sets field idx of c from its text v (CSV): spaces around
// the value are trimmed and an empty value means absent. Times are dates
// (zoneless ones in loc) or Unix epochs; numbers are decimal.
func setTextField(c *CDR, idx int, v []byte, plan *NumberPlan, loc *time.Location, arena *[]byte) error {
	v = trimSpace(v)
	if len(v) == 0 {
		return nil
	}
	switch idx {
	case fCaller:
		c.Caller = normalizeNumber(plan, arena, v)
	case fCallee:
		c.Callee = normalizeNumber(plan, arena, v)
	case fStartTime, fAnswerTime, fEndTime:
		ms, ok := parseTextTime(v, loc)
		if !ok {
			return &FieldError{Field: cdrFields[idx], Problem: "not a date-time or Unix epoch"}
		}
		setTime(c, idx, ms)
	case fDurationS:
		d, ok := parseDecimal(v)
		if !ok {
			return &FieldError{Field: "duration_s", Problem: "not a number"}
		}
		c.SetDuration(d.durationS())
	case fDisposition:
		d, ok := ParseDisposition(v)
		if !ok {
			return &FieldError{Field: "disposition", Problem: "not answered, no_answer, busy, failed or rejected"}
		}
		c.Disposition = d
	case fCauseCode:
		d, ok := parseDecimal(v)
		cc, ok2 := d.causeCode()
		if !ok || !ok2 {
			return &FieldError{Field: "cause_code", Problem: "not an integer 0..127"}
		}
		c.CauseCode = cc
	case fAttestation:
		a, ok := parseAttestation(v)
		if !ok {
			return &FieldError{Field: "attestation", Problem: "not A, B or C"}
		}
		c.Attestation = a
	default:
		*stringField(c, idx) = b2s(v)
	}
	return nil
}
