package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// detectorFlags are the detection settings shared by replay and run.
type detectorFlags struct {
	rules          string
	lateness       time.Duration
	shortCallS     int
	countryCode    string
	nationalPrefix string
}

func (d *detectorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.rules, "rules", envOr("CDRGUARD_RULES", "deploy/rules.yaml"), "rules file (YAML) [$CDRGUARD_RULES]")
	fs.DurationVar(&d.lateness, "lateness", 10*time.Minute, "allowed lateness of records behind the latest start time")
	fs.IntVar(&d.shortCallS, "short-call-s", 10, "talk seconds under which an answered call counts as short")
	fs.StringVar(&d.countryCode, "country-code", "", "home country calling code for numbers written without one (e.g. 44)")
	fs.StringVar(&d.nationalPrefix, "national-prefix", "0", "national trunk prefix stripped before adding the country code")
}

func (d *detectorFlags) plan() *schemas.NumberPlan {
	if d.countryCode == "" {
		return nil
	}
	return &schemas.NumberPlan{CountryCode: d.countryCode, NationalPrefix: d.nationalPrefix}
}

func (d *detectorFlags) config() detectors.Config {
	return detectors.Config{Lateness: d.lateness, ShortCallS: d.shortCallS}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", "replay [flags] INPUT... (- is stdin)", stderr)
	var df detectorFlags
	df.register(fs)
	format := fs.String("format", "jsonl", "input format: "+strings.Join(schemas.Formats, ", "))
	outPath := fs.String("out", "", "write alerts (JSON lines) here instead of stdout")
	tz := fs.String("timezone", "UTC", "time zone of wall-clock times without an offset (asterisk, csv)")
	top := fs.Int("top", 10, "how many top subjects the summary lists")
	labelsPath := fs.String("labels", "", "ground-truth labels (JSON lines, as written by gen): score the alerts against them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no input files (use - for stdin)", errUsage)
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("%w: --timezone: %v", errUsage, err)
	}
	set, err := rules.Load(df.rules)
	if err != nil {
		return err
	}
	eng, err := detectors.NewEngine(df.config(), set.Rules(), set.Allowlist)
	if err != nil {
		return err
	}

	out, closeOut, err := createOutput(*outPath, stdout)
	if err != nil {
		return err
	}
	defer closeOut() // on the error paths; the success path checks it below
	w := bufio.NewWriterSize(out, 1<<16)
	r := &replayer{eng: eng, w: w, rejects: map[string]*rejectInfo{}, subjects: map[string]*subjectInfo{}}
	if *labelsPath != "" {
		if r.truth, err = readLabels(*labelsPath); err != nil {
			return err
		}
		r.robo = map[string]bool{}
		for _, l := range r.truth {
			if l.Kind == "caller" && l.Robo {
				r.robo[l.Subject] = true
			}
		}
	}
	start := time.Now()
	for _, in := range fs.Args() {
		if err := r.file(ctx, in, *format, schemas.DecodeOptions{Plan: df.plan(), Location: loc}); err != nil {
			return err
		}
	}
	var o detectors.Output
	eng.Flush(&o)
	if err := r.emit(&o); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write alerts: %w", err)
	}
	if err := closeOut(); err != nil {
		return err
	}
	r.summary(stderr, time.Since(start), *top)
	if r.truth != nil {
		fmt.Fprintf(stderr, "scored against %s:\n", *labelsPath)
		synth.Evaluate(r.truth, r.roboCalls, r.kept).Print(stderr)
	}
	return nil
}

func readLabels(path string) ([]synth.Label, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read labels: %w", err)
	}
	defer f.Close()
	var out []synth.Label
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var l synth.Label
		if err := dec.Decode(&l); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("cannot read labels %s: %w", path, err)
		}
		out = append(out, l)
	}
}

type rejectInfo struct {
	count   int
	example string
}

type subjectInfo struct {
	kind   schemas.SubjectKind
	alerts int
	score  float64
	rules  []string
}

// replayer runs records through one engine, in file order.
type replayer struct {
	eng      *detectors.Engine
	w        *bufio.Writer
	buf      []byte
	records  int
	rejected int
	rejects  map[string]*rejectInfo
	alerts   int
	subjects map[string]*subjectInfo
	// With ground truth: the robo-dialers' calls and every alert.
	truth     []synth.Label
	robo      map[string]bool
	roboCalls []schemas.CDR
	kept      []schemas.Alert
}

