package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"
)

// checkInvariants fails unless c satisfies what Finalize guarantees.
func checkInvariants(t testing.TB, c *CDR) {
	t.Helper()
	switch {
	case c.Caller == "" || c.Callee == "":
		t.Fatalf("empty caller or callee: %+v", c)
	case c.StartMS < MinStartMS || c.StartMS >= MaxStartMS:
		t.Fatalf("start out of bounds: %+v", c)
	case c.AnswerMS != 0 && (c.AnswerMS < c.StartMS || c.AnswerMS-c.StartMS > MaxCallMS):
		t.Fatalf("answer out of bounds: %+v", c)
	case c.EndMS != 0 && (c.EndMS < c.StartMS || c.EndMS-c.StartMS > MaxCallMS):
		t.Fatalf("end out of bounds: %+v", c)
	case c.Disposition == DispositionUnknown || c.Disposition > Rejected:
		t.Fatalf("disposition not set: %+v", c)
	case !c.HasDuration() || c.DurationS < 0 || int64(c.DurationS)*1000 > MaxCallMS:
		t.Fatalf("bad duration: %+v", c)
	case c.Disposition != Answered && c.DurationS != 0:
		t.Fatalf("talk time on an unanswered call: %+v", c)
	case c.Attestation != 0 && c.Attestation != 'A' && c.Attestation != 'B' && c.Attestation != 'C':
		t.Fatalf("bad attestation: %+v", c)
	case int(c.CauseCode) > MaxCauseCode:
		t.Fatalf("bad cause code: %+v", c)
	}
	for _, s := range []string{c.CallID, c.Caller, c.Callee, c.Trunk, c.SourceIP, c.IMSI, c.IMEI, c.CellID} {
		if len(s) > MaxFieldLen {
			t.Fatalf("field longer than %d bytes: %+v", MaxFieldLen, c)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("field %q is not valid UTF-8: %+v", s, c)
		}
	}
}

// checkRecordError fails unless err is a *RecordError wrapping a
// *FieldError, located inside an input of n bytes.
func checkRecordError(t testing.TB, err error, n int) *RecordError {
	t.Helper()
	var re *RecordError
	var fe *FieldError
	if !errors.As(err, &re) || !errors.As(re.Err, &fe) {
		t.Fatalf("error %T %v is not a *RecordError wrapping a *FieldError", err, err)
	}
	if re.Offset < 0 || re.Offset > int64(n) || re.Line < 1 {
		t.Fatalf("%v: location out of the input (%d bytes)", re, n)
	}
	return re
}

// fuzzDecoder runs a decoder over data to the end, checking every result.
// headerErr allows a first error that is not a *RecordError (CSV header).
func fuzzDecoder(t *testing.T, format string, data []byte, opts DecodeOptions, headerErr bool) {
	dec, err := NewDecoder(format, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	var c CDR
	lastLine := int64(0)
	for i := 0; ; i++ {
		if i > len(data)+2 {
			t.Fatalf("more results than input bytes")
		}
		err := dec.Decode(&c)
		if err == io.EOF {
			return
		}
		if err == nil {
			checkInvariants(t, &c)
			checkRoundTrip(t, &c, opts.Plan)
			continue
		}
		var re *RecordError
		if !errors.As(err, &re) {
			if headerErr && i == 0 {
				if err2 := dec.Decode(&c); err2 != err {
					t.Fatalf("header error not sticky: %v then %v", err, err2)
				}
				return
			}
			t.Fatalf("unexpected error %T: %v", err, err)
		}
		re = checkRecordError(t, err, len(data))
		if re.Line <= lastLine {
			t.Fatalf("record numbers do not increase: %d after %d", re.Line, lastLine)
		}
		lastLine = re.Line
	}
}

// addFileSeeds adds each testdata file whole and line by line.
func addFileSeeds(f *testing.F, paths ...string) {
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f.Add(append([]byte(nil), sc.Bytes()...))
		}
	}
}

func FuzzJSONParse(f *testing.F) {
	addFileSeeds(f, "testdata/cdrs.jsonl", "testdata/cdrs_malformed.jsonl")
	f.Add([]byte(`{"caller":"\ud83d\ude00","callee":"+1","start_time":1e9,"x":[{"a":[]}]}`))
	f.Add([]byte(`{"caller":"+1","callee":"+2","start_time":1e9,"trunk":"\ud800","imei":"` + "\xff\xc3" + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := JSONParser{Plan: ukPlan}
		var c CDR
		err := p.Parse(&c, data)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			return
		}
		checkInvariants(t, &c)
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON")
		}
		// Strings kept as given must read as encoding/json reads them
		// (escapes, surrogate pairs); invalid UTF-8 and lone surrogates,
		// which encoding/json reads as U+FFFD, are rejected.
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		for name, got := range map[string]string{"call_id": c.CallID, "trunk": c.Trunk,
			"source_ip": c.SourceIP, "imsi": c.IMSI, "imei": c.IMEI, "cell_id": c.CellID} {
			if want, ok := m[name].(string); ok && got != want {
				t.Fatalf("%s: got %q, encoding/json reads %q", name, got, want)
			}
		}
		c = c.Clone()
		checkRoundTrip(t, &c, ukPlan)
	})
}

