package model

import (
	"fmt"
	"time"
)

// Feature is one entry of the feature catalogue: a model input the server
// can compute, its normalization (Spec, whose Name is the feature's name)
// and the RawMetrics field (by its proto name) that carries it raw.
type Feature struct {
	Spec     Spec
	RawField string
}

// Names of the features added after major 1 (see Catalog).
const (
	FeatureCPUMax     = "cpu_max"
	FeatureMemMax     = "mem_max"
	FeatureMemMax24h  = "mem_max_24h"
	FeatureMemPeakP95 = "mem_peak_p95"
	FeatureCPUMax24h  = "cpu_max_24h"
)

// catalog is every feature the server can compute, in catalogue order:
// major 1's twelve first, in their model order, then the later ones. The
// order is the index features.Raw and features.Layout use; entries are
// only ever appended.
var catalog = func() []Feature {
	v1 := DefaultFeatures()
	fields := [NumFeatures]string{
		"cpu_p50_cores", "cpu_p95_cores", "cpu_p99_cores",
		"mem_p50_bytes", "mem_p95_bytes", "mem_p99_bytes",
		"cpu_variance", "mem_trend_per_day", "throttle_ratio",
		"hour_of_day", "day_of_week", "workload_age_days",
	}
	c := make([]Feature, 0, NumFeatures+5)
	for i, s := range v1 {
		c = append(c, Feature{Spec: s, RawField: fields[i]})
	}
	return append(c,
		Feature{named(cpuSpec, FeatureCPUMax, "maximum CPU usage over the history window"), "cpu_max_cores"},
		Feature{named(memSpec, FeatureMemMax, "maximum memory working set over the history window"), "mem_max_bytes"},
		Feature{named(memSpec, FeatureMemMax24h, "maximum memory working set over the last 24 h of the history window"), "mem_max_24h_bytes"},
		Feature{named(memSpec, FeatureMemPeakP95, "95th percentile (nearest rank) of the daily memory peaks: the window cut into 24 h intervals counted back from its end, one peak each"), "mem_peak_p95_bytes"},
		Feature{named(cpuSpec, FeatureCPUMax24h, "maximum CPU usage over the last 24 h of the history window"), "cpu_max_24h_cores"},
	)
}()

// CatalogSize is the number of features in the catalogue.
const CatalogSize = NumFeatures + 5

// Catalog returns a copy of the feature catalogue in catalogue order.
func Catalog() []Feature { return append([]Feature(nil), catalog...) }

// catalogIndex maps a feature name to its catalogue index.
var catalogIndex = func() map[string]int {
	m := make(map[string]int, len(catalog))
	for i, f := range catalog {
		m[f.Spec.Name] = i
	}
	return m
}()

// LookupFeature returns the catalogue entry named name and its catalogue
// index; ok is false when the catalogue has no such feature.
func LookupFeature(name string) (f Feature, index int, ok bool) {
	i, ok := catalogIndex[name]
	if !ok {
		return Feature{}, -1, false
	}
	return catalog[i], i, true
}

// Majors are the model majors (I/O formats) this code knows, oldest first.
var Majors = []int{1, 2}

// LatestMajor is the newest major, what training targets by default.
const LatestMajor = 2

// majorFeatures names each major's input features in model order. Major 2
// adds the history maxima and the last day's maxima to major 1's twelve:
// on the training containers of the Bitbrains VMs (7-day history, next
// day's peak, a log-linear fit on half the containers scored on the other
// half) the memory log-slack at 97 % coverage went 1.013 (v1's) → 0.986
// (+mem_max) → 0.930 (+mem_max_24h), CPU 1.549 → 1.547 (+cpu_max) → 1.489
// (+cpu_max_24h). mem_peak_p95 is left out: over a 7-day window the
// nearest-rank p95 of 7 daily peaks is the maximum itself.
var majorFeatures = map[int][]string{
	1: {"cpu_p50", "cpu_p95", "cpu_p99", "mem_p50", "mem_p95", "mem_p99",
		"cpu_variance", "mem_trend", "throttle_ratio", "hour_of_day", "day_of_week", "workload_age"},
	2: {"cpu_p50", "cpu_p95", "cpu_p99", "mem_p50", "mem_p95", "mem_p99",
		"cpu_variance", "mem_trend", "throttle_ratio", "hour_of_day", "day_of_week", "workload_age",
		FeatureCPUMax, FeatureMemMax, FeatureMemMax24h, FeatureCPUMax24h},
}

// majorWindow is the history window each major's features assume.
var majorWindow = map[int]time.Duration{
	1: 48 * time.Hour,
	2: 7 * 24 * time.Hour,
}

// FeaturesFor returns the input features of major in model order, with the
// catalogue's normalization (what the trainer writes into a manifest). An
// unknown major gives an error wrapping ErrInvalidModel.
func FeaturesFor(major int) ([]Spec, error) {
	names, ok := majorFeatures[major]
	if !ok {
		return nil, fmt.Errorf("%w: model major %d; this build knows majors %v", ErrInvalidModel, major, Majors)
	}
	out := make([]Spec, len(names))
	for i, n := range names {
		f, _, _ := LookupFeature(n)
		out[i] = f.Spec
	}
	return out, nil
}

// HistoryWindowFor returns the history window major's features assume
// (48 h for major 1, 7 days for major 2). An unknown major gives an error
// wrapping ErrInvalidModel.
func HistoryWindowFor(major int) (time.Duration, error) {
	w, ok := majorWindow[major]
	if !ok {
		return 0, fmt.Errorf("%w: model major %d; this build knows majors %v", ErrInvalidModel, major, Majors)
	}
	return w, nil
}

// SignatureFor is the I/O signature of a model reading width features:
// [N,width] float32 in, [N,NumOutputs] float32 out.
func SignatureFor(width int) Signature {
	return Signature{
		Inputs:  []TensorSpec{{Name: InputName, Type: "float32", Shape: []int64{-1, int64(width)}}},
		Outputs: []TensorSpec{{Name: OutputName, Type: "float32", Shape: []int64{-1, NumOutputs}}},
	}
}

// MaxFeatures bounds the features a manifest may declare.
const MaxFeatures = 64
