package features

import (
	"fmt"
	"math"
	"slices"
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

// Raw holds every catalogue feature (model.Catalog) in raw units (cores,
// bytes, ratios, hour, day, days). See the package documentation for
// definitions. A Raw a client sent may carry only some of them: Layout
// reads and checks only the features a manifest declares.
type Raw struct {
	CPUP50, CPUP95, CPUP99, MemP50, MemP95, MemP99, CPUVariance, MemTrend, ThrottleRatio, HourOfDay, DayOfWeek, WorkloadAgeDays float64

	// Added by major 2's catalogue: history maxima.
	CPUMax, MemMax, MemMax24h, MemPeakP95, CPUMax24h float64
}

// Values returns major 1's 12 features in model order (model.DefaultFeatures).
func (r Raw) Values() [model.NumFeatures]float64 {
	return [model.NumFeatures]float64{
		r.CPUP50, r.CPUP95, r.CPUP99, r.MemP50, r.MemP95, r.MemP99,
		r.CPUVariance, r.MemTrend, r.ThrottleRatio, r.HourOfDay, r.DayOfWeek, r.WorkloadAgeDays,
	}
}

// All returns every feature in catalogue order (model.Catalog): the
// name-based view, indexed by model.LookupFeature's index.
func (r Raw) All() [model.CatalogSize]float64 {
	return [model.CatalogSize]float64{
		r.CPUP50, r.CPUP95, r.CPUP99, r.MemP50, r.MemP95, r.MemP99,
		r.CPUVariance, r.MemTrend, r.ThrottleRatio, r.HourOfDay, r.DayOfWeek, r.WorkloadAgeDays,
		r.CPUMax, r.MemMax, r.MemMax24h, r.MemPeakP95, r.CPUMax24h,
	}
}

// Set sets the feature at catalogue index i to v; an index outside the
// catalogue is ignored.
func (r *Raw) Set(i int, v float64) {
	if p := r.field(i); p != nil {
		*p = v
	}
}

// Get returns the feature at catalogue index i (0 outside the catalogue).
func (r *Raw) Get(i int) float64 {
	if p := r.field(i); p != nil {
		return *p
	}
	return 0
}

func (r *Raw) field(i int) *float64 {
	switch i {
	case iCPUP50:
		return &r.CPUP50
	case iCPUP95:
		return &r.CPUP95
	case iCPUP99:
		return &r.CPUP99
	case iMemP50:
		return &r.MemP50
	case iMemP95:
		return &r.MemP95
	case iMemP99:
		return &r.MemP99
	case iCPUVariance:
		return &r.CPUVariance
	case iMemTrend:
		return &r.MemTrend
	case iThrottleRatio:
		return &r.ThrottleRatio
	case iHourOfDay:
		return &r.HourOfDay
	case iDayOfWeek:
		return &r.DayOfWeek
	case iWorkloadAge:
		return &r.WorkloadAgeDays
	case iCPUMax:
		return &r.CPUMax
	case iMemMax:
		return &r.MemMax
	case iMemMax24h:
		return &r.MemMax24h
	case iMemPeakP95:
		return &r.MemPeakP95
	case iCPUMax24h:
		return &r.CPUMax24h
	}
	return nil
}

// Feature indexes in catalogue order (the first 12 are major 1's model order).
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
	iCPUMax
	iMemMax
	iMemMax24h
	iMemPeakP95
	iCPUMax24h
	numCatalog
)

// The catalogue must list the features in this package's order.
var _ [numCatalog - model.CatalogSize]struct{}
var _ [model.CatalogSize - numCatalog]struct{}

// specs supplies the feature names and units used in error messages, by
// catalogue index.
var specs = func() []model.Spec {
	c := model.Catalog()
	out := make([]model.Spec, len(c))
	for i, f := range c {
		out[i] = f.Spec
	}
	return out
}()

// orderPairs are the (lower, higher) catalogue indexes whose values must not
// decrease: percentiles up to the maximum, the last 24 h's maximum and the
// daily peaks' p95 below the window's maximum. A Layout checks a pair when
// it declares both features.
var orderPairs = [][2]int{
	{iCPUP50, iCPUP95}, {iCPUP95, iCPUP99}, {iMemP50, iMemP95}, {iMemP95, iMemP99},
	{iCPUP99, iCPUMax}, {iMemP99, iMemMax}, {iCPUMax24h, iCPUMax}, {iMemMax24h, iMemMax}, {iMemPeakP95, iMemMax},
}

// v1Layout is major 1's layout, what Raw.Validate checks.
var v1Layout = func() *Layout {
	l, err := NewLayout(model.DefaultFeatures())
	if err != nil {
		panic(err)
	}
	return l
}()

// Validate checks major 1's 12 raw features, e.g. ones a client sent: every
// value must lie in its plausible range (Ranges: finite, cpu and memory ≥ 0
// and at most MaxCPUCores and MaxMemoryBytes, mem_trend within
// ±MaxMemTrend, throttle_ratio in [0,1], hour_of_day an integer in [0,23],
// day_of_week an integer in [0,6], …) and the percentiles of each resource
// must not decrease (p50 ≤ p95 ≤ p99). The error is a *RangeError or an
// *OrderError for the first offending feature; both wrap
// model.ErrInvalidInput and say what is accepted. Layout.Validate checks
// any declared list.
func (r Raw) Validate() error { return v1Layout.Validate(r) }

