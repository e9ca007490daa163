// Every Predict answer must be one Kubernetes accepts: minimum ≤ request ≤
// limit for CPU and memory, in the absolute and the normalized outputs,
// whatever the model computed. These tests drive random and extreme rows
// through the real gRPC server and the real REST gateway, with the pure-Go
// model of the harness (fuzzed) and with the embedded default model in ONNX
// Runtime (which, left alone, recommends CPU requests above CPU limits).

package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// checkAdmissible reports every way p is not a recommendation Kubernetes
// accepts, or whose normalized view disagrees with the absolute one.
func checkAdmissible(t testing.TB, where string, p *recommendationv1.Prediction, outs []model.Spec) {
	t.Helper()
	r, n := p.GetResources(), p.GetNormalized()
	if r.GetCpuRequestMillicores() < model.MinCPUMillicores {
		t.Errorf("%s: cpu request %dm below the minimum %dm", where, r.GetCpuRequestMillicores(), model.MinCPUMillicores)
	}
	if r.GetCpuLimitMillicores() < r.GetCpuRequestMillicores() {
		t.Errorf("%s: cpu request %dm above the limit %dm", where, r.GetCpuRequestMillicores(), r.GetCpuLimitMillicores())
	}
	if r.GetMemoryRequestBytes() < model.MinMemoryBytes {
		t.Errorf("%s: memory request %d below the minimum %d", where, r.GetMemoryRequestBytes(), model.MinMemoryBytes)
	}
	if r.GetMemoryLimitBytes() < r.GetMemoryRequestBytes() {
		t.Errorf("%s: memory request %d above the limit %d", where, r.GetMemoryRequestBytes(), r.GetMemoryLimitBytes())
	}
	for _, c := range []struct {
		name string
		norm float32
		abs  int64
		spec model.Spec
		mult float64
	}{
		{"cpu_request", n.GetCpuRequest(), r.GetCpuRequestMillicores(), outs[0], 1000},
		{"cpu_limit", n.GetCpuLimit(), r.GetCpuLimitMillicores(), outs[1], 1000},
		{"mem_request", n.GetMemRequest(), r.GetMemoryRequestBytes(), outs[2], 1},
		{"mem_limit", n.GetMemLimit(), r.GetMemoryLimitBytes(), outs[3], 1},
	} {
		// The normalized value maps back to the absolute one (to within
		// rounding and float32 precision).
		if back := c.spec.Denormalize(float64(c.norm)) * c.mult; math.Abs(back-float64(c.abs)) > 0.5+2e-6*float64(c.abs) {
			t.Errorf("%s: normalized %s = %v maps back to %v; the absolute value is %d", where, c.name, c.norm, back, c.abs)
		}
	}
	if outs[0] == outs[1] && !(n.GetCpuRequest() <= n.GetCpuLimit()) {
		t.Errorf("%s: normalized cpu request %v above the limit %v", where, n.GetCpuRequest(), n.GetCpuLimit())
	}
	if outs[2] == outs[3] && !(n.GetMemRequest() <= n.GetMemLimit()) {
		t.Errorf("%s: normalized memory request %v above the limit %v", where, n.GetMemRequest(), n.GetMemLimit())
	}
}

// rawMetrics builds RawMetrics from 12 values in model order.
func rawMetrics(v [model.NumFeatures]float64) *recommendationv1.RawMetrics {
	f := proto.Float64
	return &recommendationv1.RawMetrics{
		CpuP50Cores: f(v[0]), CpuP95Cores: f(v[1]), CpuP99Cores: f(v[2]),
		MemP50Bytes: f(v[3]), MemP95Bytes: f(v[4]), MemP99Bytes: f(v[5]),
		CpuVariance: f(v[6]), MemTrendPerDay: f(v[7]), ThrottleRatio: f(v[8]),
		HourOfDay: f(v[9]), DayOfWeek: f(v[10]), WorkloadAgeDays: f(v[11]),
	}
}

