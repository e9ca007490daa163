package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"recommendation-api/internal/trainer"
)

// runGenerateData simulates container usage and writes features and labels:
//
//	recommendation-api generate-data --samples 100000 --output data/training_data.npz [--seed N]
func runGenerateData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate-data", flag.ContinueOnError)
	fs.SetOutput(stderr)
	samples := fs.Int("samples", 100000, "number of containers to simulate (1..10,000,000)")
	output := fs.String("output", "data/training_data.npz", "where to write the .npz (X [N,12] float32, Y [N,5] float32, workload [N] int32)")
	seed := fs.Int64("seed", 42, "random seed; the same seed gives the same bytes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *samples < 1 || *samples > 10_000_000 {
		return usageError{fmt.Errorf("generate-data: --samples %d; want 1..10000000", *samples)}
	}
	start := time.Now()
	d, err := trainer.Generate(ctx, trainer.GenConfig{Samples: *samples, Seed: *seed})
	if err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	if err := trainer.WriteNPZ(*output, d); err != nil {
		return fmt.Errorf("generate-data: %w", err)
	}
	counts := make([]int, trainer.NumWorkloads)
	for _, w := range d.Workload {
		counts[w]++
	}
	fmt.Fprintf(stdout, "wrote %d samples to %s in %s\n", d.N, *output, time.Since(start).Round(time.Millisecond))
	for i, n := range counts {
		fmt.Fprintf(stdout, "  %-9s %d\n", trainer.WorkloadNames[i], n)
	}
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
