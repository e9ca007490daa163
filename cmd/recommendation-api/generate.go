package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// runGenerateData simulates container usage, or cuts real usage traces, and
// writes features and labels:
//
//	recommendation-api generate-data --samples 100000 --output data/training_data.npz [--seed N]
//	recommendation-api generate-data --trace DIR|FILE... [--format generic|bitbrains] [--mix-synthetic N] --output FILE.npz
//
// With --trace the samples come from the traces' history and following
// windows (the generator's window lengths and label definitions, one sample
// per --trace-stride), plus --mix-synthetic simulated ones; --samples is
// then ignored.
func runGenerateData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate-data", flag.ContinueOnError)
	fs.SetOutput(stderr)
	samples := fs.Int("samples", 100000, "number of containers to simulate (1..10,000,000); without --trace")
	output := fs.String("output", "data/training_data.npz", "where to write the .npz (X [N,12] float32, Y [N,5] float32, workload [N] int32)")
	seed := fs.Int64("seed", 42, "random seed; the same seed gives the same bytes")
	major := fs.Int("major", model.Majors[len(model.Majors)-1], "model major whose features to write: 1 (12 features, 48 h history; what train --version v1.x.y reads) or 2 (16, 7 days; the default, the newest major)")
	tf := addTraceFlags(fs)
	mix := fs.Int("mix-synthetic", 0, "with --trace: also simulate this many containers (0..10,000,000) and mix them in")
	stride := fs.Duration("trace-stride", time.Duration(traces.DefaultTrainStride)*trainer.Step, "with --trace: time between consecutive samples cut from a trace (a multiple of 5m)")
	tuning := fs.Bool("tuning-holdout", false, "with --trace: leave the tuning containers out too (about 30% of the training ones, by a hash of their ID), so that training settings can be chosen on them (evaluate --containers tuning) without looking at the held-out containers")
	histories := fs.String("trace-history", "", "with --trace: history lengths to cut samples with, comma-separated (Nd or a duration; default: the major's window); each length adds its own samples, so a model also learns from histories shorter than its window")
	if err := parseTraceArgs(fs, tf, args); err != nil {
		return err
	}
	if _, err := model.FeaturesFor(*major); err != nil {
		return usageError{fmt.Errorf("generate-data: --major %d; want one of %v", *major, model.Majors)}
	}
	if len(tf.paths) > 0 {
		var hists []time.Duration
		if *histories != "" {
			h, err := parseHistories(*histories)
			if err != nil {
				return usageError{fmt.Errorf("generate-data: --trace-history: %w", err)}
			}
			hists = h
		}
		return generateFromTraces(ctx, tf, *mix, *stride, hists, *tuning, *seed, *major, *output, stdout)
	}
	if *mix != 0 || *histories != "" || *tuning {
		return usageError{fmt.Errorf("generate-data: --mix-synthetic, --trace-history and --tuning-holdout need --trace; use --samples alone for synthetic data")}
	}
	if *samples < 1 || *samples > 10_000_000 {
		return usageError{fmt.Errorf("generate-data: --samples %d; want 1..10000000", *samples)}
	}
	start := time.Now()
	d, err := trainer.Generate(ctx, trainer.GenConfig{Samples: *samples, Seed: *seed, Major: *major})
	if err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	if err := trainer.WriteNPZ(*output, d); err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d major-%d samples (%d features) to %s in %s\n", d.N, *major, d.FeatureWidth(), *output, time.Since(start).Round(time.Millisecond))
	printWorkloadCounts(stdout, d)
	return nil
}

func printWorkloadCounts(stdout io.Writer, d *trainer.Dataset) {
	counts := make([]int, trainer.NumWorkloads)
	for _, w := range d.Workload {
		counts[w]++
	}
	for i, n := range counts {
		fmt.Fprintf(stdout, "  %-9s %d\n", trainer.WorkloadNames[i], n)
	}
}

// generateFromTraces writes samples cut from traces, mixed with mix
// simulated ones.
func generateFromTraces(ctx context.Context, tf *traceFlags, mix int, stride time.Duration, hists []time.Duration, excludeTuning bool, seed int64, major int, output string, stdout io.Writer) error {
	if mix < 0 || mix > 10_000_000 {
		return usageError{fmt.Errorf("generate-data: --mix-synthetic %d; want 0..10000000", mix)}
	}
	if stride < trainer.Step || stride%trainer.Step != 0 {
		return usageError{fmt.Errorf("generate-data: --trace-stride %v; want a positive multiple of %v", stride, trainer.Step)}
	}
	start := time.Now()
	series, files, format, err := tf.load("generate-data")
	if err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	steps := make([]int, len(hists))
	for i, h := range hists {
		if h%trainer.Step != 0 {
			return usageError{fmt.Errorf("generate-data: --trace-history %v; want a multiple of %v", h, trainer.Step)}
		}
		steps[i] = int(h / trainer.Step)
	}
	d, err := traces.TrainingData(series, steps, int(stride/trainer.Step), major, excludeTuning)
	if err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	real := d.N
	if mix > 0 {
		syn, err := trainer.Generate(ctx, trainer.GenConfig{Samples: mix, Seed: seed, Major: major})
		if err != nil {
			return fmt.Errorf("generate-data: %w", err)
		}
		d = traces.Concat(d, syn)
	}
	if err := trainer.WriteNPZ(output, d); err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d samples to %s in %s: %d from %d containers in %d %s trace files (one per %v), %d simulated\n",
		d.N, output, time.Since(start).Round(time.Millisecond), real, len(series), len(files), format, stride, mix)
	fmt.Fprintln(stdout, "workload types (trace samples tagged with the synthetic type they resemble):")
	printWorkloadCounts(stdout, d)
	return nil
}

// parseFlags parses and refuses positional arguments (a common typo source).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
