package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/auth"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// ---- the secured wiring: the same parts and interceptor order as `serve` ----

// stackOptions choose what the stack enforces.
type stackOptions struct {
	tokens     transport.Tokens                        // nil: authentication off
	tls        *tls.Config                             // server TLS for both listeners; nil: plaintext
	limits     transport.Limits                        //
	wrapModels func(transport.Models) transport.Models // e.g. to hold Predict calls
}

// stack is a whole server over loopback: a real bbolt registry in
// t.TempDir(), ONNX Runtime sessions, the release controller started with
// the embedded default model (v1.1.0), a job manager whose jobs stay queued
// (its worker is not run, so no test trains), the three services behind the
// metrics, authentication and limit interceptors, and the real gateway
// connected in process and served over loopback TCP.
type stack struct {
	grpcAddr string
	restURL  string // http:// or https://
	store    *registry.Store
	models   *serving.Manager
	srv      *grpc.Server
	metrics  *transport.Metrics
	logs     *syncBuffer
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if err := serving.InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime: %v (set %s to libonnxruntime.so.1)", err, serving.LibraryEnv)
	}
	s := &stack{logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	started := time.Now()

	var err error
	if s.store, err = registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{}); err != nil {
		t.Fatal(err)
	}
	s.models = serving.NewManager(serving.Options{Session: serving.SessionOptions{IntraOpThreads: 1, InterOpThreads: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	ctrl := rollback.New(s.store, s.models, rollback.Options{Log: log})
	if err := ctrl.Start(ctx, defaultmodel.Load); err != nil {
		t.Fatalf("Controller.Start: %v", err)
	}
	jm, err := jobs.New(s.store, ctrl, jobs.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}

	s.metrics = transport.NewMetrics(transport.MetricSources{
		Active: func() []model.Version {
			actives, err := s.store.Actives()
			if err != nil {
				t.Errorf("Actives: %v", err)
			}
			return slices.Collect(maps.Values(actives))
		},
		LiveSessions: s.models.LiveSessions,
		Versions:     s.store.List,
		History:      s.store.HistoryPage,
		Since:        started,
		Jobs:         jm.List,
		Log:          log,
	})
	authn := transport.NewAuthenticator(opts.tokens)
	var serverOpts []grpc.ServerOption
	serverOpts = append(serverOpts, s.metrics.ServerOptions()...)
	serverOpts = append(serverOpts, authn.ServerOptions()...)
	serverOpts = append(serverOpts, opts.limits.ServerOptions()...)
	serverOpts = append(serverOpts, grpc.Creds(transport.ServerCredentials(opts.tls)))
	health := transport.NewHealth()
	s.srv = transport.NewGRPCServer(log, health, serverOpts...)
	var models transport.Models = transport.ModelsOf(s.models)
	if opts.wrapModels != nil {
		models = opts.wrapModels(models)
	}
	recommendationv1.RegisterRecommendationServiceServer(s.srv, transport.NewPredictServer(models, transport.PredictOptions{}, log))
	recommendationv1.RegisterModelRegistryServiceServer(s.srv, transport.NewRegistryServer(s.metrics.Releases(ctrl), log))
	recommendationv1.RegisterTrainingServiceServer(s.srv, transport.NewTrainingServer(jm, log))
	health.SetServing(true)

	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inproc := transport.NewInProcess()
	var wg sync.WaitGroup
	for _, l := range []net.Listener{grpcLis, inproc.Listener()} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.srv.Serve(l) }()
	}
	s.grpcAddr = grpcLis.Addr().String()

	gw, err := transport.NewGateway(ctx, transport.InProcessTarget, transport.GatewayOptions{
		Models: models, Log: log, DialOptions: inproc.DialOptions()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", authn.RequireHTTP(auth.Viewer, "/metrics", s.metrics.Handler()))
	mux.Handle("/", transport.WithBearerChallenge(gw))
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, TLSConfig: opts.tls, ErrorLog: nil}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if opts.tls != nil {
			_ = hs.ServeTLS(httpLis, "", "")
		} else {
			_ = hs.Serve(httpLis)
		}
	}()
	s.restURL = "http://" + httpLis.Addr().String()
	if opts.tls != nil {
		s.restURL = "https://" + httpLis.Addr().String()
	}

	t.Cleanup(func() {
		_ = hs.Close()
		s.srv.Stop()
		cancel()
		wg.Wait()
		if err := s.store.Check(); err != nil {
			t.Errorf("registry consistency: %v", err)
		}
		if err := s.store.Close(); err != nil {
			t.Error(err)
		}
		s.models.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

// dial connects to the stack's gRPC port; a nil cfg is plaintext.
func (s *stack) dial(t *testing.T, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// bearer returns a call context carrying token ("" for none).
func bearer(t *testing.T, token string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return ctx
}

// rest sends a request with the Authorization header authz ("" for none)
// and returns the status, headers and body.
func (s *stack) rest(t *testing.T, client *http.Client, method, path, authz, body string) (int, http.Header, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(method, s.restURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// predictBody is a one-row POST /v1/predict body.
const predictBody = `{"instances":[{"containerId":"c1","features":{"values":[0.3,0.45,0.5,0.55,0.6,0.62,0.2,0.5,0.1,0.5,0.5,0.4]}}]}`

// predictRequest is the same row over gRPC.
func predictRequest() *recommendationv1.PredictRequest {
	return &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{{
		ContainerId: "c1",
		Input: &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{
			Values: []float32{0.3, 0.45, 0.5, 0.55, 0.6, 0.62, 0.2, 0.5, 0.1, 0.5, 0.5, 0.4}}},
	}}}
}