func FuzzJSONLines(f *testing.F) {
	addFileSeeds(f, "testdata/cdrs.jsonl", "testdata/cdrs_malformed.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		// A small limit exercises the long-line path.
		fuzzDecoder(t, "jsonl", data, DecodeOptions{Plan: ukPlan, MaxRecordBytes: 256}, false)
	})
}

func FuzzCSV(f *testing.F) {
	addFileSeeds(f, "testdata/cdrs.csv", "testdata/cdrs_malformed.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecoder(t, "csv", data, DecodeOptions{Plan: ukPlan, MaxRecordBytes: 512}, true)
	})
}

func FuzzAsterisk(f *testing.F) {
	addFileSeeds(f, "testdata/Master.csv", "testdata/Master_malformed.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecoder(t, "asterisk", data, DecodeOptions{Plan: usPlan, MaxRecordBytes: 512}, false)
	})
}

func FuzzFreeSWITCH(f *testing.F) {
	addFileSeeds(f, "testdata/freeswitch.json", "testdata/freeswitch_malformed.json")
	f.Add([]byte(`{"variables":{"caller_id_number":"%2B1555","destination_number":"1","start_epoch":"1793610904"}}{"a":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDecoder(t, "freeswitch", data, DecodeOptions{Plan: usPlan, MaxRecordBytes: 4096}, false)
	})
}

// FuzzRoundTrip builds a CDR from arbitrary field values; when it passes
// Finalize, AppendJSON then Parse must give it back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add("c-1", "+15550123456", "+15559876543", int64(1793610904123), int64(5000), int64(9000), int32(4), uint8(1), byte('A'), uint16(16), "tr", "203.0.113.1", true)
	f.Add("é\"\\\n\x00", "anonymous", "9f86d0", int64(MinStartMS), int64(0), int64(1), int32(-1), uint8(0), byte(0), uint16(0), "", "", false)
	f.Fuzz(func(t *testing.T, callID, caller, callee string, start, answerOff, endOff int64, dur int32,
		disp uint8, att byte, cause uint16, trunk, ip string, setDur bool) {
		c := CDR{CallID: callID, StartMS: start, Disposition: Disposition(disp % 6), Attestation: att,
			CauseCode: cause % (MaxCauseCode + 1), Trunk: trunk, SourceIP: ip}
		// Numbers as the decoders leave them: already normalised.
		var arena []byte
		c.Caller = normalizeNumber(nil, &arena, []byte(caller))
		c.Callee = normalizeNumber(nil, &arena, []byte(callee))
		if answerOff != 0 {
			c.AnswerMS = start + answerOff
		}
		if endOff != 0 {
			c.EndMS = start + endOff
		}
		if setDur {
			c.SetDuration(dur)
		}
		if c.Finalize() != nil {
			return
		}
		for _, s := range []string{c.CallID, c.Caller, c.Callee, c.Trunk, c.SourceIP} {
			if !utf8.ValidString(s) {
				return // AppendJSON writes invalid UTF-8 as U+FFFD
			}
		}
		checkRoundTrip(t, &c, nil)
	})
}

// rfc3339Shape is the strict RFC 3339 date-time syntax.
var rfc3339Shape = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// FuzzParseDateTime compares the RFC 3339 parser with time.Parse: where
// both read a time they agree, and what time.Parse reads in the strict
// RFC 3339 form (upper-case 'T', '.' fractions) the parser reads too.
func FuzzParseDateTime(f *testing.F) {
	for _, s := range []string{"2026-11-02T09:15:04.123Z", "2026-11-02T14:45:04.123456+05:30",
		"2000-02-29T23:59:59-23:59", "9999-12-31T23:59:59.999999999Z", "0000-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseDateTime([]byte(s), false, nil)
		want, err := time.Parse(time.RFC3339Nano, s)
		strict := rfc3339Shape.MatchString(s) // time.Parse also takes one-digit hours, ',' …
		switch {
		case ok && err == nil && got != want.UnixMilli():
			t.Fatalf("%q: got %d, time.Parse %d", s, got, want.UnixMilli())
		case !ok && err == nil && strict:
			t.Fatalf("%q: rejected, time.Parse reads %v", s, want)
		case ok && err != nil && strict:
			t.Fatalf("%q: read %d, time.Parse rejects it: %v", s, got, err)
		}
	})
}
