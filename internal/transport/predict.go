package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc/status"
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
	plans    atomic.Pointer[[]*manifestPlan] // what the recently leased manifests give every row, newest first
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
// model version, which the response names. The version is, in this order:
// the pinned model_version; the active version of model_major; for
// normalized rows, the active version of the major whose input width is
// the rows' (12 values: major 1); for raw metrics only, the active version
// of the newest major whose declared features can all be computed from the
// fields every row sent (a request without major 2's fields gets major 1).
// Every answer is admissible (model.Admissible: minimum ≤ request ≤ limit)
// whatever the model computed, and a row's answer does not depend on its
// batch (runRows).
//
// Errors (gRPC codes): InvalidArgument for an empty or oversized batch, an
// instance without input, a feature count no served major takes (or not
// the pinned version's), a missing raw field the chosen major needs, a
// non-finite or out-of-range value, or a malformed model_version or
// model_major — the message names the field, the value sent and what is
// accepted; NotFound when the pinned version is not loaded; Unavailable
// while no version (of the named major) is served; Internal (message
// "internal error", the cause logged) when the model fails.
func (s *PredictServer) Predict(ctx context.Context, req *recommendationv1.PredictRequest) (*recommendationv1.PredictResponse, error) {
	n := len(req.GetInstances())
	width, err := s.validate(req)
	if err != nil {
		return nil, err
	}
	// Route and check the rows against the chosen major's manifest before
	// taking a lease (a pinned version's manifest comes with its lease), so
	// bad input never touches a session.
	var lease Lease
	if req.GetModelVersion() == "" {
		man, err := s.route(req, width)
		if err == nil {
			err = checkRows(req, s.planOf(man))
		}
		if err != nil {
			return nil, s.statusOf(ctx, err)
		}
		if lease, err = s.models.AcquireMajor(man.Version.Major); err != nil {
			return nil, s.statusOf(ctx, err)
		}
	} else if lease, err = s.models.Acquire(req.GetModelVersion()); err != nil {
		return nil, s.statusOf(ctx, fmt.Errorf("model_version %q: %w", req.GetModelVersion(), err))
	}
	defer lease.Release()
	plan := s.planOf(lease.Manifest())
	version := plan.version
	if plan.err != nil {
		return nil, StatusError(ctx, s.log, predictMethod, fmt.Errorf("model %s: %v", version, plan.err))
	}
	// A pinned version, or another version of the major if a swap came
	// between the check and the lease.
	if err := checkRows(req, plan); err != nil {
		return nil, err
	}

	w := plan.layout.Width()
	x := make([]float32, n*w)
	for i, in := range req.GetInstances() {
		if f := in.GetFeatures(); f != nil {
			copy(x[i*w:], f.GetValues())
			continue
		}
		if err := normalizeRaw(i, in.GetRaw(), plan, x[i*w:(i+1)*w]); err != nil {
			return nil, err
		}
	}

	if err := ctx.Err(); err != nil {
		return nil, StatusError(ctx, s.log, predictMethod, err)
	}
	y, err := runRows(lease, x, n, w)
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

// statusOf turns a routing or leasing error into the status to return.
func (s *PredictServer) statusOf(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return StatusError(ctx, s.log, predictMethod, err)
}

// route returns the manifest of the active version that answers an
// unpinned req (see Predict); width is the normalized rows' value count, 0
// when every row is raw. Its errors are status errors for what the caller
// must fix, domain errors otherwise.
func (s *PredictServer) route(req *recommendationv1.PredictRequest, width int) (*model.Manifest, error) {
	actives := s.models.ActiveManifests()
	if major := int(req.GetModelMajor()); major != 0 {
		for _, m := range actives {
			if m.Version.Major == major {
				return m, nil
			}
		}
		return nil, fmt.Errorf("model_major %d: %w; majors served: %s", major, model.ErrNoActiveVersion, widths(actives))
	}
	if len(actives) == 0 {
		return nil, model.ErrNoActiveVersion
	}
	if width > 0 {
		for _, m := range actives {
			if len(m.Features) == width {
				return m, nil
			}
		}
		return nil, invalid(fmt.Sprintf("instances[%d].features.values: %d values; the served majors take %s (or set model_major)",
			firstNormalized(req), width, widths(actives)))
	}
	for k := len(actives) - 1; k >= 0; k-- {
		if rawComputable(req, actives[k]) {
			return actives[k], nil
		}
	}
	// Nothing can be computed: answer as the lowest major would, naming
	// the first field a row lacks.
	return actives[0], nil
}

// checkRows checks every row against plan's manifest: normalized rows'
// width, raw rows' fields (validateFeatures, normalizeRaw without output).
func checkRows(req *recommendationv1.PredictRequest, plan *manifestPlan) error {
	if plan.err != nil {
		return nil // Predict reports it as the server's fault
	}
	for i, in := range req.GetInstances() {
		if f := in.GetFeatures(); f != nil {
			if err := validateFeatures(i, f, plan); err != nil {
				return err
			}
			continue
		}
		if err := normalizeRaw(i, in.GetRaw(), plan, nil); err != nil {
			return err
		}
	}
	return nil
}

// firstNormalized is the index of the first instance with normalized input.
func firstNormalized(req *recommendationv1.PredictRequest) int {
	for i, in := range req.GetInstances() {
		if in.GetFeatures() != nil {
			return i
		}
	}
	return 0
}

// widths describes the input widths of the served majors, for messages.
func widths(actives []*model.Manifest) string {
	var out string
	for i, m := range actives {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%d (major %d)", len(m.Features), m.Version.Major)
	}
	return out
}

// rawComputable reports whether every instance's raw metrics carry every
// field man's declared features need.
func rawComputable(req *recommendationv1.PredictRequest, man *model.Manifest) bool {
	for _, in := range req.GetInstances() {
		r := in.GetRaw().ProtoReflect()
		if len(features.Computable(man.Features, func(field string) bool {
			fd := rawFieldByName[field]
			return fd != nil && r.Has(fd)
		})) > 0 {
			return false
		}
	}
	return true
}

// runRows runs n rows on lease. A lone row is run beside a copy of itself:
// ONNX Runtime's CPU provider multiplies a one-row matrix with another
// kernel than a taller one, whose sums differ by a few float32 ulps, while
// every batch of two or more rows gives each row the same bits. Padding
// makes a row's answer independent of its batch for about 1.2 µs per
// single-row call (5.6 → 6.8 µs per Run, measured with the default model).
func runRows(lease Lease, x []float32, n, width int) ([]float32, error) {
	if n != 1 {
		return lease.Run(x, n)
	}
	pair := make([]float32, 2*width)
	copy(pair, x)
	copy(pair[width:], x)
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
	layout  *features.Layout // the declared input features
	names   []string         // their names, for messages
	mult    [outMemLimit + 1]float64
	denorm  [outMemLimit + 1]model.Denormalizer
	err     error
}

// maxPlans bounds the plans remembered: the active versions of a few
// majors and pinned ones; older ones are recomputed when leased again.
const maxPlans = 8

// planOf returns man's plan, remembering the most recent ones: nearly
// every call leases one of the majors' active versions. Manifests are not
// changed once loaded.
func (s *PredictServer) planOf(man *model.Manifest) *manifestPlan {
	var cur []*manifestPlan
	if ps := s.plans.Load(); ps != nil {
		cur = *ps
		for _, p := range cur {
			if p.man == man {
				return p
			}
		}
	}
	p := &manifestPlan{man: man, version: man.Version.String()}
	layout, err := features.NewLayout(man.Features)
	if err != nil {
		p.err = err
		layout, _ = features.NewLayout(model.DefaultFeatures())
	}
	p.layout = layout
	for _, f := range man.Features {
		p.names = append(p.names, f.Name)
	}
	switch {
	case p.err != nil:
	case len(man.Outputs) != model.NumOutputs:
		p.err = fmt.Errorf("%w: manifest has %d output specs; want %d", errBadOutput, len(man.Outputs), model.NumOutputs)
	default:
		for k := outCPURequest; k <= outMemLimit; k++ {
			mult, err := unitMultiplier(k, man.Outputs[k].Unit)
			if err != nil {
				p.err = err
				break
			}
			p.mult[k], p.denorm[k] = mult, man.Outputs[k].Denormalizer()
		}
	}
	next := append([]*manifestPlan{p}, cur[:min(len(cur), maxPlans-1)]...)
	s.plans.Store(&next)
	return p
}

// validate checks everything about req that needs no model, so that bad
// input is refused before a lease is taken, and returns the normalized
// rows' width (0 when every row is raw). Normalized rows must all have the
// same width; their values and the raw metrics are checked against the
// routed version's features (validateFeatures, normalizeRaw).
func (s *PredictServer) validate(req *recommendationv1.PredictRequest) (int, error) {
	n := len(req.GetInstances())
	switch {
	case n == 0:
		return 0, invalid(fmt.Sprintf("instances: empty; want 1 to %d instances", s.maxBatch))
	case n > s.maxBatch:
		return 0, invalid(fmt.Sprintf("instances: %d instances; want at most %d per request (split the batch)", n, s.maxBatch))
	}
	if v := req.GetModelVersion(); v != "" {
		if _, err := model.ParseVersion(v); err != nil {
			return 0, invalid(fmt.Sprintf("model_version: %v; or leave it empty for the active version", err))
		}
	}
	if mj := req.GetModelMajor(); mj < 0 {
		return 0, invalid(fmt.Sprintf("model_major: %d; want a major version number such as 1 or 2, or 0 to route by the input", mj))
	}
	width, first := 0, -1
	for i, in := range req.GetInstances() {
		switch input := in.GetInput().(type) {
		case *recommendationv1.Instance_Features:
			w := len(input.Features.GetValues())
			switch {
			case w == 0 || w > model.MaxFeatures:
				return 0, invalid(fmt.Sprintf("instances[%d].features.values: %d values; want the %d normalized values of major 1 (in the order %v), or as many as the served major's manifest declares (at most %d)",
					i, w, model.NumFeatures, featureNames, model.MaxFeatures))
			case first >= 0 && w != width:
				return 0, invalid(fmt.Sprintf("instances[%d].features.values: %d values; want exactly %d like instances[%d]: one batch is answered by one version",
					i, w, width, first))
			}
			if err := finiteUnit(i, input.Features.GetValues()); err != nil {
				return 0, err
			}
			width, first = w, i
		case *recommendationv1.Instance_Raw:
			if err := rawInRange(i, input.Raw); err != nil {
				return 0, err
			}
		default:
			return 0, invalid(fmt.Sprintf("instances[%d]: no input; want features (%d normalized values for major 1) or raw (metrics)", i, model.NumFeatures))
		}
	}
	return width, nil
}

// finiteUnit checks that every normalized value is a finite number in
// [0,1]; the message names the feature when the row has major 1's width.
func finiteUnit(i int, vals []float32) error {
	name := func(j int) string {
		if len(vals) == model.NumFeatures {
			return " (" + featureNames[j] + ")"
		}
		return ""
	}
	for j, v := range vals {
		d := float64(v)
		switch {
		case math.IsNaN(d) || math.IsInf(d, 0):
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a finite number in [0,1]%s", i, j, formatFloat(d), name(j)))
		case d < 0 || d > 1:
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a number in [0,1]%s", i, j, formatFloat(d), name(j)))
		}
	}
	return nil
}

// rawInRange checks every raw field a row sent against its plausible
// range, whichever major will read it.
func rawInRange(i int, r *recommendationv1.RawMetrics) error {
	m := r.ProtoReflect()
	for k, fd := range rawFieldDescs {
		if !m.Has(fd) {
			continue
		}
		if v := m.Get(fd).Float(); !features.Ranges[k].Contains(v) {
			e := &features.RangeError{Index: k, Value: v, Range: features.Ranges[k]}
			return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, fd.Name(), formatFloat(v), e.Want()))
		}
	}
	return nil
}

