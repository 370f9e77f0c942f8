package schemas

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Plans used by the tests.
var (
	ukPlan = &NumberPlan{CountryCode: "44", NationalPrefix: "0"}
	usPlan = &NumberPlan{CountryCode: "1", NationalPrefix: "1", InternationalPrefixes: []string{"011"}}
)

// decoded is one Decode result: a record (cloned) or a *RecordError.
type decoded struct {
	c   CDR
	err *RecordError
}

// decodeAll decodes r to the end. Any error other than a *RecordError or
// io.EOF fails the test.
func decodeAll(t testing.TB, format string, r io.Reader, opts DecodeOptions) []decoded {
	t.Helper()
	dec, err := NewDecoder(format, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []decoded
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("decoder does not reach EOF")
		}
		var c CDR
		err := dec.Decode(&c)
		if err == io.EOF {
			return out
		}
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("Decode: unexpected error %T %v", err, err)
		}
		if err != nil {
			out = append(out, decoded{err: re})
			continue
		}
		out = append(out, decoded{c: c.Clone()})
	}
}

func decodeFile(t testing.TB, format, path string, opts DecodeOptions) []decoded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return decodeAll(t, format, f, opts)
}

// ms returns the Unix ms of an RFC 3339 time, for expectations.
func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// cdrDiff describes how got differs from want in exported fields, or "".
func cdrDiff(got, want CDR) string {
	var b strings.Builder
	diff := func(name string, g, w any) {
		if g != w {
			b.WriteString(" " + name + ": got " + fmtAny(g) + ", want " + fmtAny(w) + ";")
		}
	}
	diff("call_id", got.CallID, want.CallID)
	diff("caller", got.Caller, want.Caller)
	diff("callee", got.Callee, want.Callee)
	diff("start", time.UnixMilli(got.StartMS).UTC(), time.UnixMilli(want.StartMS).UTC())
	diff("answer", got.AnswerMS, want.AnswerMS)
	diff("end", got.EndMS, want.EndMS)
	diff("duration_s", got.DurationS, want.DurationS)
	diff("disposition", got.Disposition, want.Disposition)
	diff("cause_code", got.CauseCode, want.CauseCode)
	diff("trunk", got.Trunk, want.Trunk)
	diff("source_ip", got.SourceIP, want.SourceIP)
	diff("imsi", got.IMSI, want.IMSI)
	diff("imei", got.IMEI, want.IMEI)
	diff("cell_id", got.CellID, want.CellID)
	diff("attestation", string(rune(got.Attestation)), string(rune(want.Attestation)))
	return b.String()
}

func fmtAny(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// wantErr is an expected *RecordError: its line and the field its
// *FieldError names.
type wantErr struct {
	line  int64
	field string
}

// checkStream checks a decoded stream: good records by call_id (in
// order), errors by line and field.
func checkStream(t *testing.T, got []decoded, wantIDs []string, wantErrs []wantErr) {
	t.Helper()
	var ids []string
	var errs []wantErr
	for _, d := range got {
		if d.err == nil {
			ids = append(ids, d.c.CallID)
			continue
		}
		var fe *FieldError
		if !errors.As(d.err, &fe) {
			t.Errorf("line %d: error %v is not a *FieldError", d.err.Line, d.err)
			continue
		}
		if !strings.Contains(d.err.Error(), fe.Field) {
			t.Errorf("error message %q does not name field %q", d.err.Error(), fe.Field)
		}
		errs = append(errs, wantErr{d.err.Line, fe.Field})
		t.Logf("%v", d.err)
	}
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("good records: got %v, want %v", ids, wantIDs)
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors: got %v, want %v", errs, wantErrs)
	}
	for i := range errs {
		if errs[i] != wantErrs[i] {
			t.Errorf("error %d: got line %d field %q, want line %d field %q",
				i, errs[i].line, errs[i].field, wantErrs[i].line, wantErrs[i].field)
		}
	}
}
