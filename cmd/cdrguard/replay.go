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
	"sync"
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
	// Two engines, each on a goroutine of its own: one keeps the calling
	// numbers' windows, the other the calling sources'. Their keys are
	// disjoint and both run every record in the same order, so together
	// they raise exactly what one engine with every key kind would (the
	// streaming job splits its work the same way).
	var engs [2]*detectors.Engine
	for i, kinds := range [2][]schemas.SubjectKind{{schemas.SubjectCaller}, sourceKinds} {
		cfg := df.config()
		cfg.Kinds = kinds
		if engs[i], err = detectors.NewEngine(cfg, set.Rules(), set.Allowlist); err != nil {
			return err
		}
	}

	out, closeOut, err := createOutput(*outPath, stdout)
	if err != nil {
		return err
	}
	defer closeOut() // on the error paths; the success path checks it below
	w := bufio.NewWriterSize(out, 1<<16)
	r := &replayer{engs: engs, w: w, rejects: map[string]*rejectInfo{}, subjects: map[string]*subjectInfo{}}
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
	var callers, sources detectors.Output
	engs[0].Flush(&callers)
	engs[1].Flush(&sources)
	if err := r.emit(&callers, &sources); err != nil {
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

// sourceKinds are the subject kinds of the replay's second engine.
var sourceKinds = []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP}

// replayer runs records, in file order, through two engines: engs[0]
// keeps the calling numbers' windows (and counts every record), engs[1]
// the calling sources'.
type replayer struct {
	engs     [2]*detectors.Engine
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
// strings are only valid until its next Decode); each engine runs every
// batch on a goroutine of its own; this one merges what they raise, in
// input order, and writes it. Batches and outputs are recycled, so a
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
	free := make(chan *batch, replayBatches)
	for range replayBatches {
		free <- &batch{}
	}
	var lanes [2]*lane
	for i, eng := range r.engs {
		lanes[i] = newLane(eng)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.decode(ctx, dec, name, free, lanes, stop) })
	for _, l := range lanes {
		wg.Go(func() { l.run(stop) })
	}
	defer func() {
		close(stop) // the others may be waiting to send or for a free batch
		wg.Wait()   // and must be done with the input before it closes
	}()
	for {
		rc, ok := <-lanes[0].done
		if !ok {
			return nil
		}
		rs := <-lanes[1].done // the same batch: both run every batch in order
		b := rc.b
		if r.robo != nil {
			for i := range b.recs {
				if c := &b.recs[i]; r.robo[c.Caller] {
					r.roboCalls = append(r.roboCalls, c.Clone())
				}
			}
		}
		r.records += len(b.recs)
		err := r.emit(rc.out, rs.out)
		lanes[0].free <- rc.out
		lanes[1].free <- rs.out
		if err != nil {
			return err
		}
		if b.err != nil {
			return b.err
		}
		free <- b
	}
}

// lane runs batches through one engine.
type lane struct {
	eng  *detectors.Engine
	in   chan *batch // batches to run, in input order
	done chan laneResult
	free chan *detectors.Output
}

// laneResult is what running a batch raised.
type laneResult struct {
	b   *batch
	out *detectors.Output
}

func newLane(eng *detectors.Engine) *lane {
	l := &lane{eng: eng, in: make(chan *batch, replayBatches), done: make(chan laneResult, replayBatches),
		free: make(chan *detectors.Output, replayBatches)}
	for range replayBatches {
		l.free <- &detectors.Output{}
	}
	return l
}

// run runs every batch sent on in and sends what each raised on done,
// which it closes once in is closed. It returns early when stop is closed.
func (l *lane) run(stop <-chan struct{}) {
	defer close(l.done)
	for b := range l.in {
		var out *detectors.Output
		select {
		case out = <-l.free:
		case <-stop:
			return
		}
		out.Reset()
		for i := range b.recs {
			l.eng.Process(&b.recs[i], out)
		}
		select {
		case l.done <- laneResult{b, out}:
		case <-stop:
			return
		}
	}
}

// replayBatches is how many batches of replayBatchSize records a replay
// cycles between its decoder and its engines.
const (
	replayBatches   = 6
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

// decode reads dec into batches taken from free and sends each to every
// lane, whose inputs it closes at the end of the input. It counts
// rejected records (in input order, so the summary's examples are the
// first of each reason). It returns early when stop is closed.
func (r *replayer) decode(ctx context.Context, dec schemas.Decoder, name string, free <-chan *batch, lanes [2]*lane, stop <-chan struct{}) {
	defer func() {
		for _, l := range lanes {
			close(l.in)
		}
	}()
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
		for _, l := range lanes {
			select {
			case l.in <- b:
			case <-stop:
				return
			}
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

// emit writes, as JSON lines, the alerts the two engines raised over the
// same records, merged by detection time: what each engine raised stays
// in its order, and a caller alert goes before a source alert detected
// in the same millisecond. Aggregates are not part of a replay's output.
func (r *replayer) emit(callers, sources *detectors.Output) error {
	ca, sa := callers.Alerts, sources.Alerts
	for len(ca) > 0 || len(sa) > 0 {
		var a *schemas.Alert
		if len(sa) == 0 || len(ca) > 0 && !sa[0].DetectedAt.Before(ca[0].DetectedAt) {
			a, ca = &ca[0], ca[1:]
		} else {
			a, sa = &sa[0], sa[1:]
		}
		if err := r.emitAlert(a); err != nil {
			return err
		}
	}
	return nil
}

// emitAlert writes a as a JSON line and counts it for the summary.
func (r *replayer) emitAlert(a *schemas.Alert) error {
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
	return nil
}

func (r *replayer) summary(w io.Writer, took time.Duration, top int) {
	st := r.stats()
	rate := float64(r.records+r.rejected) / took.Seconds()
	fmt.Fprintf(w, "\n== cdrguard replay summary ==\n")
	fmt.Fprintf(w, "records read:   %d (%d rejected) in %.2fs, %.0f records/s\n", r.records+r.rejected, r.rejected, took.Seconds(), rate)
	if st.Late > 0 {
		fmt.Fprintf(w, "late records:   %d (start more than the allowed lateness behind the latest start)\n", st.Late)
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
	callers, detailed := r.engs[0].Keys(schemas.SubjectCaller)
	fmt.Fprintf(w, "keys tracked:   %d callers (%d in detail); %d promotions, %d evictions\n", callers, detailed, st.Promotions, st.Evictions)
	fmt.Fprintf(w, "alerts:         %d\n", r.alerts)
	for i, name := range r.engs[0].Rules() {
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

// stats adds up the two engines' counters. Both see every record, so the
// record counts are the caller engine's.
func (r *replayer) stats() detectors.Stats {
	st, src := r.engs[0].Stats(), r.engs[1].Stats()
	st.RuleAlerts, st.RuleErrors = slices.Clone(st.RuleAlerts), slices.Clone(st.RuleErrors)
	for i := range st.RuleAlerts {
		st.RuleAlerts[i] += src.RuleAlerts[i]
		st.RuleErrors[i] += src.RuleErrors[i]
	}
	st.Promotions += src.Promotions
	st.Demotions += src.Demotions
	st.Evictions += src.Evictions
	st.Exempted += src.Exempted
	st.Evaluations += src.Evaluations
	st.Alerts += src.Alerts
	if st.LastRuleError == nil {
		st.LastRuleError = src.LastRuleError
	}
	return st
}
