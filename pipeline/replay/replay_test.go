package replay_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/replay"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const rulesFile = "../../deploy/rules.yaml"

func engine(t testing.TB) *detectors.Engine {
	t.Helper()
	set, err := rules.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func jsonLines(recs []schemas.CDR) []byte {
	var b []byte
	for i := range recs {
		b = schemas.AppendJSON(b, &recs[i])
		b = append(b, '\n')
	}
	return b
}

func decoder(t testing.TB, in []byte) schemas.Decoder {
	t.Helper()
	dec, err := schemas.NewDecoder("jsonl", bytes.NewReader(in), schemas.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

// TestDecodeRaisesWhatRecordsRaise: records decoded on another goroutine
// in recycled batches whose strings live in arenas raise, written as JSON
// lines, exactly what the same records handed over in memory raise.
func TestDecodeRaisesWhatRecordsRaise(t *testing.T) {
	day := synth.Generate(synth.Config{Seed: 4, Scale: 0.05})
	var decoded bytes.Buffer
	r := replay.New(engine(t), replay.JSONLines(&decoded), day.Labels)
	if err := r.Decode(context.Background(), "day", decoder(t, jsonLines(day.Records))); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	direct, err := replay.Alerts(engine(t), day.Records)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	emit := replay.JSONLines(&want)
	for i := range direct {
		if err := emit(&direct[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(direct) == 0 {
		t.Fatal("the generated day raises no alert")
	}
	if decoded.String() != want.String() {
		t.Errorf("decoded replay wrote %d bytes of alerts, the records in memory %d; they differ", decoded.Len(), want.Len())
	}
	rep := r.Score()
	if rep == nil || rep.RoboCallers == 0 || rep.RoboCalls == 0 || rep.FlaggedRobo == 0 {
		t.Fatalf("score against the day's labels: %+v", rep)
	}
}

func TestSummaryCountsRejects(t *testing.T) {
	good := `{"caller":"+15550100001","callee":"+15550100002","start_time":"2026-11-02T09:00:00Z","disposition":"answered","duration_s":30}`
	in := strings.Join([]string{good, `{"caller":"+15550100001",`, `{"callee":"+15550100002","start_time":"2026-11-02T09:00:00Z"}`,
		`{"caller":"+15550100001","callee":"+15550100002","start_time":"9999-01-01T00:00:00Z"}`, good, `{"caller":`}, "\n") + "\n"
	r := replay.New(engine(t), func(*schemas.Alert) error { return nil }, nil)
	if err := r.Decode(context.Background(), "mixed.jsonl", decoder(t, []byte(in))); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteSummary(&b, time.Second, 10)
	for _, want := range []string{
		"records read:   6 (4 rejected) in 1.00s, 6 records/s",
		"        2  malformed JSON\n           e.g. mixed.jsonl: record at line 2",
		"        1  field caller: missing\n           e.g. mixed.jsonl: record at line 3",
		"field start_time",
		"duplicates:     1 (copies", // the good record, delivered twice
		"alerts:         0",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	if r.Score() != nil {
		t.Error("a score without ground truth")
	}
}

// failing is a decoder that fails for good after n records.
type failing struct {
	n   int
	rec schemas.CDR
}

func (f *failing) Decode(c *schemas.CDR) error {
	if f.n == 0 {
		return errors.New("disk on fire")
	}
	f.n--
	*c = f.rec
	return nil
}

// TestDecodeStops: a decoder's failure, a cancelled context and an
// AlertFunc's error each end Decode with that error, and the decoding
// goroutine with it (goleak checks).
func TestDecodeStops(t *testing.T) {
	rec := schemas.CDR{Caller: "+15550100001", Callee: "+15550100002", StartMS: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixMilli()}
	r := replay.New(engine(t), func(*schemas.Alert) error { return nil }, nil)
	if err := r.Decode(context.Background(), "x", &failing{n: 3000, rec: rec}); err == nil || !strings.Contains(err.Error(), "cannot read x: disk on fire") {
		t.Errorf("decoder failure: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Decode(ctx, "y", &failing{n: 1 << 30, rec: rec}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled replay: %v, want context.Canceled", err)
	}

	day := synth.Generate(synth.Config{Seed: 4, Scale: 0.05})
	stop := errors.New("enough")
	n := 0
	r = replay.New(engine(t), func(*schemas.Alert) error { n++; return stop }, nil)
	if err := r.Decode(context.Background(), "day", decoder(t, jsonLines(day.Records))); !errors.Is(err, stop) || n != 1 {
		t.Errorf("AlertFunc error: %v after %d alerts, want %v after 1", err, n, stop)
	}
}

func TestCollectCopies(t *testing.T) {
	var got []schemas.Alert
	collect := replay.Collect(&got)
	a := schemas.Alert{Rule: "r", Subject: "+1"}
	if err := collect(&a); err != nil {
		t.Fatal(err)
	}
	a.Rule = "changed"
	if !slices.EqualFunc(got, []schemas.Alert{{Rule: "r", Subject: "+1"}}, func(x, y schemas.Alert) bool { return x.Rule == y.Rule && x.Subject == y.Subject }) {
		t.Errorf("collected %+v", got)
	}
}
