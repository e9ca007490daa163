package features

import (
	"fmt"
	"math"
	"time"

	"recommendation-api/internal/model"
)

// Window is a usage history sampled at a fixed step, oldest first.
type Window struct {
	End      time.Time     // time of the last sample (hour_of_day/day_of_week come from it, UTC)
	Step     time.Duration // e.g. 5*time.Minute
	CPU      []float64     // cores used per sample
	Mem      []float64     // bytes of memory working set per sample
	CPULimit float64       // current CPU limit in cores (0 = none; then throttle ratio is 0)
}

// Raw holds the 12 features in raw units (cores, bytes, ratios, hour, day,
// days), in model order. See the package documentation for definitions.
type Raw struct {
	CPUP50, CPUP95, CPUP99, MemP50, MemP95, MemP99, CPUVariance, MemTrend, ThrottleRatio, HourOfDay, DayOfWeek, WorkloadAgeDays float64
}

// Values returns the features in model order (model.DefaultFeatures).
func (r Raw) Values() [model.NumFeatures]float64 {
	return [model.NumFeatures]float64{
		r.CPUP50, r.CPUP95, r.CPUP99, r.MemP50, r.MemP95, r.MemP99,
		r.CPUVariance, r.MemTrend, r.ThrottleRatio, r.HourOfDay, r.DayOfWeek, r.WorkloadAgeDays,
	}
}

// Feature indexes in model order.
const (
	iCPUP50 = iota
	iCPUP95
	iCPUP99
	iMemP50
	iMemP95
	iMemP99
	iCPUVariance
	iMemTrend
	iThrottleRatio
	iHourOfDay
	iDayOfWeek
	iWorkloadAge
)

// specs supplies the feature names and units used in error messages.
var specs = model.DefaultFeatures()

// Validate checks raw features, e.g. ones a client sent: every value must
// lie in its plausible range (Ranges: finite, cpu and memory ≥ 0 and at most
// MaxCPUCores and MaxMemoryBytes, mem_trend within ±MaxMemTrend,
// throttle_ratio in [0,1], hour_of_day an integer in [0,23], day_of_week an
// integer in [0,6], …) and the percentiles of each resource must not
// decrease (p50 ≤ p95 ≤ p99). The error is a *RangeError or an *OrderError
// for the first offending feature; both wrap model.ErrInvalidInput and say
// what is accepted.
func (r Raw) Validate() error {
	v := r.Values()
	for i, x := range v {
		if !Ranges[i].Contains(x) {
			return &RangeError{Index: i, Value: x, Range: Ranges[i]}
		}
	}
	for _, g := range [2]int{iCPUP50, iMemP50} {
		for k := g + 1; k < g+3; k++ {
			if v[k] < v[k-1] {
				return &OrderError{Index: k, Value: v[k], Prev: v[k-1]}
			}
		}
	}
	return nil
}

// Normalize validates r and maps each feature onto [0,1] with
// specs[i].Normalize. specs must hold model.NumFeatures entries in model
// order (a manifest's Features); otherwise the error wraps
// model.ErrInvalidModel. Invalid features give Validate's error.
func Normalize(r Raw, specs []model.Spec) ([model.NumFeatures]float32, error) {
	var out [model.NumFeatures]float32
	if len(specs) != model.NumFeatures {
		return out, fmt.Errorf("%w: %d feature specs; want %d", model.ErrInvalidModel, len(specs), model.NumFeatures)
	}
	if err := r.Validate(); err != nil {
		return out, err
	}
	for i, v := range r.Values() {
		out[i] = float32(specs[i].Normalize(v))
	}
	return out, nil
}

// Scratch holds the buffers FromHistory and Percentiles select in, so that
// repeated calls allocate nothing once they have grown to the series length.
// The zero value is ready to use. A Scratch is not safe for concurrent use.
type Scratch struct {
	buf, aux []float64
}

// featurePercentiles are the percentiles the model reads from each series.
var featurePercentiles = [3]float64{50, 95, 99}

// FromHistory computes the 12 features of a history window for a workload
// ageDays old. It returns an error wrapping model.ErrInvalidInput if the
// window has no samples, CPU and memory of different lengths, a negative,
// NaN or infinite sample, a non-positive step, a zero End, a negative or
// non-finite CPU limit or age. It allocates a scratch buffer per call; use
// Scratch.FromHistory in loops.
func FromHistory(w Window, ageDays float64) (Raw, error) {
	var s Scratch
	return s.FromHistory(w, ageDays)
}

