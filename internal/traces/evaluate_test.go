package traces_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
	"recommendation-api/internal/transport"
)

// container simulates days of a container at 5-minute steps as generic
// trace rows: a diurnal CPU load and a slowly growing memory with noise.
func container(id string, days int, seed uint64) traces.Container {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC).Unix()
	n := days * 288
	c := traces.Container{ID: id, File: id + ".csv"}
	base := 0.2 + rng.Float64()
	for i := range n {
		hour := float64(i%288) / 12
		cpu := base * (1 + 0.6*math.Sin(2*math.Pi*hour/24)) * (1 + 0.2*rng.NormFloat64())
		mem := (1 << 30) * (1 + 0.1*float64(i)/288) * (1 + 0.02*rng.NormFloat64())
		jitter := int64(rng.IntN(3)) - 1 // the clock drifts a second either way
		c.Samples = append(c.Samples, traces.Sample{UnixMilli: (start + int64(i)*300 + jitter) * 1000, CPU: max(cpu, 0), Mem: mem})
	}
	return c
}

func series(t testing.TB, cs ...traces.Container) []*traces.Series {
	t.Helper()
	var out []*traces.Series
	for _, c := range cs {
		s, err := traces.Resample(c, trainer.Step)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// defaultMLP is the embedded default model and its pure-Go forward pass.
func defaultMLP(t testing.TB) (*model.Manifest, *model.QuantizedMLP) {
	t.Helper()
	b, m, err := defaultmodel.Load()
	if err != nil {
		t.Skipf("no embedded default model: %v", err)
	}
	q, _, err := onnxfile.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return m, q
}

// servingModels serves one manifest and MLP to transport.PredictServer and
// records the normalized rows it is asked to run.
type servingModels struct {
	man  *model.Manifest
	mlp  *model.QuantizedMLP
	rows []float32
}

func (s *servingModels) Acquire(string) (transport.Lease, error) { return s, nil }
func (s *servingModels) Ready() bool                             { return true }
func (s *servingModels) Manifest() *model.Manifest               { return s.man }
func (s *servingModels) Release()                                {}
func (s *servingModels) Run(x []float32, n int) ([]float32, error) {
	s.rows = append(s.rows, x...)
	return s.mlp.Forward(x, n), nil
}

// TestFeaturesMatchServingRawPath checks that evaluate feeds the model
// exactly what the server feeds it for an agent that computes the raw
// metrics of the same history with features.FromHistory and sends them to
// Predict: the same normalized rows bit for bit, hence the same answers.
func TestFeaturesMatchServingRawPath(t *testing.T) {
	t.Parallel()
	man, mlp := defaultMLP(t)
	ss := series(t, container("a", 6, 1), container("b", 5, 2))
	// Give one container a provisioned CPU limit so throttle_ratio is not 0.
	ss[1].CPUCap, ss[1].MemCap = make([]float64, len(ss[1].CPU)), make([]float64, len(ss[1].CPU))
	for i := range ss[1].CPUCap {
		ss[1].CPUCap[i], ss[1].MemCap[i] = 0.5, 8<<30
	}

	var evalRows, evalOut []float32
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{
		Features: man.Features, Outputs: man.Outputs, PerDay: true,
		Predict: func(x []float32, n int) ([]float32, error) {
			evalRows = append(evalRows, x...)
			y := mlp.Forward(x, n)
			evalOut = append(evalOut, y...)
			return y, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	// The agent's side: raw metrics of each history, sent to Predict.
	served := &servingModels{man: man, mlp: mlp}
	srv := transport.NewPredictServer(served, transport.PredictOptions{}, nil)
	req := &recommendationv1.PredictRequest{}
	for _, s := range ss {
		pts, _ := traces.Points(s, traces.Windows{})
		for _, p := range pts {
			r, err := features.FromHistory(p.History, p.AgeDays)
			if err != nil {
				t.Fatal(err)
			}
			req.Instances = append(req.Instances, &recommendationv1.Instance{
				ContainerId: s.ID,
				Input:       &recommendationv1.Instance_Raw{Raw: transport.RawMetricsOf(r)},
			})
		}
	}
	if len(req.Instances) != rep.ContainerDays || len(req.Instances) < 5 {
		t.Fatalf("%d points on the agent's side, %d in the report; want the same, at least 5", len(req.Instances), rep.ContainerDays)
	}
	resp, err := srv.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(served.rows) != len(evalRows) {
		t.Fatalf("served %d values, evaluate %d", len(served.rows), len(evalRows))
	}
	throttled := false
	for i := range evalRows {
		if math.Float32bits(served.rows[i]) != math.Float32bits(evalRows[i]) {
			t.Fatalf("row %d feature %s: served %v, evaluate %v; want the same bits",
				i/model.NumFeatures, man.Features[i%model.NumFeatures].Name, served.rows[i], evalRows[i])
		}
		throttled = throttled || (i%model.NumFeatures == 8 && evalRows[i] > 0)
	}
	if !throttled {
		t.Errorf("no row has a throttle ratio: the CPU limit did not reach the features")
	}
	// And the served recommendation is the one evaluate scored.
	for i, p := range resp.GetPredictions() {
		rec := rep.Days[i].Recs[traces.NameModel]
		if got, want := p.GetResources().GetMemoryLimitBytes(), int64(math.Round(rec.MemLimit)); got != want {
			t.Errorf("point %d: served memory limit %d; evaluate scored %d", i, got, want)
		}
		if got, want := p.GetResources().GetCpuRequestMillicores(), int64(math.Round(rec.CPURequest*1000)); got != want {
			t.Errorf("point %d: served CPU request %dm; evaluate scored %dm", i, got, want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	man, mlp := defaultMLP(t)
	ss := series(t, container("a", 7, 3), container("b", 4, 4), container("short", 2, 5))
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{
		Features: man.Features, Outputs: man.Outputs, Model: "test",
		Predict: func(x []float32, n int) ([]float32, error) { return mlp.Forward(x, n), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 7 days: points after days 2..6 (each needs 2 days before, 1 after) = 5;
	// 4 days: 2; 2 days: none.
	if rep.ContainerDays != 7 || rep.Containers != 2 || rep.Series != 3 {
		t.Errorf("%d container-days of %d containers (of %d); want 7 of 2 (of 3)", rep.ContainerDays, rep.Containers, rep.Series)
	}
	var names []string
	for _, s := range rep.Recommenders {
		names = append(names, s.Name)
		if s.ContainerDays != rep.ContainerDays {
			t.Errorf("%s scored %d container-days; want %d", s.Name, s.ContainerDays, rep.ContainerDays)
		}
	}
	// Generic traces have no provisioned capacity.
	if got := strings.Join(names, ","); got != "model,vpa,krr-simple" {
		t.Errorf("recommenders %s; want model,vpa,krr-simple", got)
	}
	// KRR sets no CPU limit: it never throttles.
	if k := rep.Summary(traces.NameKRR); k.ThrottleRate.Mean != 0 || k.ThrottledDays != 0 {
		t.Errorf("KRR throttles %v of samples; want 0 (no CPU limit)", k.ThrottleRate.Mean)
	}
	// Memory grows 10% a day: VPA's and KRR's max × 1.15 from two days back
	// must cover the next day's peak often, never all the time.
	if v := rep.Summary(traces.NameVPA); v.MemLimitSlack.Mean <= 0 || v.MemLimitSlack.Mean >= 1 {
		t.Errorf("VPA memory limit slack %v; want within (0,1)", v.MemLimitSlack.Mean)
	}
	// Scaled to VPA's OOM rate, the model has no more OOM days than VPA.
	if m, v := rep.ModelAtVPAOOM, rep.Summary(traces.NameVPA); m == nil || m.OOMRate > v.OOMRate || !(m.Factor > 0) {
		t.Errorf("model at VPA's OOM rate: %+v; want a positive factor and at most VPA's %v", m, v.OOMRate)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"model test: 7 container-days", "memory limit slack (relative)", "container-days with an OOM", "krr-simple"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}

	dir := t.TempDir()
	if err := rep.WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	var back traces.Report
	b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	if err := json.Unmarshal(b, &back); err != nil || back.ContainerDays != 7 || len(back.Recommenders) != 3 {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
	png, err := rep.PlotPNG("test")
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("PlotPNG: %d bytes, %v; want a PNG", len(png), err)
	}

	// Without a model the baselines are still scored.
	rep, err = traces.Evaluate(t.Context(), ss, traces.Config{})
	if err != nil || len(rep.Recommenders) != 2 {
		t.Errorf("no model: %v, %d recommenders; want vpa and krr-simple", err, len(rep.Recommenders))
	}
}

func TestEvaluateErrNoWindows(t *testing.T) {
	t.Parallel()
	_, err := traces.Evaluate(t.Context(), series(t, container("short", 2, 1)), traces.Config{})
	if !errors.Is(err, traces.ErrNoWindows) {
		t.Errorf("err = %v; want ErrNoWindows", err)
	}
}

func TestEvaluateModelFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := traces.Evaluate(t.Context(), series(t, container("a", 4, 1)), traces.Config{
		Features: model.DefaultFeatures(), Outputs: model.DefaultOutputs(),
		Predict: func([]float32, int) ([]float32, error) { return nil, boom },
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v; want the model's error", err)
	}
}

// TestEvaluateSharedVMs replays a handful of the shared Bitbrains VMs with
// the provisioned baseline.
func TestEvaluateSharedVMs(t *testing.T) {
	t.Parallel()
	var paths []string
	for _, n := range []int{1, 2, 41} {
		paths = append(paths, sharedFile(t, fmt.Sprintf("%d.csv.gz", n)))
	}
	ss, err := traces.Load(paths, traces.Bitbrains, trainer.Step)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Summary(traces.NameProvisioned)
	if p == nil {
		t.Fatal("no provisioned baseline for Bitbrains")
	}
	// 30 days, a 31 h hole on July 16-17: about 22-25 points per VM.
	if rep.ContainerDays < 60 || rep.ContainerDays > 80 || rep.Skipped == 0 {
		t.Errorf("%d container-days, %d skipped; want 60-80 and some skipped for the outage", rep.ContainerDays, rep.Skipped)
	}
	// VM 41 runs above its 8 provisioned cores: the provisioned "limit" is
	// exceeded, so it throttles in this replay.
	if p.ThrottleRate.Mean == 0 {
		t.Errorf("provisioned throttle rate 0; want > 0 (VM 41 uses more than its capacity)")
	}
}
