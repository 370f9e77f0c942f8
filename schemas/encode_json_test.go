package schemas

import (
	"encoding/json"
	"io"
	"os"
	"testing"
)

func TestAppendJSON(t *testing.T) {
	f := func(c CDR, want string) {
		t.Helper()
		if got := string(AppendJSON([]byte("x"), &c)); got != "x"+want {
			t.Errorf("got  %s\nwant %s", got[1:], want)
		}
	}
	f(CDR{}, `{}`)
	full := CDR{CallID: "c-1", Caller: "+15550123456", Callee: "+15559876543", StartMS: 1793610904123,
		AnswerMS: 1793610905000, EndMS: 1793610909456, Disposition: Answered, Attestation: 'A', CauseCode: 16,
		Trunk: "tr", SourceIP: "203.0.113.1", IMSI: "234150999999999", IMEI: "490154203237518", CellID: "c"}
	full.SetDuration(4)
	f(full, `{"call_id":"c-1","caller":"+15550123456","callee":"+15559876543","start_time":"2026-11-02T09:15:04.123Z",`+
		`"answer_time":"2026-11-02T09:15:05.000Z","end_time":"2026-11-02T09:15:09.456Z","duration_s":4,"disposition":"answered",`+
		`"cause_code":16,"trunk":"tr","source_ip":"203.0.113.1","imsi":"234150999999999","imei":"490154203237518","cell_id":"c","attestation":"A"}`)
	unanswered := CDR{Caller: "a", Callee: "b", StartMS: 1793610904123}
	unanswered.SetDuration(0)
	f(unanswered, `{"caller":"a","callee":"b","start_time":"2026-11-02T09:15:04.123Z","duration_s":0}`)
	f(CDR{CallID: "q\"b\\s/\n\r\t\b\f\x00\x1f\x7fé😀\xff\xc3", StartMS: 253402300800000},
		`{"call_id":"q\"b\\s/\n\r\t\b\f\u0000\u001f`+"\x7fé😀"+`\ufffd\ufffd","start_time":253402300800000}`)
}

// TestAppendJSONStdlib checks AppendJSON's escaping against encoding/json.
func TestAppendJSONStdlib(t *testing.T) {
	for _, s := range []string{"plain", "q\"b\\s", "\x00\x01\x1f\n", "é😀", "\xff", "a\xe2\x80\xa8b", "<&>"} {
		c := CDR{CallID: s}
		out := AppendJSON(nil, &c)
		if !json.Valid(out) {
			t.Errorf("%q: invalid JSON %s", s, out)
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(s)
		var ws string
		_ = json.Unmarshal(want, &ws)
		if m["call_id"] != ws {
			t.Errorf("%q: encoding/json reads %q, want %q", s, m["call_id"], ws)
		}
	}
}

// TestRoundTrip encodes every good testdata record of every format and
// parses it back: the same CDR must come out, and encoding again must give
// the same bytes.
func TestRoundTrip(t *testing.T) {
	inputs := []struct {
		format, path string
		opts         DecodeOptions
	}{
		{"jsonl", "testdata/cdrs.jsonl", DecodeOptions{Plan: ukPlan}},
		{"jsonl", "testdata/cdrs_malformed.jsonl", DecodeOptions{}},
		{"csv", "testdata/cdrs.csv", DecodeOptions{Plan: ukPlan}},
		{"asterisk", "testdata/Master.csv", DecodeOptions{Plan: usPlan}},
		{"freeswitch", "testdata/freeswitch.json", DecodeOptions{Plan: usPlan}},
	}
	n := 0
	for _, in := range inputs {
		for _, d := range decodeFile(t, in.format, in.path, in.opts) {
			if d.err != nil {
				continue
			}
			checkRoundTrip(t, &d.c, in.opts.Plan)
			n++
		}
	}
	if n < 40 {
		t.Errorf("only %d records round-tripped", n)
	}
}

// checkRoundTrip checks that c, a decoded record, survives AppendJSON and
// JSONParser.Parse unchanged.
func checkRoundTrip(t testing.TB, c *CDR, plan *NumberPlan) {
	t.Helper()
	enc := AppendJSON(nil, c)
	p := JSONParser{Plan: plan}
	var back CDR
	if err := p.Parse(&back, enc); err != nil {
		t.Fatalf("%s: parse back: %v", enc, err)
	}
	if back != *c {
		t.Fatalf("round trip changed the record:\n%+v\n%+v\nvia %s", *c, back, enc)
	}
	if enc2 := AppendJSON(nil, &back); string(enc2) != string(enc) {
		t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
	}
}

func TestAppendJSONZeroAllocs(t *testing.T) {
	f, err := os.Open("testdata/cdrs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := decodeAll(t, "jsonl", io.Reader(f), DecodeOptions{})
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range recs {
			buf = AppendJSON(buf[:0], &recs[i].c)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendJSON: %v allocations, want 0", allocs)
	}
}
