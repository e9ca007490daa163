package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"recommendation-api/api/openapi"
	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// Health-checked service names: one per application service.
const (
	PredictService  = "recommendation.v1.RecommendationService"
	RegistryService = "recommendation.v1.ModelRegistryService"
	TrainingService = "recommendation.v1.TrainingService"
)

// HealthServices are the names Health reports besides "" (the whole server).
var HealthServices = []string{PredictService, RegistryService, TrainingService}

// Health is the server's grpc.health.v1 status. The whole server ("") and
// each of HealthServices start NOT_SERVING and stay so until
// SetServing(true), which the caller makes once a model version is loaded.
type Health struct {
	srv *health.Server
}

// NewHealth returns a Health reporting NOT_SERVING.
func NewHealth() *Health {
	h := &Health{srv: health.NewServer()}
	h.SetServing(false)
	return h
}

// SetServing sets the status of the whole server and of HealthServices.
func (h *Health) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.srv.SetServingStatus("", st)
	for _, name := range HealthServices {
		h.srv.SetServingStatus(name, st)
	}
}

// MajorService is the health service name of one major's predictions,
// e.g. "recommendation.v1.RecommendationService/v1". A replica sharing a
// registry reports it NOT_SERVING while it cannot serve that major's
// active version (it then answers with the version it serves), so a
// probe can tell a replica that fell behind; "" and PredictService stay
// SERVING while any version serves.
func MajorService(major int) string { return fmt.Sprintf("%s/v%d", PredictService, major) }

// SetMajorServing sets the status of MajorService(major).
func (h *Health) SetMajorServing(major int, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.srv.SetServingStatus(MajorService(major), st)
}

// Shutdown reports NOT_SERVING for everything and ignores later
// SetServing calls; call it when graceful shutdown begins so load balancers
// drain the server.
func (h *Health) Shutdown() { h.srv.Shutdown() }

// NewGRPCServer returns a gRPC server with server reflection (answering
// from descriptors that keep the .proto comments, for grpcurl describe), the
// grpc.health.v1 service backed by h, a codec under which a request that
// cannot be decoded (e.g. invalid UTF-8 in a string) is INVALID_ARGUMENT
// rather than grpc's INTERNAL, and interceptors that log each call on
// log (Debug when it succeeds, Info for client errors, Error for server
// errors) and turn a handler panic into codes.Internal with the panic and
// stack logged. opts are passed to grpc.NewServer after those interceptors.
// The caller registers the application services, e.g.
//
//	recommendationv1.RegisterRecommendationServiceServer(s, transport.NewPredictServer(models, opts, log))
//
// A nil log discards logs.
func NewGRPCServer(log *slog.Logger, h *Health, opts ...grpc.ServerOption) *grpc.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	all := append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.ChainUnaryInterceptor(unaryInterceptor(log)),
		grpc.ChainStreamInterceptor(streamInterceptor(log)),
	}, opts...)
	s := grpc.NewServer(all...)
	healthpb.RegisterHealthServer(s, h.srv)
	if err := registerReflection(s); err != nil {
		log.Error("server reflection without proto comments", "err", err)
	}
	return s
}

// callNote is what the logging interceptor, which runs first, learns of a
// call from the interceptors after it: the name of the token that called,
// once the Authenticator has read it (also when the token's role is too
// low), so that the call's log line says who was served or refused. One
// goroutine writes it before the handler runs and reads it after. The
// note is itself the call's context (one allocation per call, not a
// context.WithValue and a note): Value(callNoteKey{}) returns it, every
// other key is its parent's.
type callNote struct {
	context.Context
	actor string
}

type callNoteKey struct{}

func (n *callNote) Value(key any) any {
	if key == (callNoteKey{}) {
		return n
	}
	return n.Context.Value(key)
}

// noteActor records name as the caller of the call ctx belongs to.
func noteActor(ctx context.Context, name string) {
	if n, ok := ctx.Value(callNoteKey{}).(*callNote); ok {
		n.actor = name
	}
}

func unaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		note := &callNote{Context: ctx}
		ctx = note
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "panic in gRPC handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, internalMessage)
			}
			logCall(ctx, log, info.FullMethod, note.actor, start, err)
		}()
		if err := decodeFailure(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func streamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		note := &callNote{Context: ss.Context()}
		var ctx context.Context = note
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "panic in gRPC stream handler", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, internalMessage)
			}
			logCall(ctx, log, info.FullMethod, note.actor, start, err)
		}()
		return handler(srv, checkedStream{&contextStream{ServerStream: ss, ctx: ctx}})
	}
}

