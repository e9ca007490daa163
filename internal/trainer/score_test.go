package trainer_test

import (
	"math"
	"strings"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

func scoreTestNear(got, want float64) bool { return math.Abs(got-want) <= 1e-9 }

func TestScore(t *testing.T) {
	t.Parallel()
	fut := []trainer.Outcome{
		{CPUP95: 1, MemP95: 100, MemMax: 120, CPUSorted: []float32{0.5, 0.8, 1, 1, 1.5}},
		{CPUP95: 2, MemP95: 300, MemMax: 400, CPUSorted: []float32{1, 2, 2, 3}},
	}
	recs := []trainer.Rec{
		// Sample 0: everything twice the p95, no OOM (200 ≥ 120), nothing above 2 cores.
		{CPURequest: 2, CPULimit: 2, MemRequest: 200, MemLimit: 200},
		// Sample 1: request below the p95 (slack 0), limit 350 below the peak 400: OOM;
		// CPU limit 2: one of four samples (3) above it.
		{CPURequest: 1, CPULimit: 2, MemRequest: 150, MemLimit: 350},
	}
	s := trainer.Score(recs, fut)
	want := model.Scores{
		CPURequestSlack: (0.5 + 0) / 2,
		CPULimitSlack:   (0.5 + 0) / 2,
		MemRequestSlack: (0.5 + 0) / 2,
		MemLimitSlack:   (0.5 + 50.0/350) / 2,
		OOMRate:         0.5,
		ThrottleRate:    (0 + 0.25) / 2,
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"cpu_request_slack", s.CPURequestSlack, want.CPURequestSlack},
		{"cpu_limit_slack", s.CPULimitSlack, want.CPULimitSlack},
		{"mem_request_slack", s.MemRequestSlack, want.MemRequestSlack},
		{"mem_limit_slack", s.MemLimitSlack, want.MemLimitSlack},
		{"oom_rate", s.OOMRate, want.OOMRate},
		{"throttle_rate", s.ThrottleRate, want.ThrottleRate},
	} {
		if !scoreTestNear(c.got, c.want) {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
}

func TestScoreEdges(t *testing.T) {
	t.Parallel()
	fut := []trainer.Outcome{{CPUP95: 1, MemP95: 100, MemMax: 100, CPUSorted: []float32{1, 1}}}
	t.Run("Empty", func(t *testing.T) {
		if s := trainer.Score(nil, nil); s != (model.Scores{}) {
			t.Errorf("Score of nothing = %+v; want zeros", s)
		}
	})
	t.Run("LimitEqualToUsage", func(t *testing.T) {
		s := trainer.Score([]trainer.Rec{{1, 1, 100, 100}}, fut)
		if s.OOMRate != 0 || s.ThrottleRate != 0 || s.CPULimitSlack != 0 {
			t.Errorf("limit = usage: %+v; want no OOM, no throttling, no slack", s)
		}
	})
	t.Run("ZeroAndNaN", func(t *testing.T) {
		s := trainer.Score([]trainer.Rec{{0, math.NaN(), 0, math.NaN()}}, fut)
		if s.OOMRate != 1 || s.ThrottleRate != 1 || s.CPURequestSlack != 0 || s.MemLimitSlack != 0 {
			t.Errorf("zero and NaN recommendations: %+v; want OOM, full throttling, no slack", s)
		}
	})
	t.Run("Infinite", func(t *testing.T) {
		inf := math.Inf(1)
		s := trainer.Score([]trainer.Rec{{inf, inf, inf, inf}}, fut)
		if s.OOMRate != 0 || s.ThrottleRate != 0 || s.CPULimitSlack != 1 || s.MemLimitSlack != 1 {
			t.Errorf("unlimited: %+v; want slack 1, no OOM or throttling", s)
		}
	})
	t.Run("LengthsDiffer", func(t *testing.T) {
		s := trainer.Score([]trainer.Rec{{2, 2, 200, 200}, {0, 0, 0, 0}}, fut)
		if s.OOMRate != 0 || !scoreTestNear(s.CPULimitSlack, 0.5) {
			t.Errorf("two recs, one outcome: %+v; want only the first pair scored", s)
		}
	})
}

func TestRecFromOutputs(t *testing.T) {
	t.Parallel()
	outs := model.DefaultOutputs()
	want := trainer.Rec{CPURequest: 0.25, CPULimit: 1.5, MemRequest: 512 << 20, MemLimit: 3 << 30}
	var y [model.NumOutputs]float32
	for i, v := range []float64{want.CPURequest, want.CPULimit, want.MemRequest, want.MemLimit, 0.9} {
		y[i] = float32(outs[i].Normalize(v))
	}
	got := trainer.RecFromOutputs(y[:], outs)
	for _, c := range [][2]float64{{got.CPURequest, want.CPURequest}, {got.CPULimit, want.CPULimit}, {got.MemRequest, want.MemRequest}, {got.MemLimit, want.MemLimit}} {
		if math.Abs(c[0]-c[1]) > 1e-5*c[1] {
			t.Errorf("RecFromOutputs = %+v; want %+v", got, want)
			break
		}
	}
	if r := trainer.RecFromOutputs(y[:3], outs); r != (trainer.Rec{}) {
		t.Errorf("short row: %+v; want zero", r)
	}
}

// TestRecFromOutputsAdmissible: scores measure what Predict serves, so a
// model row with a request above its limit, or below the minimums, is
// scored as minimum ≤ request ≤ limit.
func TestRecFromOutputsAdmissible(t *testing.T) {
	t.Parallel()
	outs := model.DefaultOutputs()
	var y [model.NumOutputs]float32
	for i, v := range []float64{2, 0.5, 1 << 20, 1 << 19, 0.5} { // CPU request 2 > limit 0.5; memory below 250 MiB
		y[i] = float32(outs[i].Normalize(v))
	}
	got := trainer.RecFromOutputs(y[:], outs)
	if !(got.CPULimit >= got.CPURequest && got.CPURequest > 1.99) {
		t.Errorf("CPU request %v, limit %v; want the limit raised to the request", got.CPURequest, got.CPULimit)
	}
	if got.MemRequest != model.MinMemoryBytes || got.MemLimit != model.MinMemoryBytes {
		t.Errorf("memory request %v, limit %v; want both at the minimum %d", got.MemRequest, got.MemLimit, model.MinMemoryBytes)
	}
	c := trainer.CountInadmissible(y[:], 1, outs)
	if c != (trainer.Inadmissible{Rows: 1, CPUOverLimit: 1, MemOverLimit: 1, BelowMinimums: 1, Any: 1}) {
		t.Errorf("CountInadmissible = %+v; want every kind counted once", c)
	}
}

// TestMemSlackAtRisk: ten rows whose peaks are 5%..50% of their limits; at a 20% risk the two rows with the highest peak/limit
// ratios go over and the factor is the third-highest ratio; the slack is
// scored on the scaled limits; a row without a usable limit counts as one
// of the allowed OOMs and is not scaled.
func TestMemSlackAtRisk(t *testing.T) {
	t.Parallel()
	var recs []trainer.Rec
	var fut []trainer.Outcome
	for i := 1; i <= 10; i++ {
		recs = append(recs, trainer.Rec{MemLimit: 1000})
		fut = append(fut, trainer.Outcome{MemMax: float32(50 * i), MemP95: float32(40 * i)}) // ratio i/20
	}
	m := trainer.MemSlackAtRisk(recs, fut, 0.2)
	if math.Abs(m.Factor-0.4) > 1e-9 || math.Abs(m.OOMRate-0.2) > 1e-12 {
		t.Fatalf("factor %v, OOM rate %v; want 0.4 (the third-highest ratio) and 0.2", m.Factor, m.OOMRate)
	}
	var want float64
	for i := 1; i <= 10; i++ {
		want += trainer.RelativeSlack(400, float64(40*i)) / 10
	}
	if math.Abs(m.Slack-want) > 1e-9 {
		t.Errorf("slack %v; want %v, scored on the limits × 0.4", m.Slack, want)
	}
	// Every row under its limit at rate 0: the factor is the highest ratio.
	if m := trainer.MemSlackAtRisk(recs, fut, 0); math.Abs(m.Factor-0.5) > 1e-9 || m.OOMRate != 0 {
		t.Errorf("at rate 0: factor %v, OOM rate %v; want 0.5 and 0", m.Factor, m.OOMRate)
	}
	// A NaN limit is an OOM already: one fewer scaled row may go over.
	recs[0].MemLimit = math.NaN()
	if m := trainer.MemSlackAtRisk(recs, fut, 0.2); math.Abs(m.Factor-0.45) > 1e-9 || math.Abs(m.OOMRate-0.2) > 1e-12 {
		t.Errorf("with a NaN limit: factor %v, OOM rate %v; want 0.45 and 0.2", m.Factor, m.OOMRate)
	}
}

// TestMemorySlackGateAtRisk: with an EqualRisk the memory-slack gate
// compares the model as served with the baseline scaled to the model's OOM
// rate, and reports the other side as advisory; without one, the slacks as
// served.
func TestMemorySlackGateAtRisk(t *testing.T) {
	t.Parallel()
	m := &model.Metrics{Model: model.Scores{MemLimitSlack: 0.6, OOMRate: 0.01}, Baseline: model.Scores{MemLimitSlack: 0.4, OOMRate: 0.1}}
	find := func(gs []trainer.Gate, name string) (trainer.Gate, bool) {
		for _, g := range gs {
			if g.Name == name {
				return g, true
			}
		}
		return trainer.Gate{}, false
	}
	gs := trainer.Gates(m, nil, nil)
	if g, _ := find(gs, "memory-slack"); g.Passed {
		t.Errorf("as served, 0.6 against 0.4 passed: %+v", g)
	}
	if _, ok := find(gs, "mem-slack-vpa-risk"); ok {
		t.Error("mem-slack-vpa-risk reported without an equal-risk comparison")
	}
	gs = trainer.Gates(m, nil, &trainer.EqualRisk{
		BaselineAtModel: trainer.Matched{Factor: 2.5, Slack: 0.7, OOMRate: 0.01},
		ModelAtBaseline: trainer.Matched{Factor: 0.5, Slack: 0.45, OOMRate: 0.1},
	})
	g, _ := find(gs, "memory-slack")
	if !g.Passed || g.Advisory || !strings.Contains(g.Detail, "model 0.6000 at its OOM rate 0.0100 vs VPA 0.7000 at the same rate (its memory limits × 2.50)") {
		t.Errorf("at the model's risk: %+v", g)
	}
	g, _ = find(gs, "mem-slack-vpa-risk")
	if g.Passed || !g.Advisory || !strings.Contains(g.Detail, "model 0.4500 at VPA's OOM rate 0.1000 (its memory limits × 0.50) vs VPA 0.4000") {
		t.Errorf("at VPA's risk: %+v", g)
	}
}
