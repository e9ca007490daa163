package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/transport"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noActive: true})
	client := healthpb.NewHealthClient(h.conn)
	check := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, svc := range append([]string{""}, transport.HealthServices...) {
			resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("Check(%q): %v", svc, err)
			}
			if resp.GetStatus() != want {
				t.Errorf("Check(%q) = %v; want %v", svc, resp.GetStatus(), want)
			}
		}
	}
	check(healthpb.HealthCheckResponse_NOT_SERVING)
	h.health.SetServing(true)
	check(healthpb.HealthCheckResponse_SERVING)
	h.health.SetServing(false)
	check(healthpb.HealthCheckResponse_NOT_SERVING)
	h.health.SetServing(true)
	h.health.Shutdown()
	check(healthpb.HealthCheckResponse_NOT_SERVING)
	h.health.SetServing(true) // ignored after Shutdown
	check(healthpb.HealthCheckResponse_NOT_SERVING)
}

func TestReflection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{transport.PredictService, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}

	// The descriptors carry the proto comments grpcurl describe shows.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: transport.PredictService},
	}); err != nil {
		t.Fatal(err)
	}
	if resp, err = stream.Recv(); err != nil {
		t.Fatal(err)
	}
	fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(fds) == 0 {
		t.Fatalf("no file descriptor for %s: %v", transport.PredictService, resp)
	}
	var fd descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(fds[0], &fd); err != nil {
		t.Fatal(err)
	}
	var comments strings.Builder
	for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
		comments.WriteString(loc.GetLeadingComments())
	}
	if !strings.Contains(comments.String(), "Median CPU usage, in cores") {
		t.Errorf("reflection serves %s without its comments", fd.GetName())
	}
	// The commented copy must describe exactly what is compiled in (else
	// run make proto).
	fd.SourceCodeInfo = nil
	compiled := protodesc.ToFileDescriptorProto(recommendationv1.File_recommendation_v1_prediction_proto)
	if !proto.Equal(&fd, compiled) {
		t.Errorf("reflection's %s differs from the compiled-in descriptor: embedded descriptor set is stale", fd.GetName())
	}
	_ = stream.CloseSend()
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
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

func TestHealthzReadyz(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noActive: true})

	if code, _, b := get(t, h.rest.URL+"/healthz"); code != http.StatusOK || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("/healthz = %d %q; want 200 ok", code, b)
	}

	type readiness struct {
		Ready        bool   `json:"ready"`
		ModelVersion string `json:"model_version"`
		Reason       string `json:"reason"`
	}
	readyz := func() (int, readiness) {
		t.Helper()
		code, hdr, b := get(t, h.rest.URL+"/readyz")
		var r readiness
		if err := json.Unmarshal(b, &r); err != nil || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("/readyz body %q (%s): %v", b, hdr.Get("Content-Type"), err)
		}
		return code, r
	}
	if code, r := readyz(); code != http.StatusServiceUnavailable || r.Ready || r.Reason == "" {
		t.Errorf("/readyz before a model = %d %+v; want 503, not ready, with a reason", code, r)
	}
	h.models.activate(activeVersion)
	if code, r := readyz(); code != http.StatusOK || !r.Ready || r.ModelVersion != activeVersion {
		t.Errorf("/readyz after activation = %d %+v; want 200, ready, %s", code, r, activeVersion)
	}
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	code, hdr, b := get(t, h.rest.URL+"/openapi.json")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json = %d %s", code, hdr.Get("Content-Type"))
	}
	var doc struct {
		Swagger string `json:"swagger"`
		Info    struct {
			Title, Version, Description string
		} `json:"info"`
		Paths       map[string]json.RawMessage `json:"paths"`
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	// The generated routes, and those the gateway serves itself (overlay).
	for _, p := range []string{"/v1/predict", "/v1/models", "/v1/models/{version}", "/v1/models/history", "/v1/models:rollback",
		"/healthz", "/readyz", "/openapi.json"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("/openapi.json has no path %s", p)
		}
	}
	if doc.Info.Title != "recommendation-api" || doc.Info.Version != "v1" || doc.Info.Description == "" {
		t.Errorf("/openapi.json info = %+v; want title recommendation-api, version v1, the generated description", doc.Info)
	}
	if _, ok := doc.Definitions["Readiness"]; !ok {
		t.Errorf("/openapi.json has no Readiness definition for /readyz")
	}
	if _, ok := doc.Definitions["v1PredictRequest"]; !ok {
		t.Errorf("/openapi.json lost the generated definitions (v1PredictRequest)")
	}
}

