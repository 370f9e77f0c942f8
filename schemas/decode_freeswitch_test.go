package schemas

import (
	"errors"
	"strings"
	"testing"
)

func TestFreeSWITCHTestdata(t *testing.T) {
	got := decodeFile(t, "freeswitch", "testdata/freeswitch.json", DecodeOptions{Plan: usPlan})
	id := func(n string) string { return "7f4de4bc-0a7e-4b5c-9a51-0000000000" + n }
	want := []CDR{
		// ORIGINATOR_CANCEL: the robocaller hung up while it rang.
		{CallID: id("01"), Caller: "+15550100001", Callee: "+18005550199", StartMS: ms("2026-11-02T09:15:04Z"), EndMS: ms("2026-11-02T09:15:09Z"), Disposition: NoAnswer, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		// Microsecond epochs, truncated to the millisecond.
		{CallID: id("02"), Caller: "+15550100001", Callee: "+18005550123", StartMS: ms("2026-11-02T09:15:06.123Z"), AnswerMS: ms("2026-11-02T09:15:09.654Z"), EndMS: ms("2026-11-02T09:15:11.999Z"), DurationS: 2, Disposition: Answered, CauseCode: 16, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		// Not URL-encoded; callflow as an object.
		{CallID: id("03"), Caller: "+15550133333", Callee: "+15550144444", StartMS: ms("2026-11-02T09:16:00Z"), AnswerMS: ms("2026-11-02T09:16:07Z"), EndMS: ms("2026-11-02T09:19:41Z"), DurationS: 214, Disposition: Answered, CauseCode: 16, Trunk: "carrier-b", SourceIP: "198.51.100.7"},
		{CallID: id("04"), Caller: "+15550100001", Callee: "+18005550124", StartMS: ms("2026-11-02T09:15:08Z"), EndMS: ms("2026-11-02T09:15:09Z"), Disposition: Busy, CauseCode: 17, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		// No hangup_cause_q850: the cause comes from the name.
		{CallID: id("05"), Caller: "+15550100002", Callee: "+18005550125", StartMS: ms("2026-11-02T09:15:09Z"), EndMS: ms("2026-11-02T09:15:10Z"), Disposition: Rejected, CauseCode: 21, Trunk: "cheapvoip", SourceIP: "198.51.100.23"},
		{CallID: id("06"), Caller: "+15550100002", Callee: "+18005550126", StartMS: ms("2026-11-02T09:15:10Z"), EndMS: ms("2026-11-02T09:15:10Z"), Disposition: Failed, CauseCode: 41, Trunk: "cheapvoip", SourceIP: "198.51.100.23"},
		// Out of order; uuid at the top level.
		{CallID: id("07"), Caller: "+15550100001", Callee: "+18005550119", StartMS: ms("2026-11-02T09:14:58Z"), EndMS: ms("2026-11-02T09:15:01Z"), Disposition: NoAnswer, CauseCode: 19, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		// National numbers; caller and uuid from the callflow.
		{CallID: id("08"), Caller: "+15550140018", Callee: "+15550140019", StartMS: ms("2026-11-02T09:17:30Z"), AnswerMS: ms("2026-11-02T09:17:35Z"), EndMS: ms("2026-11-02T09:18:05Z"), DurationS: 30, Disposition: Answered, CauseCode: 16, Trunk: "bt-ic-3", SourceIP: "192.0.2.44"},
		// Hashed caller; callee from the callflow.
		{CallID: id("09"), Caller: "9f86d081884c7d659a2feaa0c55ad015", Callee: "+15559876548", StartMS: ms("2026-11-02T09:16:00Z"), EndMS: ms("2026-11-02T09:16:03Z"), Disposition: NoAnswer, CauseCode: 18, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		{CallID: id("10"), Caller: "+15550123499", Callee: "+15559876548", StartMS: ms("2026-11-02T09:16:01Z"), AnswerMS: ms("2026-11-02T09:16:05Z"), EndMS: ms("2026-11-02T09:17:05Z"), DurationS: 60, Disposition: Answered, CauseCode: 16, SourceIP: "203.0.113.99"},
		// A non-Q.850 cause (606) is not a cause code.
		{CallID: id("11"), Caller: "+15550100003", Callee: "+18005550128", StartMS: ms("2026-11-02T09:15:13Z"), EndMS: ms("2026-11-02T09:15:14Z"), Disposition: Failed, Trunk: "provider-a", SourceIP: "203.0.113.17"},
		{CallID: id("12"), Caller: "anonymous", Callee: "+18005550129", StartMS: ms("2026-11-02T09:15:14Z"), EndMS: ms("2026-11-02T09:15:14Z"), Disposition: NoAnswer, CauseCode: 102, Trunk: "provider-a", SourceIP: "203.0.113.17"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g.err != nil {
			t.Errorf("object %d: %v", i+1, g.err)
			continue
		}
		if d := cdrDiff(g.c, want[i]); d != "" {
			t.Errorf("object %d:%s", i+1, d)
		}
	}
}

func TestFreeSWITCHMalformed(t *testing.T) {
	got := decodeFile(t, "freeswitch", "testdata/freeswitch_malformed.json", DecodeOptions{})
	id := func(n string) string { return "7f4de4bc-0a7e-4b5c-9a51-0000000000" + n }
	checkStream(t, got, []string{id("21"), id("23"), id("28"), id("43")}, []wantErr{
		{2, "json"}, {4, "caller"}, {5, "start_time"}, {6, "json"}, {7, "start_time"}, {8, "duration_s"},
		{10, "caller"}, {11, "trunk"}, {12, "source_ip"}, // invalid UTF-8
	})
}

func TestFreeSWITCHFraming(t *testing.T) {
	rec := func(n string) string {
		return `{"variables":{"uuid":"u` + n + `","caller_id_number":"%2B1555010000` + n +
			`","destination_number":"+18005550199","start_epoch":"1793610904","answer_epoch":"0","end_epoch":"1793610909","hangup_cause":"NO_ANSWER"}}`
	}
	f := func(name, in string, max int, want string) {
		t.Helper()
		var b strings.Builder
		for _, d := range decodeAll(t, "freeswitch", strings.NewReader(in), DecodeOptions{MaxRecordBytes: max}) {
			if d.err != nil {
				var fe *FieldError
				errors.As(d.err, &fe)
				b.WriteString("!" + fe.Field + "@" + itoa64(d.err.Line) + "/" + itoa64(d.err.Offset) + " ")
				continue
			}
			b.WriteString(d.c.CallID + " ")
		}
		if got := strings.TrimSpace(b.String()); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	f("one per line", rec("1")+"\n"+rec("2")+"\n", 0, "u1 u2")
	f("concatenated", rec("1")+rec("2")+"  "+rec("3"), 0, "u1 u2 u3")
	f("braces in strings", `{"x":"}{\"}","variables":{"uuid":"u9","caller_id_number":"1","destination_number":"2","start_epoch":"1793610904"}}`, 0, "u9")
	f("truncated then good", rec("1")[:50]+"\n"+rec("2"), 0, "!json@1/0 u2")
	f("cut in a string", rec("1")[:20]+"\n"+rec("2")+"\n", 0, "!json@1/0 u2")
	f("garbage between", rec("1")+"\nxyz\n"+rec("2"), 0, "u1 !json@2/"+itoa64(int64(len(rec("1"))+1))+" u2")
	f("truncated at EOF", rec("1")+"\n"+rec("2")[:30], 0, "u1 !json@2/"+itoa64(int64(len(rec("1"))+1)))
	f("too long", rec("1")+"\n"+`{"pad":"`+strings.Repeat("x", 500)+`"}`+"\n"+rec("2"), 300, "u1 !json@2/"+itoa64(int64(len(rec("1"))+1))+" u2")
	f("callflow array", `{"callflow":[{"caller_profile":{"uuid":"u5","caller_id_number":"+1555","destination_number":"+1666"}},{}],"variables":{"start_epoch":"1793610904"}}`, 0, "u5")
	f("callflow object", `{"callflow":{"caller_profile":{"uuid":"u6","caller_id_number":"+1555","destination_number":"+1666"}},"variables":{"start_epoch":"1793610904"}}`, 0, "u6")
	f("numbers as numbers", `{"variables":{"uuid":"u7","caller_id_number":15550100001,"destination_number":"+1666","start_epoch":1793610904,"billsec":0}}`, 0, "u7")
	f("bad JSON inside", `{"variables":{"uuid":"u8",}}`, 0, "!json@1/0")
}

func itoa64(v int64) string { return strings.TrimSpace(strings.Replace(fmtAny(v), " ", "", -1)) }
