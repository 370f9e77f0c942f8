package schemas_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileHookSchema compiles the hook body schema with the alert schema it
// refers to.
func compileHookSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, s := range []struct {
		url string
		doc []byte
	}{
		{"https://github.com/cdrguard/cdrguard/schemas/alert.schema.json", schemas.AlertSchemaJSON},
		{"https://github.com/cdrguard/cdrguard/schemas/hook.schema.json", schemas.HookSchemaJSON},
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(s.doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(s.url, v); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("https://github.com/cdrguard/cdrguard/schemas/hook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestHookSchema(t *testing.T) {
	sch := compileHookSchema(t)
	doc := readSchema(t, schemas.HookSchemaJSON)
	all, required := jsonTags(reflect.TypeFor[schemas.HookBody]())
	if got := keys(doc.Properties); !slices.Equal(got, all) {
		t.Errorf("hook properties %v, json tags %v", got, all)
	}
	if got := sorted(doc.Required); !slices.Equal(got, required) {
		t.Errorf("hook required %v, want %v", got, required)
	}
	if got, want := enumStrings(doc.Properties["type"].Enum), sorted([]string{string(schemas.HookSuspend), string(schemas.HookRelease)}); !slices.Equal(got, want) {
		t.Errorf("type enum %v, want %v", got, want)
	}

	a := sampleAlert()
	alertJSON, err := a.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Date(2026, 11, 3, 9, 15, 0, 0, time.UTC)
	check := func(name string, b schemas.HookBody, valid bool) {
		t.Helper()
		out, err := b.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(sch, out); (err == nil) != valid {
			t.Errorf("%s: valid = %v, want %v (%v)\n%s", name, err == nil, valid, err, out)
		}
	}
	suspend := schemas.HookBody{Type: schemas.HookSuspend, Subject: a.Subject, SubjectKind: a.SubjectKind, Alert: alertJSON}
	check("suspend", suspend, true)
	s := suspend
	s.ExpiresAt = &expires
	check("suspend with expiry", s, true)
	release := schemas.HookBody{Type: schemas.HookRelease, Subject: a.Subject, SubjectKind: a.SubjectKind, Alert: alertJSON, Reason: "customer called, verified"}
	check("release", release, true)

	s = release
	s.ExpiresAt = &expires
	check("release with expiry", s, false)
	s = suspend
	s.Reason = "x"
	check("suspend with reason", s, false)
	s = suspend
	s.Type = "number.block"
	check("unknown type", s, false)
	s = suspend
	s.Subject = ""
	check("empty subject", s, false)
	s = suspend
	s.Alert = json.RawMessage(strings.Replace(string(alertJSON), `"suspend"`, `"page"`, 1))
	check("invalid alert", s, false)
}

func TestParseAlertJSONRoundTrip(t *testing.T) {
	want := sampleAlert()
	out, err := want.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got schemas.Alert
	if err := schemas.ParseAlertJSON(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	again, _ := got.AppendJSON(nil)
	if !bytes.Equal(again, out) {
		t.Errorf("re-encoded alert differs:\n%s\n%s", again, out)
	}

	f := func(name, doc, wantErr string) {
		t.Helper()
		var a schemas.Alert
		err := schemas.ParseAlertJSON([]byte(doc), &a)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want one containing %q", name, err, wantErr)
		}
	}
	f("not json", `{`, "cannot decode alert")
	f("unknown field", strings.Replace(string(out), `"rule"`, `"rulez"`, 1), "unknown field")
	f("no id", strings.Replace(string(out), `"alert_id":"a1b2c3"`, `"alert_id":""`, 1), "no alert_id")
	f("bad severity", strings.Replace(string(out), `"critical"`, `"fatal"`, 1), "severity")
	f("bad action", strings.Replace(string(out), `"suspend"`, `"page"`, 1), "action")
	f("trailing", string(out)+`{}`, "data after")
}
