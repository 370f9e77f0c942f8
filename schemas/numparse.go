package schemas

import "math"

// decimal is a number read exactly from its decimal text:
// value = ±mant × 10^exp. Digits past the 19th significant one are dropped,
// which no CDR field can notice.
type decimal struct {
	mant uint64
	exp  int
	neg  bool
}

// scanNumber reads the JSON number at the start of b. It returns the
// number and the length of its text; n is 0 when b does not start with a
// valid JSON number (the byte at b[n] after a valid one is not checked).
func scanNumber(b []byte) (d decimal, n int) {
	i := 0
	if i < len(b) && b[i] == '-' {
		d.neg = true
		i++
	}
	if i >= len(b) {
		return d, 0
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			d.addDigit(b[i], false)
			i++
		}
	default:
		return d, 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			d.addDigit(b[i], true)
			i++
		}
		if i == start {
			return d, 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return d, 0
		}
		if eneg {
			e = -e
		}
		d.exp += e
	}
	return d, i
}

// addDigit appends one decimal digit, before or after the decimal point.
func (d *decimal) addDigit(c byte, fraction bool) {
	if d.mant > (math.MaxUint64-9)/10 {
		// Out of precision: an integer digit still scales the value.
		if !fraction {
			d.exp++
		}
		return
	}
	d.mant = d.mant*10 + uint64(c-'0')
	if fraction {
		d.exp--
	}
}

// parseDecimal reads b, which must be exactly one JSON number.
func parseDecimal(b []byte) (decimal, bool) {
	d, n := scanNumber(b)
	return d, n > 0 && n == len(b)
}

var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// round returns the value × 10^scale rounded half away from zero. ok is
// false when the result does not fit in an int64.
func (d decimal) round(scale int) (v int64, ok bool) {
	m := d.mant
	if m == 0 {
		return 0, true
	}
	e := d.exp + scale
	switch {
	case e >= 0:
		for ; e > 0; e-- {
			if m > math.MaxUint64/10 {
				return 0, false
			}
			m *= 10
		}
	case e < -19:
		return 0, true
	default:
		p := pow10[-e]
		q, r := m/p, m%p
		if r >= p-r {
			q++
		}
		m = q
	}
	if m > math.MaxInt64 {
		return 0, false
	}
	if d.neg {
		return -int64(m), true
	}
	return int64(m), true
}

// isInteger reports whether the value has no fractional part.
func (d decimal) isInteger() bool {
	if d.exp >= 0 || d.mant == 0 {
		return true
	}
	if d.exp < -19 {
		return false
	}
	return d.mant%pow10[-d.exp] == 0
}

// epochMS converts a Unix time given as a number to Unix milliseconds:
// values of 1e11 or more are milliseconds, smaller ones seconds (fractions
// allowed). ok is false when it does not fit in an int64.
func (d decimal) epochMS() (int64, bool) {
	v, ok := d.round(0)
	if !ok {
		return 0, false
	}
	if v >= 1e11 {
		return v, true
	}
	return d.round(3)
}

// durationS converts a talk time in seconds to whole seconds, saturating at
// the int32 range (Finalize then rejects it as too long or negative).
func (d decimal) durationS() int32 {
	v, ok := d.round(0)
	switch {
	case !ok && d.neg, v < math.MinInt32:
		return math.MinInt32
	case !ok, v > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(v)
}

// causeCode converts a Q.850 cause; ok is false unless it is an integer in
// 0..127.
func (d decimal) causeCode() (uint16, bool) {
	if !d.isInteger() {
		return 0, false
	}
	v, ok := d.round(0)
	if !ok || v < 0 || v > MaxCauseCode {
		return 0, false
	}
	return uint16(v), true
}
