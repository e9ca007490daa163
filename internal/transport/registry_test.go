package transport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// ---- the wiring: the same parts as `serve`, over loopback ----

// regEnv is a server wired like cmd/recommendation-api: a real bbolt
// registry in t.TempDir(), ONNX Runtime sessions in a serving.Manager, the
// rollback.Controller's release flow started with the embedded default
// model (v1.1.0), PredictServer and RegistryServer on a gRPC server over
// loopback TCP, and the real gateway dialing it, served by httptest.
type regEnv struct {
	store   *registry.Store
	reg     recommendationv1.ModelRegistryServiceClient
	predict recommendationv1.RecommendationServiceClient
	rest    *httptest.Server
	logs    *syncBuffer
}

// seedVersion is the embedded default model's version, active on start.
const seedVersion = "v1.1.0"

func newRegEnv(t *testing.T) *regEnv {
	t.Helper()
	return newRegEnvIn(t, t.TempDir())
}

// newRegEnvIn is newRegEnv with the registry file in dir.
func newRegEnvIn(t *testing.T, dir string) *regEnv {
	t.Helper()
	if err := serving.InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime: %v (set %s to libonnxruntime.so.1)", err, serving.LibraryEnv)
	}
	e := &regEnv{logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var err error
	if e.store, err = registry.Open(filepath.Join(dir, "registry.db"), registry.Options{}); err != nil {
		t.Fatal(err)
	}
	models := serving.NewManager(serving.Options{Session: serving.SessionOptions{IntraOpThreads: 1, InterOpThreads: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	ctrl := rollback.New(e.store, models, rollback.Options{Log: log})
	if err := ctrl.Start(ctx, defaultmodel.Load); err != nil {
		t.Fatalf("Controller.Start: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = ctrl.Run(ctx) }()

	srv := transport.NewGRPCServer(log, transport.NewHealth())
	adapter := transport.ModelsOf(models)
	recommendationv1.RegisterRecommendationServiceServer(srv, transport.NewPredictServer(adapter, transport.PredictOptions{}, log))
	recommendationv1.RegisterModelRegistryServiceServer(srv, transport.NewRegistryServer(ctrl, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.reg = recommendationv1.NewModelRegistryServiceClient(conn)
	e.predict = recommendationv1.NewRecommendationServiceClient(conn)
	gw, err := transport.NewGateway(ctx, lis.Addr().String(), transport.GatewayOptions{Models: adapter, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.rest = httptest.NewServer(gw)

	t.Cleanup(func() {
		e.rest.Close()
		_ = conn.Close()
		srv.Stop()
		cancel()
		wg.Wait()
		if err := e.store.Check(); err != nil {
			t.Errorf("registry consistency: %v", err)
		}
		if err := e.store.Close(); err != nil {
			t.Error(err)
		}
		models.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})
	return e
}

// call sends a JSON body (none when empty) and returns the status, headers
// and body.
func (e *regEnv) call(t *testing.T, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.rest.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// callOK is call that wants 200 and decodes the body into out.
func (e *regEnv) callOK(t *testing.T, method, path, body string, out proto.Message) http.Header {
	t.Helper()
	code, h, b := e.call(t, method, path, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s = %d %s; want 200", method, path, code, b)
	}
	if err := protojson.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
	}
	return h
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// predictRow is the row every Predict in these tests sends.
var predictRow = []float32{0.3, 0.45, 0.5, 0.55, 0.6, 0.62, 0.2, 0.5, 0.1, 0.5, 0.5, 0.4}

// checkServes calls Predict over gRPC and REST and wants version to answer,
// with the outputs of mlp (when not nil) for predictRow.
func (e *regEnv) checkServes(t *testing.T, version string, mlp *model.QuantizedMLP) {
	t.Helper()
	req := &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{{
		ContainerId: "c1",
		Input:       &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: predictRow}},
	}}}
	grpcResp, err := e.predict.Predict(rpcCtx(t), req)
	if err != nil {
		t.Fatalf("gRPC Predict: %v", err)
	}
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var restResp recommendationv1.PredictResponse
	e.callOK(t, "POST", "/v1/predict", string(body), &restResp)
	for name, resp := range map[string]*recommendationv1.PredictResponse{"gRPC": grpcResp, "REST": &restResp} {
		if got := resp.GetModelVersion(); got != version {
			t.Errorf("%s Predict model_version = %q; want %q", name, got, version)
		}
		if mlp == nil {
			continue
		}
		want := admissibleOutputs(mlp.Forward(predictRow, 1), model.DefaultOutputs())
		n := resp.GetPredictions()[0].GetNormalized()
		got := []float32{n.GetCpuRequest(), n.GetCpuLimit(), n.GetMemRequest(), n.GetMemLimit(), n.GetConfidence()}
		for k := range want {
			if math.Abs(float64(got[k]-want[k])) > 1e-4 {
				t.Errorf("%s Predict output %d = %v; want %v from %s's weights", name, k, got[k], want[k], version)
			}
		}
	}
}

// ---- model versions made like `train` makes them ----

// regVersion is one model version: a random 12-32-16-5 int8 MLP encoded to
// ONNX, and a manifest built as internal/trainer/manifest.go builds it, with
// golden rows answered by the MLP's pure-Go forward pass.
type regVersion struct {
	mlp  *model.QuantizedMLP
	onnx []byte
	man  *model.Manifest
}

func newRegVersion(t *testing.T, version string, seed int64) *regVersion {
	t.Helper()
	v := model.MustParseVersion(version)
	q := onnxfile.RandomMLP(seed)
	feats := model.DefaultFeatures()
	if v.Major == 2 {
		q = onnxfile.RandomMLPV2(seed)
		var err error
		if feats, err = model.FeaturesFor(2); err != nil {
			t.Fatal(err)
		}
	}
	width := len(feats)
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		t.Fatal(err)
	}
	var acts []model.Activation
	layers := []int{width}
	for _, l := range q.Layers {
		acts = append(acts, l.Activation)
		layers = append(layers, l.Out)
	}
	var rows [][]float32
	for r := range 6 {
		row := make([]float32, width)
		for j := range row {
			row[j] = float32((r*7+j*3)%11) / 10
		}
		rows = append(rows, row)
	}
	zeros, ones := make([]float32, width), make([]float32, width)
	for j := range ones {
		ones[j] = 1
	}
	rows = append(rows, zeros, ones)
	var x []float32
	for _, r := range rows {
		x = append(x, r...)
	}
	y := q.Forward(x, len(rows))
	outs := make([][]float32, len(rows))
	for r := range outs {
		outs[r] = y[r*model.NumOutputs : (r+1)*model.NumOutputs]
	}
	m := &model.Manifest{
		Schema:       model.ManifestSchema,
		Version:      v,
		CreatedAt:    time.Date(2026, 11, 1, 12, 0, int(seed), 0, time.UTC),
		Model:        model.ModelFile{File: "predictor_" + version + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature:    model.SignatureFor(width),
		Features:     feats,
		Outputs:      model.DefaultOutputs(),
		Architecture: model.Architecture{Layers: layers, Activations: acts, Parameters: q.Params(), Opset: 13},
		Quantization: model.DefaultQuantization(),
		Training: model.Training{
			Samples: 10000 + int(seed), TrainSamples: 8000, ValSamples: 2000 + int(seed),
			Seed: seed, Epochs: 40, EpochsRun: 31, BestEpoch: 27, ParentVersion: seedVersion,
		},
		Metrics: &model.Metrics{
			HeldOutSamples: 5000 + int(seed), HeldOutSeed: seed,
			Model:    model.Scores{CPURequestSlack: 0.21, CPULimitSlack: 0.35, MemRequestSlack: 0.18, MemLimitSlack: 0.3, OOMRate: 0.004, ThrottleRate: 0.01},
			Baseline: model.Scores{CPURequestSlack: 0.41, CPULimitSlack: 0.52, MemRequestSlack: 0.33, MemLimitSlack: 0.44, OOMRate: 0.012, ThrottleRate: 0.03},
		},
		Golden: model.Golden{Tolerance: 1e-4, Inputs: rows, Outputs: outs},
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return &regVersion{mlp: q, onnx: b, man: m}
}

// manifestJSON is the manifest as `train` and `export` write manifest.json.
func manifestJSON(t *testing.T, m *model.Manifest) string {
	t.Helper()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// editedManifest returns a deep copy of m changed by edit.
func editedManifest(t *testing.T, m *model.Manifest, edit func(*model.Manifest)) *model.Manifest {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var c model.Manifest
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	edit(&c)
	return &c
}

func registerRequest(t *testing.T, b []byte, m *model.Manifest, actor, reason string) *recommendationv1.RegisterVersionRequest {
	return &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: manifestJSON(t, m), Actor: actor, Reason: reason}
}

// registerBody is the REST body of POST /v1/models: the ONNX bytes base64
// in "onnx", the manifest.json text in "manifestJson".
func registerBody(t *testing.T, b []byte, manifestJSON, actor string) string {
	t.Helper()
	body := map[string]string{"onnx": base64.StdEncoding.EncodeToString(b), "manifestJson": manifestJSON}
	if actor != "" {
		body["actor"] = actor
	}
	j, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// ---- tests ----

// TestRegistryEndToEnd is the release story over both transports: register
// two versions (gRPC and REST), activate, predict, roll back, and read the
// history, the listing and a download.
func TestRegistryEndToEnd(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	v110 := newRegVersion(t, "v1.2.0", 11)
	v120 := newRegVersion(t, "v1.3.0", 12)
	e.checkServes(t, seedVersion, nil)

	// Register v1.2.0 over gRPC.
	reg, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, v110.onnx, v110.man, "alice", "nightly retrain"))
	if err != nil {
		t.Fatalf("gRPC RegisterVersion v1.2.0: %v", err)
	}
	checkModelVersion(t, "RegisterVersion", reg.GetModel(), v110.man, false, true)

	// Register v1.3.0 over REST, without an actor: the caller's address is recorded.
	var restReg recommendationv1.RegisterVersionResponse
	e.callOK(t, "POST", "/v1/models", registerBody(t, v120.onnx, manifestJSON(t, v120.man), ""), &restReg)
	checkModelVersion(t, "REST RegisterVersion", restReg.GetModel(), v120.man, false, true)

	// Activate v1.2.0 over gRPC, then v1.3.0 over REST.
	act, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "alice", Reason: "canary ok"})
	if err != nil {
		t.Fatalf("gRPC ActivateVersion v1.2.0: %v", err)
	}
	if act.GetPreviousVersion() != seedVersion {
		t.Errorf("ActivateVersion v1.2.0 previous_version = %q; want %q", act.GetPreviousVersion(), seedVersion)
	}
	checkModelVersion(t, "ActivateVersion", act.GetModel(), v110.man, true, true)
	e.checkServes(t, "v1.2.0", v110.mlp)

	var restAct recommendationv1.ActivateVersionResponse
	e.callOK(t, "POST", "/v1/models/v1.3.0:activate", `{"reason":"better p99 in canary","actor":"carol"}`, &restAct)
	if restAct.GetPreviousVersion() != "v1.2.0" {
		t.Errorf("POST /v1/models/v1.3.0:activate previousVersion = %q; want v1.2.0", restAct.GetPreviousVersion())
	}
	checkModelVersion(t, "REST ActivateVersion", restAct.GetModel(), v120.man, true, true)
	e.checkServes(t, "v1.3.0", v120.mlp)

	// Roll back over REST: back to v1.2.0.
	var rb recommendationv1.RollbackResponse
	e.callOK(t, "POST", "/v1/models:rollback", `{"reason":"p99 regressed","actor":"dave"}`, &rb)
	if rb.GetModel().GetVersion() != "v1.2.0" || rb.GetPreviousVersion() != "v1.3.0" {
		t.Errorf("POST /v1/models:rollback = %s from %s; want v1.2.0 from v1.3.0", rb.GetModel().GetVersion(), rb.GetPreviousVersion())
	}
	e.checkServes(t, "v1.2.0", v110.mlp)

	var active recommendationv1.GetActiveResponse
	e.callOK(t, "GET", "/v1/models:active", "", &active)
	checkModelVersion(t, "GET /v1/models:active", active.GetModel(), v110.man, true, true)

	t.Run("History", func(t *testing.T) {
		var hist recommendationv1.GetHistoryResponse
		e.callOK(t, "GET", "/v1/models/history", "", &hist)
		got := hist.GetEntries()
		// Newest first, as the proto documents.
		want := []struct{ action, from, to, actor, reason string }{
			{"rollback", "v1.3.0", "v1.2.0", "dave", "p99 regressed"},
			{"activate", "v1.2.0", "v1.3.0", "carol", "better p99 in canary"},
			{"activate", seedVersion, "v1.2.0", "alice", "canary ok"},
			{"register", "", "v1.3.0", "anonymous", transport.DefaultReason},
			{"register", "", "v1.2.0", "alice", "nightly retrain"},
			{"activate", "", seedVersion, "system", "first start: embedded default model"},
			{"register", "", seedVersion, "system", "first start: embedded default model"},
		}
		if len(got) != len(want) {
			t.Fatalf("GET /v1/models/history has %d entries; want %d: %v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.GetAction() != w.action || g.GetFromVersion() != w.from || g.GetToVersion() != w.to ||
				!strings.HasPrefix(g.GetActor(), w.actor) || g.GetReason() != w.reason {
				t.Errorf("history[%d] = %s %q→%q by %q (%q); want %s %q→%q by %q… (%q)", i,
					g.GetAction(), g.GetFromVersion(), g.GetToVersion(), g.GetActor(), g.GetReason(),
					w.action, w.from, w.to, w.actor, w.reason)
			}
			if g.GetTime() == nil || g.GetTime().AsTime().IsZero() {
				t.Errorf("history[%d] has no time", i)
			}
			if i > 0 && g.GetTime().AsTime().After(got[i-1].GetTime().AsTime()) {
				t.Errorf("history[%d] at %v is newer than history[%d] at %v; want newest first",
					i, g.GetTime().AsTime(), i-1, got[i-1].GetTime().AsTime())
			}
		}

		var two recommendationv1.GetHistoryResponse
		e.callOK(t, "GET", "/v1/models/history?limit=2", "", &two)
		if len(two.GetEntries()) != 2 || two.GetEntries()[0].GetAction() != "rollback" {
			t.Errorf("GET /v1/models/history?limit=2 = %v; want the newest 2 (rollback first)", two.GetEntries())
		}
	})

	t.Run("List", func(t *testing.T) {
		var list recommendationv1.ListVersionsResponse
		e.callOK(t, "GET", "/v1/models", "", &list)
		if list.GetActiveVersion() != "v1.2.0" {
			t.Errorf("GET /v1/models activeVersion = %q; want v1.2.0", list.GetActiveVersion())
		}
		var got []string
		for _, mv := range list.GetVersions() {
			got = append(got, fmt.Sprintf("%s active=%v", mv.GetVersion(), mv.GetActive()))
		}
		want := []string{"v1.3.0 active=false", "v1.2.0 active=true", seedVersion + " active=false"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("GET /v1/models = %v; want %v (newest first)", got, want)
		}
		if len(list.GetVersions()) == 3 {
			checkModelVersion(t, "GET /v1/models", list.GetVersions()[0], v120.man, false, false)
		}
	})

	t.Run("Get", func(t *testing.T) {
		var got recommendationv1.GetVersionResponse
		e.callOK(t, "GET", "/v1/models/v1.3.0", "", &got)
		checkModelVersion(t, "GET /v1/models/v1.3.0", got.GetModel(), v120.man, false, true)
	})

	t.Run("Download", func(t *testing.T) {
		var dl recommendationv1.DownloadVersionResponse
		e.callOK(t, "GET", "/v1/models/v1.3.0:download", "", &dl)
		m, err := model.ParseManifest([]byte(dl.GetManifestJson()))
		if err != nil {
			t.Fatalf("downloaded manifest: %v", err)
		}
		if got := model.SHA256Hex(dl.GetOnnx()); got != m.Model.SHA256 || got != v120.man.Model.SHA256 {
			t.Errorf("downloaded bytes have sha256 %s; manifest says %s, registered %s", got, m.Model.SHA256, v120.man.Model.SHA256)
		}
		if !bytes.Equal(dl.GetOnnx(), v120.onnx) || dl.GetVersion() != "v1.3.0" {
			t.Errorf("download of v1.3.0 = %s, %d bytes; want the %d registered bytes", dl.GetVersion(), len(dl.GetOnnx()), len(v120.onnx))
		}
		if dl.GetManifestJson() != manifestJSON(t, v120.man) {
			t.Errorf("downloaded manifest.json differs from the one registered:\n%s", dl.GetManifestJson())
		}

		grpcDL, err := e.reg.DownloadVersion(rpcCtx(t), &recommendationv1.DownloadVersionRequest{Version: "v1.2.0"})
		if err != nil {
			t.Fatalf("gRPC DownloadVersion: %v", err)
		}
		if !bytes.Equal(grpcDL.GetOnnx(), v110.onnx) {
			t.Errorf("gRPC download of v1.2.0: bytes differ from the registered ones")
		}
	})
}

// checkModelVersion compares a ModelVersion with the manifest it describes.
func checkModelVersion(t *testing.T, what string, got *recommendationv1.ModelVersion, m *model.Manifest, active, withManifest bool) {
	t.Helper()
	want := &recommendationv1.ModelVersion{
		Version:         m.Version.String(),
		Major:           int32(m.Version.Major),
		Sha256:          m.Model.SHA256,
		SizeBytes:       m.Model.SizeBytes,
		Active:          active,
		Parameters:      1029,
		ParentVersion:   seedVersion,
		TrainingSamples: int64(m.Training.Samples),
		Evaluation: &recommendationv1.EvaluationSummary{
			HeldOutSamples: int64(m.Metrics.HeldOutSamples),
			Model:          &recommendationv1.Scores{CpuRequestSlack: 0.21, CpuLimitSlack: 0.35, MemRequestSlack: 0.18, MemLimitSlack: 0.3, OomRate: 0.004, ThrottleRate: 0.01},
			VpaBaseline:    &recommendationv1.Scores{CpuRequestSlack: 0.41, CpuLimitSlack: 0.52, MemRequestSlack: 0.33, MemLimitSlack: 0.44, OomRate: 0.012, ThrottleRate: 0.03},
		},
	}
	gotCopy := proto.Clone(got).(*recommendationv1.ModelVersion)
	gotCopy.ManifestJson = ""
	createdAt := gotCopy.GetCreatedAt().AsTime()
	gotCopy.CreatedAt = nil
	if !proto.Equal(gotCopy, want) {
		t.Errorf("%s: model = %v\nwant %v", what, gotCopy, want)
	}
	if !createdAt.Equal(m.CreatedAt) {
		t.Errorf("%s: created_at = %v; want %v", what, createdAt, m.CreatedAt)
	}
	if !withManifest {
		if got.GetManifestJson() != "" {
			t.Errorf("%s: manifest_json set; want it empty in listings", what)
		}
		return
	}
	gm, err := model.ParseManifest([]byte(got.GetManifestJson()))
	if err != nil {
		t.Fatalf("%s: manifest_json: %v", what, err)
	}
	if gm.Version != m.Version || gm.Model != m.Model || gm.Training.Samples != m.Training.Samples {
		t.Errorf("%s: manifest_json describes %s %+v; want %s %+v", what, gm.Version, gm.Model, m.Version, m.Model)
	}
}

// TestRegistryBadInput sends each kind of bad request over gRPC and REST and
// checks the code, the HTTP status and the message, then that nothing
// changed: the same version is active and still answers Predict, and the
// registry holds only what it held before.
//
// Rollback with nothing to roll back to is NotFound (404): the controller
// wraps model.ErrVersionNotFound ("no earlier version is still registered"),
// which the error table maps like any unknown version.
func TestRegistryBadInput(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	seedB, seedM, err := defaultmodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	good := newRegVersion(t, "v1.4.0", 13)
	other := newRegVersion(t, "v1.4.0", 14)
	corrupt := good.onnx[:len(good.onnx)/2]
	corruptM := editedManifest(t, good.man, func(m *model.Manifest) {
		m.Version = model.MustParseVersion("v1.5.0")
		m.Model = model.ModelFile{File: "predictor_v1.5.0.onnx", SHA256: model.SHA256Hex(corrupt), SizeBytes: int64(len(corrupt))}
	})
	// Another input format under major 1 (two features swapped): a new
	// format is a new major, so it is refused.
	major := newRegVersion(t, "v1.10.0", 20)
	major.man.Features[0], major.man.Features[1] = major.man.Features[1], major.man.Features[0]
	goldenM := editedManifest(t, good.man, func(m *model.Manifest) { m.Golden.Outputs[2][1] += 0.25 })
	invalidSchema := editedManifest(t, good.man, func(m *model.Manifest) { m.Schema = 2 })
	tooBig := make([]byte, transport.MaxModelBytes+1)

	type rest struct{ method, path, body string }
	tests := []struct {
		name string
		rpc  func(context.Context, recommendationv1.ModelRegistryServiceClient) error
		rest rest
		code codes.Code
		want []string // substrings of the message
	}{
		{
			name: "ErrMalformedVersion/GetVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.GetVersion(ctx, &recommendationv1.GetVersionRequest{Version: "1.2.3"})
				return err
			},
			rest: rest{"GET", "/v1/models/1.2.3", ""},
			code: codes.InvalidArgument, want: []string{"version:", "missing leading 'v'", "v{major}.{minor}.{patch}"},
		},
		{
			name: "ErrMalformedVersion/ActivateVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.2"})
				return err
			},
			rest: rest{"POST", "/v1/models/v1.2:activate", `{}`},
			code: codes.InvalidArgument, want: []string{"version:", "v{major}.{minor}.{patch}"},
		},
		{
			name: "ErrMalformedVersion/Rollback",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.Rollback(ctx, &recommendationv1.RollbackRequest{ToVersion: "latest"})
				return err
			},
			rest: rest{"POST", "/v1/models:rollback", `{"toVersion":"latest"}`},
			code: codes.InvalidArgument, want: []string{"to_version:", "v{major}.{minor}.{patch}"},
		},
		{
			name: "ErrMalformedVersion/DownloadVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.DownloadVersion(ctx, &recommendationv1.DownloadVersionRequest{Version: "v01.0.0"})
				return err
			},
			rest: rest{"GET", "/v1/models/v01.0.0:download", ""},
			code: codes.InvalidArgument, want: []string{"version:", "leading zero"},
		},
		{
			name: "ErrMalformedVersion/Zero",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.Rollback(ctx, &recommendationv1.RollbackRequest{ToVersion: "v0.0.0"})
				return err
			},
			rest: rest{"POST", "/v1/models:rollback", `{"to_version":"v0.0.0"}`},
			code: codes.InvalidArgument, want: []string{"to_version:", "v0.0.0"},
		},
		{
			name: "ErrNotFound/GetVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.GetVersion(ctx, &recommendationv1.GetVersionRequest{Version: "v9.9.9"})
				return err
			},
			rest: rest{"GET", "/v1/models/v9.9.9", ""},
			code: codes.NotFound, want: []string{"v9.9.9", "not found"},
		},
		{
			name: "ErrNotFound/ActivateVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v9.9.9"})
				return err
			},
			rest: rest{"POST", "/v1/models/v9.9.9:activate", `{"actor":"erin"}`},
			code: codes.NotFound, want: []string{"v9.9.9", "not found"},
		},
		{
			name: "ErrNotFound/RollbackTo",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.Rollback(ctx, &recommendationv1.RollbackRequest{ToVersion: "v9.9.9"})
				return err
			},
			rest: rest{"POST", "/v1/models:rollback", `{"toVersion":"v9.9.9"}`},
			code: codes.NotFound, want: []string{"v9.9.9", "not found"},
		},
		{
			name: "ErrNotFound/DownloadVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.DownloadVersion(ctx, &recommendationv1.DownloadVersionRequest{Version: "v9.9.9"})
				return err
			},
			rest: rest{"GET", "/v1/models/v9.9.9:download", ""},
			code: codes.NotFound, want: []string{"v9.9.9", "not found"},
		},
		{
			name: "ErrNothingToRollBack",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.Rollback(ctx, &recommendationv1.RollbackRequest{Reason: "panic"})
				return err
			},
			rest: rest{"POST", "/v1/models:rollback", `{"reason":"panic"}`},
			code: codes.NotFound, want: []string{"no earlier version"},
		},
		{
			name: "ErrAlreadyExists",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, seedB, seedM, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, seedB, manifestJSON(t, seedM), "")},
			code: codes.AlreadyExists, want: []string{seedVersion, "already exists"},
		},
		{
			name: "ErrChecksumMismatch",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, other.onnx, good.man, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, other.onnx, manifestJSON(t, good.man), "")},
			code: codes.FailedPrecondition, want: []string{"onnx:", "checksum mismatch", good.man.Model.SHA256},
		},
		{
			name: "ErrCorruptONNX",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, corrupt, corruptM, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, corrupt, manifestJSON(t, corruptM), "")},
			code: codes.InvalidArgument, want: []string{"load v1.5.0: check graph: model graph: not an ONNX model (protobuf)"},
		},
		{
			name: "ErrMajorVersion",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, major.onnx, major.man, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, major.onnx, manifestJSON(t, major.man), "")},
			code: codes.FailedPrecondition, want: []string{"v1.10.0", "major 1's format", "cpu_p95"},
		},
		{
			name: "ErrGoldenMismatch",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, good.onnx, goldenM, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, good.onnx, manifestJSON(t, goldenM), "")},
			code: codes.FailedPrecondition, want: []string{"v1.4.0", "golden rows", "row 2"},
		},
		{
			name: "ErrEmptyONNX",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, nil, good.man, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", `{"manifestJson":"{}"}`},
			code: codes.InvalidArgument, want: []string{"onnx: empty"},
		},
		{
			name: "ErrTooLarge",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, tooBig, good.man, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, tooBig, manifestJSON(t, good.man), "")},
			code: codes.InvalidArgument, want: []string{"onnx:", fmt.Sprintf("limit is %d bytes", transport.MaxModelBytes)},
		},
		{
			name: "ErrManifestNotJSON",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: good.onnx, ManifestJson: "{not json"})
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, good.onnx, "{not json", "")},
			code: codes.InvalidArgument, want: []string{"manifest_json:", "not valid JSON"},
		},
		{
			name: "ErrManifestInvalid",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, registerRequest(t, good.onnx, invalidSchema, "", ""))
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, good.onnx, manifestJSON(t, invalidSchema), "")},
			code: codes.InvalidArgument, want: []string{"manifest_json:", "schema 2"},
		},
		{
			name: "ErrManifestEmpty",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: good.onnx})
				return err
			},
			rest: rest{"POST", "/v1/models", registerBody(t, good.onnx, "", "")},
			code: codes.InvalidArgument, want: []string{"manifest_json: empty"},
		},
		{
			name: "ErrReservedActor",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: seedVersion, Actor: "system"})
				return err
			},
			rest: rest{"POST", "/v1/models/" + seedVersion + ":activate", `{"actor":"System"}`},
			code: codes.InvalidArgument, want: []string{"actor:", "reserved"},
		},
		{
			name: "ErrReasonTooLong",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.Rollback(ctx, &recommendationv1.RollbackRequest{Reason: strings.Repeat("x", transport.MaxReasonBytes+1)})
				return err
			},
			rest: rest{"POST", "/v1/models:rollback", fmt.Sprintf(`{"reason":%q}`, strings.Repeat("x", transport.MaxReasonBytes+1))},
			code: codes.InvalidArgument, want: []string{"reason:", fmt.Sprint(transport.MaxReasonBytes)},
		},
		{
			name: "ErrNegativeLimit",
			rpc: func(ctx context.Context, c recommendationv1.ModelRegistryServiceClient) error {
				_, err := c.GetHistory(ctx, &recommendationv1.GetHistoryRequest{Limit: -1})
				return err
			},
			rest: rest{"GET", "/v1/models/history?limit=-1", ""},
			code: codes.InvalidArgument, want: []string{"limit:", "-1"},
		},
	}

	// The parallel subtests finish before the group returns.
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				t.Run("gRPC", func(t *testing.T) {
					err := tt.rpc(rpcCtx(t), e.reg)
					st := status.Convert(err)
					if st.Code() != tt.code {
						t.Errorf("code = %v (%q); want %v", st.Code(), st.Message(), tt.code)
					}
					checkMessage(t, st.Message(), tt.want)
					e.checkUnchanged(t)
				})
				t.Run("REST", func(t *testing.T) {
					code, _, body := e.call(t, tt.rest.method, tt.rest.path, tt.rest.body)
					var re restError
					if err := json.Unmarshal(body, &re); err != nil {
						t.Fatalf("%s %s = %d %s: %v", tt.rest.method, tt.rest.path, code, body, err)
					}
					if wantHTTP := httpStatus(tt.code); code != wantHTTP || re.Code != tt.code {
						t.Errorf("%s %s = %d %v; want %d %v (%s)", tt.rest.method, tt.rest.path, code, re.Code, wantHTTP, tt.code, re.Message)
					}
					checkMessage(t, re.Message, tt.want)
					e.checkUnchanged(t)
				})
			})
		}
	})

	// Nothing was stored or moved: the registry holds the seed version and
	// the two events of the first start.
	list, err := e.store.List()
	if err != nil || len(list) != 1 || list[0].Manifest.Version.String() != seedVersion {
		t.Errorf("registry after bad requests = %v, %v; want only %s", list, err, seedVersion)
	}
	hist, err := e.store.History()
	if err != nil || len(hist) != 2 {
		t.Errorf("history after bad requests = %+v, %v; want the 2 events of the first start", hist, err)
	}
}

