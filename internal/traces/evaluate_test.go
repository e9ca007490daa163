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
	"slices"
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

// heldOut returns the first n ids prefix-0, prefix-1, ... that HeldOut
// keeps for evaluation (want true) or gives to training (want false).
func heldOut(prefix string, n int, want bool) []string {
	var ids []string
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("%s-%d", prefix, i); traces.HeldOut(id) == want {
			ids = append(ids, id)
		}
	}
	return ids
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

func (s *servingModels) Acquire(string) (transport.Lease, error)   { return s, nil }
func (s *servingModels) AcquireMajor(int) (transport.Lease, error) { return s, nil }
func (s *servingModels) ActiveManifests() []*model.Manifest        { return []*model.Manifest{s.man} }
func (s *servingModels) Ready() bool                               { return true }
func (s *servingModels) Manifest() *model.Manifest                 { return s.man }
func (s *servingModels) Release()                                  {}
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
	ids := heldOut("c", 2, true)
	ss := series(t, container(ids[0], 6, 1), container(ids[1], 5, 2))
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
	// The workload split partitions the container-days, for every recommender.
	days := map[string]int{}
	total := 0
	for _, w := range rep.ByWorkload {
		total += w.Days
		for _, s := range w.Recommenders {
			days[s.Name] += s.ContainerDays
		}
	}
	if total != rep.ContainerDays || len(rep.ByWorkload) == 0 {
		t.Errorf("workload split covers %d of %d container-days in %d parts", total, rep.ContainerDays, len(rep.ByWorkload))
	}
	for _, s := range rep.Recommenders {
		if days[s.Name] != s.ContainerDays {
			t.Errorf("%s: workload parts hold %d container-days; want %d", s.Name, days[s.Name], s.ContainerDays)
		}
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
	ids := heldOut("c", 3, true)
	train := heldOut("c", 1, false)[0]
	ss := series(t, container(ids[0], 7, 3), container(ids[1], 4, 4), container(ids[2], 2, 5), container(train, 7, 6))
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{
		Features: man.Features, Outputs: man.Outputs, Model: "test",
		Predict: func(x []float32, n int) ([]float32, error) { return mlp.Forward(x, n), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 7 days: points after days 2..6 (each needs 2 days before, 1 after) = 5;
	// 4 days: 2; 2 days: none; the training container is not scored.
	if rep.ContainerDays != 7 || strings.Join(rep.ContainerIDs, ",") != ids[0]+","+ids[1] || rep.Series != 4 || rep.HeldOutSeries != 3 {
		t.Errorf("%d container-days of %v (%d series, %d held out); want 7 of %v (4, 3)", rep.ContainerDays, rep.ContainerIDs, rep.Series, rep.HeldOutSeries, ids[:2])
	}
	var names []string
	for _, s := range rep.Recommenders {
		names = append(names, s.Name)
		if s.ContainerDays != rep.ContainerDays {
			t.Errorf("%s scored %d container-days; want %d", s.Name, s.ContainerDays, rep.ContainerDays)
		}
	}
	// Generic traces have no provisioned capacity.
	if got := strings.Join(names, ","); got != "model,vpa-upper-bound,vpa-target,krr-simple" {
		t.Errorf("recommenders %s; want model,vpa-upper-bound,vpa-target,krr-simple", got)
	}
	// KRR sets no CPU limit: it never throttles.
	if k := rep.Summary(traces.NameKRR); k.ThrottleRate.Mean != 0 || k.ThrottledDays != 0 {
		t.Errorf("KRR throttles %v of samples; want 0 (no CPU limit)", k.ThrottleRate.Mean)
	}
	// VPA's upper bound is above its target: more slack, no more OOM days.
	up, tg := rep.Summary(traces.NameVPAUpper), rep.Summary(traces.NameVPATarget)
	if !(up.MemLimitSlack.Mean > tg.MemLimitSlack.Mean) || up.OOMRate > tg.OOMRate || tg.MemLimitSlack.Mean <= 0 {
		t.Errorf("VPA upper bound slack %v, OOM %v; target %v, %v; want the upper bound to have more slack and no more OOMs",
			up.MemLimitSlack.Mean, up.OOMRate, tg.MemLimitSlack.Mean, tg.OOMRate)
	}
	// Scaled to each VPA deployment's OOM rate, every other recommender has
	// no more OOM days than it.
	if len(rep.EqualRisk) != 6 {
		t.Errorf("%d equal-risk rows; want 3 recommenders × 2 VPA deployments", len(rep.EqualRisk))
	}
	for _, m := range rep.EqualRisk {
		if ref := rep.Summary(m.Reference); m.OOMRate > ref.OOMRate || !(m.Factor > 0) {
			t.Errorf("%s at %s's OOM rate: %+v; want a positive factor and at most %v", m.Name, m.Reference, m, ref.OOMRate)
		}
	}
	checkCurves(t, rep)

	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"model test: 7 container-days", "memory limit slack (relative)", "container-days with an OOM", "krr-simple", "at equal risk", "vpa-target at vpa-upper-bound's OOM rate"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}

	dir := t.TempDir()
	if err := (&traces.Evaluation{Reports: []*traces.Report{rep, rep}}).WriteJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	var back traces.Evaluation
	b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Reports) != 2 || back.Reports[1].ContainerDays != 7 ||
		len(back.Reports[0].MemoryCurves) != 4 || len(back.Reports[0].MemoryCurves[0].Points) != len(rep.MemoryCurves[0].Points) {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
	png, err := traces.PlotPNG([]*traces.Report{rep, rep}, "test")
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("PlotPNG: %d bytes, %v; want a PNG", len(png), err)
	}

	// Without a model the baselines are still scored.
	rep, err = traces.Evaluate(t.Context(), ss, traces.Config{})
	if err != nil || len(rep.Recommenders) != 3 {
		t.Errorf("no model: %v, %d recommenders; want the two VPA deployments and krr-simple", err, len(rep.Recommenders))
	}
}

