package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/replay"
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
	var truth []synth.Label
	if *labelsPath != "" {
		if truth, err = readLabels(*labelsPath); err != nil {
			return err
		}
	}
	w := bufio.NewWriterSize(out, 1<<16)
	r := replay.New(eng, replay.JSONLines(w), truth)
	start := time.Now()
	for _, in := range fs.Args() {
		if err := replayInput(ctx, r, in, *format, schemas.DecodeOptions{Plan: df.plan(), Location: loc}); err != nil {
			return err
		}
	}
	if err := r.Flush(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write alerts: %w", err)
	}
	if err := closeOut(); err != nil {
		return err
	}
	r.WriteSummary(stderr, time.Since(start), *top)
	if rep := r.Score(); rep != nil {
		fmt.Fprintf(stderr, "scored against %s:\n", *labelsPath)
		rep.Print(stderr)
	}
	return nil
}

// replayInput opens one input (- is stdin) and replays it.
func replayInput(ctx context.Context, r *replay.Replayer, path, format string, opts schemas.DecodeOptions) error {
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
	return r.Decode(ctx, name, dec)
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
