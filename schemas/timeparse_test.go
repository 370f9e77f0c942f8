package schemas

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseDateTime(t *testing.T) {
	f := func(in string, want string) {
		t.Helper()
		got, ok := parseDateTime([]byte(in), false, nil)
		switch {
		case want == "" && ok:
			t.Errorf("%q: got %d, want an error", in, got)
		case want != "" && !ok:
			t.Errorf("%q: error, want %s", in, want)
		case want != "" && got != ms(want):
			t.Errorf("%q: got %s, want %s", in, time.UnixMilli(got).UTC().Format(time.RFC3339Nano), want)
		}
	}
	f("2026-11-02T09:15:04Z", "2026-11-02T09:15:04Z")
	f("2026-11-02T09:15:04.1Z", "2026-11-02T09:15:04.1Z")
	f("2026-11-02T09:15:04.123Z", "2026-11-02T09:15:04.123Z")
	f("2026-11-02T09:15:04.123999999999Z", "2026-11-02T09:15:04.123Z") // truncated
	f("2026-11-02t09:15:04z", "2026-11-02T09:15:04Z")
	f("2026-11-02 09:15:04Z", "2026-11-02T09:15:04Z")
	f("2026-11-02T14:45:04+05:30", "2026-11-02T09:15:04Z")
	f("2026-11-01T23:15:04-10:00", "2026-11-02T09:15:04Z")
	f("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z")
	f("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z")
	f("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z")
	f("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z")
	f("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z")
	f("2026-11-02T23:59:59-23:59", "2026-11-03T23:58:59Z")
	for _, bad := range []string{
		"", "2026-11-02", "2026-11-02T09:15:04", "2026-11-02T09:15:04.Z", "2026-11-02T09:15Z",
		"2026-13-02T09:15:04Z", "2026-00-02T09:15:04Z", "2026-11-31T09:15:04Z", "2026-02-29T09:15:04Z",
		"1900-02-29T00:00:00Z", "2026-11-00T09:15:04Z", "2026-11-02T24:00:00Z", "2026-11-02T09:60:04Z",
		"2026-11-02T09:15:60Z", "2026-11-02T09:15:04+24:00", "2026-11-02T09:15:04+05:60",
		"2026-11-02T09:15:04+0530", "2026-11-02T09:15:04 Z", "2026-11-02T09:15:04ZZ", "2026-11-02X09:15:04Z",
		"2026/11/02T09:15:04Z", "+026-11-02T09:15:04Z", "2026-1a-02T09:15:04Z", "2026-11-02T09:15:04.12a",
	} {
		f(bad, "")
	}
}

// TestParseDateTimeMatchesTime compares with time.Parse on random times,
// fractions and offsets.
func TestParseDateTimeMatchesTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	layouts := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05.000000Z07:00"}
	for i := 0; i < 100000; i++ {
		sec := rng.Int64N(253402300800) // 0000..9999
		ns := rng.Int64N(1e9)
		zone := time.FixedZone("", (rng.IntN(47)-23)*3600+rng.IntN(4)*15*60)
		tm := time.Unix(sec-62135596800, ns).In(zone)
		if tm.Year() < 0 || tm.Year() > 9999 {
			continue
		}
		s := tm.Format(layouts[i%len(layouts)])
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseDateTime([]byte(s), false, nil)
		if !ok || got != want.UnixMilli() {
			t.Fatalf("%s: got %d %v, want %d", s, got, ok, want.UnixMilli())
		}
	}
}

func TestParseDateTimeLocation(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	f := func(in string, loc *time.Location, want string) {
		t.Helper()
		got, ok := parseTextTime([]byte(in), loc)
		if !ok || got != ms(want) {
			t.Errorf("%q in %v: got %s %v, want %s", in, loc, time.UnixMilli(got).UTC(), ok, want)
		}
	}
	f("2026-07-01 12:00:00", ny, "2026-07-01T16:00:00Z") // EDT
	f("2026-11-02 04:15:04", ny, "2026-11-02T09:15:04Z") // EST
	f("2026-11-02 04:15:04", nil, "2026-11-02T04:15:04Z")
	f("2026-11-02 04:15:04.5", time.UTC, "2026-11-02T04:15:04.5Z")
	f("2026-11-02T04:15:04Z", ny, "2026-11-02T04:15:04Z") // an explicit zone wins
	f("1793610904", ny, "2026-11-02T09:15:04Z")
	f("1793610904123", ny, "2026-11-02T09:15:04.123Z")
	f(" 1793610904.5 ", ny, "2026-11-02T09:15:04.5Z")
}

