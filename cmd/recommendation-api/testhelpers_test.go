package main

// Helpers for the server tests in serve_test.go: a server started through
// newServer and serve (the wiring main uses) on loopback ports, test model
// versions, REST helpers and a client connection that can hold a gRPC call's
// request body back so that the call is provably in flight at the server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
	"recommendation-api/internal/transport"
)

// waitFor bounds the waits for something that must happen soon (a server
// to stop, a port to close). It is a hang guard, not a performance claim.
const waitFor = 60 * time.Second

// testJobEvalSamples is the held-out set of the test servers' training jobs.
const testJobEvalSamples = 2000

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testServer is a server built by newServer and running srv.serve.
type testServer struct {
	srv                *server
	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
	client             recommendationv1.RecommendationServiceClient
	http               *http.Client
	cancel             context.CancelFunc // stops the server (as SIGTERM does)
	done               chan error         // serve's result
	logs               *lockedBuffer
}

// startServer builds a server with newServer on 127.0.0.1:0 and runs
// serve. before, if not nil, runs between the two. The server is stopped,
// and serve's result checked, when the test ends.
func startServer(t *testing.T, before func(*server)) *testServer {
	t.Helper()
	return startServerWith(t, nil, before)
}

// startServerWith is startServer with configure, if not nil, changing the
// configuration first.
func startServerWith(t testing.TB, configure func(*Config), before func(*server)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.InsecureNoAuth = true // loopback; security_test.go covers tokens and TLS
	// A job's held-out scoring is most of a small job's time (20,000 7-day
	// histories of major 2 by default); the tests check its decisions, not
	// its precision.
	cfg.JobEvalSamples = testJobEvalSamples
	if configure != nil {
		configure(&cfg)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("newServer: %v", err)
	}
	if before != nil {
		before(srv)
	}
	ts := &testServer{
		srv:      srv,
		grpcAddr: srv.grpcLis.Addr().String(),
		httpAddr: srv.httpLis.Addr().String(),
		http:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}},
		cancel:   cancel,
		done:     make(chan error, 1),
		logs:     logs,
	}
	go func() { ts.done <- srv.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := ts.wait(); err != nil {
			t.Errorf("serve: %v", err)
		}
		ts.http.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	ts.conn, err = grpc.NewClient(ts.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.conn.Close() })
	ts.client = recommendationv1.NewRecommendationServiceClient(ts.conn)
	return ts
}

// wait returns serve's result once it has returned; it is safe to call twice.
func (ts *testServer) wait() error {
	select {
	case err, ok := <-ts.done:
		if !ok {
			return nil
		}
		close(ts.done)
		return err
	case <-time.After(waitFor):
		return fmt.Errorf("serve did not return within %v of the context ending", waitFor)
	}
}

// refused reports whether nothing listens on addr any more.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// waitRefused waits until nothing listens on addr.
func waitRefused(t *testing.T, addr, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !refused(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s) still accepts connections", what, addr)
		}
		time.Sleep(time.Millisecond)
	}
}

// defaultVersion is the embedded default model's version.
func defaultVersion(t *testing.T) *model.Manifest {
	t.Helper()
	_, man, err := defaultmodel.Load()
	if err != nil {
		t.Fatalf("defaultmodel.Load: %v", err)
	}
	return man
}

// testModelVersion encodes onnxfile.RandomMLP(seed) as version, with a
// manifest as the trainer writes it (checksum, specs, golden rows).
func testModelVersion(t testing.TB, seed int64, version string) ([]byte, *model.Manifest) {
	t.Helper()
	q := onnxfile.RandomMLP(seed)
	v := model.MustParseVersion(version)
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		t.Fatalf("Encode %s: %v", version, err)
	}
	const n = 6
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	x := make([]float32, n*model.NumFeatures)
	for i := range x {
		x[i] = rng.Float32()
	}
	return b, &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   v,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Model:     model.ModelFile{File: "predictor_" + version + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.DefaultSignature(),
		Features:  model.DefaultFeatures(),
		Outputs:   model.DefaultOutputs(),
		Golden:    trainer.GoldenFor(q, x, n),
	}
}

// recv waits for a value from ch, failing the test if none comes in time.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("waited %v for %s", waitFor, what)
		panic("unreachable")
	}
}

// ---- requests ----

func featuresInstance(id string, v []float32) *recommendationv1.Instance {
	return &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Features{
		Features: &recommendationv1.NormalizedFeatures{Values: v},
	}}
}

// rawInstance is a plausible container's metrics, varied by i, as an agent
// that computes major 1's twelve features sends them: without the history
// maxima, so that it is answered by major 1 however many majors are served
// (RawMetricsOf sets every catalogue field, and a zero maximum under a
// positive p99 is refused by the majors that read it).
func rawInstance(id string, i int) *recommendationv1.Instance {
	f := float64(i%7) / 7
	raw := transport.RawMetricsOf(features.Raw{
		CPUP50: 0.2 + f, CPUP95: 0.45 + f, CPUP99: 0.6 + f,
		MemP50: 300 << 20, MemP95: 380 << 20, MemP99: 400 << 20,
		CPUVariance: 0.4, MemTrend: -0.01, ThrottleRatio: 0.02,
		HourOfDay: float64(i % 24), DayOfWeek: float64(i % 7), WorkloadAgeDays: 42,
	})
	pm := raw.ProtoReflect()
	for _, ft := range model.Catalog()[model.NumFeatures:] {
		pm.Clear(pm.Descriptor().Fields().ByName(protoreflect.Name(ft.RawField)))
	}
	return &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Raw{Raw: raw}}
}

