package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"

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
// Errors (gRPC codes): InvalidArgument for an empty or oversized batch, an
// instance without input, a wrong feature count, a non-finite or
// out-of-range value, or a malformed model_version — the message names the
// field; NotFound when the pinned version is not loaded; Unavailable while
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
	y, err := lease.Run(x, n)
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

// rawField is one RawMetrics field with the range Predict accepts.
type rawField struct {
	name   string
	get    func(*recommendationv1.RawMetrics) float64
	lo, hi float64 // ±Inf for no bound
}

var rawFields = []rawField{
	{"cpu_p50_cores", (*recommendationv1.RawMetrics).GetCpuP50Cores, 0, math.Inf(1)},
	{"cpu_p95_cores", (*recommendationv1.RawMetrics).GetCpuP95Cores, 0, math.Inf(1)},
	{"cpu_p99_cores", (*recommendationv1.RawMetrics).GetCpuP99Cores, 0, math.Inf(1)},
	{"mem_p50_bytes", (*recommendationv1.RawMetrics).GetMemP50Bytes, 0, math.Inf(1)},
	{"mem_p95_bytes", (*recommendationv1.RawMetrics).GetMemP95Bytes, 0, math.Inf(1)},
	{"mem_p99_bytes", (*recommendationv1.RawMetrics).GetMemP99Bytes, 0, math.Inf(1)},
	{"cpu_variance", (*recommendationv1.RawMetrics).GetCpuVariance, 0, math.Inf(1)},
	{"mem_trend_per_day", (*recommendationv1.RawMetrics).GetMemTrendPerDay, math.Inf(-1), math.Inf(1)},
	{"throttle_ratio", (*recommendationv1.RawMetrics).GetThrottleRatio, 0, 1},
	{"hour_of_day", (*recommendationv1.RawMetrics).GetHourOfDay, 0, 23},
	{"day_of_week", (*recommendationv1.RawMetrics).GetDayOfWeek, 0, 6},
	{"workload_age_days", (*recommendationv1.RawMetrics).GetWorkloadAgeDays, 0, math.Inf(1)},
}

func validateRaw(i int, r *recommendationv1.RawMetrics) error {
	for _, f := range rawFields {
		v := f.get(r)
		if !math.IsNaN(v) && !math.IsInf(v, 0) && v >= f.lo && v <= f.hi {
			continue
		}
		want := "a finite number"
		switch {
		case math.IsInf(f.lo, -1) && math.IsInf(f.hi, 1):
		case math.IsInf(f.hi, 1):
			want = "≥ " + formatFloat(f.lo)
		default:
			want = fmt.Sprintf("in [%s,%s]", formatFloat(f.lo), formatFloat(f.hi))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if want != "a finite number" {
				want = "a finite number " + want
			}
		}
		return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, f.name, formatFloat(v), want))
	}
	// Percentiles must not decrease (p50 ≤ p95 ≤ p99), as features.Raw.Validate requires.
	for g := 0; g < 6; g += 3 {
		for k := g + 1; k < g+3; k++ {
			lo, hi := rawFields[k-1], rawFields[k]
			if hi.get(r) < lo.get(r) {
				return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want ≥ %s (%s): percentiles must not decrease",
					i, hi.name, formatFloat(hi.get(r)), lo.name, formatFloat(lo.get(r))))
			}
		}
	}
	// The features package owns the domain rules; anything it refuses that
	// the table above let through is still the caller's input to fix.
	if err := rawOf(r).Validate(); err != nil {
		return invalid(fmt.Sprintf("instances[%d].raw: %v", i, err))
	}
	return nil
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

// prediction fills p's Confidence, p.Normalized and p.Resources (which must
// be non-nil) from one output row with the manifest's plan. Normalized
// values are clipped to [0,1], as the API promises.
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
	var res [4]int64
	for k := outCPURequest; k <= outMemLimit; k++ {
		res[k] = int64(math.Round(plan.denorm[k].Denormalize(norm[k]) * plan.mult[k]))
	}
	nv, rv := p.Normalized, p.Resources
	nv.CpuRequest = float32(norm[outCPURequest])
	nv.CpuLimit = float32(norm[outCPULimit])
	nv.MemRequest = float32(norm[outMemRequest])
	nv.MemLimit = float32(norm[outMemLimit])
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
