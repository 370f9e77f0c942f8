package schemas

import (
	"strings"
	"testing"
)

// TestCSVTestdata checks that the CSV sample, which holds the same calls
// as the jsonl one, decodes to the same records.
func TestCSVTestdata(t *testing.T) {
	opts := DecodeOptions{Plan: ukPlan}
	got := decodeFile(t, "csv", "testdata/cdrs.csv", opts)
	want := decodeFile(t, "jsonl", "testdata/cdrs.jsonl", opts)
	if len(got) != 12 {
		t.Fatalf("got %d records, want 12", len(got))
	}
	want[11].c.CallID = "c-000133" // the jsonl sample spells it with escapes
	for i, g := range got {
		if g.err != nil {
			t.Errorf("record %d: %v", i+1, g.err)
			continue
		}
		if d := cdrDiff(g.c, want[i].c); d != "" {
			t.Errorf("record %d (%s):%s", i+1, g.c.CallID, d)
		}
	}
}

func TestCSVMalformed(t *testing.T) {
	got := decodeFile(t, "csv", "testdata/cdrs_malformed.csv", DecodeOptions{})
	checkStream(t, got, []string{"m-1", "m-3", "m-9", "m-13", "m-17"}, []wantErr{
		{3, "csv"}, {5, "caller"}, {6, "start_time"}, {7, "start_time"}, {8, "duration_s"},
		{9, "csv"}, {12, "cause_code"}, {13, "start_time"},
		{15, "trunk"}, {16, "caller"}, {17, "call_id"}, // invalid UTF-8
	})
}

func TestCSVHeader(t *testing.T) {
	f := func(in, wantErr string, wantRecords int) {
		t.Helper()
		dec, err := NewDecoder("csv", strings.NewReader(in), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var c CDR
		n := 0
		for i := 0; i < 10; i++ {
			err = dec.Decode(&c)
			if err != nil {
				break
			}
			n++
		}
		if wantErr == "" {
			if err == nil || err.Error() != "EOF" || n != wantRecords {
				t.Errorf("%q: got %d records, %v; want %d, EOF", in, n, err, wantRecords)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: got %v, want …%s…", in, err, wantErr)
		}
		if _, ok := err.(*RecordError); ok {
			t.Errorf("%q: a header error is a *RecordError", in)
		}
		if err2 := dec.Decode(&c); err2 != err {
			t.Errorf("%q: header error not sticky: %v", in, err2)
		}
	}
	f("", "", 0)
	f("\n\n", "", 0)
	f("caller,callee,start_time\n", "", 0)
	f("\xEF\xBB\xBF Caller , CALLEE,Start_Time,extra\r\n+1555,+1666,1793610904,x\r\n", "", 1)
	f("caller,start_time\n+1555,1793610904\n", "missing required columns: callee", 0)
	f("call_id,trunk\n", "missing required columns: caller, callee, start_time", 0)
	f("caller,callee,start_time,caller\n", `column "caller" appears twice`, 0)
	f(`caller,"callee,start_time`+"\n", "unterminated quoted field", 0)
}

func TestSplitCSV(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		var arena []byte
		got, problem := splitCSV(nil, &arena, []byte(in))
		if problem != "" {
			got = [][]byte{[]byte("!" + problem)}
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if strings.Join(gs, "|") != strings.Join(want, "|") || len(gs) != len(want) {
			t.Errorf("%q: got %q, want %q", in, gs, want)
		}
	}
	f("", "")
	f("a", "a")
	f("a,b,,c,", "a", "b", "", "c", "")
	f(`"a","b,c",""`, "a", "b,c", "")
	f(`"""Alice"" <1001>",x`, `"Alice" <1001>`, "x")
	f(`a"b,c`, `a"b`, "c")
	f(`"a"b,c`, "!unexpected 'b' after quoted field at byte 3")
	f(`a,"b`, "!unterminated quoted field at byte 2")
}
