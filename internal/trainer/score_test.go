package trainer_test

import (
	"math"
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