// file replays one input. One goroutine decodes the input into batches
// of records whose strings it copies into the batch's arena (a decoder's
// strings are only valid until its next Decode), while this one runs
// them through the engine in input order. Batches are recycled, so a
// replay allocates nothing per record.
func (r *replayer) file(ctx context.Context, path, format string, opts schemas.DecodeOptions) error {
	var in io.Reader = os.Stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("cannot read input: %w", err)
		}
		defer f.Close()
		in, name = f, path
	}
	dec, err := schemas.NewDecoder(format, bufio.NewReaderSize(in, 1<<20), opts)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	full := make(chan *batch, replayBatches-1)
	free := make(chan *batch, replayBatches)
	for range replayBatches {
		free <- &batch{}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.decode(ctx, dec, name, free, full, stop)
	}()
	defer func() {
		close(stop) // the decoder may be waiting for a free batch
		<-done      // and must be done with the input before it closes
	}()
	var o detectors.Output
	for b := range full {
		for i := range b.recs {
			c := &b.recs[i]
			r.records++
			if r.robo[c.Caller] {
				r.roboCalls = append(r.roboCalls, c.Clone())
			}
			r.eng.Process(c, &o)
			if o.Len() > 0 {
				if err := r.emit(&o); err != nil {
					return err
				}
				o.Reset()
			}
		}
		if b.err != nil {
			return b.err
		}
		free <- b
	}
	return nil
}

// replayBatches is how many batches of replayBatchSize records a replay
// cycles between its decoder and its engine.
const (
	replayBatches   = 4
	replayBatchSize = 1024
)

// batch is a run of decoded records whose strings live in arena. err, on
// the last batch of an input, is why the input ended early.
type batch struct {
	recs  []schemas.CDR
	arena []byte
	err   error
}

// keep copies v into b's arena. The string points into the arena's current
// array; a larger arena is a new array, so strings kept earlier stay
// valid until the batch is reused.
func (b *batch) keep(v string) string {
	if v == "" {
		return ""
	}
	if cap(b.arena)-len(b.arena) < len(v) {
		b.arena = make([]byte, 0, max(2*cap(b.arena), 64<<10, len(v)))
	}
	off := len(b.arena)
	b.arena = append(b.arena, v...)
	return unsafe.String(&b.arena[off], len(v))
}

// decode reads dec into batches taken from free and sends them on full,
// which it closes at the end of the input. It counts rejected records
// (in input order, so the summary's examples are the first of each
// reason). It returns early when stop is closed.
func (r *replayer) decode(ctx context.Context, dec schemas.Decoder, name string, free <-chan *batch, full chan<- *batch, stop <-chan struct{}) {
	defer close(full)
	var c schemas.CDR
	n := 0
	for {
		var b *batch
		select {
		case b = <-free:
		case <-stop:
			return
		}
		b.recs, b.arena, b.err = b.recs[:0], b.arena[:0], nil
		for len(b.recs) < replayBatchSize && b.err == nil {
			if n&0xffff == 0 && ctx.Err() != nil {
				b.err = fmt.Errorf("replay of %s interrupted: %w", name, ctx.Err())
				break
			}
			n++
			err := dec.Decode(&c)
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *schemas.RecordError
				if !errors.As(err, &re) {
					b.err = fmt.Errorf("cannot read %s: %w", name, err)
					break
				}
				r.reject(name, re)
				continue
			}
			k := c
			k.CallID, k.Caller, k.Callee = b.keep(c.CallID), b.keep(c.Caller), b.keep(c.Callee)
			k.Trunk, k.SourceIP, k.IMSI = b.keep(c.Trunk), b.keep(c.SourceIP), b.keep(c.IMSI)
			k.IMEI, k.CellID = b.keep(c.IMEI), b.keep(c.CellID)
			b.recs = append(b.recs, k)
		}
		last := len(b.recs) < replayBatchSize || b.err != nil
		select {
		case full <- b:
		case <-stop:
			return
		}
		if last {
			return
		}
	}
}

