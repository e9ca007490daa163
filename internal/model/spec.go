package model

import (
	"fmt"
	"math"
)

// NumFeatures and NumOutputs fix the model's I/O format (major version 1).
const (
	NumFeatures = 12
	NumOutputs  = 5
)

// Transform names how a raw quantity maps onto [0,1].
type Transform string

const (
	// Linear maps [Min,Max] onto [0,1].
	Linear Transform = "linear"
	// Log1p maps v onto ln(1+(v-Min)/Scale) / ln(1+(Max-Min)/Scale): it spreads
	// the small values (10 millicores, 64 MiB) that dominate container usage.
	Log1p Transform = "log1p"
)

// Spec describes one model input feature or output: its name, the unit of its
// raw value, and how the raw value is normalized to [0,1]. Values outside
// [Min,Max] are clipped when normalized.
type Spec struct {
	Name        string    `json:"name"`
	Unit        string    `json:"unit"`
	Description string    `json:"description"`
	Transform   Transform `json:"transform"`
	Min         float64   `json:"min"`
	Max         float64   `json:"max"`
	Scale       float64   `json:"scale,omitempty"`
}

// Normalize maps a raw value to [0,1], clipping values outside [Min,Max].
func (s Spec) Normalize(v float64) float64 {
	var x float64
	switch s.Transform {
	case Log1p:
		x = math.Log1p(math.Max(v-s.Min, 0)/s.Scale) / math.Log1p((s.Max-s.Min)/s.Scale)
	default:
		x = (v - s.Min) / (s.Max - s.Min)
	}
	return math.Min(math.Max(x, 0), 1)
}

// Denormalize maps a value in [0,1] back to the raw unit (the inverse of
// Normalize inside [Min,Max]); x is clipped to [0,1] first.
func (s Spec) Denormalize(x float64) float64 { return s.Denormalizer().Denormalize(x) }

// Denormalizer is a Spec's Denormalize with its constant computed once, for
// loops over many values.
type Denormalizer struct {
	spec     Spec
	logRange float64 // ln(1+(Max-Min)/Scale) for Log1p
}

// Denormalizer returns the Spec's Denormalizer.
func (s Spec) Denormalizer() Denormalizer {
	d := Denormalizer{spec: s}
	if s.Transform == Log1p {
		d.logRange = math.Log1p((s.Max - s.Min) / s.Scale)
	}
	return d
}

// Slope is the derivative of Denormalize at x (inside (0,1)).
func (d Denormalizer) Slope(x float64) float64 {
	s := d.spec
	if s.Transform == Log1p {
		return s.Scale * math.Exp(x*d.logRange) * d.logRange
	}
	return s.Max - s.Min
}

// Denormalize is Spec.Denormalize.
func (d Denormalizer) Denormalize(x float64) float64 {
	s := d.spec
	x = math.Min(math.Max(x, 0), 1)
	switch s.Transform {
	case Log1p:
		return s.Min + s.Scale*math.Expm1(x*d.logRange)
	default:
		return s.Min + x*(s.Max-s.Min)
	}
}

// Validate checks that a Spec is usable.
func (s Spec) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("%w: spec without a name", ErrInvalidModel)
	case !(s.Max > s.Min):
		return fmt.Errorf("%w: spec %s: max %v must exceed min %v", ErrInvalidModel, s.Name, s.Max, s.Min)
	case s.Transform == Log1p && !(s.Scale > 0):
		return fmt.Errorf("%w: spec %s: log1p needs a positive scale", ErrInvalidModel, s.Name)
	case s.Transform != Log1p && s.Transform != Linear:
		return fmt.Errorf("%w: spec %s: transform %q; want linear or log1p", ErrInvalidModel, s.Name, s.Transform)
	}
	return nil
}

const (
	mib = 1 << 20
	gib = 1 << 30
)

