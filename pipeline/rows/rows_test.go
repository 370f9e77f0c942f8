package rows

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
)

func sample() *Batch {
	m := time.Date(2026, 11, 26, 10, 7, 0, 0, time.UTC)
	return &Batch{
		CallerMinutes: []detectors.CallerMinute{
			{Caller: "+15550100001", Minute: m, Calls: 12, Answered: 2, ShortCalls: 9, Rejected: 7, TalkS: 31, DistinctCallees: 12},
			{Caller: "opaque-7f3a", Minute: m.Add(time.Minute), Calls: 1},
		},
		CallerHours: []detectors.CallerPeriod{{Caller: "+15550100001", Start: m.Truncate(time.Hour), Calls: 250,
			Answered: 40, ShortCalls: 200, Rejected: 180, TalkS: 4000, DistinctCallees: 249, Version: 29614567}},
		CallerDays: []detectors.CallerPeriod{{Caller: "+15550100001", Start: m.Truncate(24 * time.Hour), Calls: 2000,
			Answered: 300, ShortCalls: 1500, Rejected: 1400, TalkS: 1<<32 - 1, DistinctCallees: 1900, Version: 29614567}},
		NetworkMinutes: []detectors.NetworkMinute{{Minute: m, Calls: 1 << 40, Answered: 5, ShortCalls: 6, Rejected: 7, TalkS: 8}},
	}
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	data := AppendEncoded(nil, 5, want)
	var got Batch
	p, err := Decode(data, &got)
	if err != nil {
		t.Fatal(err)
	}
	if p != 5 {
		t.Errorf("partition %d, want 5", p)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, *want)
	}
	if got.Aggregates() != 5 || got.Len() != 5 {
		t.Errorf("Aggregates %d Len %d, want 5 and 5", got.Aggregates(), got.Len())
	}
	// An empty batch round-trips too.
	var empty Batch
	if _, err := Decode(AppendEncoded(nil, 0, &Batch{}), &empty); err != nil || empty.Len() != 0 {
		t.Errorf("empty batch: %v, %d rows", err, empty.Len())
	}
}

func TestDecodeRejects(t *testing.T) {
	good := AppendEncoded(nil, 1, sample())
	f := func(name string, data []byte) {
		t.Helper()
		var b Batch
		if _, err := Decode(data, &b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
	}
	f("nil", nil)
	f("other magic", append([]byte{'P'}, good[1:]...))
	f("other version", append([]byte{'R', 2}, good[2:]...))
	for n := 2; n < len(good); n += 3 {
		f("truncated", good[:n])
	}
	f("trailing byte", append(append([]byte(nil), good...), 0))
	f("huge count", []byte{'R', 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendEncoded(nil, 3, sample()))
	f.Add(AppendEncoded(nil, 0, &Batch{}))
	f.Add([]byte("R\x01\x00\x01\x05hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		p, err := Decode(data, &b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes to rows that decode the same.
		var again Batch
		if p2, err := Decode(AppendEncoded(nil, p, &b), &again); err != nil || p2 != p || !reflect.DeepEqual(again, b) {
			t.Fatalf("re-encoded batch decodes to %+v (%v), want %+v", again, err, b)
		}
	})
}