// mixedRequest has n instances, alternately normalized features and raw
// metrics, varied by i.
func mixedRequest(i, n int) *recommendationv1.PredictRequest {
	req := &recommendationv1.PredictRequest{}
	for k := range n {
		id := fmt.Sprintf("c%d-%d", i, k)
		if (i+k)%2 == 0 {
			v := make([]float32, model.NumFeatures)
			for j := range v {
				v[j] = float32((i+k*7+j*3)%11) / 10
			}
			req.Instances = append(req.Instances, featuresInstance(id, v))
		} else {
			req.Instances = append(req.Instances, rawInstance(id, i+k))
		}
	}
	return req
}

// checkResponse checks resp answers req: one prediction per instance, in
// order, each naming the response's version.
func checkResponse(req *recommendationv1.PredictRequest, resp *recommendationv1.PredictResponse) error {
	if len(resp.GetPredictions()) != len(req.GetInstances()) {
		return fmt.Errorf("%d predictions for %d instances", len(resp.GetPredictions()), len(req.GetInstances()))
	}
	if resp.GetModelVersion() == "" {
		return fmt.Errorf("response names no model version")
	}
	for k, p := range resp.GetPredictions() {
		if p.GetContainerId() != req.GetInstances()[k].GetContainerId() || p.GetModelVersion() != resp.GetModelVersion() {
			return fmt.Errorf("prediction %d is for %q by %s; want %q by %s", k,
				p.GetContainerId(), p.GetModelVersion(), req.GetInstances()[k].GetContainerId(), resp.GetModelVersion())
		}
	}
	return nil
}

// restError is the gateway's JSON error body.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// postPredict sends req as JSON to POST /v1/predict. It returns the HTTP
// status with the decoded response (200) or error body (otherwise).
func (ts *testServer) postPredict(ctx context.Context, req proto.Message) (int, *recommendationv1.PredictResponse, *restError, error) {
	body, err := protojson.Marshal(req)
	if err != nil {
		return 0, nil, nil, err
	}
	return ts.postPredictJSON(ctx, string(body))
}

func (ts *testServer) postPredictJSON(ctx context.Context, body string) (int, *recommendationv1.PredictResponse, *restError, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ts.httpAddr+"/v1/predict", strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	return doPredict(ts.http, hr)
}

func doPredict(c *http.Client, hr *http.Request) (int, *recommendationv1.PredictResponse, *restError, error) {
	resp, err := c.Do(hr)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e restError
		if err := json.Unmarshal(b, &e); err != nil {
			return resp.StatusCode, nil, nil, fmt.Errorf("error body %q is not JSON: %v", b, err)
		}
		return resp.StatusCode, nil, &e, nil
	}
	var out recommendationv1.PredictResponse
	if err := protojson.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("response %q: %v", b, err)
	}
	return resp.StatusCode, &out, nil, nil
}

// ---- holding a gRPC call in flight ----

// dataGate is a client connection that, while held, lets every HTTP/2 frame
// through except DATA frames: a unary call's HEADERS reach the server (which
// then knows the stream) but its request message does not, so the call is
// in flight at the server until the gate opens. Everything written after a
// held frame waits behind it, as on a slow network.
type dataGate struct {
	mu      sync.Mutex
	holding bool
	open    chan struct{} // closed by release
	held    chan struct{} // closed when a DATA frame is first held
	heldOne sync.Once
	openOne sync.Once
}

func newDataGate() *dataGate {
	return &dataGate{open: make(chan struct{}), held: make(chan struct{})}
}

// hold makes the gate hold DATA frames from now on.
func (g *dataGate) hold() { g.mu.Lock(); g.holding = true; g.mu.Unlock() }

// release lets held and later frames through.
func (g *dataGate) release() { g.openOne.Do(func() { close(g.open) }) }

func (g *dataGate) mustHold() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holding
}

// dial is a grpc.WithContextDialer dialer whose connections pass g.
func (g *dataGate) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g, preface: len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")}, nil
}

// gatedConn parses the client's HTTP/2 byte stream into frames (after the
// connection preface) to find DATA frames.
type gatedConn struct {
	net.Conn
	g       *dataGate
	preface int    // preface bytes still to pass
	hdr     []byte // a frame header being collected
	left    int    // payload bytes of the current frame still to pass
}

func (c *gatedConn) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch {
		case c.preface > 0 || c.left > 0:
			k := min(len(p), max(c.preface, c.left))
			if _, err := c.Conn.Write(p[:k]); err != nil {
				return 0, err
			}
			if c.preface > 0 {
				c.preface -= k
			} else {
				c.left -= k
			}
			p = p[k:]
		default:
			k := min(len(p), 9-len(c.hdr))
			c.hdr = append(c.hdr, p[:k]...)
			p = p[k:]
			if len(c.hdr) < 9 {
				continue
			}
			const frameData = 0x0
			if c.hdr[3] == frameData && c.g.mustHold() {
				c.g.heldOne.Do(func() { close(c.g.held) })
				<-c.g.open
			}
			if _, err := c.Conn.Write(c.hdr); err != nil {
				return 0, err
			}
			c.left = int(c.hdr[0])<<16 | int(c.hdr[1])<<8 | int(c.hdr[2])
			c.hdr = c.hdr[:0]
		}
	}
	return n, nil
}