// Shared ranges: 10 millicores to 64 cores, 16 MiB to 256 GiB.
var (
	cpuSpec = Spec{Unit: "cores", Transform: Log1p, Min: 0, Max: 64, Scale: 0.01}
	memSpec = Spec{Unit: "bytes", Transform: Log1p, Min: 0, Max: 256 * gib, Scale: 16 * mib}
)

func named(s Spec, name, desc string) Spec { s.Name, s.Description = name, desc; return s }

// DefaultFeatures returns the 12 input features in model order, with the
// normalization this major version uses. Manifests carry their own copy.
func DefaultFeatures() []Spec {
	return []Spec{
		named(cpuSpec, "cpu_p50", "median CPU usage over the history window"),
		named(cpuSpec, "cpu_p95", "95th percentile CPU usage over the history window"),
		named(cpuSpec, "cpu_p99", "99th percentile CPU usage over the history window"),
		named(memSpec, "mem_p50", "median memory working set over the history window"),
		named(memSpec, "mem_p95", "95th percentile memory working set over the history window"),
		named(memSpec, "mem_p99", "99th percentile memory working set over the history window"),
		{Name: "cpu_variance", Unit: "ratio", Description: "coefficient of variation (stddev/mean) of CPU usage over the history window", Transform: Linear, Min: 0, Max: 3},
		{Name: "mem_trend", Unit: "1/day", Description: "memory growth per day relative to the window's mean (least-squares slope / mean)", Transform: Linear, Min: -0.5, Max: 0.5},
		{Name: "throttle_ratio", Unit: "ratio", Description: "fraction of history samples at or above the current CPU limit", Transform: Linear, Min: 0, Max: 1},
		{Name: "hour_of_day", Unit: "hour", Description: "UTC hour at the end of the history window (0-23)", Transform: Linear, Min: 0, Max: 23},
		{Name: "day_of_week", Unit: "day", Description: "UTC day of week at the end of the history window (0=Sunday .. 6=Saturday)", Transform: Linear, Min: 0, Max: 6},
		{Name: "workload_age", Unit: "days", Description: "days since the workload first appeared", Transform: Log1p, Min: 0, Max: 365, Scale: 1},
	}
}

// DefaultOutputs returns the 5 outputs in model order.
func DefaultOutputs() []Spec {
	return []Spec{
		named(cpuSpec, "cpu_request", "recommended CPU request"),
		named(cpuSpec, "cpu_limit", "recommended CPU limit"),
		named(memSpec, "mem_request", "recommended memory request"),
		named(memSpec, "mem_limit", "recommended memory limit"),
		{Name: "confidence", Unit: "ratio", Description: "how far the recommendation can be trusted: 1 when the following window looked like the history, falling as they differ", Transform: Linear, Min: 0, Max: 1},
	}
}

// The smallest recommendation served: the Kubernetes VPA recommender's
// minimums (kubernetes/autoscaler, vertical-pod-autoscaler/pkg/recommender).
// Every Predict answer is at least these, whatever the model computed.
const (
	// MinCPUMillicores is the smallest CPU request or limit, 25 millicores.
	MinCPUMillicores = 25
	// MinMemoryBytes is the smallest memory request or limit, 250 MiB.
	MinMemoryBytes = 250 * mib
)

// Admissible returns a recommendation Kubernetes accepts, from one a model
// computed (CPU in millicores, memory in bytes): each request is raised to
// its minimum (MinCPUMillicores, MinMemoryBytes), then each limit to at
// least its request, so that minimum ≤ request ≤ limit. A NaN value counts
// as 0. The serving edge applies it to every answer, and training scores
// what it gives, since that is what is served.
func Admissible(cpuReq, cpuLim, memReq, memLim float64) (float64, float64, float64, float64) {
	atLeast := func(v, lo float64) float64 {
		if !(v >= lo) { // NaN too
			return lo
		}
		return v
	}
	cpuReq = atLeast(cpuReq, MinCPUMillicores)
	memReq = atLeast(memReq, MinMemoryBytes)
	return cpuReq, atLeast(cpuLim, cpuReq), memReq, atLeast(memLim, memReq)
}
