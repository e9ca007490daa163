package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

// DefaultMaxBatch is the largest Predict batch unless PredictOptions says otherwise.
const DefaultMaxBatch = 1000

// PredictOptions configure a PredictServer.
type PredictOptions struct {
	// MaxBatch is the largest number of instances one request may carry;
	// 0 means DefaultMaxBatch.
	MaxBatch int
}

// PredictServer implements recommendation.v1.RecommendationService on top of
// Models. It holds no lock: each call validates its request, leases a model
// version, runs it and releases the lease.
type PredictServer struct {
	recommendationv1.UnimplementedRecommendationServiceServer

	models   Models
	maxBatch int
	log      *slog.Logger
	plan     atomic.Pointer[manifestPlan] // what the last leased manifest gives every row
}

var _ recommendationv1.RecommendationServiceServer = (*PredictServer)(nil)

// NewPredictServer returns a PredictServer serving from models. A nil log
// discards logs.
func NewPredictServer(models Models, opts PredictOptions, log *slog.Logger) *PredictServer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PredictServer{models: models, maxBatch: opts.MaxBatch, log: log}
}

const predictMethod = "/recommendation.v1.RecommendationService/Predict"

// Predict answers one Prediction per instance, in order, all from the same
// model version, which the response names.
//
// Every answer is admissible (model.Admissible: minimum ≤ request ≤ limit)
// whatever the model computed, and a row's answer does not depend on its
// batch (runRows).
//
// Errors (gRPC codes): InvalidArgument for an empty or oversized batch, an
// instance without input, a wrong feature count, a missing raw field, a
// non-finite or out-of-range value, or a malformed model_version — the
// message names the field, the value sent and what is accepted; NotFound when the pinned version is not loaded; Unavailable while
// no version is served; Internal (message "internal error", the cause
// logged) when the model fails.
func (s *PredictServer) Predict(ctx context.Context, req *recommendationv1.PredictRequest) (*recommendationv1.PredictResponse, error) {
	n := len(req.GetInstances())
	if err := s.validate(req); err != nil {
		return nil, err
	}

	// Normalized rows are copied now; raw rows need the leased manifest.
	x := make([]float32, n*model.NumFeatures)
	for i, in := range req.GetInstances() {
		if f := in.GetFeatures(); f != nil {
			copy(x[i*model.NumFeatures:], f.GetValues())
		}
	}

	lease, err := s.models.Acquire(req.GetModelVersion())
	if err != nil {
		if v := req.GetModelVersion(); v != "" {
			err = fmt.Errorf("model_version %q: %w", v, err)
		}
		return nil, StatusError(ctx, s.log, predictMethod, err)
	}
	defer lease.Release()
	man := lease.Manifest()
	plan := s.planOf(man)
	version := plan.version

	for i, in := range req.GetInstances() {
		r := in.GetRaw()
		if r == nil {
			continue
		}
		row, err := features.Normalize(rawOf(r), man.Features)
		if err != nil {
			if !errors.Is(err, model.ErrInvalidInput) {
				// validate accepted the input, so the manifest is at fault:
				// drop the sentinel (%v) so the client sees "internal error".
				err = fmt.Errorf("normalize instance %d with the manifest of %s: %v", i, version, err)
			} else {
				err = fmt.Errorf("instances[%d].raw: %w", i, err)
			}
			return nil, StatusError(ctx, s.log, predictMethod, err)
		}
		copy(x[i*model.NumFeatures:], row[:])
	}

	if err := ctx.Err(); err != nil {
		return nil, StatusError(ctx, s.log, predictMethod, err)
	}
	y, err := runRows(lease, x, n)
	if err != nil {
		// The input was validated, so a failure is the server's: %v keeps a
		// sentinel the runtime may wrap from reaching the client as its fault.
		return nil, StatusError(ctx, s.log, predictMethod, fmt.Errorf("run model %s on %d rows: %v", version, n, err))
	}
	if len(y) != n*model.NumOutputs {
		return nil, StatusError(ctx, s.log, predictMethod,
			fmt.Errorf("model %s returned %d values for %d rows; want %d", version, len(y), n, n*model.NumOutputs))
	}

	// One allocation for the batch's messages rather than three per row.
	msgs := make([]predictionMessages, n)
	resp := &recommendationv1.PredictResponse{
		Predictions:  make([]*recommendationv1.Prediction, n),
		ModelVersion: version,
	}
	for i, in := range req.GetInstances() {
		m := &msgs[i]
		p := &m.prediction
		p.Normalized, p.Resources = &m.normalized, &m.resources
		if err := prediction(p, plan, y[i*model.NumOutputs:(i+1)*model.NumOutputs]); err != nil {
			return nil, StatusError(ctx, s.log, predictMethod, fmt.Errorf("model %s, instance %d: %w", version, i, err))
		}
		p.ContainerId = in.GetContainerId()
		p.ModelVersion = version
		resp.Predictions[i] = p
	}
	return resp, nil
}