// checkedStream refuses received messages requestCodec could not decode.
type checkedStream struct{ grpc.ServerStream }

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return decodeFailure(m)
}

// logCall logs a finished call: method, code, duration, the caller's token
// name when one was presented (actor) and, for a server error, its message.
func logCall(ctx context.Context, log *slog.Logger, method, actor string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK:
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []any{"method", method, "code", code.String(), "duration", time.Since(start)}
	if actor != "" {
		attrs = append(attrs, "actor", actor)
	}
	// A client error's message may quote the values it refused (a feature
	// out of range), which stay out of the log; a server error's is the
	// operator's to read.
	if err != nil && level == slog.LevelError {
		attrs = append(attrs, "message", status.Convert(err).Message())
	}
	log.Log(ctx, level, "grpc call", attrs...)
}

// GatewayOptions configure NewGateway.
type GatewayOptions struct {
	// Models answers /readyz. Required.
	Models Models
	// Log receives gateway errors; nil discards them.
	Log *slog.Logger
	// MuxOptions are applied to the grpc-gateway ServeMux after the defaults.
	MuxOptions []runtime.ServeMuxOption
	// MaxBodyBytes caps REST request bodies; 0 means DefaultMaxBodyBytes.
	// A larger body is refused with 413 naming the limit.
	MaxBodyBytes int64
	// DialOptions are applied when dialing grpcAddr, after the default of
	// no TLS; InProcess.DialOptions connects in memory.
	DialOptions []grpc.DialOption
}

// DefaultMaxBodyBytes matches gRPC's default 4 MiB message limit: a full
// 1000-instance Predict batch in JSON is about 0.5 MiB, a model upload
// (< 100 KB of ONNX, base64) with its manifest well under 1 MiB.
const DefaultMaxBodyBytes = 4 << 20

// NewGateway returns the REST handler: the routes of
// api/proto/recommendation/v1/http.yaml translated by grpc-gateway into calls
// to the gRPC server at grpcAddr (dialed without TLS unless
// opts.DialOptions say otherwise, so a loopback or InProcessTarget address),
// plus
//
//	GET /healthz       200 "ok" while the process runs
//	GET /readyz        200 when opts.Models is serving a version, else 503, both JSON
//	GET /openapi.json  the OpenAPI (Swagger 2.0) description of the routes,
//	                   these three included (api/openapi's overlay)
//
// Errors are JSON {"code", "message", "details"} with the HTTP status
// grpc-gateway maps from the gRPC code (400, 404, 409, 501, 503, …), except
// that a body above opts.MaxBodyBytes is 413 (code RESOURCE_EXHAUSTED, the
// limit in the message) and a known path with another method is 405 with an
// Allow header. The connection to grpcAddr is closed when ctx ends.
func NewGateway(ctx context.Context, grpcAddr string, opts GatewayOptions) (http.Handler, error) {
	if opts.Models == nil {
		return nil, fmt.Errorf("transport: NewGateway needs Models")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts.DialOptions...)
	conn, err := grpc.NewClient(grpcAddr, dial...)
	if err != nil {
		return nil, fmt.Errorf("transport: gateway client for %s: %w", grpcAddr, err)
	}
	go func() {
		<-ctx.Done()
		if err := conn.Close(); err != nil {
			log.Warn("close gateway connection", "addr", grpcAddr, "err", err)
		}
	}()

	muxOpts := append([]runtime.ServeMuxOption{
		runtime.WithErrorHandler(gatewayErrorHandler),
		// Strict JSON: a misspelt field is a 400 naming it rather than a
		// silently missing value.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
		// A form POST to a GET route is not run as the GET.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithRoutingErrorHandler(routingError(newRouteProbe())),
	}, opts.MuxOptions...)
	gw := runtime.NewServeMux(muxOpts...)
	if err := recommendationv1.RegisterRecommendationServiceHandlerClient(ctx, gw, recommendationv1.NewRecommendationServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("transport: register prediction routes: %w", err)
	}
	if err := recommendationv1.RegisterModelRegistryServiceHandlerClient(ctx, gw, recommendationv1.NewModelRegistryServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("transport: register registry routes: %w", err)
	}
	if err := recommendationv1.RegisterTrainingServiceHandlerClient(ctx, gw, recommendationv1.NewTrainingServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("transport: register training routes: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", readyz(opts.Models))
	doc, err := mergeOpenAPI(openapi.JSON, openapi.Overlay)
	if err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	limit := opts.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			bodyTooLarge(w, limit)
			return
		}
		// Read here rather than in the gateway, which would report the
		// limit as a 400 decoding error.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				bodyTooLarge(w, limit)
			} else {
				writeError(w, http.StatusBadRequest, codes.InvalidArgument, "reading the request body: "+err.Error())
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		gw.ServeHTTP(w, r)
	}))
	return mux, nil
}