// Layout is what normalizing one declared feature list needs, computed once
// per manifest: the catalogue index of each column, its spec, and the order
// checks among the declared features. It is safe for concurrent use.
type Layout struct {
	specs []model.Spec
	idx   []int
	pairs [][2]int
}

// NewLayout returns the layout of specs (a manifest's Features, in model
// order). A name the catalogue does not have gives an error wrapping
// model.ErrInvalidModel naming it.
func NewLayout(specs []model.Spec) (*Layout, error) {
	l := &Layout{specs: append([]model.Spec(nil), specs...), idx: make([]int, len(specs))}
	declared := make(map[int]bool, len(specs))
	for j, s := range specs {
		_, i, ok := model.LookupFeature(s.Name)
		if !ok {
			return nil, fmt.Errorf("%w: feature %q is not in the catalogue", model.ErrInvalidModel, s.Name)
		}
		l.idx[j] = i
		declared[i] = true
	}
	for _, p := range orderPairs {
		if declared[p[0]] && declared[p[1]] {
			l.pairs = append(l.pairs, p)
		}
	}
	return l, nil
}

// Width is the number of declared features.
func (l *Layout) Width() int { return len(l.idx) }

// Index returns the catalogue index of column j.
func (l *Layout) Index(j int) int { return l.idx[j] }

// Validate checks the declared features of r: each in its Range, and each
// declared pair of orderPairs not decreasing. Errors as Raw.Validate.
func (l *Layout) Validate(r Raw) error {
	v := r.All()
	for _, i := range l.idx {
		if !Ranges[i].Contains(v[i]) {
			return &RangeError{Index: i, Value: v[i], Range: Ranges[i]}
		}
	}
	for _, p := range l.pairs {
		if v[p[1]] < v[p[0]] {
			return &OrderError{Index: p[1], Lower: p[0], Value: v[p[1]], Prev: v[p[0]]}
		}
	}
	return nil
}

// NormalizeInto validates r (Validate) and writes the declared features,
// normalized with the layout's specs, to out[:Width()].
func (l *Layout) NormalizeInto(r Raw, out []float32) error {
	if len(out) < len(l.idx) {
		return fmt.Errorf("%w: %d values for %d features", model.ErrInvalidModel, len(out), len(l.idx))
	}
	if err := l.Validate(r); err != nil {
		return err
	}
	v := r.All()
	for j, i := range l.idx {
		out[j] = float32(l.specs[j].Normalize(v[i]))
	}
	return nil
}

// Normalize validates r and maps each declared feature onto [0,1] with
// specs[j].Normalize, in the order of specs (a manifest's Features). A
// feature the catalogue does not have gives an error wrapping
// model.ErrInvalidModel; invalid features give Layout.Validate's error. In
// loops, build a Layout once and call NormalizeInto.
func Normalize(r Raw, specs []model.Spec) ([]float32, error) {
	l, err := NewLayout(specs)
	if err != nil {
		return nil, err
	}
	out := make([]float32, l.Width())
	if err := l.NormalizeInto(r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Computable returns the RawMetrics fields (model.Feature.RawField), in the
// order of specs, that the declared features need and a request did not
// send: present reports whether a field was sent. Nil means every declared
// feature can be computed. A feature the catalogue does not have is listed
// by its own name.
func Computable(specs []model.Spec, present func(field string) bool) (missing []string) {
	for _, s := range specs {
		f, _, ok := model.LookupFeature(s.Name)
		switch {
		case !ok:
			missing = append(missing, s.Name)
		case !present(f.RawField):
			missing = append(missing, f.RawField)
		}
	}
	return missing
}

// Scratch holds the buffers FromHistory and Percentiles select in, so that
// repeated calls allocate nothing once they have grown to the series length.
// The zero value is ready to use. A Scratch is not safe for concurrent use.
type Scratch struct {
	buf, aux, peaks []float64
}

// featurePercentiles are the percentiles the model reads from each series.
var featurePercentiles = [3]float64{50, 95, 99}

// FromHistory computes every catalogue feature of a history window for a workload
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

	r.CPUMax, r.MemMax = cpuHi, memHi
	day := int(24 * time.Hour / w.Step)
	if day < 1 {
		day = 1
	}
	from := max(0, n-day)
	for i := from; i < n; i++ {
		r.CPUMax24h = max(r.CPUMax24h, w.CPU[i])
		r.MemMax24h = max(r.MemMax24h, w.Mem[i])
	}
	// Daily peaks: 24 h intervals counted back from the last sample (the
	// oldest may be partial), one peak each.
	s.peaks = s.peaks[:0]
	for hi := n; hi > 0; hi -= day {
		pk := 0.0
		for _, m := range w.Mem[max(0, hi-day):hi] {
			pk = max(pk, m)
		}
		s.peaks = append(s.peaks, pk)
	}
	slices.Sort(s.peaks)
	r.MemPeakP95 = Percentile(s.peaks, 95)

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