// httpStatus is the status grpc-gateway gives a code (FailedPrecondition is 400, not 412).
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists:
		return http.StatusConflict
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func checkMessage(t *testing.T, msg string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q; want it to contain %q", msg, w)
		}
	}
}

// checkUnchanged checks the seed version is still active and serving.
func (e *regEnv) checkUnchanged(t *testing.T) {
	t.Helper()
	a, err := e.reg.GetActive(rpcCtx(t), &recommendationv1.GetActiveRequest{})
	if err != nil || a.GetModel().GetVersion() != seedVersion || !a.GetModel().GetActive() {
		t.Errorf("GetActive = %v, %v; want %s, active", a.GetModel().GetVersion(), err, seedVersion)
	}
	e.checkServes(t, seedVersion, nil)
}

// TestRegisterVersionPrunes checks the versions retention deletes are
// reported in the pruned-versions header over gRPC and REST, the active
// version is never among them, and a registration older than everything
// kept is accepted and pruned at once.
func TestRegisterVersionPrunes(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	// v1.1.0 (active) + v1.2.0 … v1.6.0 fills retention (5 newest + active).
	for i := 1; i <= 5; i++ {
		v := newRegVersion(t, fmt.Sprintf("v1.%d.0", i+1), int64(30+i))
		var hdr metadata.MD
		if _, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, v.onnx, v.man, "ci", ""), grpc.Header(&hdr)); err != nil {
			t.Fatalf("register %s: %v", v.man.Version, err)
		}
		if got := hdr.Get(transport.PrunedHeader); len(got) != 0 {
			t.Errorf("register %s pruned %v; want none", v.man.Version, got)
		}
	}

	v160 := newRegVersion(t, "v1.7.0", 36)
	var hdr metadata.MD
	if _, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, v160.onnx, v160.man, "ci", ""), grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(transport.PrunedHeader); fmt.Sprint(got) != "[v1.2.0]" {
		t.Errorf("gRPC register v1.7.0: %s = %v; want [v1.2.0]", transport.PrunedHeader, got)
	}

	v170 := newRegVersion(t, "v1.8.0", 37)
	var resp recommendationv1.RegisterVersionResponse
	h := e.callOK(t, "POST", "/v1/models", registerBody(t, v170.onnx, manifestJSON(t, v170.man), "ci"), &resp)
	if got := h.Get("Grpc-Metadata-" + transport.PrunedHeader); got != "v1.3.0" {
		t.Errorf("REST register v1.8.0: Grpc-Metadata-Pruned-Versions = %q; want v1.3.0", got)
	}

	// Older than the five kept: refused, over gRPC and REST, storing nothing.
	old := newRegVersion(t, "v1.1.5", 38)
	_, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, old.onnx, old.man, "ci", ""))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "oldest kept is v1.4.0") {
		t.Errorf("gRPC register v1.1.5 (older than all kept): %v; want FailedPrecondition naming the oldest kept v1.4.0", err)
	}
	code, _, body := e.call(t, "POST", "/v1/models", registerBody(t, old.onnx, manifestJSON(t, old.man), "ci"))
	if code != http.StatusConflict || !strings.Contains(string(body), "retention keeps the newest 5") {
		t.Errorf("REST register v1.1.5: %d %s; want 409 saying what retention keeps", code, body)
	}

	list, err := e.reg.ListVersions(rpcCtx(t), &recommendationv1.ListVersionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mv := range list.GetVersions() {
		got = append(got, mv.GetVersion())
	}
	if want := "[v1.8.0 v1.7.0 v1.6.0 v1.5.0 v1.4.0 v1.1.0]"; fmt.Sprint(got) != want { // v1.1.0 is active
		t.Errorf("ListVersions = %v; want %s", got, want)
	}
	e.checkServes(t, seedVersion, nil)
}

