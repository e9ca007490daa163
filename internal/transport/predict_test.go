package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/transport"
)

// testMaxBatch keeps the over-limit case small.
const testMaxBatch = 8

// ---- a real model behind the Models interface ----

// testVersion is one loaded version: a real manifest and a real int8 MLP
// run through its pure-Go forward pass.
type testVersion struct {
	man     *model.Manifest
	mlp     *model.QuantizedMLP
	panics  bool  // Run panics
	failure error // Run returns this error
}

// testModels implements transport.Models over a fixed set of loaded
// versions, counting leases so tests can check each one is released.
type testModels struct {
	loaded   map[string]*testVersion
	active   atomic.Pointer[testVersion]
	acquired atomic.Int64 // leases handed out
	inflight atomic.Int64 // leases not yet released
}

func (m *testModels) Acquire(version string) (transport.Lease, error) {
	var v *testVersion
	if version == "" {
		if v = m.active.Load(); v == nil {
			return nil, model.ErrNoActiveVersion
		}
	} else {
		if _, err := model.ParseVersion(version); err != nil {
			return nil, err
		}
		if v = m.loaded[version]; v == nil {
			return nil, fmt.Errorf("%w: %s is not loaded", model.ErrVersionNotFound, version)
		}
	}
	m.acquired.Add(1)
	m.inflight.Add(1)
	return &testLease{v: v, m: m}, nil
}

func (m *testModels) AcquireMajor(major int) (transport.Lease, error) {
	v := m.active.Load()
	if v == nil || v.man.Version.Major != major {
		return nil, fmt.Errorf("%w of major %d", model.ErrNoActiveVersion, major)
	}
	m.acquired.Add(1)
	m.inflight.Add(1)
	return &testLease{v: v, m: m}, nil
}

func (m *testModels) ActiveManifests() []*model.Manifest {
	if v := m.active.Load(); v != nil {
		return []*model.Manifest{v.man}
	}
	return nil
}

func (m *testModels) Ready() bool { return m.active.Load() != nil }

type testLease struct {
	v        *testVersion
	m        *testModels
	released atomic.Bool
}

func (l *testLease) Manifest() *model.Manifest { return l.v.man }

func (l *testLease) Run(x []float32, n int) ([]float32, error) {
	if l.released.Load() {
		panic("Run after Release")
	}
	if l.v.panics {
		panic("test model panics")
	}
	if l.v.failure != nil {
		return nil, l.v.failure
	}
	if len(x) != n*model.NumFeatures {
		return nil, fmt.Errorf("got %d inputs for %d rows", len(x), n)
	}
	return l.v.mlp.Forward(x, n), nil
}

func (l *testLease) Release() {
	if l.released.Swap(true) {
		panic("lease released twice")
	}
	l.m.inflight.Add(-1)
}

func testManifest(version string) *model.Manifest {
	return &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   model.MustParseVersion(version),
		Signature: model.DefaultSignature(),
		Features:  model.DefaultFeatures(),
		Outputs:   model.DefaultOutputs(),
	}
}

const (
	activeVersion = "v1.1.0"
	// otherVersion is loaded but not active; its manifest maps CPU cores
	// onto [0,1] with other ranges, to show raw metrics are normalized with
	// the leased version's manifest.
	otherVersion   = "v1.2.0"
	panicVersion   = "v6.6.6"
	failingVersion = "v5.0.0"
	secretDetail   = "session exploded at 0xdeadbeef"
)

// newTestModels returns models with activeVersion active (unless
// !withActive) and otherVersion, panicVersion and failingVersion loaded.
func newTestModels(withActive bool) *testModels {
	other := testManifest(otherVersion)
	for i := 0; i < 3; i++ { // cpu_p50, cpu_p95, cpu_p99
		other.Features[i].Max, other.Features[i].Scale = 8, 0.1 // cores
	}
	other.Outputs[0].Max, other.Outputs[1].Max = 16, 16         // cores
	other.Outputs[2].Max, other.Outputs[3].Max = 64<<30, 64<<30 // bytes
	m := &testModels{loaded: map[string]*testVersion{
		activeVersion:  {man: testManifest(activeVersion), mlp: onnxfile.RandomMLP(1)},
		otherVersion:   {man: other, mlp: onnxfile.RandomMLP(2)},
		panicVersion:   {man: testManifest(panicVersion), mlp: onnxfile.RandomMLP(3), panics: true},
		failingVersion: {man: testManifest(failingVersion), mlp: onnxfile.RandomMLP(4), failure: errors.New(secretDetail)},
	}}
	if withActive {
		m.activate(activeVersion)
	}
	return m
}

