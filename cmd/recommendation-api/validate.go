package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// agreementTolerance bounds |ONNX Runtime − pure-Go forward| on any output:
// both compute the same float32 graph, only the summation order differs.
const agreementTolerance = 1e-4

// runValidate checks a model file and evaluates it on fresh held-out data:
//
//	recommendation-api validate --model models/predictor.onnx [--samples N] [--seed N]
//
// It exits non-zero naming the first failed gate.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("model", "models/predictor.onnx", "model file; its manifest.json (or manifest_v{version}.json) must be beside it")
	samples := fs.Int("samples", 20000, "size of the freshly generated held-out set")
	seed := fs.Int64("seed", 7_777_777, "seed of the held-out set (differs from training seeds)")
	lib := fs.String("onnxruntime-lib", "", "path to libonnxruntime.so (default: $ONNXRUNTIME_LIB, .tools/lib, system)")
	baseline := fs.Bool("baseline-gates", true, "also fail when the model does not beat the VPA baseline on the synthetic held-out set (slack lower, OOM rate no higher); false makes those gates advisory")
	tf := addTraceFlags(fs)
	history := fs.String("history", "", "with --trace: the history length to replay (Nd or a duration; default: the model's window)")
	containers := fs.String("containers", "held-out", "with --trace: the containers replayed: held-out, or tuning (the training containers generate-data --tuning-holdout leaves out, for a model trained without them)")
	if err := parseTraceArgs(fs, tf, args); err != nil {
		return err
	}
	var hist time.Duration
	if *history != "" {
		h, err := parseHistories(*history)
		if err != nil || len(h) != 1 {
			return usageError{fmt.Errorf("validate: --history %q; want one length, Nd or a duration such as 48h, from 1d to 60d", *history)}
		}
		hist = h[0]
	}
	which, err := traces.ParseContainers(*containers, traces.HeldOutContainers, traces.TuningContainers)
	if err != nil {
		return usageError{fmt.Errorf("validate: %w", err)}
	}
	if *samples < 100 || *samples > 1_000_000 {
		return usageError{fmt.Errorf("validate: --samples %d; want 100..1000000", *samples)}
	}
	gates, err := validateModel(ctx, *path, *samples, *seed, *lib, *baseline, tf, hist, which, stdout)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	fmt.Fprintln(stdout, "\ngates:")
	var failed []string
	for _, g := range gates {
		mark := "PASS"
		switch {
		case g.Advisory && g.Passed:
			mark = "info"
		case g.Advisory:
			mark = "MISS"
		case !g.Passed:
			mark = "FAIL"
			failed = append(failed, g.Name)
		}
		fmt.Fprintf(stdout, "  %s  %-22s %s\n", mark, g.Name, g.Detail)
	}
	if len(failed) > 0 {
		return fmt.Errorf("validate: gate %q failed (%d of %d failed)", failed[0], len(failed), len(gates))
	}
	fmt.Fprintln(stdout, "all gates passed")
	return nil
}