// TestRegistryDefaults checks the actor and reason recorded when a request
// gives none, over gRPC (the peer's address) and REST (the client's, which
// the gateway forwards).
func TestRegistryDefaults(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	v := newRegVersion(t, "v1.2.0", 41)
	if _, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, v.onnx, v.man, "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0"}); err != nil {
		t.Fatal(err)
	}
	var rb recommendationv1.RollbackResponse
	e.callOK(t, "POST", "/v1/models:rollback", `{"actor":"  frank  "}`, &rb)
	if rb.GetModel().GetVersion() != seedVersion {
		t.Errorf("rollback went to %s; want %s", rb.GetModel().GetVersion(), seedVersion)
	}

	h, err := e.reg.GetHistory(rpcCtx(t), &recommendationv1.GetHistoryRequest{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	ents := h.GetEntries()
	if len(ents) != 3 {
		t.Fatalf("GetHistory limit 3 = %d entries", len(ents))
	}
	for i, w := range []struct{ action, actorPrefix, reason string }{
		{"rollback", "frank", transport.DefaultReason},
		{"activate", "anonymous", transport.DefaultReason},
		{"register", "anonymous", transport.DefaultReason},
	} {
		g := ents[i]
		if g.GetAction() != w.action || !strings.HasPrefix(g.GetActor(), w.actorPrefix) || g.GetReason() != w.reason {
			t.Errorf("history[%d] = %s by %q (%q); want %s by %q… (%q)", i, g.GetAction(), g.GetActor(), g.GetReason(), w.action, w.actorPrefix, w.reason)
		}
	}
	if ents[0].GetActor() != "frank" {
		t.Errorf("rollback actor = %q; want it trimmed to \"frank\"", ents[0].GetActor())
	}
}