// routeRegistry answers each registry rpc with something that names the rpc
// (and the path parameter), so route tests can see which one a URL reached.
type routeRegistry struct {
	recommendationv1.UnimplementedModelRegistryServiceServer
}

func named(rpc, version string) *recommendationv1.ModelVersion {
	return &recommendationv1.ModelVersion{Version: version, ManifestJson: rpc}
}

func (routeRegistry) ListVersions(context.Context, *recommendationv1.ListVersionsRequest) (*recommendationv1.ListVersionsResponse, error) {
	return &recommendationv1.ListVersionsResponse{Versions: []*recommendationv1.ModelVersion{named("ListVersions", "")}}, nil
}

func (routeRegistry) GetVersion(_ context.Context, r *recommendationv1.GetVersionRequest) (*recommendationv1.GetVersionResponse, error) {
	if _, err := model.ParseVersion(r.GetVersion()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &recommendationv1.GetVersionResponse{Model: named("GetVersion", r.GetVersion())}, nil
}

func (routeRegistry) GetActive(context.Context, *recommendationv1.GetActiveRequest) (*recommendationv1.GetActiveResponse, error) {
	return &recommendationv1.GetActiveResponse{Model: named("GetActive", "")}, nil
}

func (routeRegistry) GetHistory(_ context.Context, r *recommendationv1.GetHistoryRequest) (*recommendationv1.GetHistoryResponse, error) {
	return &recommendationv1.GetHistoryResponse{Entries: []*recommendationv1.HistoryEntry{{Action: "GetHistory", Reason: string(rune('0' + r.GetLimit()))}}}, nil
}

func (routeRegistry) RegisterVersion(_ context.Context, r *recommendationv1.RegisterVersionRequest) (*recommendationv1.RegisterVersionResponse, error) {
	return &recommendationv1.RegisterVersionResponse{Model: named("RegisterVersion", string(r.GetOnnx()))}, nil
}

func (routeRegistry) ActivateVersion(_ context.Context, r *recommendationv1.ActivateVersionRequest) (*recommendationv1.ActivateVersionResponse, error) {
	return &recommendationv1.ActivateVersionResponse{Model: named("ActivateVersion", r.GetVersion()), PreviousVersion: r.GetActor()}, nil
}

func (routeRegistry) Rollback(_ context.Context, r *recommendationv1.RollbackRequest) (*recommendationv1.RollbackResponse, error) {
	return &recommendationv1.RollbackResponse{Model: named("Rollback", r.GetToVersion()), PreviousVersion: r.GetReason()}, nil
}

func (routeRegistry) DownloadVersion(_ context.Context, r *recommendationv1.DownloadVersionRequest) (*recommendationv1.DownloadVersionResponse, error) {
	return &recommendationv1.DownloadVersionResponse{Version: r.GetVersion(), ManifestJson: "DownloadVersion"}, nil
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRoutes checks every http.yaml route reaches its rpc, in particular
// that GET /v1/models/history and GET /v1/models/{version}:download are not
// taken for GET /v1/models/{version} (grpc-gateway does not prefer static
// segments; it depends on the declaration order in registry.proto).
func TestRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{registry: routeRegistry{}})
	tests := []struct {
		name, method, path, body string
		want                     []string // substrings of the 200 response
	}{
		{"ListVersions", "GET", "/v1/models", "", []string{`"manifestJson":"ListVersions"`}},
		{"GetVersion", "GET", "/v1/models/v1.3.3", "", []string{`"manifestJson":"GetVersion"`, `"version":"v1.3.3"`}},
		{"GetHistory", "GET", "/v1/models/history?limit=3", "", []string{`"action":"GetHistory"`, `"reason":"3"`}},
		{"GetActive", "GET", "/v1/models:active", "", []string{`"manifestJson":"GetActive"`}},
		{"DownloadVersion", "GET", "/v1/models/v1.3.3:download", "", []string{`"manifestJson":"DownloadVersion"`, `"version":"v1.3.3"`}},
		{"RegisterVersion", "POST", "/v1/models", `{"onnx":"b25ueA==","manifestJson":"{}"}`, []string{`"manifestJson":"RegisterVersion"`, `"version":"onnx"`}},
		{"ActivateVersion", "POST", "/v1/models/v1.3.3:activate", `{"reason":"canary ok","actor":"alice"}`, []string{`"manifestJson":"ActivateVersion"`, `"version":"v1.3.3"`, `"previousVersion":"alice"`}},
		{"Rollback", "POST", "/v1/models:rollback", `{"to_version":"v1.1.0","reason":"bad p99"}`, []string{`"manifestJson":"Rollback"`, `"version":"v1.1.0"`, `"previousVersion":"bad p99"`}},
		{"Predict", "POST", "/v1/predict", `{"instances":[{"features":{"values":[0,0,0,0,0,0,0,0,0,0,0,0]}}]}`, []string{`"modelVersion":"v1.1.0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := do(t, tt.method, h.rest.URL+tt.path, tt.body)
			if code != http.StatusOK {
				t.Fatalf("%s %s = %d %s; want 200", tt.method, tt.path, code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s = %s; want it to contain %s", tt.method, tt.path, body, w)
				}
			}
		})
	}

	t.Run("ErrNotFoundRoute", func(t *testing.T) {
		t.Parallel()
		if code, body := do(t, "GET", h.rest.URL+"/v2/nothing", ""); code != http.StatusNotFound {
			t.Errorf("GET /v2/nothing = %d %s; want 404", code, body)
		}
	})
}

// TestRegistryUnimplemented checks the registry routes answer 501 while no
// ModelRegistryService is registered, as in the server before the registry
// exists.
func TestRegistryUnimplemented(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	code, body := do(t, "GET", h.rest.URL+"/v1/models", "")
	var e restError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if code != http.StatusNotImplemented || e.Code != codes.Unimplemented {
		t.Errorf("GET /v1/models = %d %s; want 501 Unimplemented", code, body)
	}
}

func TestStatusError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string // exact message when non-empty
	}{
		{"InvalidInput", model.ErrInvalidInput, codes.InvalidArgument, ""},
		{"InvalidVersion", model.ErrInvalidVersion, codes.InvalidArgument, ""},
		{"InvalidModel", model.ErrInvalidModel, codes.InvalidArgument, "invalid model: the model bytes or manifest are malformed"},
		{"InvalidData", model.ErrInvalidData, codes.InvalidArgument, ""},
		{"VersionNotFound", model.ErrVersionNotFound, codes.NotFound, ""},
		{"VersionExists", model.ErrVersionExists, codes.AlreadyExists, ""},
		{"NoActiveVersion", model.ErrNoActiveVersion, codes.Unavailable, ""},
		{"ChecksumMismatch", model.ErrChecksumMismatch, codes.FailedPrecondition, "checksum mismatch: the model bytes do not match their manifest's sha256 and size"},
		{"SignatureMismatch", model.ErrSignatureMismatch, codes.FailedPrecondition, ""},
		{"GoldenMismatch", model.ErrGoldenMismatch, codes.FailedPrecondition, "golden rows mismatch: the model's answers to its golden rows are not the manifest's"},
		{"Canceled", context.Canceled, codes.Canceled, ""},
		{"DeadlineExceeded", context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{"StatusPassesThrough", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted, "slow down"},
		{"Other", errors.New("disk on fire"), codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrapped := tt.err
			if _, ok := status.FromError(tt.err); !ok {
				wrapped = errors.Join(errors.New("activate v1.3.3"), tt.err)
			}
			var logs syncBuffer
			err := transport.StatusError(context.Background(), slogTo(&logs), "/test/Method", wrapped)
			st := status.Convert(err)
			if st.Code() != tt.code || transport.Code(wrapped) != tt.code {
				t.Errorf("code = %v (Code %v); want %v", st.Code(), transport.Code(wrapped), tt.code)
			}
			want := tt.msg
			if want == "" {
				want = wrapped.Error()
			}
			if st.Message() != want {
				t.Errorf("message = %q; want %q", st.Message(), want)
			}
			// The full error is logged whenever the client reads less.
			withheld := st.Message() != wrapped.Error()
			if _, isStatus := status.FromError(tt.err); isStatus {
				withheld = false
			}
			if logged := strings.Contains(logs.String(), "activate v1.3.3"); logged != withheld {
				t.Errorf("cause logged = %v; want %v (log %q)", logged, withheld, logs.String())
			}
		})
	}
	if err := transport.StatusError(context.Background(), nil, "", nil); err != nil {
		t.Errorf("StatusError(nil) = %v; want nil", err)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