func validateModel(ctx context.Context, path string, samples int, seed int64, lib string, baseline bool, tf *traceFlags, hist time.Duration, which traces.Containers, stdout io.Writer) ([]trainer.Gate, error) {
	b, m, err := trainer.ReadModelFile(path)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "%s: %s, %d bytes, sha256 %s (matches manifest)\n", path, m.Version, len(b), m.Model.SHA256)
	var gates []trainer.Gate
	gates = append(gates, trainer.Gate{Name: "checksum", Passed: true, Detail: "sha256 and size match the manifest"})

	q, _, err := onnxfile.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := serving.InitRuntime(lib); err != nil {
		return nil, err
	}
	sess, err := serving.NewSession(b, serving.SessionOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer sess.Close()

	sig := sess.Signature()
	width, _, ferr := model.FormatFor(m.Version.Major)
	wantSig := model.SignatureFor(width)
	gates = append(gates, trainer.Gate{Name: "signature", Passed: ferr == nil && sig.Equal(wantSig) && sig.Equal(m.Signature) && m.Width() == width,
		Detail: fmt.Sprintf("ONNX Runtime reports %v -> %v; major %d is served as %v -> %v",
			sig.Inputs, sig.Outputs, m.Version.Major, wantSig.Inputs, wantSig.Outputs)})
	if ferr != nil {
		return gates, nil
	}
	// What the server checks on load, and here also that both are declared.
	if aerr := m.Architecture.Describes(q); aerr != nil || !m.Architecture.Declared() {
		detail := "the manifest declares no layers or no parameter count"
		if aerr != nil {
			detail = aerr.Error()
		}
		gates = append(gates, trainer.Gate{Name: "architecture",
			Detail: fmt.Sprintf("%s; the file has layer widths %v and %d weights and biases", detail, q.Widths(), q.Params())})
	}

	golden, err := sess.Run(m.GoldenInput(), len(m.Golden.Inputs))
	if err != nil {
		return nil, err
	}
	gerr := m.CheckGolden(golden)
	gates = append(gates, trainer.Gate{Name: "golden-rows", Passed: gerr == nil, Detail: errDetail(gerr, fmt.Sprintf("%d rows within %g", len(m.Golden.Inputs), m.Golden.Tolerance))})

	// ONNX Runtime against the pure-Go forward pass of the same int8 weights.
	rng := rand.New(rand.NewPCG(uint64(seed), 3))
	const rows = 1000
	x := make([]float32, rows*width)
	for i := range x {
		x[i] = rng.Float32()
	}
	got, err := sess.Run(x, rows)
	if err != nil {
		return nil, err
	}
	want := q.Forward(x, rows)
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	gates = append(gates, trainer.Gate{Name: "ort-vs-go", Passed: worst <= agreementTolerance,
		Detail: fmt.Sprintf("max |ONNX Runtime − Go| over %d random rows %.2g; allowed %g", rows, worst, agreementTolerance)})

	ev, err := trainer.GenerateEval(ctx, trainer.GenConfig{Samples: samples, Seed: seed, Major: m.Version.Major})
	if err != nil {
		return nil, err
	}
	metrics, err := trainer.Evaluate(sess.Run, nil, ev, m.Outputs, seed)
	if err != nil {
		return nil, err
	}
	printMetrics(stdout, metrics) // fresh rows: the float twin was not run on them
	quant, err := int8VsFloatGate(ctx, q, m)
	if err != nil {
		return nil, err
	}
	pred, err := sess.Run(ev.X, ev.N)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "\n  %-9s %6s  %-17s %-17s %-17s %-17s\n", "workload", "n", "mem limit slack", "OOM rate", "cpu limit slack", "throttling")
	fmt.Fprintf(stdout, "  %-9s %6s  %-17s %-17s %-17s %-17s\n", "", "", "model / VPA", "model / VPA", "model / VPA", "model / VPA")
	for _, w := range trainer.ScoreByWorkload(pred, ev, m.Outputs) {
		fmt.Fprintf(stdout, "  %-9s %6d  %.3f / %.3f     %.3f / %.3f     %.3f / %.3f     %.3f / %.3f\n", w.Workload, w.N,
			w.Model.MemLimitSlack, w.Baseline.MemLimitSlack, w.Model.OOMRate, w.Baseline.OOMRate,
			w.Model.CPULimitSlack, w.Baseline.CPULimitSlack, w.Model.ThrottleRate, w.Baseline.ThrottleRate)
	}
	// The model's own answers that Predict has to make admissible
	// (minimum ≤ request ≤ limit); the scores above are of the corrected ones.
	bad := trainer.CountInadmissible(pred, ev.N, m.Outputs)
	gates = append(gates, trainer.Gate{Name: "admissible", Passed: bad.Any == 0, Advisory: true,
		Detail: fmt.Sprintf("model answers Predict corrects: %d of %d rows (CPU request > limit %d, memory request > limit %d, below %dm / %d bytes %d) (advisory)",
			bad.Any, bad.Rows, bad.CPUOverLimit, bad.MemOverLimit, model.MinCPUMillicores, model.MinMemoryBytes, bad.BelowMinimums)})
	if quant != nil {
		gates = append(gates, *quant)
	}
	recs := make([]trainer.Rec, ev.N)
	for i := range recs {
		recs[i] = trainer.RecFromOutputs(pred[i*model.NumOutputs:(i+1)*model.NumOutputs], m.Outputs)
	}
	eq := trainer.EqualRiskOf(recs, ev, metrics)
	for _, g := range trainer.Gates(metrics, nil, &eq) {
		g.Advisory = g.Advisory || !baseline
		gates = append(gates, g)
	}
	if len(tf.paths) > 0 {
		real, err := realTraceGates(ctx, tf, m, sess.Run, hist, which, stdout)
		if err != nil {
			return nil, err
		}
		gates = append(gates, real...)
	}
	return gates, nil
}

