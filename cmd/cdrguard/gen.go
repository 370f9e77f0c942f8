package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "gen [flags]", stderr)
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same day")
	scale := fs.Float64("scale", 1, "population scale (1 is about half a million records)")
	day := fs.String("date", "2026-11-02", "the UTC day to generate (YYYY-MM-DD)")
	outPath := fs.String("out", "", "write CDRs (JSON lines) here instead of stdout")
	labelsPath := fs.String("labels", "", "write ground-truth labels (JSON lines) here (default: OUT.labels.jsonl when --out is set)")
	batch := fs.Int("batch-seconds", 30, "collectors' shipping period: records are shuffled within each batch")
	dups := fs.Float64("duplicates", 0, "share of records delivered twice, the copy a few minutes later (0 to 1)")
	resent := fs.Int("resent-batches", 0, "whole shipping batches a collector re-sends after a restart, 20 to 60 minutes later")
	brokers := fs.String("kafka-brokers", os.Getenv("CDRGUARD_KAFKA_BROKERS"), "produce into Kafka at these brokers instead of writing a file [$CDRGUARD_KAFKA_BROKERS]")
	topic := fs.String("topic", envOr("CDRGUARD_TOPIC", "cdrs"), "with --kafka-brokers: the topic (keyed by caller) [$CDRGUARD_TOPIC]")
	partitions := fs.Int("partitions", 6, "with --kafka-brokers: partitions of the topic when gen creates it")
	rate := fs.Float64("rate", 0, "with --kafka-brokers: records per second (0: as fast as possible)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, err := time.Parse("2006-01-02", *day)
	if err != nil {
		return fmt.Errorf("%w: --date %q is not YYYY-MM-DD", errUsage, *day)
	}
	if *scale <= 0 || *scale > 100 {
		return fmt.Errorf("%w: --scale %v must be in (0, 100]", errUsage, *scale)
	}
	if *dups < 0 || *dups > 1 {
		return fmt.Errorf("%w: --duplicates %v must be between 0 and 1", errUsage, *dups)
	}
	if *resent < 0 {
		return fmt.Errorf("%w: --resent-batches %d must not be negative", errUsage, *resent)
	}
	gd := synth.Generate(synth.Config{Seed: *seed, Day: d, Scale: *scale, BatchSeconds: *batch,
		Duplicates: *dups, ResentBatches: *resent})
	if *brokers != "" {
		if *labelsPath != "" {
			if err := writeLabels(*labelsPath, gd.Labels); err != nil {
				return err
			}
		}
		return produce(ctx, stderr, strings.Split(*brokers, ","), *topic, *partitions, *rate, gd.Records)
	}

	out, closeOut, err := createOutput(*outPath, stdout)
	if err != nil {
		return err
	}
	if *outPath != "" && *labelsPath == "" {
		*labelsPath = *outPath + ".labels.jsonl"
	}
	if err := writeRecords(ctx, out, gd.Records, newProgress(stderr, int64(len(gd.Records)), "gen", false)); err != nil {
		closeOut()
		return err
	}
	if err := closeOut(); err != nil {
		return err
	}
	if *labelsPath != "" {
		if err := writeLabels(*labelsPath, gd.Labels); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "generated %d records for %s (seed %d, scale %g)", len(gd.Records), *day, *seed, *scale)
	if gd.Duplicates > 0 {
		fmt.Fprintf(stderr, ", %d of them copies", gd.Duplicates)
	}
	if *labelsPath != "" {
		fmt.Fprintf(stderr, "; labels in %s", *labelsPath)
	}
	fmt.Fprintln(stderr)
	return nil
}

func writeRecords(ctx context.Context, out io.Writer, recs []schemas.CDR, bar *progressbar.ProgressBar) error {
	w := bufio.NewWriterSize(out, 1<<20)
	var buf []byte
	defer progressDone(bar)
	for i := range recs {
		if i&0xffff == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			progressAdd(bar, min(0x10000, len(recs)-i))
		}
		buf = schemas.AppendJSON(buf[:0], &recs[i])
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("cannot write records: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write records: %w", err)
	}
	return nil
}

func writeLabels(path string, labels []synth.Label) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create labels file: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range labels {
		if err := enc.Encode(&labels[i]); err != nil {
			f.Close()
			return fmt.Errorf("cannot write labels: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write labels: %w", err)
	}
	return f.Close()
}

// produce writes records into topic keyed by caller, in arrival order, at
// rate records per second (0: as fast as possible), creating the topic
// with partitions when it is missing.
func produce(ctx context.Context, stderr io.Writer, brokers []string, topic string, partitions int, rate float64, recs []schemas.CDR) error {
	kc, err := kafkaio.NewClient(kafkaio.Conn{Brokers: brokers, ClientID: "cdrguard-gen"})
	if err != nil {
		return err
	}
	defer kc.Close()
	start := time.Now()
	bar := newProgress(stderr, int64(len(recs)), "produce", false)
	err = kc.ProduceCDRs(ctx, topic, kafkaio.ProduceOptions{Partitions: partitions, Rate: rate,
		Progress: func(n int) { progressAdd(bar, n) }}, recs)
	progressDone(bar)
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stderr, "produced %d records to %s in %.1fs (%.0f records/s)\n", len(recs), topic, took.Seconds(), float64(len(recs))/took.Seconds())
	return nil
}
