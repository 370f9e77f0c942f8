package schemas

import "time"

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400 // [0, 399]
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// num2 reads two decimal digits; -1 if they are not digits.
func num2(b []byte) int64 {
	h, l := b[0]-'0', b[1]-'0'
	if h > 9 || l > 9 {
		return -1
	}
	return int64(h)*10 + int64(l)
}

// parseDateTime reads "YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)" (RFC 3339;
// 't', 'z' and a space instead of 'T' accepted) into Unix milliseconds,
// truncating the fraction like time.Time.UnixMilli. When zoneless is true
// the zone may be left out and the wall-clock time is then read in loc
// (nil = UTC). It does not allocate.
func parseDateTime(b []byte, zoneless bool, loc *time.Location) (int64, bool) {
	ms, n, ok := parseDateTimePrefix(b, zoneless, loc)
	return ms, ok && n == len(b)
}

// parseDateTimePrefix is parseDateTime for a date-time at the start of b,
// with n the length of its text.
func parseDateTimePrefix(b []byte, zoneless bool, loc *time.Location) (ms int64, n int, ok bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, 0, false
	}
	switch b[10] {
	case 'T', 't', ' ':
	default:
		return 0, 0, false
	}
	yh, yl := num2(b[0:2]), num2(b[2:4])
	mon, day := num2(b[5:7]), num2(b[8:10])
	hour, min, sec := num2(b[11:13]), num2(b[14:16]), num2(b[17:19])
	if yh < 0 || yl < 0 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 ||
		min < 0 || min > 59 || sec < 0 || sec > 59 {
		return 0, 0, false
	}
	year := yh*100 + yl
	if day > daysIn(year, mon) {
		return 0, 0, false
	}
	i := 19
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start < 3 {
				ms = ms*10 + int64(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return 0, 0, false
		}
		for ; n < 3; n++ {
			ms *= 10
		}
	}
	var offset int64
	switch {
	case i < len(b) && (b[i] == 'Z' || b[i] == 'z'):
		i++
	case i+6 <= len(b) && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, om := num2(b[i+1:i+3]), num2(b[i+4:i+6])
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return 0, 0, false
		}
		offset = oh*3600 + om*60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	case !zoneless:
		return 0, 0, false
	case loc != nil && loc != time.UTC:
		t := time.Date(int(year), time.Month(mon), int(day), int(hour), int(min), int(sec), int(ms)*1e6, loc)
		return t.UnixMilli(), i, true
	}
	secs := daysFromCivil(year, mon, day)*86400 + hour*3600 + min*60 + sec - offset
	return secs*1000 + ms, i, true
}

// appendRFC3339MS appends ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". ok is false
// for years outside 0000..9999, which RFC 3339 cannot write.
func appendRFC3339MS(dst []byte, ms int64) ([]byte, bool) {
	secs, frac := ms/1000, ms%1000
	if frac < 0 {
		secs--
		frac += 1000
	}
	days, sod := secs/86400, secs%86400
	if sod < 0 {
		days--
		sod += 86400
	}
	y, m, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		return dst, false
	}
	dst = append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+sod/36000), byte('0'+sod/3600%10), ':',
		byte('0'+sod%3600/600), byte('0'+sod%3600/60%10), ':',
		byte('0'+sod%60/10), byte('0'+sod%10), '.',
		byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10), 'Z')
	return dst, true
}

// parseTextTime reads a time given as text (CSV, Asterisk): empty means
// absent (0); a decimal number is a Unix epoch (seconds, or milliseconds
// from 1e11 on); anything else must be a date-time, whose zone may be left
// out for a wall-clock time in loc.
func parseTextTime(b []byte, loc *time.Location) (int64, bool) {
	b = trimSpace(b)
	if len(b) == 0 {
		return 0, true
	}
	if d, ok := parseDecimal(b); ok {
		return d.epochMS()
	}
	return parseDateTime(b, true, loc)
}