// realTraceGates replays the held-out (or tuning) containers of the traces with a
// history of length (0: the model's window) and judges the model against
// VPA and KRR on them (traces.Gates).
func realTraceGates(ctx context.Context, tf *traceFlags, m *model.Manifest, run func([]float32, int) ([]float32, error), length time.Duration, which traces.Containers, stdout io.Writer) ([]trainer.Gate, error) {
	series, files, format, err := tf.load("validate")
	if err != nil {
		return nil, err
	}
	if length == 0 {
		length = m.HistoryWindow()
	}
	hist := int(length / trainer.Step)
	rep, err := traces.Evaluate(ctx, series, traces.Config{
		Windows: traces.Windows{History: hist}, Containers: which,
		Features: m.Features, Outputs: m.Outputs, Predict: run, Model: m.Version.String(),
		ModelHistory: min(hist, int(m.HistoryWindow()/trainer.Step)),
	})
	if err != nil {
		return nil, fmt.Errorf("real traces: %w", err)
	}
	fmt.Fprintf(stdout, "\n%s real containers: %d %s trace files, %d of %d containers held out, %d container-days of %d %s containers at a %s history (the model's window: %s)\n",
		which, len(files), format, rep.HeldOutSeries, rep.Series, rep.ContainerDays, len(rep.ContainerIDs), which, days(length), days(m.HistoryWindow()))
	fmt.Fprintf(stdout, "  %-16s %16s %9s %16s %18s\n", "recommender", "mem limit slack", "OOM days", "CPU limit slack", "throttled samples")
	for _, s := range rep.Recommenders {
		fmt.Fprintf(stdout, "  %-16s %15.1f%% %8.1f%% %15.1f%% %17.2f%%\n", s.Name, 100*s.MemLimitSlack.Mean, 100*s.OOMRate, 100*s.CPULimitSlack.Mean, 100*s.ThrottleRate.Mean)
	}
	return traces.Gates(rep, m.Version.Major), nil
}

// reproduceTolerance bounds |MAE recomputed − MAE recorded| on the same
// rows: both are the pure-Go forward pass summed in the same order, so only
// the JSON round trip of the recorded figure could differ.
const reproduceTolerance = 1e-9

// int8VsFloatGate compares the int8 model's error with its float twin's on
// the same rows. The twin's weights are not shipped, only its MAE on the
// manifest's held-out set (metrics.held_out_seed and held_out_samples,
// default workload mix, as train makes it). So the gate regenerates that
// set and checks that the int8 model reproduces the MAE the manifest
// recorded on it, which shows the rows are the same, before comparing the
// two. When it does not reproduce (a set drawn with another workload mix,
// or from traces, by a training job) the gate is advisory and says so: the
// comparison would be of different rows. It returns nil when the manifest
// records no float MAE.
func int8VsFloatGate(ctx context.Context, q *model.QuantizedMLP, m *model.Manifest) (*trainer.Gate, error) {
	if m.Metrics == nil || m.Metrics.FloatMAE == nil {
		return nil, nil
	}
	rec := m.Metrics
	if rec.HeldOutSamples < 1 || rec.HeldOutSamples > 1_000_000 {
		return &trainer.Gate{Name: "int8-vs-float", Advisory: true,
			Detail: fmt.Sprintf("not measured: the manifest's held-out set has %d samples; want 1..1000000", rec.HeldOutSamples)}, nil
	}
	ev, err := trainer.GenerateEval(ctx, trainer.GenConfig{Samples: rec.HeldOutSamples, Seed: rec.HeldOutSeed, Major: m.Version.Major})
	if err != nil {
		return nil, err
	}
	got, err := trainer.Evaluate(func(x []float32, n int) ([]float32, error) { return q.Forward(x, n), nil }, nil, ev, m.Outputs, rec.HeldOutSeed)
	if err != nil {
		return nil, err
	}
	on := fmt.Sprintf("on the manifest's %d held-out rows (seed %d)", rec.HeldOutSamples, rec.HeldOutSeed)
	for _, o := range m.Outputs {
		if d := math.Abs(got.MAE[o.Name] - rec.MAE[o.Name]); !(d <= reproduceTolerance) {
			return &trainer.Gate{Name: "int8-vs-float", Advisory: true,
				Detail: fmt.Sprintf("not measured: %s the int8 %s MAE is %.6f, the manifest recorded %.6f, so these are not the rows its float MAE was measured on (another workload mix or traces)",
					on, o.Name, got.MAE[o.Name], rec.MAE[o.Name])}, nil
		}
	}
	for _, g := range trainer.Gates(got, rec.FloatMAE, nil) {
		if g.Name == "int8-vs-float" {
			g.Detail += "; " + on
			return &g, nil
		}
	}
	return nil, fmt.Errorf("int8-vs-float gate missing from trainer.Gates")
}

func errDetail(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}
