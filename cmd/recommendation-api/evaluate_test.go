package main

// Tests of evaluate (trace replay against the model and the baselines) and
// of generate-data reading traces, through run as main calls it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// sharedTraces are a handful of the shared Bitbrains VMs, or a skip.
func sharedTraces(t *testing.T, names ...int) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		dir := filepath.Join("..", "..", "..", "shared", "data")
		if d := os.Getenv("RECO_SHARED_DATA"); d != "" {
			dir = d // a checkout elsewhere
		}
		p := filepath.Join(dir, "bitbrains-rnd-2013-7", fmt.Sprintf("%d.csv.gz", n))
		if _, err := os.Stat(p); err != nil {
			t.Skipf("shared Bitbrains data not present: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// genericTrace writes a generic CSV of four containers over five days: a
// diurnal CPU load and a steady memory working set. web-1 and db-0 are
// held out for evaluation (traces.HeldOut), web-0 and db-1 are training
// containers.
func genericTrace(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("container_id,timestamp,cpu_cores,memory_bytes\n")
	const start = 1709251200 // 2024-03-01T00:00:00Z
	for i := range 5 * 288 {
		for c, id := range []string{"web-1", "db-0", "web-0", "db-1"} {
			cpu := 0.5 * float64(c%2+1) * (1.2 + math.Sin(2*math.Pi*float64(i)/288))
			mem := float64(int64(c%2+1)<<30) * (1 + 0.05*math.Sin(float64(i)))
			fmt.Fprintf(&b, "%s,%d,%.4f,%.0f\n", id, start+300*i, cpu, mem)
		}
	}
	p := filepath.Join(t.TempDir(), "trace.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluateBitbrains(t *testing.T) {
	needORT(t)
	files := sharedTraces(t, 1, 2, 5, 6, 7) // VM 2 is a training container, the others held out
	dir := t.TempDir()
	report, png := filepath.Join(dir, "report.json"), filepath.Join(dir, "slack.png")
	args := append([]string{"evaluate", "--out", report, "--plot", png, "--trace"}, files...)
	out := mustRun(t, args...)
	for _, want := range []string{
		"5 bitbrains trace files, 5 containers (4 held out from training), 7d history: 4 held-out containers scored",
		"2d history: 4 held-out containers scored", "model v", "(embedded default)",
		"vpa-upper-bound:", "vpa-target:", "krr-simple:", "provisioned:", "memory limit slack (relative)", "container-days with an OOM",
		"at equal risk", "model at vpa-upper-bound's OOM rate", "elapsed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var ev traces.Evaluation
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Reports) != 2 || ev.Reports[0].HistoryDays != 7 || ev.Reports[1].HistoryDays != 2 {
		t.Fatalf("%d reports; want a 7-day and a 2-day one", len(ev.Reports))
	}
	for _, rep := range ev.Reports {
		if slices.Contains(rep.ContainerIDs, "2") || len(rep.ContainerIDs) != 4 || len(rep.Recommenders) != 5 || rep.Recommenders[0].Name != traces.NameModel {
			t.Errorf("%g-day report: containers %v, recommenders %+v; want 1, 5, 6, 7 (not the training VM 2), model first of 5",
				rep.HistoryDays, rep.ContainerIDs, rep.Recommenders)
		}
	}
	if a, b := ev.Reports[0].ContainerDays, ev.Reports[1].ContainerDays; a >= b || a < 40 {
		t.Errorf("container-days: %d at 7 days, %d at 2; want fewer at 7 (5 more days of history needed), at least 40", a, b)
	}
	if img, err := os.ReadFile(png); err != nil || len(img) < 1000 || string(img[1:4]) != "PNG" {
		t.Errorf("plot: %d bytes, %v; want a PNG", len(img), err)
	}

	// The baselines alone on every container, VM 2 included.
	out = mustRun(t, append([]string{"evaluate", "--no-model", "--containers", "all", "--history", "2d", "--out", report, "--trace"}, files...)...)
	if !strings.Contains(out, "5 all containers scored") || strings.Contains(out, "model v") {
		t.Errorf("--no-model --containers all:\n%s", out)
	}
}

func TestEvaluateGenericWithModelFile(t *testing.T) {
	needORT(t)
	trace := genericTrace(t)
	// A small model trained here, read back with its manifest beside it.
	dir := t.TempDir()
	data := filepath.Join(dir, "d.npz")
	mustRun(t, "generate-data", "--major", "1", "--trace", trace, "--mix-synthetic", "2000", "--output", data)
	mustRun(t, "train", "--data", data, "--output", dir, "--version", "v1.3.0", "--epochs", "2", "--eval-samples", testEvalSamples)
	out := mustRun(t, "evaluate", "--format", "generic", "--model", filepath.Join(dir, "predictor.onnx"), "--trace", trace)
	for _, want := range []string{"7d history: nothing to score", "2d history: 2 held-out containers scored, 6 container-days", "model v1.3.0 (", "vpa-upper-bound:", "krr-simple:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "provisioned:") {
		t.Errorf("generic traces have no provisioned capacity, yet the output scores it:\n%s", out)
	}
}

// TestEvaluateServer asks a running server (the wiring main uses, serving
// the embedded default model) over gRPC with raw metrics and finds the
// numbers evaluate computes in-process with the same model.
func TestEvaluateServer(t *testing.T) {
	needORT(t)
	trace := genericTrace(t)
	ts := startServer(t, nil)
	dir := t.TempDir()
	local, remote := filepath.Join(dir, "local.json"), filepath.Join(dir, "remote.json")
	// Raw metrics with every catalogue field set are answered by the
	// newest major the server serves: on an empty registry, the embedded
	// v2.0.0. Score the same model in process.
	mustRun(t, "evaluate", "--out", local, "--model", filepath.Join("..", "..", "internal", "defaultmodel", "v2", "predictor.onnx"), "--trace", trace)
	out := mustRun(t, "evaluate", "--server", ts.grpcAddr, "--batch", "4", "--out", remote, "--trace", trace)
	if !strings.Contains(out, "(server "+ts.grpcAddr+")") {
		t.Errorf("output does not name the server:\n%s", out)
	}
	var ea, eb traces.Evaluation
	for p, r := range map[string]*traces.Evaluation{local: &ea, remote: &eb} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(ea.Reports) != 1 || len(eb.Reports) != 1 {
		t.Fatalf("%d and %d reports; want one each (5 days: the 2-day history only)", len(ea.Reports), len(eb.Reports))
	}
	a, b := ea.Reports[0], eb.Reports[0]
	ma, mb := a.Summary(traces.NameModel), b.Summary(traces.NameModel)
	if ma == nil || mb == nil {
		t.Fatalf("model missing from a report: %+v / %+v", a.Recommenders, b.Recommenders)
	}
	// The server rounds to millicores and bytes: slack may differ in the
	// last digits, nothing more.
	if ma.OOMDays != mb.OOMDays || math.Abs(ma.MemLimitSlack.Mean-mb.MemLimitSlack.Mean) > 1e-3 || math.Abs(ma.CPULimitSlack.Mean-mb.CPULimitSlack.Mean) > 1e-3 {
		t.Errorf("in-process model %+v\nserver model     %+v\nwant the same scores", ma, mb)
	}
	if _, err := runCmd(t, "evaluate", "--server", ts.grpcAddr, "--model", "x.onnx", "--trace", trace); err == nil {
		t.Errorf("--server with --model: no error")
	}
}

func TestEvaluateBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv.gz")
	os.WriteFile(bad, []byte("Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB]\n1372629804;\t2;\t5000;\tlots;\t1;\t1;\t1\n"), 0o644)
	short := genericTrace(t)
	for _, c := range []struct {
		name   string
		args   []string
		usage  bool
		phrase string
	}{
		{"NoTrace", []string{"evaluate"}, true, "no traces"},
		{"UnknownFormat", []string{"evaluate", "--format", "parquet", "--trace", short}, true, "want generic or bitbrains"},
		{"MissingFile", []string{"evaluate", "--trace", filepath.Join(dir, "nope.csv")}, false, "nope.csv"},
		{"Malformed", []string{"evaluate", "--trace", bad}, false, bad + ":2: malformed trace: column 4 (CPU usage [MHz]) is \"lots\""},
		{"WrongFormat", []string{"evaluate", "--format", "bitbrains", "--trace", short}, false, short + ":1:"},
		{"MissingModel", []string{"evaluate", "--model", filepath.Join(dir, "none.onnx"), "--trace", short}, false, "none.onnx"},
		{"BadHistory", []string{"evaluate", "--history", "7d,3w", "--trace", short}, true, "want Nd (days) or a duration"},
		{"ShortHistory", []string{"evaluate", "--history", "2h", "--trace", short}, true, "want 1d to 60d"},
		{"AllWithModel", []string{"evaluate", "--containers", "all", "--trace", short}, true, "a model is scored on held-out containers only"},
		{"BadContainers", []string{"evaluate", "--no-model", "--containers", "some", "--trace", short}, true, "want held-out, tuning or all"},
		{"NoModelAndModel", []string{"evaluate", "--no-model", "--model", "x.onnx", "--trace", short}, true, "want one"},
		{"ValidateBadContainers", []string{"validate", "--containers", "all", "--trace", short}, true, "want held-out or tuning"},
		{"TuningHoldoutWithoutTrace", []string{"generate-data", "--tuning-holdout", "--output", filepath.Join(dir, "x.npz")}, true, "need --trace"},
		{"TooShortForAny", []string{"evaluate", "--no-model", "--history", "7d", "--trace", short}, false, "no complete history"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCmd(t, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			var u usageError
			if errors.As(err, &u) != c.usage {
				t.Errorf("usage error = %v; want %v (err %v)", !c.usage, c.usage, err)
			}
			if !strings.Contains(err.Error(), c.phrase) {
				t.Errorf("err = %q; want it to say %q", err, c.phrase)
			}
		})
	}
}

func TestGenerateDataFromTraces(t *testing.T) {
	trace := genericTrace(t)
	dir := t.TempDir()
	only := filepath.Join(dir, "trace.npz")
	out := mustRun(t, "generate-data", "--major", "1", "--trace", trace, "--output", only)
	d, err := trainer.ReadNPZ(only)
	if err != nil {
		t.Fatal(err)
	}
	// Five days, hourly: 24·(5−3)+1 = 49 samples per training container
	// (two of the four; the held-out two give none).
	if d.N != 98 || !strings.Contains(out, "98 from 4 containers") {
		t.Errorf("%d samples; output:\n%s\nwant 98 from 4 containers", d.N, out)
	}
	mixed := filepath.Join(dir, "mixed.npz")
	mustRun(t, "generate-data", "--major", "1", "--trace", trace, "--mix-synthetic", "500", "--trace-stride", "2h", "--output", mixed)
	if d, err = trainer.ReadNPZ(mixed); err != nil || d.N != 50+500 {
		t.Errorf("mixed: %v, N = %d; want 25·2 + 500 = 550", err, d.N)
	}
	// Each history length adds its own samples: 1 day of history leaves
	// 24·(5−2)+1 = 73 per training container besides the 49 of 2 days.
	hists := filepath.Join(dir, "hists.npz")
	mustRun(t, "generate-data", "--major", "1", "--trace", trace, "--trace-history", "2d,1d", "--output", hists)
	if d, err = trainer.ReadNPZ(hists); err != nil || d.N != 98+146 {
		t.Errorf("two history lengths: %v, N = %d; want 98 + 2·73 = 244", err, d.N)
	}
	for _, args := range [][]string{
		{"generate-data", "--mix-synthetic", "5", "--output", mixed},
		{"generate-data", "--trace-history", "2d", "--output", mixed},
		{"generate-data", "--trace", trace, "--trace-history", "12h", "--output", mixed},
		{"generate-data", "--trace", trace, "--trace-stride", "7m", "--output", mixed},
		{"generate-data", "--trace", trace, "--mix-synthetic", "-1", "--output", mixed},
	} {
		var u usageError
		if _, err := runCmd(t, args...); !errors.As(err, &u) {
			t.Errorf("%v: err = %v; want a usage error", args, err)
		}
	}
}

// Without --model, evaluate scores the newest embedded default, or the one
// --major names.
func TestEvaluateDefaultMajor(t *testing.T) {
	needORT(t)
	trace := genericTrace(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "model v2.0.0 (embedded default)"},
		{[]string{"--major", "1"}, "model v1.1.0 (embedded default)"},
		{[]string{"--major", "2"}, "model v2.0.0 (embedded default)"},
	} {
		out := mustRun(t, append([]string{"evaluate", "--history", "2d", "--trace", trace}, c.args...)...)
		if !strings.Contains(out, c.want) {
			t.Errorf("evaluate %v: stdout lacks %q:\n%s", c.args, c.want, out)
		}
	}
	for _, args := range [][]string{
		{"evaluate", "--history", "2d", "--major", "3", "--trace", trace},
		{"evaluate", "--history", "2d", "--major", "1", "--model", "x.onnx", "--trace", trace},
	} {
		var u usageError
		if _, err := runCmd(t, args...); !errors.As(err, &u) {
			t.Errorf("%v: err = %v; want a usage error", args, err)
		}
	}
}
