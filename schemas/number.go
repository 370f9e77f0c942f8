package schemas

// NumberPlan says how to read numbers that are not written in E.164: the
// home country code, the national trunk prefix and the international
// dialling prefixes. The zero value knows no country: only "+…" numbers and
// numbers behind an international prefix become E.164.
type NumberPlan struct {
	// CountryCode is the home country's calling code without '+' ("44").
	CountryCode string
	// NationalPrefix is the trunk prefix of national numbers ("0").
	NationalPrefix string
	// InternationalPrefixes start numbers dialled abroad ("00", "011").
	// Empty means {"00"}.
	InternationalPrefixes []string
}

var defaultIntl = []string{"00"}

// zeroPlan stands in for a nil *NumberPlan.
var zeroPlan NumberPlan

// AppendNormalized appends to dst the E.164 form of the number in s when s
// is a phone number: formatting (spaces, dashes, dots, parentheses, a
// "tel:" scheme) is removed and international and national prefixes are
// resolved by the plan. Anything that is not a phone number (letters, as in
// hashed or anonymised identifiers, or "anonymous") is appended as given.
// It reports whether s was read as a phone number. It does not allocate when
// dst has room.
func (p *NumberPlan) AppendNormalized(dst, s []byte) ([]byte, bool) {
	given := s
	if len(s) >= 4 && (s[0]|0x20) == 't' && (s[1]|0x20) == 'e' && (s[2]|0x20) == 'l' && s[3] == ':' {
		s = s[4:]
	}
	// A phone number is digits with at most one leading '+' and formatting.
	digits := 0
	plus := false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return append(dst, given...), false
		}
	}
	if digits == 0 || digits > 18 {
		return append(dst, given...), false
	}
	start := len(dst)
	for _, c := range s {
		if c >= '0' && c <= '9' {
			dst = append(dst, c)
		}
	}
	num := dst[start:]
	if p == nil {
		// A nil plan behaves as the zero value: no country, but "00…"
		// numbers are still international.
		p = &zeroPlan
	}
	if !plus {
		intl := p.InternationalPrefixes
		if len(intl) == 0 {
			intl = defaultIntl
		}
		for _, pre := range intl {
			if pre != "" && len(num) > len(pre) && string(num[:len(pre)]) == pre {
				n := copy(num, num[len(pre):])
				dst = dst[:start+n]
				return insertPlus(dst, start), true
			}
		}
		if p.CountryCode == "" {
			// No plan: a bare digit string could be national or
			// international; keep it as given (digits only).
			return dst, true
		}
		if p.NationalPrefix != "" && len(num) > len(p.NationalPrefix) && string(num[:len(p.NationalPrefix)]) == p.NationalPrefix {
			n := copy(num, num[len(p.NationalPrefix):])
			dst = dst[:start+n]
		} else if len(num) > len(p.CountryCode)+6 && string(num[:len(p.CountryCode)]) == p.CountryCode {
			// Already carries the country code, written without '+'.
			return insertPlus(dst, start), true
		}
		dst = append(dst, p.CountryCode...)
		// Rotate the country code to the front of the number.
		num = dst[start:]
		cc := len(p.CountryCode)
		rotateRight(num, cc)
	}
	return insertPlus(dst, start), true
}

// insertPlus puts '+' in front of dst[start:].
func insertPlus(dst []byte, start int) []byte {
	dst = append(dst, 0)
	copy(dst[start+1:], dst[start:len(dst)-1])
	dst[start] = '+'
	return dst
}

// rotateRight moves the last k bytes of b to its front.
func rotateRight(b []byte, k int) {
	reverse(b)
	reverse(b[:k])
	reverse(b[k:])
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// IsE164 reports whether s is a '+' followed by 1 to 18 digits, the form
// AppendNormalized produces for phone numbers.
func IsE164(s string) bool {
	if len(s) < 2 || len(s) > 19 || s[0] != '+' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