// runRows runs n rows on lease. A lone row is run beside a copy of itself:
// ONNX Runtime's CPU provider multiplies a one-row matrix with another
// kernel than a taller one, whose sums differ by a few float32 ulps, while
// every batch of two or more rows gives each row the same bits. Padding
// makes a row's answer independent of its batch for about 1.2 µs per
// single-row call (5.6 → 6.8 µs per Run, measured with the default model).
func runRows(lease Lease, x []float32, n int) ([]float32, error) {
	if n != 1 {
		return lease.Run(x, n)
	}
	pair := make([]float32, 2*model.NumFeatures)
	copy(pair, x)
	copy(pair[model.NumFeatures:], x)
	y, err := lease.Run(pair, 2)
	if err != nil || len(y) != 2*model.NumOutputs {
		return y, err
	}
	return y[:model.NumOutputs], nil
}

// predictionMessages are the messages of one Prediction, allocated together.
type predictionMessages struct {
	prediction recommendationv1.Prediction
	normalized recommendationv1.NormalizedOutputs
	resources  recommendationv1.Resources
}

// manifestPlan is what Predict derives from a manifest once rather than per
// call or per row: the version as text, and per resource output its unit
// multiplier (to millicores or bytes) and denormalization. err is set when
// the manifest's outputs cannot be turned into resources.
type manifestPlan struct {
	man     *model.Manifest
	version string
	mult    [outMemLimit + 1]float64
	denorm  [outMemLimit + 1]model.Denormalizer
	err     error
}

// planOf returns man's plan, remembering the last manifest's: nearly every
// call leases the active version. Manifests are not changed once loaded.
func (s *PredictServer) planOf(man *model.Manifest) *manifestPlan {
	if p := s.plan.Load(); p != nil && p.man == man {
		return p
	}
	p := &manifestPlan{man: man, version: man.Version.String()}
	if len(man.Outputs) != model.NumOutputs {
		p.err = fmt.Errorf("%w: manifest has %d output specs; want %d", errBadOutput, len(man.Outputs), model.NumOutputs)
	} else {
		for k := outCPURequest; k <= outMemLimit; k++ {
			mult, err := unitMultiplier(k, man.Outputs[k].Unit)
			if err != nil {
				p.err = err
				break
			}
			p.mult[k], p.denorm[k] = mult, man.Outputs[k].Denormalizer()
		}
	}
	s.plan.Store(p)
	return p
}

// validate checks everything about req that needs no model, so that bad
// input is refused before a lease is taken.
func (s *PredictServer) validate(req *recommendationv1.PredictRequest) error {
	n := len(req.GetInstances())
	switch {
	case n == 0:
		return invalid(fmt.Sprintf("instances: empty; want 1 to %d instances", s.maxBatch))
	case n > s.maxBatch:
		return invalid(fmt.Sprintf("instances: %d instances; want at most %d per request (split the batch)", n, s.maxBatch))
	}
	if v := req.GetModelVersion(); v != "" {
		if _, err := model.ParseVersion(v); err != nil {
			return invalid(fmt.Sprintf("model_version: %v; or leave it empty for the active version", err))
		}
	}
	for i, in := range req.GetInstances() {
		switch input := in.GetInput().(type) {
		case *recommendationv1.Instance_Features:
			if err := validateFeatures(i, input.Features); err != nil {
				return err
			}
		case *recommendationv1.Instance_Raw:
			if err := validateRaw(i, input.Raw); err != nil {
				return err
			}
		default:
			return invalid(fmt.Sprintf("instances[%d]: no input; want features (%d normalized values) or raw (metrics)", i, model.NumFeatures))
		}
	}
	return nil
}