// FromHistory is the package-level FromHistory reusing s's buffer.
func (s *Scratch) FromHistory(w Window, ageDays float64) (Raw, error) {
	bad := func(format string, args ...any) (Raw, error) {
		return Raw{}, fmt.Errorf("%w: history window: "+format, append([]any{model.ErrInvalidInput}, args...)...)
	}
	n := len(w.CPU)
	switch {
	case n == 0:
		return bad("no samples; want at least one CPU and memory sample")
	case len(w.Mem) != n:
		return bad("%d CPU samples and %d memory samples; want equal counts", n, len(w.Mem))
	case !(w.Step > 0):
		return bad("step %v; want a positive duration such as 5m", w.Step)
	case w.End.IsZero():
		return bad("end time not set; want the time of the last sample")
	case !finiteNonNeg(w.CPULimit):
		return bad("CPU limit %v; want a finite number of cores ≥ 0 (0 = no limit)", w.CPULimit)
	case !finiteNonNeg(ageDays):
		return bad("workload age %v; want a finite number of days ≥ 0", ageDays)
	}

	// One pass validates and accumulates sums for the mean, the throttle
	// count and the memory regression.
	var cpuSum, memSum, memISum float64
	cpuLo, cpuHi, memLo, memHi := math.Inf(1), 0.0, math.Inf(1), 0.0
	throttled := 0
	for i, c := range w.CPU {
		m := w.Mem[i]
		if !finiteNonNeg(c) {
			return bad("CPU sample %d is %v; want a finite number of cores ≥ 0", i, c)
		}
		if !finiteNonNeg(m) {
			return bad("memory sample %d is %v; want a finite number of bytes ≥ 0", i, m)
		}
		// Plain comparisons: min and max would also handle NaN and -0.
		if c < cpuLo {
			cpuLo = c
		}
		if c > cpuHi {
			cpuHi = c
		}
		if m < memLo {
			memLo = m
		}
		if m > memHi {
			memHi = m
		}
		cpuSum += c
		memSum += m
		memISum += float64(i) * m
		if w.CPULimit > 0 && c >= w.CPULimit {
			throttled++
		}
	}
	fn := float64(n)

	var r Raw
	cpuMean := cpuSum / fn
	if cpuMean > 0 {
		var ss float64
		for _, c := range w.CPU {
			d := c - cpuMean
			ss += d * d
		}
		r.CPUVariance = min(math.Sqrt(ss/fn)/cpuMean, MaxCPUVariance)
	}
	memMean := memSum / fn
	if n > 1 && memMean > 0 {
		// Slope of m against the sample index i = 0..n-1:
		// Σ(i-ī)m / Σ(i-ī)², with Σ(i-ī)m = Σim - ī·Σm and Σ(i-ī)² = n(n²-1)/12.
		iMean := (fn - 1) / 2
		slopePerStep := (memISum - iMean*memSum) / (fn * (fn*fn - 1) / 12)
		stepsPerDay := float64(24*time.Hour) / float64(w.Step)
		// Clamped to the plausible range: only a window far shorter than
		// the default (or a spike in its last sample) goes beyond, and the
		// normalization clips at ±0.5 anyway.
		r.MemTrend = min(max(slopePerStep*stepsPerDay/memMean, -MaxMemTrend), MaxMemTrend)
	}
	if w.CPULimit > 0 {
		r.ThrottleRatio = float64(throttled) / fn
	}

	var p [3]float64
	s.selectRanks(w.CPU, cpuLo, cpuHi, true, featurePercentiles[:], p[:])
	r.CPUP50, r.CPUP95, r.CPUP99 = p[0], p[1], p[2]
	s.selectRanks(w.Mem, memLo, memHi, true, featurePercentiles[:], p[:])
	r.MemP50, r.MemP95, r.MemP99 = p[0], p[1], p[2]

	end := w.End.UTC()
	r.HourOfDay = float64(end.Hour())
	r.DayOfWeek = float64(end.Weekday())
	r.WorkloadAgeDays = ageDays
	return r, nil
}

func (s *Scratch) grow(n int) []float64 {
	if cap(s.buf) < n {
		s.buf = make([]float64, n)
	}
	return s.buf[:n]
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }
