package schemas

import (
	"testing"
	"time"
	_ "time/tzdata" // America/New_York on machines without zoneinfo
)

func TestAsteriskTestdata(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	got := decodeFile(t, "asterisk", "testdata/Master.csv", DecodeOptions{Plan: usPlan, Location: ny})
	// 04:15 in New York on 2026-11-02 (EST, after the DST change) is 09:15Z.
	want := []CDR{
		{CallID: "1793610904.31", Caller: "+15550100001", Callee: "+18005550199", StartMS: ms("2026-11-02T09:15:04Z"), EndMS: ms("2026-11-02T09:15:09Z"), Disposition: NoAnswer, Trunk: "provider-a"},
		{CallID: "1793610906.33", Caller: "+15550100001", Callee: "+18005550123", StartMS: ms("2026-11-02T09:15:06Z"), AnswerMS: ms("2026-11-02T09:15:09Z"), EndMS: ms("2026-11-02T09:15:11Z"), DurationS: 2, Disposition: Answered, Trunk: "provider-a"},
		{CallID: "1793610960.41", Caller: "+15550133333", Callee: "+15550144444", StartMS: ms("2026-11-02T09:16:00Z"), AnswerMS: ms("2026-11-02T09:16:07Z"), EndMS: ms("2026-11-02T09:19:41Z"), DurationS: 214, Disposition: Answered, Trunk: "trunk1"},
		{CallID: "1793610908.35", Caller: "+15550100001", Callee: "+18005550124", StartMS: ms("2026-11-02T09:15:08Z"), EndMS: ms("2026-11-02T09:15:09Z"), Disposition: Busy, Trunk: "provider-a"},
		{CallID: "1793610909.36", Caller: "+15550100002", Callee: "+18005550125", StartMS: ms("2026-11-02T09:15:09Z"), EndMS: ms("2026-11-02T09:15:10Z"), Disposition: Failed, Trunk: "cheapvoip"},
		{CallID: "1793610910.37", Caller: "+15550100002", Callee: "+18005550126", StartMS: ms("2026-11-02T09:15:10Z"), EndMS: ms("2026-11-02T09:15:10Z"), Disposition: Failed, Trunk: "cheapvoip"},
		{CallID: "1793610898.29", Caller: "+15550100001", Callee: "+18005550119", StartMS: ms("2026-11-02T09:14:58Z"), EndMS: ms("2026-11-02T09:15:01Z"), Disposition: NoAnswer, Trunk: "provider-a"},
		{CallID: "1793611050.50", Caller: "+442079460018", Callee: "+15550177000", StartMS: ms("2026-11-02T09:17:30Z"), AnswerMS: ms("2026-11-02T09:17:35Z"), EndMS: ms("2026-11-02T09:18:05Z"), DurationS: 30, Disposition: Answered, Trunk: "DAHDI/i1"},
		{CallID: "1793610960.42", Caller: "9f86d081884c7d659a2feaa0c55ad015", Callee: "+15559876548", StartMS: ms("2026-11-02T09:16:00Z"), EndMS: ms("2026-11-02T09:16:03Z"), Disposition: NoAnswer, Trunk: "Local/from-queue"},
		{Caller: "+15550100003", Callee: "+18005550127", StartMS: ms("2026-11-02T09:15:12Z"), EndMS: ms("2026-11-02T09:15:13Z"), Disposition: NoAnswer, Trunk: "DAHDI/23"},
		{CallID: "1793610913.43", Caller: "+15550100003", Callee: "+18005550128", StartMS: ms("2026-11-02T09:15:13Z"), AnswerMS: ms("2026-11-02T09:15:20Z"), EndMS: ms("2026-11-02T09:15:21Z"), DurationS: 1, Disposition: Answered, Trunk: "203.0.113.9"},
		{CallID: "1793610914.44", Caller: "anonymous", Callee: "+18005550129", StartMS: ms("2026-11-02T09:15:14Z"), EndMS: ms("2026-11-02T09:15:14Z"), Disposition: NoAnswer, Trunk: "provider-b"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		if g.err != nil {
			t.Errorf("line %d: %v", i+1, g.err)
			continue
		}
		if d := cdrDiff(g.c, want[i]); d != "" {
			t.Errorf("line %d:%s", i+1, d)
		}
	}
}

func TestAsteriskUTCDefault(t *testing.T) {
	got := decodeFile(t, "asterisk", "testdata/Master.csv", DecodeOptions{})
	if got[0].err != nil || got[0].c.StartMS != ms("2026-11-02T04:15:04Z") {
		t.Errorf("nil Location: got %+v, want start 04:15:04Z", got[0])
	}
	if got[0].c.Caller != "5550100001" {
		t.Errorf("nil plan: caller %q, want the digits as given", got[0].c.Caller)
	}
}

func TestAsteriskMalformed(t *testing.T) {
	got := decodeFile(t, "asterisk", "testdata/Master_malformed.csv", DecodeOptions{})
	checkStream(t, got, []string{"1793610904.31", "1793610905.32", "1793610912.39"}, []wantErr{
		{2, "asterisk"}, {4, "caller"}, {5, "start_time"}, {6, "start_time"}, {7, "duration_s"},
		{8, "start_time"}, {9, "disposition"},
		{11, "trunk"}, {12, "call_id"}, {13, "caller"}, // invalid UTF-8
	})
}

func TestChannelTrunk(t *testing.T) {
	f := func(ch, want string) {
		t.Helper()
		var arena []byte
		if got := string(channelTrunk([]byte(ch), &arena)); got != want {
			t.Errorf("%q: got %q, want %q", ch, got, want)
		}
	}
	f("SIP/provider-a-0000001f", "provider-a")
	f("PJSIP/trunk1-00000a1b", "trunk1")
	f("PJSIP/provider-beef-0000A1B2", "provider-beef")
	f("SIP/provider-a", "provider-a") // no per-call suffix to remove
	f("SIP/10.0.0.1-0000002a", "10.0.0.1")
	f("IAX2/cheapvoip-4521", "cheapvoip")
	f("IAX2/cheapvoip-7", "cheapvoip")
	f("Local/100@from-internal-00000012;1", "Local/from-internal")
	f("Local/100@from-internal-00000012,2", "Local/from-internal")
	f("Local/s-0000abcd;2", "Local/s")
	f("DAHDI/23-1", "DAHDI/23")
	f("DAHDI/i1/5551234-1", "DAHDI/i1")
	f("Zap/g1/5551234-2", "Zap/g1")
	f("Console/dsp", "dsp")
	f("mystery", "mystery")
	f("", "")
	f(" SIP/x-00000001 ", "x")
}

func TestCLIDNumber(t *testing.T) {
	f := func(clid, want string) {
		t.Helper()
		if got := string(clidNumber([]byte(clid))); got != want {
			t.Errorf("%q: got %q, want %q", clid, got, want)
		}
	}
	f(`"Alice" <1001>`, "1001")
	f(`Alice <+1 555 010 0001>`, "+1 555 010 0001")
	f(`<anonymous>`, "anonymous")
	f(`"Robo Dialer"`, "")
	f(`5550100001`, "5550100001")
	f(`"Bob" <1002`, "")
	f(``, "")
}