// featureNames are the model's inputs in order, for messages.
var featureNames = func() []string {
	var names []string
	for _, s := range model.DefaultFeatures() {
		names = append(names, s.Name)
	}
	return names
}()

func validateFeatures(i int, f *recommendationv1.NormalizedFeatures) error {
	vals := f.GetValues()
	if len(vals) != model.NumFeatures {
		return invalid(fmt.Sprintf("instances[%d].features.values: %d values; want exactly %d in [0,1], in the order %v",
			i, len(vals), model.NumFeatures, featureNames))
	}
	for j, v := range vals {
		d := float64(v)
		switch {
		case math.IsNaN(d) || math.IsInf(d, 0):
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a finite number in [0,1] (%s)",
				i, j, formatFloat(d), featureNames[j]))
		case d < 0 || d > 1:
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a number in [0,1] (%s)",
				i, j, formatFloat(d), featureNames[j]))
		}
	}
	return nil
}

// rawFieldNames are the RawMetrics fields in model order
// (features.Raw.Values), by their proto names.
var rawFieldNames = [model.NumFeatures]protoreflect.Name{
	"cpu_p50_cores", "cpu_p95_cores", "cpu_p99_cores",
	"mem_p50_bytes", "mem_p95_bytes", "mem_p99_bytes",
	"cpu_variance", "mem_trend_per_day", "throttle_ratio",
	"hour_of_day", "day_of_week", "workload_age_days",
}

// rawFieldDescs are the descriptors of rawFieldNames, for presence checks.
var rawFieldDescs = func() [model.NumFeatures]protoreflect.FieldDescriptor {
	var d [model.NumFeatures]protoreflect.FieldDescriptor
	fields := (&recommendationv1.RawMetrics{}).ProtoReflect().Descriptor().Fields()
	for i, n := range rawFieldNames {
		if d[i] = fields.ByName(n); d[i] == nil || !d[i].HasPresence() {
			panic(fmt.Sprintf("transport: RawMetrics has no optional field %s", n))
		}
	}
	return d
}()

// validateRaw refuses an absent field by name, then anything
// features.Raw.Validate refuses (plausible ranges, percentile order),
// naming the field, the value sent and what is accepted.
func validateRaw(i int, r *recommendationv1.RawMetrics) error {
	// Field by field first, so the first wrong field is named whether it
	// is missing or out of range.
	m := r.ProtoReflect()
	for k, fd := range rawFieldDescs {
		if !m.Has(fd) {
			return invalid(fmt.Sprintf("instances[%d].raw.%s: missing; every RawMetrics field is required (%s), 0 is sent as 0",
				i, rawFieldNames[k], features.Ranges[k]))
		}
		if v := m.Get(fd).Float(); !features.Ranges[k].Contains(v) {
			e := &features.RangeError{Index: k, Value: v, Range: features.Ranges[k]}
			return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, rawFieldNames[k], formatFloat(v), e.Want()))
		}
	}
	err := rawOf(r).Validate()
	var re *features.RangeError
	var oe *features.OrderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, rawFieldNames[re.Index], formatFloat(re.Value), re.Want()))
	case errors.As(err, &oe):
		return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want ≥ %s (%s): percentiles must not decrease",
			i, rawFieldNames[oe.Index], formatFloat(oe.Value), rawFieldNames[oe.Index-1], formatFloat(oe.Prev)))
	}
	// Anything else features refuses is still the caller's input to fix.
	return invalid(fmt.Sprintf("instances[%d].raw: %v", i, err))
}

// RawMetricsOf returns the RawMetrics message of raw features, every field
// set: what an agent that computes features with package features sends.
func RawMetricsOf(f features.Raw) *recommendationv1.RawMetrics {
	v := f.Values()
	m := &recommendationv1.RawMetrics{}
	pm := m.ProtoReflect()
	for k, fd := range rawFieldDescs {
		pm.Set(fd, protoreflect.ValueOfFloat64(v[k]))
	}
	return m
}

