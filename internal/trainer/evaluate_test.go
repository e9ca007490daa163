package trainer

import (
	"math"
	"testing"
)

// TestOOMFactor against hand-computed factors: rows need 2, 1, 0.5, never
// (a zero limit) and always (an infinite one).
func TestOOMFactor(t *testing.T) {
	t.Parallel()
	limits := []float64{1, 2, 4, 0, math.Inf(1)}
	peaks := []float64{2, 2, 2, 1, 5}
	for _, tc := range []struct {
		rate   float64
		factor float64
		ok     bool
	}{
		{0.2, 2, true},   // one row may OOM: the zero limit
		{0.4, 1, true},   // two: the zero limit and the row needing 2
		{0.6, 0.5, true}, // three
		{1, 0, true},     // all but one: the infinite limit needs nothing
		{0, 2, false},    // none may: the zero limit always does; 2 holds the rest
	} {
		f, ok := OOMFactor(limits, peaks, tc.rate)
		if ok != tc.ok || math.Abs(f-tc.factor*(1+oomNudge)) > 1e-15 {
			t.Errorf("rate %v: factor %v, ok %v; want %v, %v", tc.rate, f, ok, tc.factor, tc.ok)
		}
		if tc.ok { // at most rate of the rows above their scaled limit, and the nudge keeps ties under
			over := 0
			for i, l := range limits {
				if !(peaks[i] <= l*f) {
					over++
				}
			}
			if float64(over) > tc.rate*float64(len(limits))+1e-9 {
				t.Errorf("rate %v: %d of %d rows over their scaled limit", tc.rate, over, len(limits))
			}
		}
	}
	// The nudge: 49 × (1/49) rounds below 1, so without it the row that
	// sets the factor would OOM at its own limit.
	if f, ok := OOMFactor([]float64{49}, []float64{1}, 0); !ok || !(1 <= 49*f) {
		t.Errorf("limit 49, peak 1: factor %v (ok %v) leaves 49 × factor = %v under the peak", f, ok, 49*f)
	}
	for name, tc := range map[string]struct {
		limits []float64
		rate   float64
		factor float64
		ok     bool
	}{
		"NaN and negative limits never hold": {[]float64{math.NaN(), -1, 2}, 0.67, 1, true},
		"every limit unusable":               {[]float64{0, math.NaN()}, 0.4, 0, false},
		"a rate above 1: all rows but one":   {[]float64{1, 2}, 1.5, 1, true},
	} {
		f, ok := OOMFactor(tc.limits, []float64{2, 2, 2}[:len(tc.limits)], tc.rate)
		if ok != tc.ok || math.Abs(f-tc.factor*(1+oomNudge)) > 1e-15 {
			t.Errorf("%s: factor %v, ok %v; want %v, %v", name, f, ok, tc.factor, tc.ok)
		}
	}
	if f, ok := OOMFactor(nil, nil, 0.1); ok || !math.IsNaN(f) {
		t.Errorf("no rows: %v, %v; want NaN, false", f, ok)
	}
}