// featureNames are major 1's inputs in order, for messages.
var featureNames = func() []string {
	var names []string
	for _, s := range model.DefaultFeatures() {
		names = append(names, s.Name)
	}
	return names
}()

// validateFeatures checks a normalized row against the routed version:
// its width, and each value finite in [0,1].
func validateFeatures(i int, f *recommendationv1.NormalizedFeatures, plan *manifestPlan) error {
	vals := f.GetValues()
	if len(vals) != len(plan.names) {
		return invalid(fmt.Sprintf("instances[%d].features.values: %d values; %s (major %d) wants exactly %d in [0,1], in the order %v",
			i, len(vals), plan.version, plan.man.Version.Major, len(plan.names), plan.names))
	}
	for j, v := range vals {
		d := float64(v)
		switch {
		case math.IsNaN(d) || math.IsInf(d, 0):
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a finite number in [0,1] (%s)",
				i, j, formatFloat(d), plan.names[j]))
		case d < 0 || d > 1:
			return invalid(fmt.Sprintf("instances[%d].features.values[%d]: %s; want a number in [0,1] (%s)",
				i, j, formatFloat(d), plan.names[j]))
		}
	}
	return nil
}

// rawFieldDescs are the RawMetrics field descriptors of the catalogue's
// features (model.Catalog, catalogue order), for presence checks.
var rawFieldDescs = func() [model.CatalogSize]protoreflect.FieldDescriptor {
	var d [model.CatalogSize]protoreflect.FieldDescriptor
	fields := (&recommendationv1.RawMetrics{}).ProtoReflect().Descriptor().Fields()
	for i, f := range model.Catalog() {
		if d[i] = fields.ByName(protoreflect.Name(f.RawField)); d[i] == nil || !d[i].HasPresence() {
			panic(fmt.Sprintf("transport: RawMetrics has no optional field %s", f.RawField))
		}
	}
	return d
}()