// checkCurves checks each curve: limits scaled up never add risk nor
// remove slack, and the factor-1 point is the recommender's own summary.
func checkCurves(t *testing.T, rep *traces.Report) {
	t.Helper()
	for _, c := range append(slices.Clone(rep.MemoryCurves), rep.CPUCurves...) {
		own := false
		for i, p := range c.Points {
			if i > 0 && (p.Factor <= c.Points[i-1].Factor || p.Risk > c.Points[i-1].Risk || p.Slack < c.Points[i-1].Slack) {
				t.Errorf("%s curve: point %d %+v after %+v; want a larger factor, no more risk, no less slack", c.Name, i, p, c.Points[i-1])
			}
			own = own || p.Factor == 1
		}
		if !own {
			t.Errorf("%s curve has no factor-1 point", c.Name)
		}
	}
	for i, s := range rep.Recommenders {
		mem, cpu := rep.MemoryCurves[i], rep.CPUCurves[i]
		for _, p := range mem.Points {
			if p.Factor == 1 && (p.Risk != s.OOMRate || !near(p.Slack, s.MemLimitSlack.Mean)) {
				t.Errorf("%s memory curve at factor 1: %+v; want the summary's OOM rate %v, slack %v", s.Name, p, s.OOMRate, s.MemLimitSlack.Mean)
			}
		}
		for _, p := range cpu.Points {
			if p.Factor == 1 && (!near(p.Risk, s.ThrottleRate.Mean) || !near(p.Slack, s.CPULimitSlack.Mean)) {
				t.Errorf("%s CPU curve at factor 1: %+v; want the summary's throttling %v, slack %v", s.Name, p, s.ThrottleRate.Mean, s.CPULimitSlack.Mean)
			}
		}
	}
	// A curve read at the OOM rate of its own factor-1 point gives a slack no
	// larger than that point's (the smallest factor that safe is at most 1).
	for _, s := range rep.Recommenders {
		if slack, k, ok := rep.SlackAtRisk(s.Name, s.OOMRate); !ok || k > 1 || slack > s.MemLimitSlack.Mean+1e-12 {
			t.Errorf("%s at its own OOM rate: slack %v factor %v ok %v; want ≤ %v at a factor ≤ 1", s.Name, slack, k, ok, s.MemLimitSlack.Mean)
		}
	}
}

