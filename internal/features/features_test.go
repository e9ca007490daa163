package features_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

const step = 5 * time.Minute

// window returns a window with the given series ending on a Wednesday.
func window(cpu, mem []float64, limit float64) features.Window {
	return features.Window{
		End:      time.Date(2024, 3, 6, 13, 55, 0, 0, time.UTC),
		Step:     step,
		CPU:      cpu,
		Mem:      mem,
		CPULimit: limit,
	}
}

func constant(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

func TestFromHistoryPercentiles(t *testing.T) {
	t.Parallel()
	// 1..100 shuffled: the nearest-rank p-th percentile is p itself.
	cpu := make([]float64, 100)
	for i := range cpu {
		cpu[i] = float64(i + 1)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(cpu), func(i, j int) { cpu[i], cpu[j] = cpu[j], cpu[i] })
	// 100 memory samples: 100, 90, ..., 10 then 90 zeros. Sorted, index 49
	// is a zero, index 94 (p95) is 50 and index 98 (p99) is 90.
	mem := make([]float64, 10)
	for i := range mem {
		mem[i] = float64(100 - 10*i)
	}
	mem = append(mem, constant(90, 0)...)
	r, err := features.FromHistory(window(cpu, mem, 0), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"cpu_p50", r.CPUP50, 50}, {"cpu_p95", r.CPUP95, 95}, {"cpu_p99", r.CPUP99, 99},
		{"mem_p50", r.MemP50, 0}, {"mem_p95", r.MemP95, 50}, {"mem_p99", r.MemP99, 90},
		{"workload_age", r.WorkloadAgeDays, 3},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	// The input must not be reordered.
	if mem[0] != 100 || mem[99] != 0 {
		t.Errorf("FromHistory reordered its input")
	}
}

func TestFromHistoryCPUVariance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cpu  []float64
		want float64
	}{
		{"TwoValues", []float64{1, 3}, 0.5}, // mean 2, population stddev 1
		{"Constant", constant(50, 0.7), 0},
		{"AllZero", constant(50, 0), 0},
		{"OnOff", []float64{0, 0, 0, 4}, math.Sqrt(3)}, // mean 1, stddev √3
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := features.FromHistory(window(c.cpu, constant(len(c.cpu), 1), 0), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !near(r.CPUVariance, c.want) {
				t.Errorf("cpu_variance = %v; want %v", r.CPUVariance, c.want)
			}
		})
	}
}