func (r *replayer) reject(file string, re *schemas.RecordError) {
	r.rejected++
	reason := re.Err.Error()
	var fe *schemas.FieldError
	if errors.As(re.Err, &fe) {
		reason = "field " + fe.Field + ": " + fe.Problem
		if fe.Field == "json" {
			reason = "malformed JSON"
		}
	}
	ri := r.rejects[reason]
	if ri == nil {
		ri = &rejectInfo{example: file + ": " + re.Error()}
		r.rejects[reason] = ri
	}
	ri.count++
}

// emit writes the alerts in o as JSON lines. Aggregates are not part of
// a replay's output.
func (r *replayer) emit(o *detectors.Output) error {
	for i := range o.Alerts {
		a := &o.Alerts[i]
		var err error
		r.buf, err = a.AppendJSON(r.buf[:0])
		if err != nil {
			return err
		}
		r.buf = append(r.buf, '\n')
		if _, err := r.w.Write(r.buf); err != nil {
			return fmt.Errorf("cannot write alerts: %w", err)
		}
		r.alerts++
		if r.truth != nil {
			r.kept = append(r.kept, *a)
		}
		key := a.SubjectKind.String() + " " + a.Subject
		s := r.subjects[key]
		if s == nil {
			s = &subjectInfo{kind: a.SubjectKind}
			r.subjects[key] = s
		}
		s.alerts++
		s.score = max(s.score, a.Score)
		if !slices.Contains(s.rules, a.Rule) {
			s.rules = append(s.rules, a.Rule)
		}
	}
	return nil
}

func (r *replayer) summary(w io.Writer, took time.Duration, top int) {
	st := r.eng.Stats()
	rate := float64(r.records+r.rejected) / took.Seconds()
	fmt.Fprintf(w, "\n== cdrguard replay summary ==\n")
	fmt.Fprintf(w, "records read:   %d (%d rejected) in %.2fs, %.0f records/s\n", r.records+r.rejected, r.rejected, took.Seconds(), rate)
	if st.Late > 0 {
		fmt.Fprintf(w, "late records:   %d (start more than the allowed lateness behind the latest start)\n", st.Late)
	}
	if st.Outliers > 0 {
		fmt.Fprintf(w, "outliers:       %d (start more than the allowed lateness ahead of the stream; held)\n", st.Outliers)
	}
	if len(r.rejects) > 0 {
		fmt.Fprintf(w, "rejected by reason:\n")
		reasons := make([]string, 0, len(r.rejects))
		for k := range r.rejects {
			reasons = append(reasons, k)
		}
		slices.SortFunc(reasons, func(a, b string) int {
			return cmp.Or(r.rejects[b].count-r.rejects[a].count, strings.Compare(a, b))
		})
		for _, k := range reasons {
			fmt.Fprintf(w, "  %7d  %s\n           e.g. %s\n", r.rejects[k].count, k, r.rejects[k].example)
		}
	}
	callers, detailed := r.eng.Keys(schemas.SubjectCaller)
	fmt.Fprintf(w, "keys tracked:   %d callers (%d in detail); %d promotions, %d evictions\n", callers, detailed, st.Promotions, st.Evictions)
	fmt.Fprintf(w, "alerts:         %d\n", r.alerts)
	for i, name := range r.eng.Rules() {
		if st.RuleAlerts[i] > 0 || st.RuleErrors[i] > 0 {
			fmt.Fprintf(w, "  %7d  %s", st.RuleAlerts[i], name)
			if st.RuleErrors[i] > 0 {
				fmt.Fprintf(w, " (%d evaluation errors, last: %v)", st.RuleErrors[i], st.LastRuleError)
			}
			fmt.Fprintln(w)
		}
	}
	keys := make([]string, 0, len(r.subjects))
	for k := range r.subjects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.subjects[b].score, r.subjects[a].score), strings.Compare(a, b))
	})
	if len(keys) > 0 {
		fmt.Fprintf(w, "top subjects (by score):\n")
	}
	for _, k := range keys[:min(top, len(keys))] {
		s := r.subjects[k]
		fmt.Fprintf(w, "  %-28s score %8.1f  %d alerts: %s\n", k, s.score, s.alerts, strings.Join(s.rules, ", "))
	}
}
