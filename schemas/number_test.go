package schemas

import "testing"

func TestAppendNormalized(t *testing.T) {
	f := func(plan *NumberPlan, in, want string, wantNumber bool) {
		t.Helper()
		got, ok := plan.AppendNormalized([]byte("x"), []byte(in))
		if string(got) != "x"+want || ok != wantNumber {
			t.Errorf("%+v %q: got %q %v, want %q %v", plan, in, got[1:], ok, want, wantNumber)
		}
	}
	f(nil, "+1 (555) 012-3456", "+15550123456", true)
	f(nil, "tel:+1-555-012-3456", "+15550123456", true)
	f(nil, "0044 20 7946 0018", "+442079460018", true) // a nil plan still knows "00"
	f(&NumberPlan{}, "0044 20 7946 0018", "+442079460018", true)
	f(nil, "020 7946 0018", "02079460018", true)
	f(nil, "anonymous", "anonymous", false)
	f(nil, "tel:anonymous", "tel:anonymous", false) // kept as given, scheme and all
	f(nil, "9f86d081884c7d65", "9f86d081884c7d65", false)
	f(nil, "", "", false)
	f(nil, "1234567890123456789", "1234567890123456789", false) // 19 digits: not a number
	f(ukPlan, "020 7946 0018", "+442079460018", true)
	f(ukPlan, "447911123456", "+447911123456", true)
	f(ukPlan, "7911123456", "+447911123456", true)
	f(usPlan, "1 (555) 012-3456", "+15550123456", true)
	f(usPlan, "5550123456", "+15550123456", true)
	f(usPlan, "011 44 20 7946 0018", "+442079460018", true)
	f(&NumberPlan{CountryCode: "44", InternationalPrefixes: []string{""}}, "2079460018", "+442079460018", true) // an empty prefix matches nothing
}

func TestNormalizeNumberIdempotent(t *testing.T) {
	for _, plan := range []*NumberPlan{nil, ukPlan, usPlan} {
		for _, in := range []string{"+15550123456", "020 7946 0018", "0044 20 7946 0018", "anonymous", "tel:x",
			"5550123456", "1 555 012 3456", "011 44 20", "0", "00", "000000000000000000", "9f86d0"} {
			var arena []byte
			once := normalizeNumber(plan, &arena, []byte(in))
			var arena2 []byte
			if twice := normalizeNumber(plan, &arena2, []byte(once)); twice != once {
				t.Errorf("%+v %q: %q then %q", plan, in, once, twice)
			}
		}
	}
}
