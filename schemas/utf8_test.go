package schemas

import (
	"errors"
	"testing"
)

// TestInvalidUTF8IsNamed checks that every decoder rejects the testdata
// records with invalid UTF-8 with a *FieldError saying so, which replay
// counts and the dead-letter topic labels by.
func TestInvalidUTF8IsNamed(t *testing.T) {
	for _, tc := range []struct {
		format, path string
		want         int
	}{
		{"jsonl", "testdata/cdrs_malformed.jsonl", 4},
		{"csv", "testdata/cdrs_malformed.csv", 3},
		{"asterisk", "testdata/Master_malformed.csv", 3},
		{"freeswitch", "testdata/freeswitch_malformed.json", 3},
	} {
		t.Run(tc.format, func(t *testing.T) {
			n := 0
			for _, d := range decodeFile(t, tc.format, tc.path, DecodeOptions{}) {
				var fe *FieldError
				if d.err != nil && errors.As(d.err, &fe) && fe.Problem == "invalid UTF-8" {
					if want := "field " + fe.Field + ": invalid UTF-8"; fe.Error() != want {
						t.Errorf("line %d: %q, want %q", d.err.Line, fe.Error(), want)
					}
					n++
				}
			}
			if n != tc.want {
				t.Errorf("%d records rejected as invalid UTF-8, want %d", n, tc.want)
			}
		})
	}
}

// TestFinalizeRejectsInvalidUTF8 covers records built in code, not
// decoded: Finalize checks every string field.
func TestFinalizeRejectsInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		field string
		set   func(c *CDR)
	}{
		{"caller", func(c *CDR) { c.Caller = "+1555\xff" }},
		{"callee", func(c *CDR) { c.Callee = "\xc3" }},
		{"call_id", func(c *CDR) { c.CallID = "id-\xed\xa0\x80" }},
		{"trunk", func(c *CDR) { c.Trunk = "\x80" }},
		{"source_ip", func(c *CDR) { c.SourceIP = "\xfe" }},
		{"imsi", func(c *CDR) { c.IMSI = "\xf0\x9f" }},
		{"imei", func(c *CDR) { c.IMEI = "\xff" }},
		{"cell_id", func(c *CDR) { c.CellID = "z\xfcrich" }},
	} {
		c := CDR{Caller: "+1555", Callee: "+1666", StartMS: ms("2026-11-02T09:15:04Z"), CellID: "zürich"}
		if err := c.Finalize(); err != nil {
			t.Fatalf("valid record: %v", err)
		}
		tc.set(&c)
		var fe *FieldError
		if err := c.Finalize(); !errors.As(err, &fe) || fe.Field != tc.field || fe.Problem != "invalid UTF-8" {
			t.Errorf("%s: got %v, want field %s: invalid UTF-8", tc.field, err, tc.field)
		}
	}
}
