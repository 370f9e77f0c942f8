package schemas_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchema compiles a published schema (checking it against the
// draft 2020-12 metaschema), asserting formats.
func compileSchema(t *testing.T, name string, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, v); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return sch
}

// validate validates doc; the error describes every failed keyword.
func validate(sch *jsonschema.Schema, doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%#v", err)
	}
	return nil
}

// schemaDoc is the part of a schema document the tests read.
type schemaDoc struct {
	Required   []string `json:"required"`
	Properties map[string]struct {
		Description string `json:"description"`
		Ref         string `json:"$ref"`
		Enum        []any  `json:"enum"`
	} `json:"properties"`
	Defs map[string]schemaDoc `json:"$defs"`
}

func readSchema(t *testing.T, doc []byte) schemaDoc {
	t.Helper()
	var s schemaDoc
	if err := json.Unmarshal(doc, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func keys[V any](m map[string]V) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return sorted(k)
}

// enumStrings returns the string members of an enum (null left out).
func enumStrings(enum []any) []string {
	var out []string
	for _, v := range enum {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return sorted(out)
}

// fullRecord has every canonical field, valid.
const fullRecord = `{"call_id":"c-1","caller":"+15550123456","callee":"+15559876543",` +
	`"start_time":"2026-11-02T09:15:04.123Z","answer_time":"2026-11-02T09:15:10Z","end_time":"2026-11-02T09:15:40Z",` +
	`"duration_s":30,"disposition":"answered","cause_code":16,"trunk":"tr","source_ip":"203.0.113.1",` +
	`"imsi":"234150999999999","imei":"490154203237518","cell_id":"c","attestation":"A"}`

func parse(record []byte) (schemas.CDR, error) {
	var p schemas.JSONParser
	var c schemas.CDR
	err := p.Parse(&c, record)
	return c, err
}

func TestCDRSchemaMatchesParser(t *testing.T) {
	compileSchema(t, "cdr.schema.json", schemas.CDRSchemaJSON)
	doc := readSchema(t, schemas.CDRSchemaJSON)

	// Properties: exactly the fields the parser recognises, each described.
	if got, want := keys(doc.Properties), sorted(schemas.CDRFields()); !slices.Equal(got, want) {
		t.Errorf("schema properties %v, parser fields %v", got, want)
	}
	for name, p := range doc.Properties {
		if p.Description == "" {
			t.Errorf("property %s has no description", name)
		}
	}

	// Required: exactly the fields without which Finalize rejects a record.
	var full map[string]any
	if err := json.Unmarshal([]byte(fullRecord), &full); err != nil {
		t.Fatal(err)
	}
	if _, err := parse([]byte(fullRecord)); err != nil {
		t.Fatalf("full record: %v", err)
	}
	var required []string
	for _, field := range schemas.CDRFields() {
		m := maps(full)
		delete(m, field)
		rec, _ := json.Marshal(m)
		_, err := parse(rec)
		var fe *schemas.FieldError
		if errors.As(err, &fe) && fe.Field == field && fe.Problem == "missing" {
			required = append(required, field)
		} else if err != nil {
			t.Errorf("without %s: %v", field, err)
		}
	}
	if got, want := sorted(doc.Required), sorted(required); !slices.Equal(got, want) {
		t.Errorf("schema requires %v, the decoder %v", got, want)
	}

	// Enums: the canonical names the decoder reads and AppendJSON writes.
	var dispositions []string
	for d := schemas.Answered; d <= schemas.Rejected; d++ {
		dispositions = append(dispositions, d.String())
	}
	if got, want := enumStrings(doc.Properties["disposition"].Enum), sorted(dispositions); !slices.Equal(got, want) {
		t.Errorf("disposition enum %v, want %v", got, want)
	}
	for _, name := range dispositions {
		d, ok := schemas.ParseDisposition([]byte(name))
		if !ok || d.String() != name {
			t.Errorf("ParseDisposition(%q) = %v, %v", name, d, ok)
		}
	}
	if got := enumStrings(doc.Properties["attestation"].Enum); !slices.Equal(got, []string{"A", "B", "C"}) {
		t.Errorf("attestation enum %v, want A B C", got)
	}
	for _, v := range []string{"A", "B", "C", "D", "", "AB"} {
		m := maps(full)
		m["attestation"] = v
		rec, _ := json.Marshal(m)
		c, err := parse(rec)
		accepted := err == nil && string(schemas.AppendJSON(nil, &c)) != "" && (v == "" || c.Attestation == v[0])
		if want := v == "A" || v == "B" || v == "C" || v == ""; accepted != want {
			t.Errorf("attestation %q: accepted %v, want %v (%v)", v, accepted, want, err)
		}
	}
}

// maps returns a shallow copy of m.
func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

// TestCDRSchemaTestdata checks the schema and the decoder against each
// other on the samples.
func TestCDRSchemaTestdata(t *testing.T) {
	sch := compileSchema(t, "cdr.schema.json", schemas.CDRSchemaJSON)

	// Every valid sample validates and decodes.
	for i, rec := range lines(t, "testdata/cdrs.jsonl") {
		if err := validate(sch, rec); err != nil {
			t.Errorf("cdrs.jsonl line %d: schema: %v", i+1, err)
		}
		if _, err := parse(rec); err != nil {
			t.Errorf("cdrs.jsonl line %d: decoder: %v", i+1, err)
		}
	}

	// Every malformed sample the schema rejects, the decoder rejects too;
	// every one the decoder accepts validates. (The decoder rejects more:
	// absurd times, times out of order.)
	schemaRejected := 0
	for i, rec := range lines(t, "testdata/cdrs_malformed.jsonl") {
		_, decErr := parse(rec)
		if !json.Valid(rec) {
			if decErr == nil {
				t.Errorf("cdrs_malformed.jsonl line %d: invalid JSON decoded", i+1)
			}
			continue
		}
		schemaErr := validate(sch, rec)
		if schemaErr != nil {
			schemaRejected++
			if decErr == nil {
				t.Errorf("cdrs_malformed.jsonl record %d: the schema rejects it (%v) but the decoder accepts it", i+1, schemaErr)
			}
		}
		if decErr == nil && schemaErr != nil {
			t.Errorf("cdrs_malformed.jsonl record %d: decoded but invalid: %v", i+1, schemaErr)
		}
	}
	if schemaRejected < 8 {
		t.Errorf("the schema rejected only %d malformed records", schemaRejected)
	}

	// What AppendJSON writes, from every format, validates.
	inputs := []struct{ format, path string }{
		{"jsonl", "testdata/cdrs.jsonl"}, {"csv", "testdata/cdrs.csv"},
		{"asterisk", "testdata/Master.csv"}, {"freeswitch", "testdata/freeswitch.json"},
	}
	for _, in := range inputs {
		f, err := os.Open(in.path)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := schemas.NewDecoder(in.format, f, schemas.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; ; n++ {
			var c schemas.CDR
			err := dec.Decode(&c)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", in.path, err)
			}
			if out := schemas.AppendJSON(nil, &c); validate(sch, out) != nil {
				t.Errorf("%s record %d: AppendJSON output %s does not validate: %v", in.path, n, out, validate(sch, out))
			}
		}
		f.Close()
	}
}

// jsonTags returns the JSON names of t's fields and those without
// omitempty.
func jsonTags(t reflect.Type) (all, required []string) {
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	return sorted(all), sorted(required)
}

func sampleAlert() schemas.Alert {
	start := time.Date(2026, 11, 2, 9, 10, 0, 0, time.UTC)
	return schemas.Alert{
		AlertID: "a1b2c3", Rule: "short_call_burst", Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend,
		SubjectKind: schemas.SubjectTrunk, Subject: "tr-cheapvoip-02",
		WindowStart: start, WindowEnd: start.Add(5 * time.Minute), DetectedAt: start.Add(4*time.Minute + 123*time.Millisecond),
		Score: 97.5,
		Metrics: schemas.Metrics{WindowS: 300, Calls: 1200, Answered: 60, ShortCalls: 1180, Rejected: 300, TalkS: 240,
			AnswerRatio: 0.05, ShortRatio: 0.983, MeanTalkS: 4, DistinctCallees: 1150, MaxCalleeCalls: 3,
			MaxCalleeRejected: 2, MaxSeqRun: 40, DistinctCallers: 900, CallsPerCaller: 1.33, LightCalls: 1100, LightShortRatio: 0.99},
		Reason:    "1200 calls in 5 min from 900 caller IDs, 98% short",
		CallerIDs: []string{"+15550100001", "+15550100002"},
	}
}

func TestAlertSchema(t *testing.T) {
	sch := compileSchema(t, "alert.schema.json", schemas.AlertSchemaJSON)
	doc := readSchema(t, schemas.AlertSchemaJSON)

	// Properties and required lists follow the struct tags.
	all, required := jsonTags(reflect.TypeFor[schemas.Alert]())
	if got := keys(doc.Properties); !slices.Equal(got, all) {
		t.Errorf("alert properties %v, json tags %v", got, all)
	}
	if got := sorted(doc.Required); !slices.Equal(got, required) {
		t.Errorf("alert required %v, want %v", got, required)
	}
	mAll, mRequired := jsonTags(reflect.TypeFor[schemas.Metrics]())
	metrics := doc.Defs["metrics"]
	if got := keys(metrics.Properties); !slices.Equal(got, mAll) {
		t.Errorf("metrics properties %v, json tags %v", got, mAll)
	}
	if got := sorted(metrics.Required); !slices.Equal(got, mRequired) {
		t.Errorf("metrics required %v, want %v", got, mRequired)
	}
	for name, p := range doc.Properties {
		if p.Description == "" && p.Ref == "" {
			t.Errorf("alert property %s has no description", name)
		}
	}

	// Enums match the Go names.
	var severities, kinds []string
	for s := schemas.SeverityInfo; s <= schemas.SeverityCritical; s++ {
		severities = append(severities, s.String())
	}
	for k := schemas.SubjectKind(0); k < schemas.NumSubjectKinds; k++ {
		kinds = append(kinds, k.String())
	}
	for _, e := range []struct {
		prop string
		want []string
	}{
		{"severity", severities},
		{"action", []string{string(schemas.ActionAlert), string(schemas.ActionSuspend)}},
		{"subject_kind", kinds},
	} {
		if got := enumStrings(doc.Properties[e.prop].Enum); !slices.Equal(got, sorted(e.want)) {
			t.Errorf("%s enum %v, want %v", e.prop, got, sorted(e.want))
		}
	}

	// Marshalled alerts validate; broken ones do not.
	check := func(name string, a schemas.Alert, valid bool) {
		t.Helper()
		out, err := a.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(sch, out); (err == nil) != valid {
			t.Errorf("%s: valid = %v, want %v (%v)\n%s", name, err == nil, valid, err, out)
		}
	}
	a := sampleAlert()
	check("full alert", a, true)
	for k := schemas.SubjectKind(0); k < schemas.NumSubjectKinds; k++ {
		b := sampleAlert()
		b.SubjectKind, b.Action, b.Severity, b.CallerIDs = k, schemas.ActionAlert, schemas.SeverityInfo, nil
		check("subject kind "+k.String(), b, true)
	}
	b := sampleAlert()
	b.Severity = 0
	check("zero severity", b, false)
	b = sampleAlert()
	b.Action = "page"
	check("unknown action", b, false)
	b = sampleAlert()
	b.CallerIDs = make([]string, schemas.MaxAlertCallerIDs+1)
	check("too many caller IDs", b, false)
	b = sampleAlert()
	b.Metrics.AnswerRatio = 1.5
	check("ratio above 1", b, false)
}
