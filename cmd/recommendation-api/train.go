package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// runTrain trains, quantizes, evaluates and writes a model version:
//
//	recommendation-api train --data data/training_data.npz --output models/ [--version vMAJOR.0.0] [--epochs N] [--seed N]
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "data/training_data.npz", "training data written by generate-data")
	output := fs.String("output", "models/", "directory for predictor_v{version}.onnx, predictor.onnx and manifest.json")
	version := fs.String("version", "", "semver of the new model, v{major}.{minor}.{patch}; empty means v{the data's major}.0.0")
	def := trainer.DefaultTrainConfig()
	epochs := fs.Int("epochs", def.Epochs, "maximum epochs (early stopping may end sooner), 1..1000")
	seed := fs.Int64("seed", def.Seed, "random seed for initialization, split and shuffling")
	batch := fs.Int("batch-size", def.BatchSize, "rows per optimizer step")
	lr := fs.Float64("learning-rate", 0, "Adam learning rate in (0, 1] (default: the major's, 0.003)")
	evalSamples := fs.Int("eval-samples", 20000, "size of the freshly generated held-out set the manifest's metrics come from")
	parent := fs.String("parent", "", "version this one was trained to replace (recorded in the manifest)")
	memUnder := fs.Float64("mem-limit-under", -1, "share of validation rows whose memory limit may fall below the following day's peak, which calibration aims at (default: the major's)")
	cpuUnder := fs.Float64("cpu-limit-under", -1, "likewise for the CPU limit against the following day's p99 (default: the major's)")
	memPrice := fs.Float64("mem-overrun-price", -1, "train the memory limit on its scored cost: relative slack plus this price per following day it falls below the peak (0 = pinball loss; default: the major's)")
	cpuPrice := fs.Float64("cpu-overrun-price", -1, "likewise for the CPU limit: this price times the share of the following day's samples it throttles (--cpu-throttle-share), or per following day it falls below its p99 (default: the major's)")
	throttle := fs.Bool("cpu-throttle-share", false, "the CPU limit's overrun term is --cpu-overrun-price times the share of the following day's samples above the limit (read off its p90 and p99), as throttling is scored, instead of a step at its p99 (docs/model.md compares them)")
	split := fs.Bool("split-towers", false, "train the CPU outputs and the memory outputs (with the confidence) as two networks side by side in one graph, each as wide as the shared one, so no hidden unit serves both (docs/model.md)")
	separate := fs.Bool("separate-cpu", false, "serve the CPU outputs of a network trained with the CPU settings given (--cpu-throttle-share, --cpu-overrun-price) beside the memory outputs and confidence of one trained on the same split with the major's default CPU settings, each exactly the network it would be alone (docs/model.md)")
	ensemble := fs.Int("ensemble", 1, "train this many networks on the same split, each from its own initial weights, and serve their mean as one network (1..16; docs/model.md)")
	averaging := fs.Float64("weight-averaging", -1, "decay per step of the moving average of the weights that is kept instead of the last step's, in (0,1); 0 = off (default: the major's)")
	width := fs.Float64("overrun-width", 0, "width of the overrun step in normalized output units, (0, 1] (default 0.01, about 10% of a limit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var (
		v   model.Version
		d   *trainer.Dataset
		err error
	)
	if *version != "" {
		if v, err = model.ParseVersion(*version); err != nil {
			return usageError{fmt.Errorf("train: --version: %w", err)}
		}
	} else { // the data says which major: read it first
		if d, err = trainer.ReadNPZ(*data); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		major, err := d.Major()
		if err != nil {
			return fmt.Errorf("train: %s: %w", *data, err)
		}
		v = model.Version{Major: major}
	}
	if *parent != "" {
		if _, err := model.ParseVersion(*parent); err != nil {
			return usageError{fmt.Errorf("train: --parent: %w", err)}
		}
	}
	cfg := trainer.DefaultTrainConfigFor(v.Major)
	cfg.Epochs, cfg.Seed, cfg.BatchSize = *epochs, *seed, *batch
	if *lr != 0 {
		cfg.LearningRate = *lr
	}
	for _, u := range []struct {
		v *float64
		o int
	}{{memUnder, 3}, {cpuUnder, 1}} {
		if *u.v >= 0 {
			if *u.v >= 0.5 {
				return usageError{fmt.Errorf("train: limit under-share %v; want [0, 0.5)", *u.v)}
			}
			cfg.UnderTarget[u.o] = *u.v
		}
	}
	for _, u := range []struct {
		v *float64
		o int
	}{{memPrice, 3}, {cpuPrice, 1}} {
		if *u.v >= 0 {
			if *u.v > 100 {
				return usageError{fmt.Errorf("train: overrun price %v; want 0..100", *u.v)}
			}
			cfg.OverrunPrice[u.o] = *u.v
		}
	}
	cfg.OverrunWidth = *width
	cfg.ThrottleShare = *throttle
	cfg.SplitTowers = *split
	cfg.SeparateCPU = *separate
	if *ensemble < 1 || *ensemble > 16 {
		return usageError{fmt.Errorf("train: --ensemble %d; want 1..16", *ensemble)}
	}
	cfg.Ensemble = *ensemble
	if *averaging >= 0 {
		cfg.Averaging = *averaging
	}
	if *epochs < 1 || *epochs > 1000 {
		return usageError{fmt.Errorf("train: --epochs %d; want 1..1000", *epochs)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("train: %w", err)}
	}
	// Refuse early, before minutes of training, if the version is taken.
	if _, err := os.Stat(filepath.Join(*output, trainer.VersionedModelFile(v))); err == nil {
		return fmt.Errorf("train: %w: %s already exists in %s", model.ErrVersionExists, v, *output)
	}
	if d == nil {
		if d, err = trainer.ReadNPZ(*data); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	raw, err := os.ReadFile(*data)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	dataMajor, err := d.Major()
	if err != nil {
		return fmt.Errorf("train: %s: %w", *data, err)
	}
	if dataMajor != v.Major {
		return usageError{fmt.Errorf("train: %s holds major-%d features (%d per row) but --version %s is major %d; generate the data with --major %d or pick a v%d version",
			*data, dataMajor, d.FeatureWidth(), v, v.Major, v.Major, dataMajor)}
	}
	fmt.Fprintf(stdout, "training %s on %d samples of %d features from %s\n", v, d.N, d.FeatureWidth(), *data)
	res, err := trainer.Train(ctx, d, cfg, func(p trainer.Progress) {
		if p.Phase != "training" {
			fmt.Fprintf(stdout, "%s (best epoch %d, validation loss %.5f)\n", p.Phase, p.BestEpoch, p.ValLoss)
			return
		}
		fmt.Fprintf(stdout, "epoch %3d/%d  loss %.5f  val %.5f  best %3d  elapsed %6s  left ≤ %s\n",
			p.Epoch, p.Epochs, p.TrainLoss, p.ValLoss, p.BestEpoch, p.Elapsed.Round(100*time.Millisecond), p.Remaining.Round(100*time.Millisecond))
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	res.Record.DataFile, res.Record.DataSHA256, res.Record.ParentVersion = *data, model.SHA256Hex(raw), *parent

	evalSeed := *seed + 1_000_003
	ev, err := trainer.GenerateEval(ctx, trainer.GenConfig{Samples: *evalSamples, Seed: evalSeed, Major: v.Major})
	if err != nil {
		return fmt.Errorf("train: held-out set: %w", err)
	}
	goPredict := func(x []float32, n int) ([]float32, error) { return res.Quant.Forward(x, n), nil }
	metrics, err := trainer.Evaluate(goPredict, res.Float, ev, model.DefaultOutputs(), evalSeed)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	b, err := onnxfile.Encode(res.Quant, v)
	if err != nil {
		return fmt.Errorf("train: encode ONNX: %w", err)
	}
	m := trainer.NewManifest(v, b, res, metrics, buildTime())
	if err := trainer.WriteModelDir(*output, b, m); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stdout, "\n%s: %d parameters, %d bytes, %d/%d epochs (best %d) in %s\n", v, m.Architecture.Parameters,
		len(b), res.Record.EpochsRun, res.Record.Epochs, res.Record.BestEpoch, time.Duration(res.Record.DurationMS)*time.Millisecond)
	fmt.Fprintf(stdout, "calibration logit shifts: %v\n", res.Shift)
	printMetrics(stdout, metrics)
	fmt.Fprintf(stdout, "wrote %s, %s and %s to %s\n", trainer.VersionedModelFile(v), trainer.ActiveModelFile, trainer.ActiveManifestFile, *output)
	return nil
}

// printMetrics prints the held-out table: MAE per output and model vs VPA.
func printMetrics(w io.Writer, m *model.Metrics) {
	fmt.Fprintf(w, "\nheld-out set: %d samples (seed %d)\n", m.HeldOutSamples, m.HeldOutSeed)
	fmt.Fprintf(w, "  %-12s %10s %10s\n", "output", "MAE int8", "MAE float")
	for _, o := range model.DefaultOutputs() {
		f := "-"
		if m.FloatMAE != nil {
			f = fmt.Sprintf("%.4f", m.FloatMAE[o.Name])
		}
		fmt.Fprintf(w, "  %-12s %10.4f %10s\n", o.Name, m.MAE[o.Name], f)
	}
	fmt.Fprintf(w, "\n  %-20s %10s %10s\n", "vs following window", "model", "VPA p90")
	row := func(name string, a, b float64) { fmt.Fprintf(w, "  %-20s %10.4f %10.4f\n", name, a, b) }
	row("cpu request slack", m.Model.CPURequestSlack, m.Baseline.CPURequestSlack)
	row("cpu limit slack", m.Model.CPULimitSlack, m.Baseline.CPULimitSlack)
	row("mem request slack", m.Model.MemRequestSlack, m.Baseline.MemRequestSlack)
	row("mem limit slack", m.Model.MemLimitSlack, m.Baseline.MemLimitSlack)
	row("OOM rate", m.Model.OOMRate, m.Baseline.OOMRate)
	row("throttling rate", m.Model.ThrottleRate, m.Baseline.ThrottleRate)
}

// buildTime is now, or SOURCE_DATE_EPOCH when set (reproducible manifests).
func buildTime() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now()
}