// rawFieldByName maps a RawMetrics field name to its descriptor.
var rawFieldByName = func() map[string]protoreflect.FieldDescriptor {
	m := map[string]protoreflect.FieldDescriptor{}
	for _, fd := range rawFieldDescs {
		m[string(fd.Name())] = fd
	}
	return m
}()

// normalizeRaw checks raw metrics against the routed version's declared
// features — each needed field present and in its plausible range, the
// percentiles in order — naming the field, the value sent and what is
// accepted, and writes the normalized row to out (only checks when out is
// nil).
func normalizeRaw(i int, r *recommendationv1.RawMetrics, plan *manifestPlan, out []float32) error {
	m := r.ProtoReflect()
	for j := 0; j < plan.layout.Width(); j++ {
		k := plan.layout.Index(j)
		fd := rawFieldDescs[k]
		if !m.Has(fd) {
			return invalid(fmt.Sprintf("instances[%d].raw.%s: missing; %s (major %d) needs every field of its %d features (%s), 0 is sent as 0",
				i, fd.Name(), plan.version, plan.man.Version.Major, plan.layout.Width(), features.Ranges[k]))
		}
		if v := m.Get(fd).Float(); !features.Ranges[k].Contains(v) {
			e := &features.RangeError{Index: k, Value: v, Range: features.Ranges[k]}
			return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, fd.Name(), formatFloat(v), e.Want()))
		}
	}
	var err error
	if out == nil {
		err = plan.layout.Validate(rawOf(r))
	} else {
		err = plan.layout.NormalizeInto(rawOf(r), out)
	}
	var re *features.RangeError
	var oe *features.OrderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want %s", i, rawFieldDescs[re.Index].Name(), formatFloat(re.Value), re.Want()))
	case errors.As(err, &oe):
		return invalid(fmt.Sprintf("instances[%d].raw.%s: %s; want ≥ %s (%s): percentiles must not decrease",
			i, rawFieldDescs[oe.Index].Name(), formatFloat(oe.Value), rawFieldDescs[oe.Lower].Name(), formatFloat(oe.Prev)))
	}
	// Anything else features refuses is still the caller's input to fix.
	return invalid(fmt.Sprintf("instances[%d].raw: %v", i, err))
}

// RawMetricsOf returns the RawMetrics message of raw features, every
// catalogue field set: what an agent that computes features with package
// features sends (it is routed to the newest major).
func RawMetricsOf(f features.Raw) *recommendationv1.RawMetrics {
	v := f.All()
	m := &recommendationv1.RawMetrics{}
	pm := m.ProtoReflect()
	for k, fd := range rawFieldDescs {
		pm.Set(fd, protoreflect.ValueOfFloat64(v[k]))
	}
	return m
}

// rawOf returns the features r carries (absent fields read 0).
func rawOf(r *recommendationv1.RawMetrics) features.Raw {
	var f features.Raw
	m := r.ProtoReflect()
	for k, fd := range rawFieldDescs {
		if m.Has(fd) {
			f.Set(k, m.Get(fd).Float())
		}
	}
	return f
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