// gatewayErrorHandler is grpc-gateway's default error handler, except that
// the HTTP status named by the error's ErrorInfo detail (see codeTable)
// replaces the one the gateway derives from the gRPC code.
func gatewayErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		if code := httpStatusOf(st); code != 0 {
			w = statusOverride{ResponseWriter: w, code: code}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// statusOverride writes code instead of the status the handler chose.
type statusOverride struct {
	http.ResponseWriter
	code int
}

func (s statusOverride) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }

// restRoutes are the gateway's routes, as api/proto/recommendation/v1/http.yaml
// maps them (a test keeps the two equal). They answer which methods a path
// allows.
var restRoutes = []struct{ method, pattern string }{
	{"POST", "/v1/predict"},
	{"GET", "/v1/models"},
	{"GET", "/v1/models/{version}"},
	{"GET", "/v1/models:active"},
	{"GET", "/v1/models/history"},
	{"POST", "/v1/models"},
	{"POST", "/v1/models/{version}:activate"},
	{"POST", "/v1/models:rollback"},
	{"GET", "/v1/models/{version}:download"},
	{"GET", "/v1/models:download"},
	{"POST", "/v1/training-jobs"},
	{"GET", "/v1/training-jobs"},
	{"GET", "/v1/training-jobs/{id}"},
	{"POST", "/v1/training-jobs/{id}:cancel"},
	{"GET", "/v1/training-jobs/{id}:watch"},
}

// probeMatched is the status the probe's handlers write.
const probeMatched = 299

// routeProbe matches a request against restRoutes with grpc-gateway's own
// pattern matching, without running anything.
type routeProbe struct {
	mux     *runtime.ServeMux
	methods []string
}

func newRouteProbe() *routeProbe {
	p := &routeProbe{mux: runtime.NewServeMux(runtime.WithDisablePathLengthFallback())}
	for _, r := range restRoutes {
		if err := p.mux.HandlePath(r.method, r.pattern, func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
			w.WriteHeader(probeMatched)
		}); err != nil {
			panic(fmt.Sprintf("transport: route %s %s: %v", r.method, r.pattern, err))
		}
		if !slices.Contains(p.methods, r.method) {
			p.methods = append(p.methods, r.method)
		}
	}
	slices.Sort(p.methods)
	return p
}

// allowed returns the methods whose routes match r's path.
func (p *routeProbe) allowed(r *http.Request) []string {
	var out []string
	for _, m := range p.methods {
		probe := r.Clone(r.Context())
		probe.Method, probe.Body = m, http.NoBody
		rec := &statusRecorder{header: http.Header{}}
		p.mux.ServeHTTP(rec, probe)
		if rec.status == probeMatched {
			out = append(out, m)
		}
	}
	return out
}

// statusRecorder keeps the status a handler writes and discards the rest.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

// routingError answers a known path with the wrong method 405 with Allow
// (grpc-gateway would say 501), and leaves the rest to grpc-gateway.
func routingError(p *routeProbe) runtime.RoutingErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
		if code == http.StatusMethodNotAllowed {
			if allow := p.allowed(r); len(allow) > 0 {
				w.Header().Set("Allow", strings.Join(allow, ", "))
				writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented,
					fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
				return
			}
		}
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
	}
}

func bodyTooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
		fmt.Sprintf("request body too large: the limit is %d bytes", limit))
}

// writeError writes an error in grpc-gateway's JSON shape.
func writeError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
		Details []any      `json:"details"`
	}{code, msg, []any{}})
}

// readiness is the /readyz body.
type readiness struct {
	Ready        bool   `json:"ready"`
	ModelVersion string `json:"model_version,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

func readyz(models Models) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		r := readiness{Ready: models.Ready()}
		if r.Ready {
			if l, err := models.Acquire(""); err == nil {
				r.ModelVersion = l.Manifest().Version.String()
				l.Release()
			}
		}
		code := http.StatusOK
		if !r.Ready {
			code = http.StatusServiceUnavailable
			r.Reason = "no model version is being served yet: activate one (POST /v1/models/{version}:activate) or train one"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(r)
	}
}