func rawOf(r *recommendationv1.RawMetrics) features.Raw {
	return features.Raw{
		CPUP50:          r.GetCpuP50Cores(),
		CPUP95:          r.GetCpuP95Cores(),
		CPUP99:          r.GetCpuP99Cores(),
		MemP50:          r.GetMemP50Bytes(),
		MemP95:          r.GetMemP95Bytes(),
		MemP99:          r.GetMemP99Bytes(),
		CPUVariance:     r.GetCpuVariance(),
		MemTrend:        r.GetMemTrendPerDay(),
		ThrottleRatio:   r.GetThrottleRatio(),
		HourOfDay:       r.GetHourOfDay(),
		DayOfWeek:       r.GetDayOfWeek(),
		WorkloadAgeDays: r.GetWorkloadAgeDays(),
	}
}

// formatFloat writes v as JSON-ish text: NaN, +Inf, -Inf or the shortest decimal.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Output indexes in model order (model.DefaultOutputs).
const (
	outCPURequest = iota
	outCPULimit
	outMemRequest
	outMemLimit
	outConfidence
)

// errBadOutput marks a model answer or manifest the server cannot turn into
// a prediction; it is an internal error, never the caller's.
var errBadOutput = errors.New("unusable model output")

// maxResource bounds an absolute value so that it fits an int64 with room.
const maxResource = 1 << 62

// prediction fills p's Confidence, p.Normalized and p.Resources (which must
// be non-nil) from one output row with the manifest's plan. The outputs are
// clipped to [0,1], denormalized and made admissible (model.Admissible:
// minimum ≤ request ≤ limit); the absolute values are those rounded, the
// normalized ones those normalized back (equal to the model's output where
// the rule changed nothing), so both views say the same.
func prediction(p *recommendationv1.Prediction, plan *manifestPlan, row []float32) error {
	if plan.err != nil {
		return plan.err
	}
	var norm [model.NumOutputs]float64
	for k, v := range row {
		d := float64(v)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return fmt.Errorf("%w: output %s is %v", errBadOutput, plan.man.Outputs[k].Name, d)
		}
		norm[k] = math.Min(math.Max(d, 0), 1)
	}
	var abs [outMemLimit + 1]float64 // millicores and bytes
	for k := outCPURequest; k <= outMemLimit; k++ {
		abs[k] = plan.denorm[k].Denormalize(norm[k]) * plan.mult[k]
	}
	abs[outCPURequest], abs[outCPULimit], abs[outMemRequest], abs[outMemLimit] =
		model.Admissible(abs[outCPURequest], abs[outCPULimit], abs[outMemRequest], abs[outMemLimit])
	var res [outMemLimit + 1]int64
	var out [outMemLimit + 1]float32
	for k := outCPURequest; k <= outMemLimit; k++ {
		// Rounding is monotone and the minimums are whole, so the order
		// and the minimums survive it.
		r := math.Round(abs[k])
		if !(r < maxResource) {
			return fmt.Errorf("%w: output %s is %g after denormalization", errBadOutput, plan.man.Outputs[k].Name, r)
		}
		res[k] = int64(r)
		out[k] = float32(plan.man.Outputs[k].Normalize(abs[k] / plan.mult[k]))
	}
	nv, rv := p.Normalized, p.Resources
	nv.CpuRequest = out[outCPURequest]
	nv.CpuLimit = out[outCPULimit]
	nv.MemRequest = out[outMemRequest]
	nv.MemLimit = out[outMemLimit]
	nv.Confidence = float32(norm[outConfidence])
	rv.CpuRequestMillicores = res[outCPURequest]
	rv.CpuLimitMillicores = res[outCPULimit]
	rv.MemoryRequestBytes = res[outMemRequest]
	rv.MemoryLimitBytes = res[outMemLimit]
	p.Confidence = float32(norm[outConfidence])
	return nil
}

// unitMultiplier converts a CPU output's unit to millicores and a memory
// output's unit to bytes.
func unitMultiplier(k int, unit string) (float64, error) {
	cpu := k == outCPURequest || k == outCPULimit
	switch {
	case cpu && unit == "cores":
		return 1000, nil
	case cpu && unit == "millicores":
		return 1, nil
	case !cpu && unit == "bytes":
		return 1, nil
	}
	return 0, fmt.Errorf("%w: output %d has unit %q; want cores or millicores for CPU, bytes for memory", errBadOutput, k, unit)
}