func (m *testModels) activate(v string) { m.active.Store(m.loaded[v]) }

// ---- the wiring: gRPC over bufconn and TCP, REST over httptest ----

// harness runs the real gRPC server (reflection, health, interceptors and
// PredictServer) on a bufconn listener for gRPC tests and on a loopback TCP
// listener that the real gateway dials, served by httptest.
type harness struct {
	models *testModels
	health *transport.Health
	conn   *grpc.ClientConn // over bufconn
	client recommendationv1.RecommendationServiceClient
	rest   *httptest.Server
	logs   *syncBuffer
}

type harnessOptions struct {
	noActive bool                                        // start without an active version
	registry recommendationv1.ModelRegistryServiceServer // registered when non-nil
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	h := &harness{models: newTestModels(!opts.noActive), health: transport.NewHealth(), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	srv := transport.NewGRPCServer(log, h.health)
	recommendationv1.RegisterRecommendationServiceServer(srv,
		transport.NewPredictServer(h.models, transport.PredictOptions{MaxBatch: testMaxBatch}, log))
	if opts.registry != nil {
		recommendationv1.RegisterModelRegistryServiceServer(srv, opts.registry)
	}

	buf := bufconn.Listen(1 << 20)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, l := range []net.Listener{buf, tcp} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(l) }()
	}

	h.conn, err = grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return buf.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.client = recommendationv1.NewRecommendationServiceClient(h.conn)

	ctx, cancel := context.WithCancel(context.Background())
	gw, err := transport.NewGateway(ctx, tcp.Addr().String(), transport.GatewayOptions{Models: h.models, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h.rest = httptest.NewServer(gw)

	t.Cleanup(func() {
		h.rest.Close()
		cancel()
		h.conn.Close()
		srv.Stop()
		wg.Wait()
		if n := h.models.inflight.Load(); n != 0 {
			t.Errorf("%d leases not released", n)
		}
	})
	return h
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// restError is grpc-gateway's JSON error body.
type restError struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
}

// postPredict sends body to POST /v1/predict and returns the HTTP status and body.
func (h *harness) postPredict(t testing.TB, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(h.rest.URL+"/v1/predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ---- request builders ----

// goodFeatures is a valid normalized row, varied per i.
func goodFeatures(i int) []float32 {
	v := make([]float32, model.NumFeatures)
	for j := range v {
		v[j] = float32((i*7+j*3)%11) / 10
	}
	return v
}

func featuresInstance(id string, v []float32) *recommendationv1.Instance {
	return &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Features{
		Features: &recommendationv1.NormalizedFeatures{Values: v},
	}}
}

func goodRaw() *recommendationv1.RawMetrics {
	f := proto.Float64
	return &recommendationv1.RawMetrics{
		CpuP50Cores: f(0.2), CpuP95Cores: f(0.45), CpuP99Cores: f(0.6),
		MemP50Bytes: f(300 << 20), MemP95Bytes: f(380 << 20), MemP99Bytes: f(400 << 20),
		CpuVariance: f(0.4), MemTrendPerDay: f(-0.01), ThrottleRatio: f(0.02),
		HourOfDay: f(14), DayOfWeek: f(3), WorkloadAgeDays: f(42),
	}
}

func rawInstance(id string, r *recommendationv1.RawMetrics) *recommendationv1.Instance {
	return &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Raw{Raw: r}}
}

// request returns a PredictRequest of n good normalized instances, with
// edit applied to it.
func request(n int, edit func(*recommendationv1.PredictRequest)) *recommendationv1.PredictRequest {
	req := &recommendationv1.PredictRequest{}
	for i := 0; i < n; i++ {
		req.Instances = append(req.Instances, featuresInstance(fmt.Sprintf("c%d", i), goodFeatures(i)))
	}
	if edit != nil {
		edit(req)
	}
	return req
}

func setFeature(inst, j int, v float32) func(*recommendationv1.PredictRequest) {
	return func(r *recommendationv1.PredictRequest) { r.Instances[inst].GetFeatures().Values[j] = v }
}

func editRaw(edit func(*recommendationv1.RawMetrics)) func(*recommendationv1.PredictRequest) {
	return func(r *recommendationv1.PredictRequest) {
		raw := goodRaw()
		edit(raw)
		r.Instances[0] = rawInstance("raw", raw)
	}
}

// ---- tests ----

func TestPredictBadInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	nan, inf := float32(math.NaN()), float32(math.Inf(1))

	tests := []struct {
		name     string
		req      *recommendationv1.PredictRequest
		code     codes.Code
		http     int
		contains []string // all must appear in the message
		leases   bool     // the request gets as far as leasing a version
	}{
		{"WrongFeatureCount", request(2, func(r *recommendationv1.PredictRequest) {
			r.Instances[1].GetFeatures().Values = r.Instances[1].GetFeatures().Values[:11]
		}), codes.InvalidArgument, 400, []string{"instances[1].features.values:", "11 values", "want exactly 12"}, false},
		{"NaN", request(4, setFeature(3, 7, nan)),
			codes.InvalidArgument, 400, []string{"instances[3].features.values[7]: NaN; want a finite number in [0,1]", "mem_trend"}, false},
		{"Inf", request(1, setFeature(0, 2, inf)),
			codes.InvalidArgument, 400, []string{"instances[0].features.values[2]: +Inf; want a finite number in [0,1]"}, false},
		{"AboveOne", request(2, setFeature(1, 0, 1.5)),
			codes.InvalidArgument, 400, []string{"instances[1].features.values[0]: 1.5; want a number in [0,1]"}, false},
		{"Negative", request(1, setFeature(0, 11, -0.25)),
			codes.InvalidArgument, 400, []string{"instances[0].features.values[11]: -0.25; want a number in [0,1]"}, false},
		{"EmptyBatch", request(0, nil),
			codes.InvalidArgument, 400, []string{"instances: empty", fmt.Sprintf("want 1 to %d", testMaxBatch)}, false},
		{"BatchAboveLimit", request(testMaxBatch+1, nil),
			codes.InvalidArgument, 400, []string{fmt.Sprintf("instances: %d instances; want at most %d", testMaxBatch+1, testMaxBatch)}, false},
		{"UnknownPinnedVersion", request(1, func(r *recommendationv1.PredictRequest) { r.ModelVersion = "v9.9.9" }),
			codes.NotFound, 404, []string{`model_version "v9.9.9"`, "not found"}, false},
		{"MalformedVersion", request(1, func(r *recommendationv1.PredictRequest) { r.ModelVersion = "1.0" }),
			codes.InvalidArgument, 400, []string{"model_version:", `"1.0"`, "want v{major}.{minor}.{patch}"}, false},
		{"NegativeRawMetric", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.CpuP95Cores = proto.Float64(-1) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.cpu_p95_cores: -1; want a finite number in [0,1024] (cores)"}, false},
		{"NaNRawMetric", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.MemP50Bytes = proto.Float64(math.NaN()) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.mem_p50_bytes: NaN; want a finite number in [0,17592186044416] (bytes)"}, false},
		{"HourOutOfRange", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.HourOfDay = proto.Float64(24) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.hour_of_day: 24; want an integer in [0,23]"}, false},
		{"DayOutOfRange", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.DayOfWeek = proto.Float64(7) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.day_of_week: 7; want an integer in [0,6]"}, false},
		{"RatioOutOfRange", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.ThrottleRatio = proto.Float64(1.5) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.throttle_ratio: 1.5; want a finite number in [0,1]"}, false},
		{"InfiniteTrend", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.MemTrendPerDay = proto.Float64(math.Inf(-1)) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.mem_trend_per_day: -Inf; want a finite number in [-3,3] (1/day)"}, false},
		{"DecreasingPercentiles", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.CpuP99Cores = proto.Float64(0.3) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.cpu_p99_cores: 0.3; want ≥ cpu_p95_cores (0.45)"}, false},
		{"AbsurdCPU", request(1, editRaw(func(r *recommendationv1.RawMetrics) {
			r.CpuP50Cores, r.CpuP95Cores, r.CpuP99Cores = proto.Float64(1e300), proto.Float64(1e300), proto.Float64(1e300)
		})), codes.InvalidArgument, 400, []string{"instances[0].raw.cpu_p50_cores: 1e+300; want a finite number in [0,1024] (cores)"}, false},
		{"AbsurdTrend", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.MemTrendPerDay = proto.Float64(-5) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.mem_trend_per_day: -5; want a finite number in [-3,3] (1/day)"}, false},
		{"FractionalHour", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.HourOfDay = proto.Float64(13.5) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.hour_of_day: 13.5; want an integer in [0,23]"}, false},
		{"AbsurdAge", request(1, editRaw(func(r *recommendationv1.RawMetrics) { r.WorkloadAgeDays = proto.Float64(1e9) })),
			codes.InvalidArgument, 400, []string{"instances[0].raw.workload_age_days: 1e+09; want a finite number in [0,3650] (days)"}, false},
		{"MissingField", request(2, func(r *recommendationv1.PredictRequest) {
			raw := goodRaw()
			raw.CpuVariance = nil
			r.Instances[1] = rawInstance("raw", raw)
		}), codes.InvalidArgument, 400, []string{"instances[1].raw.cpu_variance: missing; v1.1.0 (major 1) needs every field of its 12 features", "[0,100]"}, false},
		{"EmptyRaw", request(1, func(r *recommendationv1.PredictRequest) {
			r.Instances[0] = rawInstance("raw", &recommendationv1.RawMetrics{})
		}), codes.InvalidArgument, 400, []string{"instances[0].raw.cpu_p50_cores: missing"}, false},
		{"NoInput", request(2, func(r *recommendationv1.PredictRequest) { r.Instances[1].Input = nil }),
			codes.InvalidArgument, 400, []string{"instances[1]: no input; want features", "or raw"}, false},
	}
	check := func(t *testing.T, code codes.Code, msg string, wantCode codes.Code, contains []string) {
		t.Helper()
		if code != wantCode {
			t.Errorf("code = %v; want %v (message %q)", code, wantCode, msg)
		}
		for _, c := range contains {
			if !strings.Contains(msg, c) {
				t.Errorf("message %q does not contain %q", msg, c)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sequential: the lease counters are shared.
			t.Run("GRPC", func(t *testing.T) {
				before := h.models.acquired.Load()
				_, err := h.client.Predict(context.Background(), tt.req)
				st := status.Convert(err)
				check(t, st.Code(), st.Message(), tt.code, tt.contains)
				if leased := h.models.acquired.Load() != before; leased != tt.leases {
					t.Errorf("leased a version = %v; want %v (validation must come first)", leased, tt.leases)
				}
			})
			t.Run("REST", func(t *testing.T) {
				body, err := protojson.Marshal(tt.req)
				if err != nil {
					t.Fatal(err)
				}
				before := h.models.acquired.Load()
				got, b := h.postPredict(t, body)
				if got != tt.http {
					t.Errorf("HTTP status = %d; want %d (body %s)", got, tt.http, b)
				}
				var e restError
				if err := json.Unmarshal(b, &e); err != nil {
					t.Fatalf("error body %s is not JSON: %v", b, err)
				}
				check(t, e.Code, e.Message, tt.code, tt.contains)
				if leased := h.models.acquired.Load() != before; leased != tt.leases {
					t.Errorf("leased a version = %v; want %v (validation must come first)", leased, tt.leases)
				}
			})
		})
	}

	t.Run("NaNAsJSONString", func(t *testing.T) {
		// protojson spells non-finite floats as strings; make sure such a
		// hand-written body reaches validation.
		body := `{"instances":[{"features":{"values":[0,0,0,0,0,0,0,"NaN",0,0,0,0]}}]}`
		got, b := h.postPredict(t, []byte(body))
		var e restError
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if got != http.StatusBadRequest || !strings.Contains(e.Message, "instances[0].features.values[7]: NaN") {
			t.Errorf("got %d %q; want 400 naming instances[0].features.values[7]", got, e.Message)
		}
	})
	t.Run("UnknownJSONField", func(t *testing.T) {
		got, b := h.postPredict(t, []byte(`{"instances":[{"feature":{"values":[]}}]}`))
		var e restError
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if got != http.StatusBadRequest || !strings.Contains(e.Message, `"feature"`) {
			t.Errorf("got %d %q; want 400 naming the unknown field \"feature\"", got, e.Message)
		}
	})

	t.Run("BodyTooLarge", func(t *testing.T) {
		body := `{"instances":[{"containerId":"` + strings.Repeat("x", transport.DefaultMaxBodyBytes) + `"}]}`
		got, b := h.postPredict(t, []byte(body))
		want := fmt.Sprintf("the limit is %d bytes", transport.DefaultMaxBodyBytes)
		if got != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), want) {
			t.Errorf("got %d %.200s; want 413 saying %q", got, b, want)
		}
		// Without a Content-Length (chunked), the limit is found while reading.
		resp, err := http.Post(h.rest.URL+"/v1/predict", "application/json", io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), want) {
			t.Errorf("chunked: got %d %.200s; want 413 saying %q", resp.StatusCode, b, want)
		}
	})

	t.Run("StillServing", func(t *testing.T) {
		resp, err := h.client.Predict(context.Background(), request(2, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(resp.GetPredictions()); got != 2 {
			t.Errorf("got %d predictions; want 2", got)
		}
		code, b := h.postPredict(t, mustJSON(t, request(1, nil)))
		if code != http.StatusOK {
			t.Errorf("REST after bad requests: %d %s", code, b)
		}
	})
}

func mustJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expect computes what version v must answer for the normalized rows x.
func expect(t *testing.T, v *testVersion, x [][]float32) []*recommendationv1.Prediction {
	t.Helper()
	flat := make([]float32, 0, len(x)*model.NumFeatures)
	for _, r := range x {
		flat = append(flat, r...)
	}
	y := v.mlp.Forward(flat, len(x))
	out := make([]*recommendationv1.Prediction, len(x))
	for i := range x {
		row := y[i*model.NumOutputs : (i+1)*model.NumOutputs]
		o := v.man.Outputs
		// What Kubernetes accepts: requests at least the minimums, limits
		// at least the requests; normalized values follow the absolute ones.
		cpuReq := math.Max(o[0].Denormalize(float64(row[0]))*1000, 25)
		cpuLim := math.Max(o[1].Denormalize(float64(row[1]))*1000, cpuReq)
		memReq := math.Max(o[2].Denormalize(float64(row[2])), 250<<20)
		memLim := math.Max(o[3].Denormalize(float64(row[3])), memReq)
		out[i] = &recommendationv1.Prediction{
			Normalized: &recommendationv1.NormalizedOutputs{
				CpuRequest: float32(o[0].Normalize(cpuReq / 1000)), CpuLimit: float32(o[1].Normalize(cpuLim / 1000)),
				MemRequest: float32(o[2].Normalize(memReq)), MemLimit: float32(o[3].Normalize(memLim)), Confidence: row[4],
			},
			Resources: &recommendationv1.Resources{
				CpuRequestMillicores: int64(math.Round(cpuReq)), CpuLimitMillicores: int64(math.Round(cpuLim)),
				MemoryRequestBytes: int64(math.Round(memReq)), MemoryLimitBytes: int64(math.Round(memLim)),
			},
			Confidence:   row[4],
			ModelVersion: v.man.Version.String(),
		}
	}
	return out
}

func normalizeRaw(t *testing.T, v *testVersion, r *recommendationv1.RawMetrics) []float32 {
	t.Helper()
	row, err := features.Normalize(features.Raw{
		CPUP50: r.GetCpuP50Cores(), CPUP95: r.GetCpuP95Cores(), CPUP99: r.GetCpuP99Cores(),
		MemP50: r.GetMemP50Bytes(), MemP95: r.GetMemP95Bytes(), MemP99: r.GetMemP99Bytes(),
		CPUVariance: r.GetCpuVariance(), MemTrend: r.GetMemTrendPerDay(), ThrottleRatio: r.GetThrottleRatio(),
		HourOfDay: r.GetHourOfDay(), DayOfWeek: r.GetDayOfWeek(), WorkloadAgeDays: r.GetWorkloadAgeDays(),
	}, v.man.Features)
	if err != nil {
		t.Fatal(err)
	}
	return row[:]
}

func comparePredictions(t *testing.T, resp *recommendationv1.PredictResponse, ids []string, want []*recommendationv1.Prediction) {
	t.Helper()
	if len(resp.GetPredictions()) != len(want) {
		t.Fatalf("got %d predictions; want %d", len(resp.GetPredictions()), len(want))
	}
	for i, w := range want {
		w.ContainerId = ids[i]
		if got := resp.GetPredictions()[i]; !proto.Equal(got, w) {
			t.Errorf("prediction %d:\n got %v\nwant %v", i, got, w)
		}
	}
}

func TestPredict(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	active, other := h.models.loaded[activeVersion], h.models.loaded[otherVersion]

	t.Run("OKNormalized", func(t *testing.T) {
		t.Parallel()
		x := [][]float32{goodFeatures(0), goodFeatures(1), goodFeatures(2)}
		req := &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{
			featuresInstance("ns/a/app", x[0]), featuresInstance("", x[1]), featuresInstance("ns/c/app", x[2]),
		}}
		resp, err := h.client.Predict(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetModelVersion() != activeVersion {
			t.Errorf("model_version = %q; want %q", resp.GetModelVersion(), activeVersion)
		}
		comparePredictions(t, resp, []string{"ns/a/app", "", "ns/c/app"}, expect(t, active, x))
	})

	t.Run("OKRawWithPinnedVersionManifest", func(t *testing.T) {
		t.Parallel()
		raw := goodRaw()
		req := &recommendationv1.PredictRequest{ModelVersion: otherVersion, Instances: []*recommendationv1.Instance{
			rawInstance("raw", raw), featuresInstance("norm", goodFeatures(5)),
		}}
		resp, err := h.client.Predict(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetModelVersion() != otherVersion {
			t.Errorf("model_version = %q; want %q", resp.GetModelVersion(), otherVersion)
		}
		// The raw row must be normalized with otherVersion's ranges, which
		// differ from the default ones.
		x := [][]float32{normalizeRaw(t, other, raw), goodFeatures(5)}
		if d := normalizeRaw(t, active, raw); d[0] == x[0][0] {
			t.Fatalf("test manifests do not differ on cpu_p50 (%v)", d[0])
		}
		comparePredictions(t, resp, []string{"raw", "norm"}, expect(t, other, x))
	})

	t.Run("OKUnitsMatchManifest", func(t *testing.T) {
		t.Parallel()
		resp, err := h.client.Predict(context.Background(), request(testMaxBatch, nil))
		if err != nil {
			t.Fatal(err)
		}
		out := active.man.Outputs
		for i, p := range resp.GetPredictions() {
			n, r := p.GetNormalized(), p.GetResources()
			for _, c := range []struct {
				name string
				got  int64
				norm float32
				spec model.Spec
				mult float64
			}{
				{"cpu_request_millicores", r.GetCpuRequestMillicores(), n.GetCpuRequest(), out[0], 1000},
				{"cpu_limit_millicores", r.GetCpuLimitMillicores(), n.GetCpuLimit(), out[1], 1000},
				{"memory_request_bytes", r.GetMemoryRequestBytes(), n.GetMemRequest(), out[2], 1},
				{"memory_limit_bytes", r.GetMemoryLimitBytes(), n.GetMemLimit(), out[3], 1},
			} {
				if c.norm < 0 || c.norm > 1 {
					t.Errorf("prediction %d: normalized %s = %v; want in [0,1]", i, c.name, c.norm)
				}
				// The normalized value maps back to the absolute one within
				// rounding and float32 precision.
				if back := c.spec.Denormalize(float64(c.norm)) * c.mult; c.got < 0 || math.Abs(back-float64(c.got)) > 2e-6*float64(c.got)+0.5 {
					t.Errorf("prediction %d: %s = %d, but its normalized value maps back to %v", i, c.name, c.got, back)
				}
			}
			if p.GetConfidence() != n.GetConfidence() || p.GetConfidence() < 0 || p.GetConfidence() > 1 {
				t.Errorf("prediction %d: confidence %v, normalized %v; want equal, in [0,1]", i, p.GetConfidence(), n.GetConfidence())
			}
			if p.GetModelVersion() != activeVersion || p.GetContainerId() != fmt.Sprintf("c%d", i) {
				t.Errorf("prediction %d: version %q, container %q", i, p.GetModelVersion(), p.GetContainerId())
			}
		}
	})

	t.Run("OKREST", func(t *testing.T) {
		t.Parallel()
		raw := goodRaw()
		req := &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{
			featuresInstance("a", goodFeatures(0)), rawInstance("b", raw),
		}}
		code, b := h.postPredict(t, mustJSON(t, req))
		if code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", code, b)
		}
		var resp recommendationv1.PredictResponse
		if err := protojson.Unmarshal(b, &resp); err != nil {
			t.Fatalf("response %s: %v", b, err)
		}
		if resp.GetModelVersion() != activeVersion {
			t.Errorf("model_version = %q; want %q", resp.GetModelVersion(), activeVersion)
		}
		x := [][]float32{goodFeatures(0), normalizeRaw(t, active, raw)}
		comparePredictions(t, &resp, []string{"a", "b"}, expect(t, active, x))
	})

	t.Run("OKRESTSnakeCaseBody", func(t *testing.T) {
		t.Parallel()
		body := `{"model_version":"v1.1.0","instances":[{"container_id":"x","raw":{"cpu_p50_cores":0.1,"cpu_p95_cores":0.2,"cpu_p99_cores":0.3,` +
			`"mem_p50_bytes":1e8,"mem_p95_bytes":2e8,"mem_p99_bytes":3e8,"cpu_variance":0,"mem_trend_per_day":0,"throttle_ratio":0,` +
			`"hour_of_day":23,"day_of_week":6,"workload_age_days":0}}]}`
		code, b := h.postPredict(t, []byte(body))
		if code != http.StatusOK || !strings.Contains(string(b), `"modelVersion":"v1.1.0"`) {
			t.Errorf("HTTP %d %s; want 200 naming v1.1.0", code, b)
		}
	})
}

func TestPredictInternalErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})

	for _, tt := range []struct {
		name, version, logged string
	}{
		{"ErrPanicRecovered", panicVersion, "test model panics"},
		{"ErrRunFails", failingVersion, secretDetail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.Predict(context.Background(), request(1, func(r *recommendationv1.PredictRequest) { r.ModelVersion = tt.version }))
			if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
				t.Errorf("got %v %q; want Internal \"internal error\"", st.Code(), st.Message())
			}
			code, b := h.postPredict(t, mustJSON(t, request(1, func(r *recommendationv1.PredictRequest) { r.ModelVersion = tt.version })))
			if code != http.StatusInternalServerError || strings.Contains(string(b), tt.logged) {
				t.Errorf("REST got %d %s; want 500 without the cause", code, b)
			}
			if !strings.Contains(h.logs.String(), tt.logged) {
				t.Errorf("log does not hold the cause %q:\n%s", tt.logged, h.logs.String())
			}
			if _, err := h.client.Predict(context.Background(), request(1, nil)); err != nil {
				t.Errorf("server stopped serving: %v", err)
			}
		})
	}
}

func TestPredictNoActiveVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noActive: true})
	_, err := h.client.Predict(context.Background(), request(1, nil))
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "no active model version") {
		t.Errorf("got %v %q; want Unavailable naming the missing active version", st.Code(), st.Message())
	}
	if code, b := h.postPredict(t, mustJSON(t, request(1, nil))); code != http.StatusServiceUnavailable {
		t.Errorf("REST got %d %s; want 503", code, b)
	}
	// A pinned, loaded version still serves.
	resp, err := h.client.Predict(context.Background(), request(1, func(r *recommendationv1.PredictRequest) { r.ModelVersion = otherVersion }))
	if err != nil || resp.GetModelVersion() != otherVersion {
		t.Errorf("pinned predict: %v, %v", resp.GetModelVersion(), err)
	}
}