// TestEvaluateHeldOutOnly checks that a model is scored on held-out
// containers only, and the baselines alone may be scored on all.
func TestEvaluateHeldOutOnly(t *testing.T) {
	t.Parallel()
	train := heldOut("c", 2, false)
	ss := series(t, container(train[0], 4, 1), container(train[1], 4, 2))
	predict := func(x []float32, n int) ([]float32, error) { return make([]float32, n*model.NumOutputs), nil }
	cfg := traces.Config{Features: model.DefaultFeatures(), Outputs: model.DefaultOutputs(), Predict: predict}
	if _, err := traces.Evaluate(t.Context(), ss, cfg); !errors.Is(err, traces.ErrNoWindows) {
		t.Errorf("only training containers: err = %v; want ErrNoWindows", err)
	}
	cfg.Containers = traces.AllContainers
	if _, err := traces.Evaluate(t.Context(), ss, cfg); err == nil || !strings.Contains(err.Error(), "held-out containers only") {
		t.Errorf("a model on all containers: err = %v; want a refusal", err)
	}
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{Containers: traces.AllContainers})
	if err != nil || len(rep.ContainerIDs) != 2 || rep.Containers != "all" || rep.HeldOutSeries != 0 {
		t.Errorf("baselines on all: %v, %+v; want both training containers scored", err, rep)
	}
}

// TestEvaluateHistory checks a 7-day history: VPA and KRR see all of it,
// the model only the last 48 h its features are defined on.
func TestEvaluateHistory(t *testing.T) {
	t.Parallel()
	man, mlp := defaultMLP(t)
	id := heldOut("c", 1, true)[0]
	ss := series(t, container(id, 10, 7))
	var rows []float32
	w := traces.Windows{History: 7 * 288}
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{
		Windows: w, Features: man.Features, Outputs: man.Outputs, PerDay: true,
		Predict: func(x []float32, n int) ([]float32, error) { rows = append(rows, x...); return mlp.Forward(x, n), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10 days: history ends after days 7, 8 and 9.
	if rep.ContainerDays != 3 || rep.HistoryDays != 7 || rep.ModelHistorySteps != 576 {
		t.Fatalf("%d container-days, %g-day history, model %d steps; want 3, 7, 576", rep.ContainerDays, rep.HistoryDays, rep.ModelHistorySteps)
	}
	pts, _ := traces.Points(ss[0], w)
	var s features.Scratch
	for i, p := range pts {
		m := p.History
		m.CPU, m.Mem = m.CPU[len(m.CPU)-576:], m.Mem[len(m.Mem)-576:]
		_, x, err := traces.FeatureRow(&s, m, p.AgeDays, man.Features)
		if err != nil {
			t.Fatal(err)
		}
		for j := range x {
			if x[j] != rows[i*model.NumFeatures+j] {
				t.Fatalf("point %d feature %d: %v; want %v from the last 48 h", i, j, rows[i*model.NumFeatures+j], x[j])
			}
		}
		vpa := trainer.VPARecommend(p.History, trainer.VPAOptions{})
		if got := rep.Days[i].Recs[traces.NameVPAUpper]; got.MemLimit != vpa.UpperBound.Mem || got.MemRequest != vpa.Target.Mem {
			t.Errorf("point %d: VPA upper-bound deployment %+v; want limit %v, request %v from the 7 days", i, got, vpa.UpperBound.Mem, vpa.Target.Mem)
		}
		if vpa.Confidence < 6.99 {
			t.Errorf("point %d: VPA confidence %v; want 7 days", i, vpa.Confidence)
		}
	}
	// A model needing more history than evaluated is refused.
	if _, err := traces.Evaluate(t.Context(), ss, traces.Config{Windows: traces.Windows{History: 288}, Features: man.Features, Outputs: man.Outputs,
		Predict: func(x []float32, n int) ([]float32, error) { return mlp.Forward(x, n), nil }}); err == nil {
		t.Error("a 1-day history for a model reading 2 days: no error")
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
	_, err := traces.Evaluate(t.Context(), series(t, container(heldOut("c", 1, true)[0], 4, 1)), traces.Config{
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
	rep, err := traces.Evaluate(t.Context(), ss, traces.Config{Containers: traces.AllContainers})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Summary(traces.NameProvisioned)
	if p == nil {
		t.Fatal("no provisioned baseline for Bitbrains")
	}
	// 30 days, a 31 h hole on July 16-17: about 20-24 points for VMs 1
	// and 41; VM 2 reports 0 KB of memory in 54% of its rows, in runs
	// longer than an hour: one point.
	if rep.ContainerDays < 40 || rep.ContainerDays > 50 || rep.Skipped == 0 {
		t.Errorf("%d container-days, %d skipped; want 40-50 and some skipped for the outage", rep.ContainerDays, rep.Skipped)
	}
	// VM 41 runs above its 8 provisioned cores: the provisioned "limit" is
	// exceeded, so it throttles in this replay.
	if p.ThrottleRate.Mean == 0 {
		t.Errorf("provisioned throttle rate 0; want > 0 (VM 41 uses more than its capacity)")
	}
}
