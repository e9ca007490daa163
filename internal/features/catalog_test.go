package features_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

// TestFromHistoryMaxima checks the maxima major 2 adds: over the window,
// over its last 24 h, and the daily peaks' p95.
func TestFromHistoryMaxima(t *testing.T) {
	t.Parallel()
	const day = 288
	n := 3 * day
	cpu, mem := constant(n, 0.5), constant(n, 1<<30)
	cpu[10], mem[20] = 4, 8<<30   // oldest day's peaks
	cpu[n-5], mem[n-7] = 2, 3<<30 // last day's
	mem[day+3] = 2 << 30          // middle day's
	r, err := features.FromHistory(window(cpu, mem, 0), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"cpu_max", r.CPUMax, 4}, {"mem_max", r.MemMax, 8 << 30},
		{"cpu_max_24h", r.CPUMax24h, 2}, {"mem_max_24h", r.MemMax24h, 3 << 30},
		// Peaks 8, 2 and 3 GiB: the nearest-rank p95 of three is the largest.
		{"mem_peak_p95", r.MemPeakP95, 8 << 30},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	// Forty days of daily peaks 1..40 GiB: p95 is the 38th smallest.
	n = 40 * day
	mem = constant(n, 0)
	for d := 0; d < 40; d++ {
		mem[n-1-d*day] = float64(d+1) * (1 << 30)
	}
	r, err = features.FromHistory(window(constant(n, 1), mem, 0), 40)
	if err != nil {
		t.Fatal(err)
	}
	if r.MemPeakP95 != 38<<30 || r.MemMax24h != 1<<30 || r.MemMax != 40<<30 {
		t.Errorf("40 days: peak p95 %v, max 24h %v, max %v; want 38, 1 and 40 GiB", r.MemPeakP95, r.MemMax24h, r.MemMax)
	}
}

// TestCatalogMatchesRaw checks that Raw's catalogue view, Get and Set agree
// with the named fields and the catalogue's names.
func TestCatalogMatchesRaw(t *testing.T) {
	t.Parallel()
	var r features.Raw
	for i := range model.CatalogSize {
		r.Set(i, float64(i+1))
	}
	all := r.All()
	for i, f := range model.Catalog() {
		if all[i] != float64(i+1) || r.Get(i) != all[i] {
			t.Errorf("catalogue %d (%s): All %v, Get %v; want %d", i, f.Spec.Name, all[i], r.Get(i), i+1)
		}
	}
	if r.CPUMax != 13 || r.MemMax != 14 || r.CPUMax24h != 17 {
		t.Errorf("named fields %v %v %v; want 13 14 17", r.CPUMax, r.MemMax, r.CPUMax24h)
	}
	v := r.Values()
	if !slices.Equal(v[:], all[:model.NumFeatures]) {
		t.Errorf("Values %v; want the catalogue's first 12 %v", v, all[:model.NumFeatures])
	}
}

// TestLayoutV2 normalizes major 2's declared list and checks that v1's
// twelve columns are exactly what major 1 gives.
func TestLayoutV2(t *testing.T) {
	t.Parallel()
	v2, err := model.FeaturesFor(2)
	if err != nil {
		t.Fatal(err)
	}
	r := validRaw()
	r.CPUMax, r.MemMax, r.MemMax24h, r.CPUMax24h = 3, 3<<30, 2<<30, 2.5
	l, err := features.NewLayout(v2)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, l.Width())
	if err := l.NormalizeInto(r, got); err != nil {
		t.Fatal(err)
	}
	v1, err := features.Normalize(r, model.DefaultFeatures())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[:model.NumFeatures], v1) {
		t.Errorf("v2's first 12 columns %v; want v1's %v", got[:model.NumFeatures], v1)
	}
	all := r.All()
	for j, s := range v2 {
		_, i, _ := model.LookupFeature(s.Name)
		if want := float32(s.Normalize(all[i])); got[j] != want {
			t.Errorf("column %d (%s) = %v; want %v", j, s.Name, got[j], want)
		}
	}

	// The maxima are checked against the percentiles they bound.
	bad := r
	bad.MemMax = r.MemP99 / 2
	var oe *features.OrderError
	if err := l.Validate(bad); !errors.As(err, &oe) || !errors.Is(err, model.ErrInvalidInput) ||
		!strings.Contains(err.Error(), "mem_max") || !strings.Contains(err.Error(), "mem_p99") {
		t.Errorf("mem_max below mem_p99: %v; want an OrderError naming both", err)
	}
	// Major 1 does not read the maxima, so their absence is no error there.
	if err := r.Validate(); err != nil {
		t.Errorf("v1 validate: %v", err)
	}
	bad = r
	bad.CPUMax24h = 2000
	var re *features.RangeError
	if err := l.Validate(bad); !errors.As(err, &re) || !strings.Contains(err.Error(), "cpu_max_24h") || !strings.Contains(err.Error(), "[0,1024]") {
		t.Errorf("cpu_max_24h 2000 cores: %v; want a RangeError naming the feature and range", err)
	}
	if err := bad.Validate(); err != nil {
		t.Errorf("v1 validate ignores cpu_max_24h: %v", err)
	}
}

func TestComputable(t *testing.T) {
	t.Parallel()
	v2, _ := model.FeaturesFor(2)
	v1 := model.DefaultFeatures()
	sentV1 := func(field string) bool {
		for _, f := range model.Catalog()[:model.NumFeatures] {
			if f.RawField == field {
				return true
			}
		}
		return false
	}
	if got := features.Computable(v1, sentV1); got != nil {
		t.Errorf("v1 from v1's fields: missing %v; want none", got)
	}
	if got, want := features.Computable(v2, sentV1), []string{"cpu_max_cores", "mem_max_bytes", "mem_max_24h_bytes", "cpu_max_24h_cores"}; !slices.Equal(got, want) {
		t.Errorf("v2 from v1's fields: missing %v; want %v", got, want)
	}
	if got := features.Computable(v2, func(string) bool { return true }); got != nil {
		t.Errorf("v2 from every field: missing %v", got)
	}
	if got := features.Computable([]model.Spec{{Name: "gpu_p99"}}, func(string) bool { return true }); !slices.Equal(got, []string{"gpu_p99"}) {
		t.Errorf("unknown feature: missing %v; want its name", got)
	}
}
