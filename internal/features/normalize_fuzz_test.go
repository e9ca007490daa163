package features_test

import (
	"errors"
	"math"
	"testing"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

// FuzzNormalize feeds fuzzed raw metrics (what an agent sends as raw
// fields) to Validate and Normalize with the default specs. Either both
// refuse them with an error wrapping model.ErrInvalidInput, or every
// normalized value is finite and in [0,1]. The seed corpus is in
// testdata/fuzz/FuzzNormalize.
func FuzzNormalize(f *testing.F) {
	f.Add(0.2, 0.45, 0.6, 3e8, 4e8, 4.2e8, 0.4, -0.01, 0.02, 14.0, 3.0, 42.0)
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
	f.Add(1e300, 1e300, 1e300, 0.0, 0.0, 0.0, 0.0, -5.0, 0.0, 13.5, 0.0, 0.0)
	f.Add(2.0, 1.0, 0.5, 4e8, 3e8, 2e8, 0.1, 0.0, 1.5, 23.0, 6.0, 3650.0)
	f.Fuzz(func(t *testing.T, c50, c95, c99, m50, m95, m99, cv, mt, th, hour, day, age float64) {
		r := features.Raw{CPUP50: c50, CPUP95: c95, CPUP99: c99, MemP50: m50, MemP95: m95, MemP99: m99,
			CPUVariance: cv, MemTrend: mt, ThrottleRatio: th, HourOfDay: hour, DayOfWeek: day, WorkloadAgeDays: age}
		verr := r.Validate()
		out, err := features.Normalize(r, model.DefaultFeatures())
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate = %v but Normalize = %v", verr, err)
		}
		if err != nil {
			if !errors.Is(err, model.ErrInvalidInput) {
				t.Fatalf("Normalize error %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		for i, v := range r.Values() {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("feature %d = %v accepted", i, v)
			}
		}
		for i, x := range out {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("normalized feature %d = %v; want [0,1]", i, x)
			}
		}
	})
}
