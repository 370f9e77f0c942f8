package schemas

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestJSONParseFields(t *testing.T) {
	f := func(name, in string, plan *NumberPlan, want CDR) {
		t.Helper()
		p := JSONParser{Plan: plan}
		var c CDR
		if err := p.Parse(&c, []byte(in)); err != nil {
			t.Errorf("%s: Parse: %v", name, err)
			return
		}
		if d := cdrDiff(c, want); d != "" {
			t.Errorf("%s:%s", name, d)
		}
	}
	start := ms("2026-11-02T09:15:04.123Z")
	f("robocall", `{"call_id":"c-000123","caller":"+15550123456","callee":"+15559876543","start_time":"2026-11-02T09:15:04.123Z","end_time":"2026-11-02T09:15:09.456Z","duration_s":0,"disposition":"no_answer","cause_code":19,"trunk":"tr-acme-01","attestation":"B"}`,
		nil, CDR{CallID: "c-000123", Caller: "+15550123456", Callee: "+15559876543", StartMS: start,
			EndMS: ms("2026-11-02T09:15:09.456Z"), Disposition: NoAnswer, CauseCode: 19, Trunk: "tr-acme-01", Attestation: 'B'})
	f("whitespace and order", " \t\r\n{ \"start_time\" : 1793610904.123 ,\n \"callee\" : \"+15559876543\" , \"caller\":\"+15550123456\" }\n ",
		nil, CDR{Caller: "+15550123456", Callee: "+15559876543", StartMS: start, Disposition: NoAnswer})
	f("epoch ms", `{"caller":"+1555","callee":"+1666","start_time":1793610904123}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("epoch exponent", `{"caller":"+1555","callee":"+1666","start_time":1.793610904123e9}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("answered derives duration", `{"caller":"+1555","callee":"+1666","start_time":"2026-11-02T09:15:04.123Z","answer_time":"2026-11-02T09:15:10Z","end_time":"2026-11-02T09:15:40.600Z"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, AnswerMS: ms("2026-11-02T09:15:10Z"),
			EndMS: ms("2026-11-02T09:15:40.600Z"), DurationS: 31, Disposition: Answered})
	f("duration rounds", `{"caller":"+1555","callee":"+1666","start_time":1793610904.123,"duration_s":12.5,"disposition":"answered"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, DurationS: 13, Disposition: Answered})
	f("duration on unanswered is 0", `{"caller":"+1555","callee":"+1666","start_time":1793610904.123,"duration_s":25,"disposition":"busy"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: Busy})
	f("disposition from cause", `{"caller":"+1555","callee":"+1666","start_time":1793610904.123,"cause_code":21}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, CauseCode: 21, Disposition: Rejected})
	f("asterisk spelling", `{"caller":"+1555","callee":"+1666","start_time":1793610904.123,"disposition":"NO ANSWER"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("national numbers", `{"caller":"020 7946 0018","callee":"(07700) 900-123","start_time":1793610904.123}`,
		ukPlan, CDR{Caller: "+442079460018", Callee: "+447700900123", StartMS: start, Disposition: NoAnswer})
	f("international prefix, nil plan", `{"caller":"0044 20 7946 0018","callee":"5559876543","start_time":1793610904.123}`,
		nil, CDR{Caller: "+442079460018", Callee: "5559876543", StartMS: start, Disposition: NoAnswer})
	f("opaque caller kept", `{"caller":"9f86d081884c7d659a2feaa0c55ad015","callee":"anonymous","start_time":1793610904.123}`,
		ukPlan, CDR{Caller: "9f86d081884c7d659a2feaa0c55ad015", Callee: "anonymous", StartMS: start, Disposition: NoAnswer})
	f("escapes", `{"call_id":"\"q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00x","caller":"\u002b1555","callee":"+1666","start_time":"2026-11-02T09:15:04.123Z","trunk":"a\u0000b"}`,
		nil, CDR{CallID: "\"q\"\\/\b\f\n\r\té😀x", Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer, Trunk: "a\x00b"})
	f("invalid UTF-8 in skipped values and unknown keys", `{"x\ud800":"\udc00ÿ","caller":"+1555","callee":"+1666","start_time":1793610904.123,"y":["\ud800"]}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("escaped keys", `{"\u0063aller":"+1555","call\u0065e":"+1666","start_time":1793610904.123}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("unknown fields skipped", `{"x":{"a":[1,-2.5e3,{"b":null,"c":[true,false,"}]\"{"]}],"d":{}},"caller":"+1555","y":[],"callee":"+1666","z":"\u1234","start_time":1793610904.123}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("null is absent", `{"caller":"+1555","callee":"+1666","start_time":1793610904.123,"answer_time":null,"duration_s":null,"disposition":null,"cause_code":null,"trunk":null,"attestation":null,"imsi":null}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer})
	f("duplicate keys: last wins", `{"caller":"+1999","caller":"+1555","callee":"+1666","start_time":1,"start_time":1793610904.123,"duration_s":30,"duration_s":null,"attestation":"a"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, Disposition: NoAnswer, Attestation: 'A'})
	f("offsets and long fractions", `{"caller":"+1555","callee":"+1666","start_time":"2026-11-02T14:45:04.123999999+05:30","end_time":"2026-11-02t04:15:05-05:00"}`,
		nil, CDR{Caller: "+1555", Callee: "+1666", StartMS: start, EndMS: ms("2026-11-02T09:15:05Z"), Disposition: NoAnswer})
	f("mobile", `{"caller":"+447700900123","callee":"+447700900456","start_time":1793610904.123,"imsi":"234150999999999","imei":"490154203237518","cell_id":"234-15-1234-5678","source_ip":"2001:db8::1"}`,
		nil, CDR{Caller: "+447700900123", Callee: "+447700900456", StartMS: start, Disposition: NoAnswer,
			IMSI: "234150999999999", IMEI: "490154203237518", CellID: "234-15-1234-5678", SourceIP: "2001:db8::1"})
}

func TestJSONParseErrors(t *testing.T) {
	const ok = `"caller":"+1555","callee":"+1666","start_time":"2026-11-02T09:15:04Z"`
	f := func(in, field, problem string) {
		t.Helper()
		var p JSONParser
		var c CDR
		err := p.Parse(&c, []byte(in))
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a *FieldError", in, err)
			return
		}
		if fe.Field != field || !strings.Contains(fe.Problem, problem) {
			t.Errorf("%s: got %q, want field %s: …%s…", in, err, field, problem)
		}
	}
	f(``, "json", "unexpected end of input at byte 0")
	f(`[]`, "json", "unexpected '[' at byte 0")
	f(`{`+ok+`,}`, "json", "unexpected '}' at byte 71")
	f(`{`+ok, "json", "unexpected end of input")
	f(`{`+ok+`} {}`, "json", "unexpected '{' after the object at byte 72")
	f(`{`+ok+`,"x":tru}`, "json", "unexpected 't'")
	f(`{`+ok+`,"x":01}`, "json", "unexpected '1'")
	f(`{`+ok+`,"x":"\q"}`, "json", "unexpected 'q'")
	f(`{`+ok+`,"x":"\u12"}`, "json", "unexpected '\\'")
	f(`{`+ok+`,"x":"a`+"\n"+`"}`, "json", "unexpected byte 0x0a")
	f(`{`+ok+`,"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, "json", "nested deeper than 64")
	f(`{`+ok+`,"trunk":"a`, "json", "unexpected end of input")
	f(`{"callee":"+1666","start_time":"2026-11-02T09:15:04Z"}`, "caller", "missing")
	f(`{"caller":"","callee":"+1666","start_time":"2026-11-02T09:15:04Z"}`, "caller", "missing")
	f(`{"caller":"+1555","start_time":"2026-11-02T09:15:04Z"}`, "callee", "missing")
	f(`{"caller":"+1555","callee":"+1666"}`, "start_time", "missing")
	f(`{"caller":15550100001,"callee":"+1666","start_time":1793610904}`, "caller", "not a string")
	f(`{"caller":["+1555"],"callee":"+1666","start_time":1793610904}`, "caller", "not a string")
	f(`{`+ok+`,"trunk":true}`, "trunk", "not a string")
	f(`{"caller":"+1555","callee":"+1666","start_time":"2026-11-31T09:15:04Z"}`, "start_time", "not an RFC 3339")
	f(`{"caller":"+1555","callee":"+1666","start_time":"2026-11-02T09:15:04"}`, "start_time", "not an RFC 3339")
	f(`{"caller":"+1555","callee":"+1666","start_time":"9999-12-31T23:59:59Z"}`, "start_time", "outside")
	f(`{"caller":"+1555","callee":"+1666","start_time":"0000-01-01T00:00:00Z"}`, "start_time", "outside")
	f(`{"caller":"+1555","callee":"+1666","start_time":-1793610904}`, "start_time", "outside")
	f(`{"caller":"+1555","callee":"+1666","start_time":1e300}`, "start_time", "out of range")
	f(`{"caller":"+1555","callee":"+1666","start_time":{}}`, "start_time", "not a string or number")
	f(`{`+ok+`,"answer_time":"2026-11-02T09:15:00Z"}`, "answer_time", "before start_time")
	f(`{`+ok+`,"end_time":"2026-11-05T09:15:00Z"}`, "end_time", "more than 2 days")
	f(`{`+ok+`,"answer_time":"2026-11-02T09:15:10Z","end_time":"2026-11-02T09:15:09Z"}`, "end_time", "before answer_time")
	f(`{`+ok+`,"duration_s":-5,"disposition":"answered"}`, "duration_s", "negative")
	f(`{`+ok+`,"duration_s":1e12}`, "duration_s", "longer than 2 days")
	f(`{`+ok+`,"duration_s":"5"}`, "duration_s", "not a number")
	f(`{`+ok+`,"disposition":"hung_up"}`, "disposition", "not answered")
	f(`{`+ok+`,"disposition":3}`, "disposition", "not a string")
	f(`{`+ok+`,"cause_code":128}`, "cause_code", "0..127")
	f(`{`+ok+`,"cause_code":16.5}`, "cause_code", "0..127")
	f(`{`+ok+`,"cause_code":-1}`, "cause_code", "0..127")
	f(`{`+ok+`,"attestation":"D"}`, "attestation", "not A, B or C")
	f(`{`+ok+`,"attestation":"AB"}`, "attestation", "not A, B or C")
	f(`{`+ok+`,"imsi":"`+strings.Repeat("1", 129)+`"}`, "imsi", "longer than 128")
	f(`{`+ok+`,"trunk":"a`+"\xff"+`b"}`, "trunk", "invalid UTF-8")
	f(`{`+ok+`,"trunk":"a\u00e9`+"\xc3"+`"}`, "trunk", "invalid UTF-8")
	f(`{`+ok+`,"source_ip":"`+"\xed\xa0\x80"+`"}`, "source_ip", "invalid UTF-8") // an encoded surrogate
	f(`{`+ok+`,"call_id":"\ud800"}`, "call_id", "invalid UTF-8")
	f(`{`+ok+`,"call_id":"\udc00\ud800"}`, "call_id", "invalid UTF-8")
	f(`{`+ok+`,"call_id":"\ud83dx"}`, "call_id", "invalid UTF-8")
	f(`{`+ok+`,"call_id":"\ud83d\u0041"}`, "call_id", "invalid UTF-8")
	f(`{"caller":"+1555`+"\xff"+`","callee":"+1666","start_time":"2026-11-02T09:15:04Z"}`, "caller", "invalid UTF-8")
	f(`{"caller":"+1555","callee":"\ud800+1666","start_time":"2026-11-02T09:15:04Z"}`, "callee", "invalid UTF-8")
	f(`{`+ok+`,"disposition":"`+"\xff"+`"}`, "disposition", "invalid UTF-8")
}

// TestJSONLTestdata checks what a fraud analyst looks at in the sample
// file, record by record.
func TestJSONLTestdata(t *testing.T) {
	got := decodeFile(t, "jsonl", "testdata/cdrs.jsonl", DecodeOptions{Plan: ukPlan})
	want := []CDR{
		{CallID: "c-000123", Caller: "+15550123456", Callee: "+15559876543", StartMS: ms("2026-11-02T09:15:04.123Z"), EndMS: ms("2026-11-02T09:15:09.456Z"), Disposition: NoAnswer, CauseCode: 19, Trunk: "tr-acme-01", Attestation: 'B'},
		{CallID: "c-000124", Caller: "+15550123456", Callee: "+15559876544", StartMS: ms("2026-11-02T09:15:06.020Z"), AnswerMS: ms("2026-11-02T09:15:10.500Z"), EndMS: ms("2026-11-02T09:15:12.900Z"), DurationS: 2, Disposition: Answered, CauseCode: 16, Trunk: "tr-acme-01", SourceIP: "203.0.113.17", Attestation: 'B'},
		{CallID: "c-000125", Caller: "+447700900123", Callee: "+447700900456", StartMS: ms("2026-11-02T09:16:00Z"), AnswerMS: ms("2026-11-02T09:16:07Z"), EndMS: ms("2026-11-02T09:19:41Z"), DurationS: 214, Disposition: Answered, CauseCode: 16, IMSI: "234150999999999", IMEI: "490154203237518", CellID: "234-15-1234-5678"},
		{CallID: "c-000126", Caller: "+15550123456", Callee: "+15559876545", StartMS: ms("2026-11-02T09:15:08.300Z"), EndMS: ms("2026-11-02T09:15:08.900Z"), Disposition: Busy, CauseCode: 17, Trunk: "tr-acme-01", Attestation: 'B'},
		{CallID: "c-000127", Caller: "+15550177777", Callee: "+15559876546", StartMS: ms("2026-11-02T09:15:09Z"), EndMS: ms("2026-11-02T09:15:15Z"), Disposition: Rejected, CauseCode: 21, Trunk: "tr-cheapvoip-02", SourceIP: "198.51.100.23", Attestation: 'C'},
		{CallID: "c-000128", Caller: "+15550177777", Callee: "+15559876547", StartMS: ms("2026-11-02T09:15:10Z"), EndMS: ms("2026-11-02T09:15:10.250Z"), Disposition: Failed, CauseCode: 34, Trunk: "tr-cheapvoip-02", SourceIP: "198.51.100.23", Attestation: 'C'},
		{CallID: "c-000119", Caller: "+15550123456", Callee: "+15559876540", StartMS: ms("2026-11-02T09:14:58.001Z"), EndMS: ms("2026-11-02T09:15:01Z"), Disposition: NoAnswer, CauseCode: 19, Trunk: "tr-acme-01", Attestation: 'B'},
		{CallID: "c-000129", Caller: "+442079460018", Callee: "+447700900789", StartMS: ms("2026-11-02T09:17:30Z"), AnswerMS: ms("2026-11-02T09:17:35Z"), EndMS: ms("2026-11-02T09:18:05Z"), DurationS: 30, Disposition: Answered, Trunk: "bt-ic-3"},
		{CallID: "c-000130", Caller: "9f86d081884c7d659a2feaa0c55ad015", Callee: "+33123456789", StartMS: ms("2026-11-02T09:16:00Z"), EndMS: ms("2026-11-02T09:16:03.750Z"), Disposition: NoAnswer, Trunk: "tr-acme-01", Attestation: 'A'},
		{CallID: "c-000131", Caller: "+15550123499", Callee: "+15559876548", StartMS: ms("2026-11-02T09:16:01.500Z"), AnswerMS: ms("2026-11-02T09:16:05Z"), EndMS: ms("2026-11-02T09:17:05.499Z"), DurationS: 60, Disposition: Answered, CauseCode: 16},
		{CallID: "c-000132", Caller: "+15550123456", Callee: "+15559876549", StartMS: ms("2026-11-02T09:15:11.123Z"), EndMS: ms("2026-11-02T09:15:14.500Z"), Disposition: NoAnswer, Trunk: "tr-acme-01", Attestation: 'B'},
		{CallID: "c-00133", Caller: "anonymous", Callee: "+15559876550", StartMS: ms("2026-11-02T09:15:12Z"), EndMS: ms("2026-11-02T09:15:13Z"), Disposition: NoAnswer, CauseCode: 31, Trunk: "tr/acme/01"},
		{Caller: "+15550123456", Callee: "+15559876551", StartMS: ms("2026-11-02T09:15:13Z"), AnswerMS: ms("2026-11-02T09:15:20Z"), EndMS: ms("2026-11-02T09:15:21.600Z"), DurationS: 2, Disposition: Answered, Trunk: "tr-acme-01"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g.err != nil {
			t.Errorf("record %d: %v", i+1, g.err)
			continue
		}
		if d := cdrDiff(g.c, want[i]); d != "" {
			t.Errorf("record %d (%s):%s", i+1, want[i].CallID, d)
		}
	}
}

func TestJSONLMalformed(t *testing.T) {
	got := decodeFile(t, "jsonl", "testdata/cdrs_malformed.jsonl", DecodeOptions{})
	checkStream(t, got, []string{"m-1", "m-3", "m-10", "m-19", "m-22"}, []wantErr{
		{2, "json"}, {4, "caller"}, {5, "start_time"}, {6, "start_time"}, {7, "start_time"},
		{8, "duration_s"}, {11, "disposition"}, {12, "end_time"}, {13, "cause_code"}, {14, "caller"},
		{15, "start_time"}, {16, "attestation"}, {17, "json"}, {18, "start_time"},
		{20, "trunk"}, {21, "call_id"}, {23, "imei"}, {24, "caller"}, // invalid UTF-8
	})
	// Offsets point at the start of the bad line.
	data, err := os.ReadFile("testdata/cdrs_malformed.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		if d.err != nil && !bytes.HasPrefix(data[d.err.Offset:], []byte(`{"call_id":"m-`+strconv.FormatInt(d.err.Line, 10))) {
			t.Errorf("line %d: offset %d does not point at the line", d.err.Line, d.err.Offset)
		}
	}
}

func TestJSONLLines(t *testing.T) {
	rec := `{"caller":"+1555","callee":"+1666","start_time":1793610904}`
	f := func(name, in string, max int, wantIDs int, wantErrs []wantErr) {
		t.Helper()
		got := decodeAll(t, "jsonl", strings.NewReader(in), DecodeOptions{MaxRecordBytes: max})
		var n int
		var errs []wantErr
		for _, d := range got {
			if d.err != nil {
				var fe *FieldError
				errors.As(d.err, &fe)
				errs = append(errs, wantErr{d.err.Line, fe.Field})
			} else {
				n++
			}
		}
		if n != wantIDs || len(errs) != len(wantErrs) {
			t.Errorf("%s: got %d records, errors %v; want %d, %v", name, n, errs, wantIDs, wantErrs)
			return
		}
		for i := range errs {
			if errs[i] != wantErrs[i] {
				t.Errorf("%s: error %d: got %v, want %v", name, i, errs[i], wantErrs[i])
			}
		}
	}
	f("empty", "", 0, 0, nil)
	f("blank lines", "\n \n\t\r\n", 0, 0, nil)
	f("no final newline", rec+"\n"+rec, 0, 2, nil)
	f("CRLF", rec+"\r\n"+rec+"\r\n", 0, 2, nil)
	f("BOM", "\xEF\xBB\xBF"+rec+"\n"+rec+"\n", 0, 2, nil)
	f("too long", rec+"\n"+`{"x":"`+strings.Repeat("a", 200)+`"}`+"\n"+rec+"\n", 100, 2, []wantErr{{2, "json"}})
	f("too long at the end", rec+"\n"+strings.Repeat("a", 200), 100, 1, []wantErr{{2, "json"}})
	f("longer than bufio's buffer", rec+"\n"+`{"x":"`+strings.Repeat("a", 200000)+`",`+rec[1:]+"\n"+rec+"\n", 0, 3, nil)
	f("much too long", rec+"\n"+strings.Repeat("a", 3<<20)+"\n"+rec, 0, 2, []wantErr{{2, "json"}})
}

// TestJSONLReadError checks that a failing reader is not a RecordError.
func TestJSONLReadError(t *testing.T) {
	boom := errors.New("boom")
	dec, err := NewDecoder("jsonl", io.MultiReader(strings.NewReader(`{"caller":"+1555","callee":"+1666","start_time":1793610904}`+"\n"), &failReader{boom}), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c CDR
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("first record: %v", err)
	}
	err = dec.Decode(&c)
	var re *RecordError
	if !errors.Is(err, boom) || errors.As(err, &re) {
		t.Fatalf("got %v, want the read error", err)
	}
	if err2 := dec.Decode(&c); !errors.Is(err2, boom) {
		t.Fatalf("the read error is not sticky: %v", err2)
	}
}

type failReader struct{ err error }

func (r *failReader) Read([]byte) (int, error) { return 0, r.err }

func TestJSONParseZeroAllocs(t *testing.T) {
	recs := benchRecords()
	var p JSONParser
	var c CDR
	for _, r := range recs { // warm the arena
		if err := p.Parse(&c, r); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Parse(&c, recs[i%len(recs)]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("JSONParser.Parse: %v allocations per record, want 0", allocs)
	}

	dec, err := NewDecoder("jsonl", &loopReader{data: benchStream(1000)}, DecodeOptions{Plan: ukPlan})
	if err != nil {
		t.Fatal(err)
	}
	allocs = testing.AllocsPerRun(5000, func() {
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("jsonl Decoder: %v allocations per record, want 0", allocs)
	}
}

func TestNewDecoderErrors(t *testing.T) {
	_, err := NewDecoder("xml", strings.NewReader(""), DecodeOptions{})
	if err == nil || !strings.Contains(err.Error(), `"xml"`) || !strings.Contains(err.Error(), "jsonl, csv, asterisk, freeswitch") {
		t.Errorf("unknown format: got %v", err)
	}
	if _, err := NewDecoder("jsonl", nil, DecodeOptions{}); err == nil {
		t.Error("nil reader: no error")
	}
	if _, err := NewDecoder("jsonl", strings.NewReader(""), DecodeOptions{MaxRecordBytes: -1}); err == nil {
		t.Error("negative MaxRecordBytes: no error")
	}
	for _, f := range Formats {
		if _, err := NewDecoder(strings.ToUpper(f), strings.NewReader(""), DecodeOptions{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
