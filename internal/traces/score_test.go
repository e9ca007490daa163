package traces_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// TestScoreDayMatchesTrainerScore checks that the per-day scores average to
// what trainer.Score (the held-out evaluation of training) reports for the
// same recommendations and windows.
func TestScoreDayMatchesTrainerScore(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []trainer.Rec
	var outs []trainer.Outcome
	var days []traces.DayScore
	for range 300 {
		// Quarter-core and 1 MiB steps: exact in float32 and float64 alike.
		cpu, mem := make([]float64, 288), make([]float64, 288)
		for i := range cpu {
			cpu[i] = float64(rng.IntN(16)) / 4
			mem[i] = float64(rng.IntN(64)) * (1 << 20)
		}
		f := traces.NewFuture(cpu, mem)
		r := trainer.Rec{
			CPURequest: float64(rng.IntN(16)) / 4, CPULimit: float64(rng.IntN(16)) / 4,
			MemRequest: float64(rng.IntN(64)) * (1 << 20), MemLimit: float64(rng.IntN(64)) * (1 << 20),
		}
		sorted := make([]float32, len(cpu))
		for i, c := range cpu {
			sorted[i] = float32(c)
		}
		slices.Sort(sorted)
		recs = append(recs, r)
		outs = append(outs, trainer.Outcome{CPUP95: float32(f.CPUP95), MemP95: float32(f.MemP95), MemMax: float32(f.MemMax), CPUSorted: sorted})
		days = append(days, traces.ScoreDay(r, f))
	}
	want := trainer.Score(recs, outs)
	got := traces.Summarize("x", days)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"cpu request slack", got.CPURequestSlack.Mean, want.CPURequestSlack},
		{"cpu limit slack", got.CPULimitSlack.Mean, want.CPULimitSlack},
		{"mem request slack", got.MemRequestSlack.Mean, want.MemRequestSlack},
		{"mem limit slack", got.MemLimitSlack.Mean, want.MemLimitSlack},
		{"OOM rate", got.OOMRate, want.OOMRate},
		{"throttle rate", got.ThrottleRate.Mean, want.ThrottleRate},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s: traces %v, trainer.Score %v; want equal", c.name, c.got, c.want)
		}
	}
}

func TestScoreDay(t *testing.T) {
	t.Parallel()
	// Ten samples 1..10 cores and 1..10 GiB: p95 is 10, the max 10.
	cpu, mem := make([]float64, 10), make([]float64, 10)
	for i := range cpu {
		cpu[i], mem[i] = float64(i+1), float64(i+1)*(1<<30)
	}
	f := traces.NewFuture(cpu, mem)
	for _, c := range []struct {
		name string
		rec  trainer.Rec
		want traces.DayScore
	}{
		{"Generous", trainer.Rec{CPURequest: 20, CPULimit: 40, MemRequest: 20 << 30, MemLimit: 40 << 30}, traces.DayScore{
			CPURequestSlack: 0.5, CPULimitSlack: 0.75, MemRequestSlack: 0.5, MemLimitSlack: 0.75,
			CPULimitSlackCores: 30, MemLimitSlackBytes: 30 << 30}},
		{"Tight", trainer.Rec{CPURequest: 5, CPULimit: 8, MemRequest: 5 << 30, MemLimit: 8 << 30}, traces.DayScore{
			OOM: true, Throttle: 0.2, CPURequestShortfall: 0.5, MemRequestShortfall: 0.5}},
		{"NoCPULimit", trainer.Rec{CPURequest: 20, CPULimit: math.Inf(1), MemRequest: 10 << 30, MemLimit: 10 << 30}, traces.DayScore{
			CPURequestSlack: 0.5, CPULimitSlack: 0.5, CPULimitSlackCores: 10}},
		{"AtTheMax", trainer.Rec{CPURequest: 10, CPULimit: 10, MemRequest: 10 << 30, MemLimit: 10 << 30}, traces.DayScore{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := traces.ScoreDay(c.rec, f); got != c.want {
				t.Errorf("ScoreDay = %+v\nwant       %+v", got, c.want)
			}
		})
	}
}