// FuzzPredictAdmissible sends one fuzzed instance (normalized features, or
// raw metrics when raw is set) over gRPC and REST: the server either refuses
// it with INVALID_ARGUMENT / 400 or answers an admissible recommendation.
// The seed corpus is in testdata/fuzz/FuzzPredictAdmissible.
func FuzzPredictAdmissible(f *testing.F) {
	f.Add(false, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
	f.Add(false, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
	f.Add(true, 0.2, 0.45, 0.6, 3e8, 4e8, 4.2e8, 0.4, -0.01, 0.02, 14.0, 3.0, 42.0)
	f.Add(true, 1e300, 1e300, 1e300, 0.0, 0.0, 0.0, 0.0, -5.0, 0.0, 13.5, 0.0, 0.0)
	h := newHarness(f, harnessOptions{})
	outs := h.models.loaded[activeVersion].man.Outputs
	f.Fuzz(func(t *testing.T, raw bool, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11 float64) {
		v := [model.NumFeatures]float64{v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11}
		inst := &recommendationv1.Instance{ContainerId: "fuzz"}
		if raw {
			inst.Input = &recommendationv1.Instance_Raw{Raw: rawMetrics(v)}
		} else {
			x := make([]float32, model.NumFeatures)
			for j := range x {
				x[j] = float32(v[j])
			}
			inst.Input = &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: x}}
		}
		req := &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{inst}}

		resp, err := h.client.Predict(context.Background(), req)
		switch code := status.Code(err); code {
		case codes.OK:
			checkAdmissible(t, "gRPC", resp.GetPredictions()[0], outs)
		case codes.InvalidArgument:
		default:
			t.Fatalf("gRPC: %v; want OK or InvalidArgument", err)
		}
		body, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got, b := h.postPredict(t, body)
		switch got {
		case http.StatusOK:
			var r recommendationv1.PredictResponse
			if err := protojson.Unmarshal(b, &r); err != nil {
				t.Fatalf("REST response %s: %v", b, err)
			}
			checkAdmissible(t, "REST", r.GetPredictions()[0], outs)
		case http.StatusBadRequest:
		default:
			t.Fatalf("REST: %d %s; want 200 or 400", got, b)
		}
	})
}

// ortEnv serves the embedded default model from ONNX Runtime through the
// real gRPC server (bufconn) and the real gateway (loopback, httptest).
type ortEnv struct {
	mgr    *serving.Manager
	client recommendationv1.RecommendationServiceClient
	rest   *httptest.Server
	man    *model.Manifest
}

