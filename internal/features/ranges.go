package features

import (
	"fmt"
	"math"
	"strconv"

	"recommendation-api/internal/model"
)

// Plausible ranges of the raw features. A value outside its range is not a
// container's usage but a unit mistake or garbage (1e300 cores, −500 %/day),
// and Validate refuses it rather than letting normalization clip it into an
// answer.
const (
	// MaxCPUCores bounds cpu_p50/p95/p99: the largest machines have a few
	// hundred cores; 1024 leaves room.
	MaxCPUCores = 1024
	// MaxMemoryBytes bounds mem_p50/p95/p99: 16 TiB, beyond the largest
	// single machines sold.
	MaxMemoryBytes = 16 << 40
	// MaxCPUVariance bounds cpu_variance, a coefficient of variation: over
	// n samples it is at most √(n−1), 93 for a 30-day window at 5-minute
	// steps.
	MaxCPUVariance = 100
	// MaxMemTrend bounds |mem_trend| (1/day). A 48 h window at 5-minute steps
	// reaches ±3/day only when all its memory sits in its last (first)
	// sample; the model's normalization clips at ±0.5, so nothing beyond
	// ±3 could change an answer. FromHistory clamps to this range.
	MaxMemTrend = 3
	// MaxHourOfDay and MaxDayOfWeek are the largest UTC hour and weekday
	// (0 = Sunday); both are integers.
	MaxHourOfDay = 23
	MaxDayOfWeek = 6
	// MaxWorkloadAgeDays bounds workload_age: ten years.
	MaxWorkloadAgeDays = 3650
)

// Range is the accepted interval [Min, Max] of one raw feature; Integer
// features accept whole numbers only.
type Range struct {
	Min, Max float64
	Integer  bool
}

// Contains reports whether v is finite, inside the range and, for an
// Integer range, whole.
func (r Range) Contains(v float64) bool {
	return v >= r.Min && v <= r.Max && (!r.Integer || v == math.Trunc(v))
}

// String writes the range as "an integer in [0,23]" or "a finite number in [0,1024]".
func (r Range) String() string {
	kind := "a finite number"
	if r.Integer {
		kind = "an integer"
	}
	return fmt.Sprintf("%s in [%s,%s]", kind, fmtNum(r.Min), fmtNum(r.Max))
}

// fmtNum writes whole numbers below 1e16 in full (17592186044416, not
// 1.7592186044416e+13), others as the shortest decimal.
func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e16 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Ranges are the accepted ranges of the raw features, in catalogue order
// (model.Catalog; the first 12 are major 1's model order).
var Ranges = [model.CatalogSize]Range{
	iCPUP50:        {0, MaxCPUCores, false},
	iCPUP95:        {0, MaxCPUCores, false},
	iCPUP99:        {0, MaxCPUCores, false},
	iMemP50:        {0, MaxMemoryBytes, false},
	iMemP95:        {0, MaxMemoryBytes, false},
	iMemP99:        {0, MaxMemoryBytes, false},
	iCPUVariance:   {0, MaxCPUVariance, false},
	iMemTrend:      {-MaxMemTrend, MaxMemTrend, false},
	iThrottleRatio: {0, 1, false},
	iHourOfDay:     {0, MaxHourOfDay, true},
	iDayOfWeek:     {0, MaxDayOfWeek, true},
	iWorkloadAge:   {0, MaxWorkloadAgeDays, false},
	iCPUMax:        {0, MaxCPUCores, false},
	iMemMax:        {0, MaxMemoryBytes, false},
	iMemMax24h:     {0, MaxMemoryBytes, false},
	iMemPeakP95:    {0, MaxMemoryBytes, false},
	iCPUMax24h:     {0, MaxCPUCores, false},
}

// RangeError is Validate's error for a feature outside its Range. It wraps
// model.ErrInvalidInput; callers that name fields their own way (the API's
// "cpu_p95_cores") read Index, Value and Range.
type RangeError struct {
	Index int     // feature index in catalogue order (model order for major 1)
	Value float64 // the value given
	Range Range   // what is accepted
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%v: feature %s = %s; want %s %s", model.ErrInvalidInput, specs[e.Index].Name, fmtNum(e.Value), e.Range, unitPhrase(e.Index))
}

func (e *RangeError) Unwrap() error { return model.ErrInvalidInput }

// Want says what the feature accepts, e.g. "a number in [0,1024] (cores)".
func (e *RangeError) Want() string { return e.Range.String() + " " + unitPhrase(e.Index) }

func unitPhrase(i int) string { return "(" + specs[i].Unit + ")" }

// OrderError is Validate's error for statistics that decrease: feature
// Index (catalogue order) is below feature Lower, e.g. cpu_p95 below
// cpu_p50 or mem_max below mem_p99. For major 1's percentiles Lower is
// Index-1. It wraps model.ErrInvalidInput.
type OrderError struct {
	Index       int     // the higher statistic, e.g. cpu_p95
	Lower       int     // the one it must not be below, e.g. cpu_p50
	Value, Prev float64 // its value and the lower one's
}

func (e *OrderError) Error() string {
	return fmt.Sprintf("%v: feature %s = %s; want ≥ %s = %s (percentiles and maxima must not decrease)",
		model.ErrInvalidInput, specs[e.Index].Name, fmtNum(e.Value), specs[e.Lower].Name, fmtNum(e.Prev))
}

func (e *OrderError) Unwrap() error { return model.ErrInvalidInput }