func TestKRRSimple(t *testing.T) {
	t.Parallel()
	cpu, mem := make([]float64, 100), make([]float64, 100)
	for i := range cpu {
		cpu[i], mem[i] = float64(i+1)/100, float64(i+1)*(1<<30)
	}
	w := features.Window{End: time.Now(), Step: 5 * time.Minute, CPU: cpu, Mem: mem}
	r := traces.KRRSimple(w)
	if r.CPURequest != 0.95 || !math.IsInf(r.CPULimit, 1) {
		t.Errorf("CPU request %v, limit %v; want the p95 0.95 and no limit", r.CPURequest, r.CPULimit)
	}
	if want := float64(100*(1<<30)) * 1.15; r.MemRequest != want || r.MemLimit != want {
		t.Errorf("memory %v / %v; want max × 1.15 = %v for both", r.MemRequest, r.MemLimit, want)
	}
	idle := traces.KRRSimple(features.Window{CPU: []float64{0}, Mem: []float64{0}})
	if idle.CPURequest != 0.010 || idle.MemLimit != 100<<20 {
		t.Errorf("idle: %+v; want KRR's minimums 10m and 100 MiB", idle)
	}
}

func TestResample(t *testing.T) {
	t.Parallel()
	ms := func(sec int64) int64 { return sec * 1000 }
	c := traces.Container{ID: "c", Samples: []traces.Sample{
		{UnixMilli: ms(1000), CPU: 1, Mem: 10},
		{UnixMilli: ms(1301), CPU: 2, Mem: 20}, // jitter
		{UnixMilli: ms(1301), CPU: 9, Mem: 90}, // repeat: dropped
		{UnixMilli: ms(1599), CPU: 3, Mem: 30},
		// 1900, 2200 missing: filled
		{UnixMilli: ms(2500), CPU: 6, Mem: 60},
		{UnixMilli: ms(2800), CPU: math.NaN(), Mem: 70}, // no CPU sample
		// a gap of 13 steps: stays missing
		{UnixMilli: ms(2800 + 14*300), CPU: 1, Mem: 1},
	}}
	s, err := traces.Resample(c, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeats != 1 || !s.Start.Equal(time.Unix(1000, 0)) || len(s.CPU) != 21 {
		t.Fatalf("repeats %d, start %v, %d steps; want 1, 1000 s, 21", s.Repeats, s.Start.Unix(), len(s.CPU))
	}
	wantCPU := []float64{1, 2, 3, 4, 5, 6}
	if !slices.Equal(s.CPU[:6], wantCPU) {
		t.Errorf("CPU %v; want %v (short gap interpolated)", s.CPU[:6], wantCPU)
	}
	if !math.IsNaN(s.CPU[6]) || s.Mem[6] != 70 {
		t.Errorf("step 6: CPU %v, memory %v; want missing CPU, 70", s.CPU[6], s.Mem[6])
	}
	for i := 7; i < 20; i++ {
		if !math.IsNaN(s.Mem[i]) {
			t.Errorf("step %d memory %v; want missing (gap longer than %d steps)", i, s.Mem[i], traces.MaxFill)
		}
	}
	if s.Missing != 14 {
		t.Errorf("%d missing steps; want 14", s.Missing)
	}
	// A CPU row and a memory row of the same timestamp merge.
	split := traces.Container{ID: "s", Samples: []traces.Sample{
		{UnixMilli: 0, CPU: 0.5, Mem: math.NaN()},
		{UnixMilli: 0, CPU: math.NaN(), Mem: 100},
		{UnixMilli: 0, CPU: 0.7, Mem: 200}, // a true repeat
	}}
	if s, _ = traces.Resample(split, 5*time.Minute); s.CPU[0] != 0.5 || s.Mem[0] != 100 || s.Repeats != 1 {
		t.Errorf("split rows: CPU %v, memory %v, %d repeats; want 0.5, 100, 1", s.CPU[0], s.Mem[0], s.Repeats)
	}
	// Finer input averages into the step.
	fine := traces.Container{ID: "f"}
	for i := range 10 {
		fine.Samples = append(fine.Samples, traces.Sample{UnixMilli: int64(i) * 60_000, CPU: float64(i), Mem: 1})
	}
	s, _ = traces.Resample(fine, 5*time.Minute)
	// Minutes 0-2 round to step 0, 3-7 to step 1, 8-9 to step 2.
	if want := []float64{1, 5, 8.5}; !slices.Equal(s.CPU, want) {
		t.Errorf("1-minute input: %v; want %v", s.CPU, want)
	}
}

func TestPoints(t *testing.T) {
	t.Parallel()
	s := series(t, container("a", 10, 1))[0]
	pts, skipped := traces.Points(s, traces.Windows{})
	if len(pts) != 8 || skipped != 0 {
		t.Fatalf("%d points, %d skipped; want 8, 0", len(pts), skipped)
	}
	p := pts[0]
	if len(p.History.CPU) != trainer.DefaultHistorySteps || len(p.FutureCPU) != trainer.DefaultFutureSteps {
		t.Errorf("history %d, future %d steps; want %d and %d", len(p.History.CPU), len(p.FutureCPU), trainer.DefaultHistorySteps, trainer.DefaultFutureSteps)
	}
	if p.AgeDays != 2 || p.History.CPULimit != 0 {
		t.Errorf("age %v days, CPU limit %v; want 2 and 0 (generic traces have none)", p.AgeDays, p.History.CPULimit)
	}
	if want := s.Start.Add(575 * 5 * time.Minute); !p.History.End.Equal(want) {
		t.Errorf("history ends %v; want %v", p.History.End, want)
	}
	// A hole in day 4 takes out every point whose windows touch it.
	for i := 3*288 + 10; i < 3*288+40; i++ {
		s.CPU[i] = math.NaN()
	}
	pts, skipped = traces.Points(s, traces.Windows{})
	if len(pts) != 5 || skipped != 3 {
		t.Errorf("with a hole: %d points, %d skipped; want 5, 3", len(pts), skipped)
	}
}

func TestDataset(t *testing.T) {
	t.Parallel()
	ids := heldOut("c", 2, false) // training containers
	ss := series(t, container(ids[0], 4, 1), container(ids[1], 3, 2))
	d, err := traces.Dataset(ss, traces.Windows{})
	if err != nil {
		t.Fatal(err)
	}
	// An hourly stride: 4 days give 24·(4−3)+1 = 25 samples, 3 days 1.
	if d.N != 26 || len(d.X) != 26*12 || len(d.Y) != 26*5 || len(d.Workload) != 26 {
		t.Fatalf("N = %d (%d, %d, %d); want 26", d.N, len(d.X), len(d.Y), len(d.Workload))
	}
	// The first sample's labels are trainer.Labels of its windows.
	p, _ := traces.Points(ss[0], traces.Windows{Stride: traces.DefaultTrainStride})
	raw, err := features.FromHistory(p[0].History, p[0].AgeDays)
	if err != nil {
		t.Fatal(err)
	}
	var s features.Scratch
	labels := trainer.Labels(raw, slices.Max(p[0].History.Mem), trainer.SummarizeFuture(&s, p[0].FutureCPU, p[0].FutureMem))
	outs := model.DefaultOutputs()
	for j, v := range labels {
		if want := float32(outs[j].Normalize(v)); d.Y[j] != want {
			t.Errorf("label %s = %v; want %v", outs[j].Name, d.Y[j], want)
		}
	}
	// The memory limit label covers the next day's peak with 5% headroom.
	if fu := trainer.SummarizeFuture(&s, p[0].FutureCPU, p[0].FutureMem); labels[3] != fu.MemMax*1.05 {
		t.Errorf("mem_limit label %v; want future max × 1.05 = %v", labels[3], fu.MemMax*1.05)
	}
	mixed := traces.Concat(d, d)
	if mixed.N != 52 || mixed.X[26*12] != d.X[0] {
		t.Errorf("Concat: N = %d; want 52 with the second copy after the first", mixed.N)
	}
}