func TestCivilDays(t *testing.T) {
	for d := int64(-800000); d < 3000000; d += 7 {
		y, m, dd := civilFromDays(d)
		if back := daysFromCivil(y, m, dd); back != d {
			t.Fatalf("day %d -> %d-%d-%d -> %d", d, y, m, dd, back)
		}
		if d%997 == 0 {
			tm := time.Unix(d*86400, 0).UTC()
			if int64(tm.Year()) != y || int64(tm.Month()) != m || int64(tm.Day()) != dd {
				t.Fatalf("day %d: got %d-%d-%d, time says %v", d, y, m, dd, tm)
			}
		}
	}
}

func TestAppendRFC3339MS(t *testing.T) {
	f := func(ms int64, want string, wantOK bool) {
		t.Helper()
		got, ok := appendRFC3339MS(nil, ms)
		if string(got) != want || ok != wantOK {
			t.Errorf("%d: got %q %v, want %q %v", ms, got, ok, want, wantOK)
		}
	}
	f(1793610904123, "2026-11-02T09:15:04.123Z", true)
	f(0, "1970-01-01T00:00:00.000Z", true)
	f(-1, "1969-12-31T23:59:59.999Z", true)
	f(253402300799999, "9999-12-31T23:59:59.999Z", true)
	f(253402300800000, "", false)
	f(-62167219200001, "", false)
	f(math.MinInt64, "", false)
	f(math.MaxInt64, "", false)
}

func TestDecimal(t *testing.T) {
	f := func(in string, wantEpoch int64, wantDur int32) {
		t.Helper()
		d, ok := parseDecimal([]byte(in))
		if !ok {
			t.Errorf("%q: not a number", in)
			return
		}
		if e, ok := d.epochMS(); !ok || e != wantEpoch {
			t.Errorf("%q: epochMS %d %v, want %d", in, e, ok, wantEpoch)
		}
		if got := d.durationS(); got != wantDur {
			t.Errorf("%q: durationS %d, want %d", in, got, wantDur)
		}
	}
	f("0", 0, 0)
	f("-0", 0, 0)
	f("12", 12000, 12)
	f("12.5", 12500, 13)
	f("12.4999", 12500, 12)
	f("-2.5", -2500, -3)
	f("1793610904", 1793610904000, 1793610904)
	f("1793610904.1235", 1793610904124, 1793610904)
	f("1793610904123", 1793610904123, math.MaxInt32)
	f("1.793610904123E12", 1793610904123, math.MaxInt32)
	f("17936109041230000e-4", 1793610904123, math.MaxInt32)
	f("99999999999", 99999999999000, math.MaxInt32)
	f("100000000000", 100000000000, math.MaxInt32)
	f("0.0000000000000000000000001", 0, 0)
	f("123456789012345678901234567890e-20", 1234567890123, 1234567890)
	for _, bad := range []string{"", "-", "+1", "01", "1.", ".5", "1e", "1e+", "0x10", "1 ", "NaN", "--1"} {
		if _, ok := parseDecimal([]byte(bad)); ok {
			t.Errorf("%q: read as a number", bad)
		}
	}
	for _, in := range []string{"1e300", "-1e300", "9223372036854775808"} {
		d, _ := parseDecimal([]byte(in))
		if _, ok := d.epochMS(); ok {
			t.Errorf("%q: epochMS did not overflow", in)
		}
	}
	cause := func(in string, want uint16, wantOK bool) {
		t.Helper()
		d, _ := parseDecimal([]byte(in))
		if got, ok := d.causeCode(); got != want || ok != wantOK {
			t.Errorf("cause %q: got %d %v, want %d %v", in, got, ok, want, wantOK)
		}
	}
	cause("16", 16, true)
	cause("1.6e1", 16, true)
	cause("127", 127, true)
	cause("0", 0, true)
	cause("128", 0, false)
	cause("-1", 0, false)
	cause("16.5", 0, false)
	cause("1e-30", 0, false)
}