func newORTEnv(t *testing.T) *ortEnv {
	t.Helper()
	if err := serving.InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime: %v (set %s to libonnxruntime.so.1)", err, serving.LibraryEnv)
	}
	b, man, err := defaultmodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	mgr := serving.NewManager(serving.Options{Session: serving.SessionOptions{IntraOpThreads: 1, InterOpThreads: 1}})
	if err := mgr.Load(b, man); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Activate(man.Version); err != nil {
		t.Fatal(err)
	}
	models := transport.ModelsOf(mgr)
	srv := transport.NewGRPCServer(nil, transport.NewHealth())
	recommendationv1.RegisterRecommendationServiceServer(srv, transport.NewPredictServer(models, transport.PredictOptions{}, nil))
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
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return buf.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := transport.NewGateway(ctx, tcp.Addr().String(), transport.GatewayOptions{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	e := &ortEnv{mgr: mgr, client: recommendationv1.NewRecommendationServiceClient(conn), rest: httptest.NewServer(gw), man: man}
	t.Cleanup(func() {
		e.rest.Close()
		cancel()
		conn.Close()
		srv.Stop()
		wg.Wait()
		mgr.Close()
	})
	return e
}

// propertyRows returns n normalized rows: uniform random ones, corners of
// the unit cube (every feature 0 or 1) and edges (one feature at 0 or 1, the
// others random), the inputs where a model is least constrained by training.
func propertyRows(rng *rand.Rand, n int) [][]float32 {
	rows := make([][]float32, n)
	for i := range rows {
		r := make([]float32, model.NumFeatures)
		for j := range r {
			r[j] = rng.Float32()
		}
		switch i % 3 {
		case 1:
			for j := range r {
				r[j] = float32(rng.IntN(2))
			}
		case 2:
			r[rng.IntN(model.NumFeatures)] = float32(rng.IntN(2))
		}
		rows[i] = r
	}
	return rows
}

// extremeRaw returns raw metrics at the ends of the plausible ranges: zero
// usage, the largest usage, and mixes, with the percentile order kept.
func extremeRaw(rng *rand.Rand, n int) []*recommendationv1.RawMetrics {
	out := make([]*recommendationv1.RawMetrics, n)
	for i := range out {
		var v [model.NumFeatures]float64
		for j := range v {
			rg := features.Ranges[j]
			switch rng.IntN(3) {
			case 0:
				v[j] = rg.Min
			case 1:
				v[j] = rg.Max
			default:
				v[j] = rg.Min + rng.Float64()*(rg.Max-rg.Min)
			}
			if rg.Integer {
				v[j] = math.Round(v[j])
			}
		}
		for _, g := range []int{0, 3} { // p50 ≤ p95 ≤ p99
			v[g+1], v[g+2] = max(v[g+1], v[g]), max(v[g+2], v[g+1], v[g])
		}
		out[i] = rawMetrics(v)
	}
	return out
}

// TestPredictAdmissibleORT sends 3,000 random and extreme normalized rows
// and 600 extreme raw rows through gRPC and REST to the default model in
// ONNX Runtime, and checks every answer. It first checks, on the same rows,
// that the model itself (its ONNX Runtime output, denormalized) does
// recommend inadmissible values, so the test shows the serving edge at
// work rather than a model that happens to behave.
func TestPredictAdmissibleORT(t *testing.T) {
	t.Parallel()
	e := newORTEnv(t)
	rng := rand.New(rand.NewPCG(42, 7))
	const batch = transport.DefaultMaxBatch
	outs := e.man.Outputs

	var reqs []*recommendationv1.PredictRequest
	var flat []float32
	for b := 0; b < 3; b++ {
		req := &recommendationv1.PredictRequest{}
		for i, r := range propertyRows(rng, batch) {
			req.Instances = append(req.Instances, featuresInstance(fmt.Sprintf("n%d-%d", b, i), r))
			flat = append(flat, r...)
		}
		reqs = append(reqs, req)
	}
	raw := &recommendationv1.PredictRequest{}
	for i, r := range extremeRaw(rng, 600) {
		raw.Instances = append(raw.Instances, rawInstance(fmt.Sprintf("raw%d", i), r))
	}
	reqs = append(reqs, raw)

	// The model alone: how many of its answers Kubernetes would refuse.
	lease, err := e.mgr.Acquire("")
	if err != nil {
		t.Fatal(err)
	}
	y, err := lease.Run(flat, len(flat)/model.NumFeatures)
	lease.Release()
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i := 0; i < len(y); i += model.NumOutputs {
		d := func(k int) float64 { return outs[k].Denormalize(float64(y[i+k])) }
		if d(0) > d(1) || d(2) > d(3) || d(0)*1000 < model.MinCPUMillicores || d(2) < model.MinMemoryBytes {
			bad++
		}
	}
	t.Logf("the model alone recommends %d inadmissible answers of %d rows", bad, len(y)/model.NumOutputs)
	if bad == 0 {
		t.Fatalf("the default model answers every row admissibly; the rows do not exercise the serving edge")
	}

	for k, req := range reqs {
		resp, err := e.client.Predict(context.Background(), req)
		if err != nil {
			t.Fatalf("gRPC request %d: %v", k, err)
		}
		for i, p := range resp.GetPredictions() {
			checkAdmissible(t, fmt.Sprintf("gRPC %s", req.Instances[i].GetContainerId()), p, outs)
		}
		code, b := postJSON(t, e.rest.URL+"/v1/predict", mustJSON(t, req))
		if code != http.StatusOK {
			t.Fatalf("REST request %d: %d %.300s", k, code, b)
		}
		var r recommendationv1.PredictResponse
		if err := protojson.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		for i, p := range r.GetPredictions() {
			checkAdmissible(t, fmt.Sprintf("REST %s", req.Instances[i].GetContainerId()), p, outs)
		}
		if t.Failed() {
			return // one request's failures are enough to read
		}
	}
}

// postJSON posts body to url and returns the status and the response body.
func postJSON(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
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

// admissibleOutputs is what Predict answers, normalized, for one model
// output row y: minimum ≤ request ≤ limit applied to the absolute values
// (millicores, bytes), then normalized back with outs.
func admissibleOutputs(y []float32, outs []model.Spec) []float32 {
	abs := func(k int, mult float64) float64 { return outs[k].Denormalize(float64(y[k])) * mult }
	cpuReq := math.Max(abs(0, 1000), model.MinCPUMillicores)
	cpuLim := math.Max(abs(1, 1000), cpuReq)
	memReq := math.Max(abs(2, 1), model.MinMemoryBytes)
	memLim := math.Max(abs(3, 1), memReq)
	return []float32{
		float32(outs[0].Normalize(cpuReq / 1000)), float32(outs[1].Normalize(cpuLim / 1000)),
		float32(outs[2].Normalize(memReq)), float32(outs[3].Normalize(memLim)), y[4],
	}
}
