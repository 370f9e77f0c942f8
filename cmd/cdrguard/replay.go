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

	"github.com/schollz/progressbar/v3"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/replay"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// detectorFlags are replay's detection settings: the detect and input
// sections of a run config (--config), so a backtest runs as the live job
// does, with a few flags over them.
type detectorFlags struct {
	config         string
	rules          string
	lateness       time.Duration
	shortCallS     int
	countryCode    string
	nationalPrefix string
}

func (d *detectorFlags) register(fs *flag.FlagSet) {
	def := defaultRunConfig()
	fs.StringVar(&d.config, "config", os.Getenv("CDRGUARD_CONFIG"), "run config (YAML) whose detect and input settings to use [$CDRGUARD_CONFIG]")
	fs.StringVar(&d.rules, "rules", os.Getenv("CDRGUARD_RULES"), "rules file (YAML), over the config's detect.rules [$CDRGUARD_RULES] (default "+def.Detect.Rules+")")
	fs.DurationVar(&d.lateness, "lateness", def.Detect.Lateness, "allowed lateness of records behind the latest start time (detect.lateness)")
	fs.IntVar(&d.shortCallS, "short-call-s", def.Detect.ShortCallS, "talk seconds under which an answered call counts as short (detect.short_call_s)")
	fs.StringVar(&d.countryCode, "country-code", "", "home country calling code for numbers written without one, e.g. 44 (input.country_code)")
	fs.StringVar(&d.nationalPrefix, "national-prefix", def.Input.NationalPrefix, "national trunk prefix stripped before adding the country code (input.national_prefix)")
}

// resolve reads the config (or the defaults) and applies the flags that
// were given on the command line over it.
func (d *detectorFlags) resolve(fs *flag.FlagSet) (runConfig, error) {
	cfg, err := loadRunConfig(d.config)
	if err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if d.rules != "" {
		cfg.Detect.Rules = d.rules
	}
	if set["lateness"] {
		cfg.Detect.Lateness = d.lateness
	}
	if set["short-call-s"] {
		cfg.Detect.ShortCallS = d.shortCallS
	}
	if set["country-code"] {
		cfg.Input.CountryCode = d.countryCode
	}
	if set["national-prefix"] {
		cfg.Input.NationalPrefix = d.nationalPrefix
	}
	// Only the detect and input sections matter to a backtest: the hooks
	// and console sections (and their secret files) are not needed here.
	cfg.Hooks, cfg.Console = nil, nil
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
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
	cfg, err := df.resolve(fs)
	if err != nil {
		return err
	}
	set, err := loadRules(cfg)
	if err != nil {
		return err
	}
	eng, err := detectors.NewEngine(cfg.detectorConfig(), set.Rules(), set.Allowlist)
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
	var total int64
	for _, in := range fs.Args() {
		if st, err := os.Stat(in); err == nil && in != "-" {
			total += st.Size()
		}
	}
	bar := newProgress(stderr, total, "replay", true)
	for _, in := range fs.Args() {
		if err := replayInput(ctx, r, in, *format, schemas.DecodeOptions{Plan: cfg.numberPlan(), Location: loc}, bar); err != nil {
			return err
		}
	}
	progressDone(bar)
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
func replayInput(ctx context.Context, r *replay.Replayer, path, format string, opts schemas.DecodeOptions, bar *progressbar.ProgressBar) error {
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
	dec, err := schemas.NewDecoder(format, bufio.NewReaderSize(progressReader(in, bar), 1<<20), opts)
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