func TestFromHistoryMemTrend(t *testing.T) {
	t.Parallel()
	// A ramp of 10 bytes per 5-minute step over one day: 2880 bytes/day,
	// divided by the mean 1000 + 10·287/2 = 2435.
	n := 288
	mem := make([]float64, n)
	for i := range mem {
		mem[i] = 1000 + 10*float64(i)
	}
	r, err := features.FromHistory(window(constant(n, 1), mem, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2880.0 / 2435; !near(r.MemTrend, want) {
		t.Errorf("mem_trend of a ramp = %v; want %v", r.MemTrend, want)
	}
	// A falling ramp gives the opposite sign; a single sample gives 0.
	slices.Reverse(mem)
	if r, _ = features.FromHistory(window(constant(n, 1), mem, 0), 1); !near(r.MemTrend, -2880.0/2435) {
		t.Errorf("mem_trend of a falling ramp = %v; want %v", r.MemTrend, -2880.0/2435)
	}
	if r, _ = features.FromHistory(window([]float64{1}, []float64{5}, 0), 1); r.MemTrend != 0 {
		t.Errorf("mem_trend of one sample = %v; want 0", r.MemTrend)
	}
	// The step matters: the same ramp at 2-minute steps grows 2.5× faster per day.
	w := window(constant(n, 1), mem, 0)
	w.Step = 2 * time.Minute
	if r, _ = features.FromHistory(w, 1); !near(r.MemTrend, -2.5*2880.0/2435) {
		t.Errorf("mem_trend at 2m steps = %v; want %v", r.MemTrend, -2.5*2880.0/2435)
	}
	// At 1-minute steps it would be −5.9/day, beyond the plausible range:
	// clamped to it, so the features always pass Validate.
	w.Step = time.Minute
	if r, _ = features.FromHistory(w, 1); r.MemTrend != -features.MaxMemTrend || r.Validate() != nil {
		t.Errorf("mem_trend at 1m steps = %v (Validate: %v); want -%v, valid", r.MemTrend, r.Validate(), features.MaxMemTrend)
	}
}

func TestFromHistoryThrottleRatio(t *testing.T) {
	t.Parallel()
	cpu := []float64{0.5, 1, 1.5, 0.2}
	for _, c := range []struct {
		name  string
		limit float64
		want  float64
	}{
		{"AtOrAboveLimit", 1, 0.5},
		{"NoLimit", 0, 0},
		{"HighLimit", 2, 0},
		{"LowLimit", 0.1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := features.FromHistory(window(cpu, constant(4, 1), c.limit), 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.ThrottleRatio != c.want {
				t.Errorf("throttle_ratio = %v; want %v", r.ThrottleRatio, c.want)
			}
		})
	}
}

func TestFromHistoryTimeIsUTC(t *testing.T) {
	t.Parallel()
	// 01:30 on Sunday in UTC+3 is 22:30 on Saturday UTC.
	w := window([]float64{1}, []float64{1}, 0)
	w.End = time.Date(2024, 3, 10, 1, 30, 0, 0, time.FixedZone("UTC+3", 3*3600))
	r, err := features.FromHistory(w, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.HourOfDay != 22 || r.DayOfWeek != 6 {
		t.Errorf("hour, day = %v, %v; want 22, 6 (Saturday)", r.HourOfDay, r.DayOfWeek)
	}
	w.End = time.Date(2024, 3, 6, 13, 55, 0, 0, time.UTC) // Wednesday
	if r, _ = features.FromHistory(w, 1); r.HourOfDay != 13 || r.DayOfWeek != 3 {
		t.Errorf("hour, day = %v, %v; want 13, 3 (Wednesday)", r.HourOfDay, r.DayOfWeek)
	}
}

func TestFromHistoryErrInvalidInput(t *testing.T) {
	t.Parallel()
	ok := func() features.Window { return window([]float64{1, 2}, []float64{3, 4}, 0) }
	for _, c := range []struct {
		name   string
		edit   func(*features.Window)
		age    float64
		phrase string
	}{
		{"Empty", func(w *features.Window) { w.CPU, w.Mem = nil, nil }, 1, "no samples"},
		{"Mismatched", func(w *features.Window) { w.Mem = w.Mem[:1] }, 1, "2 CPU samples and 1 memory samples"},
		{"NegativeCPU", func(w *features.Window) { w.CPU[1] = -1 }, 1, "CPU sample 1 is -1"},
		{"NaNCPU", func(w *features.Window) { w.CPU[0] = math.NaN() }, 1, "CPU sample 0 is NaN"},
		{"InfMem", func(w *features.Window) { w.Mem[1] = math.Inf(1) }, 1, "memory sample 1 is +Inf"},
		{"NegativeMem", func(w *features.Window) { w.Mem[0] = -5 }, 1, "memory sample 0 is -5"},
		{"ZeroStep", func(w *features.Window) { w.Step = 0 }, 1, "step 0s"},
		{"NoEnd", func(w *features.Window) { w.End = time.Time{} }, 1, "end time not set"},
		{"NegativeLimit", func(w *features.Window) { w.CPULimit = -1 }, 1, "CPU limit -1"},
		{"NaNLimit", func(w *features.Window) { w.CPULimit = math.NaN() }, 1, "CPU limit NaN"},
		{"NegativeAge", func(*features.Window) {}, -1, "workload age -1"},
		{"NaNAge", func(*features.Window) {}, math.NaN(), "workload age NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := ok()
			c.edit(&w)
			_, err := features.FromHistory(w, c.age)
			if !errors.Is(err, model.ErrInvalidInput) {
				t.Fatalf("err = %v; want ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), c.phrase) || !strings.Contains(err.Error(), "want") {
				t.Errorf("err = %q; want it to say %q and what is accepted", err, c.phrase)
			}
		})
	}
}

func validRaw() features.Raw {
	return features.Raw{
		CPUP50: 0.2, CPUP95: 0.5, CPUP99: 0.6,
		MemP50: 1 << 28, MemP95: 1 << 29, MemP99: 1 << 30,
		CPUVariance: 0.3, MemTrend: -0.02, ThrottleRatio: 0.1,
		HourOfDay: 23, DayOfWeek: 6, WorkloadAgeDays: 12,
	}
}

func TestRawValidate(t *testing.T) {
	t.Parallel()
	if err := validRaw().Validate(); err != nil {
		t.Fatalf("valid features: %v", err)
	}
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name  string
		edit  func(*features.Raw)
		field string
		want  string
	}{
		{"NegativeCPUP50", func(r *features.Raw) { r.CPUP50 = -0.1 }, "cpu_p50", "in [0,"},
		{"NaNCPUP95", func(r *features.Raw) { r.CPUP95 = nan }, "cpu_p95", "finite"},
		{"InfCPUP99", func(r *features.Raw) { r.CPUP99 = inf }, "cpu_p99", "finite"},
		{"NegativeMemP50", func(r *features.Raw) { r.MemP50 = -1 }, "mem_p50", "in [0,"},
		{"InfMemP95", func(r *features.Raw) { r.MemP95 = -inf }, "mem_p95", "finite"},
		{"NaNMemP99", func(r *features.Raw) { r.MemP99 = nan }, "mem_p99", "finite"},
		{"NegativeVariance", func(r *features.Raw) { r.CPUVariance = -1 }, "cpu_variance", "in [0,"},
		{"NaNTrend", func(r *features.Raw) { r.MemTrend = nan }, "mem_trend", "finite"},
		{"ThrottleAboveOne", func(r *features.Raw) { r.ThrottleRatio = 1.5 }, "throttle_ratio", "[0,1]"},
		{"NegativeThrottle", func(r *features.Raw) { r.ThrottleRatio = -0.5 }, "throttle_ratio", "in [0,"},
		{"Hour24", func(r *features.Raw) { r.HourOfDay = 24 }, "hour_of_day", "[0,23]"},
		{"NegativeHour", func(r *features.Raw) { r.HourOfDay = -1 }, "hour_of_day", "in [0,"},
		{"Day7", func(r *features.Raw) { r.DayOfWeek = 7 }, "day_of_week", "[0,6]"},
		{"NegativeAge", func(r *features.Raw) { r.WorkloadAgeDays = -2 }, "workload_age", "in [0,"},
		{"InfAge", func(r *features.Raw) { r.WorkloadAgeDays = inf }, "workload_age", "finite"},
		{"CPUP95BelowP50", func(r *features.Raw) { r.CPUP95 = 0.1 }, "cpu_p95", "≥ cpu_p50"},
		{"MemP99BelowP95", func(r *features.Raw) { r.MemP99 = 1 << 28 }, "mem_p99", "≥ mem_p95"},
		{"AbsurdCPU", func(r *features.Raw) { r.CPUP50, r.CPUP95, r.CPUP99 = 1e300, 1e300, 1e300 }, "cpu_p50", "= 1e+300; want a finite number in [0,1024] (cores)"},
		{"AbsurdMemory", func(r *features.Raw) { r.MemP99 = 1e20 }, "mem_p99", "in [0,17592186044416] (bytes)"},
		{"AbsurdTrend", func(r *features.Raw) { r.MemTrend = -5 }, "mem_trend", "= -5; want a finite number in [-3,3] (1/day)"},
		{"AbsurdVariance", func(r *features.Raw) { r.CPUVariance = 1e9 }, "cpu_variance", "in [0,100]"},
		{"FractionalHour", func(r *features.Raw) { r.HourOfDay = 13.5 }, "hour_of_day", "= 13.5; want an integer in [0,23]"},
		{"FractionalDay", func(r *features.Raw) { r.DayOfWeek = 2.25 }, "day_of_week", "want an integer in [0,6]"},
		{"AbsurdAge", func(r *features.Raw) { r.WorkloadAgeDays = 1e6 }, "workload_age", "in [0,3650] (days)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := validRaw()
			c.edit(&r)
			err := r.Validate()
			if !errors.Is(err, model.ErrInvalidInput) {
				t.Fatalf("err = %v; want ErrInvalidInput", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "feature "+c.field+" ") || !strings.Contains(msg, c.want) {
				t.Errorf("err = %q; want it to name %s and say %q", msg, c.field, c.want)
			}
			if _, err := features.Normalize(r, model.DefaultFeatures()); !errors.Is(err, model.ErrInvalidInput) {
				t.Errorf("Normalize err = %v; want ErrInvalidInput", err)
			}
		})
	}
	// A negative trend is fine: memory shrinks. The range's ends are in it.
	r := validRaw()
	r.MemTrend, r.CPUP99, r.HourOfDay = -features.MaxMemTrend, features.MaxCPUCores, 0
	if err := r.Validate(); err != nil {
		t.Errorf("negative mem_trend, largest CPU: %v; want accepted", err)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	specs := model.DefaultFeatures()
	r := validRaw()
	got, err := features.Normalize(r, specs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range r.Values() {
		if want := float32(specs[i].Normalize(v)); got[i] != want {
			t.Errorf("feature %s: got %v; want %v", specs[i].Name, got[i], want)
		}
		if got[i] < 0 || got[i] > 1 {
			t.Errorf("feature %s: %v outside [0,1]", specs[i].Name, got[i])
		}
	}
	if got[9] != 1 || got[10] != 1 { // hour 23, Saturday
		t.Errorf("hour, day = %v, %v; want 1, 1", got[9], got[10])
	}
	bad := append([]model.Spec(nil), specs...)
	bad[3].Name = "mem_p42"
	if _, err := features.Normalize(r, bad); !errors.Is(err, model.ErrInvalidModel) || !strings.Contains(err.Error(), "mem_p42") {
		t.Errorf("unknown feature: err = %v; want ErrInvalidModel naming it", err)
	}
}

func TestPercentilesMatchesSort(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	ps := []float64{99, 0, 50, 90, 95, 100, 1, 99.9}
	many := make([]float64, 0, 101) // more distinct ranges than Percentiles keeps slots for
	for p := 0.0; p <= 100; p++ {
		many = append(many, p)
	}
	var s features.Scratch
	for trial := range 3000 {
		n := 1 + rng.IntN(1500)
		a := make([]float64, n)
		for i := range a {
			switch trial % 8 {
			case 0: // many duplicates
				a[i] = float64(rng.IntN(5))
			case 1: // ascending
				a[i] = float64(i)
			case 2: // descending
				a[i] = float64(n - i)
			case 3: // all equal
				a[i] = 0.25
			case 4: // idle with rare spikes (cron)
				a[i] = 0.001 * rng.Float64()
				if i%12 == 0 {
					a[i] = 1 + rng.Float64()
				}
			case 5: // a range too narrow to divide into buckets
				a[i] = 1 + float64(rng.IntN(3))*math.SmallestNonzeroFloat64
			case 6: // negative and huge values
				a[i] = (rng.Float64() - 0.5) * math.MaxFloat64
			default:
				a[i] = rng.ExpFloat64()
			}
		}
		orig := slices.Clone(a)
		sorted := slices.Clone(a)
		slices.Sort(sorted)
		for _, ps := range [][]float64{ps, many} {
			out := make([]float64, len(ps))
			s.Percentiles(a, ps, out)
			for i, p := range ps {
				if want := features.Percentile(sorted, p); out[i] != want {
					t.Fatalf("trial %d n=%d: p%v = %v; want %v", trial, n, p, out[i], want)
				}
			}
		}
		if !slices.Equal(a, orig) {
			t.Fatalf("trial %d: Percentiles changed its input", trial)
		}
	}
}

func TestPercentilesNonFinite(t *testing.T) {
	t.Parallel()
	var s features.Scratch
	a := []float64{3, math.NaN(), math.Inf(1), 1, 2, math.Inf(-1)}
	a = append(a, make([]float64, 100)...) // enough values to take the counting path
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	out := make([]float64, 3)
	s.Percentiles(a, []float64{0, 50, 100}, out)
	if !math.IsNaN(out[0]) || out[1] != 0 || !math.IsInf(out[2], 1) {
		t.Errorf("p0, p50, p100 = %v; want NaN (sorts first), 0, +Inf", out)
	}
	s.Percentiles(nil, []float64{50}, out)
	if !math.IsNaN(out[0]) {
		t.Errorf("p50 of nothing = %v; want NaN", out[0])
	}
}

func FuzzPercentiles(f *testing.F) {
	f.Add([]byte{3, 1, 2, 2, 9, 0, 7}, 95.0)
	f.Add(bytes.Repeat([]byte{1, 200, 3, 3, 3, 0, 255}, 40), 50.0)
	f.Fuzz(func(t *testing.T, b []byte, p float64) {
		if len(b) == 0 || math.IsNaN(p) {
			return
		}
		a := make([]float64, len(b))
		for i, x := range b {
			a[i] = float64(x) * float64(x)
		}
		sorted := slices.Clone(a)
		slices.Sort(sorted)
		var s features.Scratch
		var out [2]float64
		s.Percentiles(a, []float64{p, 50}, out[:])
		if want := features.Percentile(sorted, p); out[0] != want {
			t.Fatalf("p%v = %v; want %v", p, out[0], want)
		}
		if want := features.Percentile(sorted, 50); out[1] != want {
			t.Fatalf("p50 = %v; want %v", out[1], want)
		}
	})
}

func BenchmarkPercentiles576(b *testing.B) {
	w := history(576)
	var s features.Scratch
	out := make([]float64, 3)
	for b.Loop() {
		s.Percentiles(w.CPU, []float64{50, 95, 99}, out)
	}
}

func TestRank(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		p    float64
		want int
	}{
		{576, 50, 287}, {576, 95, 547}, {576, 99, 570}, {576, 100, 575},
		{100, 95, 94}, {100, 90, 89}, {10, 50, 4}, {10, 95, 9}, {1, 50, 0}, {5, 0, 0},
	} {
		if got := features.Rank(c.n, c.p); got != c.want {
			t.Errorf("Rank(%d, %v) = %d; want %d", c.n, c.p, got, c.want)
		}
	}
	if !math.IsNaN(features.Percentile(nil, 50)) {
		t.Errorf("Percentile of nothing is not NaN")
	}
}

func history(n int) features.Window {
	rng := rand.New(rand.NewPCG(5, 6))
	cpu, mem := make([]float64, n), make([]float64, n)
	for i := range cpu {
		cpu[i] = rng.ExpFloat64()
		mem[i] = 1e9 + 1e7*rng.NormFloat64()
	}
	return window(cpu, mem, 1.5)
}

func TestScratchAllocatesNothing(t *testing.T) {
	w := history(576)
	var s features.Scratch
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.FromHistory(w, 3); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Scratch.FromHistory allocates %v times per call; want 0", allocs)
	}
}

func BenchmarkFromHistory576(b *testing.B) {
	w := history(576)
	var s features.Scratch
	for b.Loop() {
		if _, err := s.FromHistory(w, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleFromHistory() {
	// Two hours of a container using 0.5 cores, then 1 core against a 1-core
	// limit, its memory growing from 1 GiB by 1 MiB per 5 minutes.
	cpu, mem := make([]float64, 24), make([]float64, 24)
	for i := range cpu {
		cpu[i] = 0.5
		if i >= 12 {
			cpu[i] = 1
		}
		mem[i] = float64(1<<30 + i<<20)
	}
	w := features.Window{End: time.Date(2024, 3, 6, 14, 0, 0, 0, time.UTC), Step: 5 * time.Minute, CPU: cpu, Mem: mem, CPULimit: 1}
	r, err := features.FromHistory(w, 30)
	if err != nil {
		panic(err)
	}
	fmt.Printf("cpu p50 %.2f p95 %.2f, throttled %.0f%%, memory trend %+.3f/day, %02.0f:00 day %.0f\n",
		r.CPUP50, r.CPUP95, 100*r.ThrottleRatio, r.MemTrend, r.HourOfDay, r.DayOfWeek)
	// Output: cpu p50 0.50 p95 1.00, throttled 50%, memory trend +0.278/day, 14:00 day 3
}
