package transport

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/auth"
)

// MethodRoles is the access table: the least role each gRPC method needs,
// for every method the server registers. auth.Public methods need no token.
// A registered method missing here is refused to everyone (and
// CheckAccessTable reports it), so a new RPC cannot be left open by mistake.
// REST routes are the same methods through the gateway, so the table covers
// them too.
var MethodRoles = map[string]auth.Role{
	recommendationv1.RecommendationService_Predict_FullMethodName: auth.Agent,

	recommendationv1.ModelRegistryService_ListVersions_FullMethodName:    auth.Viewer,
	recommendationv1.ModelRegistryService_GetVersion_FullMethodName:      auth.Viewer,
	recommendationv1.ModelRegistryService_GetActive_FullMethodName:       auth.Viewer,
	recommendationv1.ModelRegistryService_GetHistory_FullMethodName:      auth.Viewer,
	recommendationv1.ModelRegistryService_DownloadVersion_FullMethodName: auth.Agent,
	recommendationv1.ModelRegistryService_RegisterVersion_FullMethodName: auth.Operator,
	recommendationv1.ModelRegistryService_ActivateVersion_FullMethodName: auth.Operator,
	recommendationv1.ModelRegistryService_Rollback_FullMethodName:        auth.Operator,

	recommendationv1.TrainingService_GetJob_FullMethodName:        auth.Viewer,
	recommendationv1.TrainingService_ListJobs_FullMethodName:      auth.Viewer,
	recommendationv1.TrainingService_WatchJob_FullMethodName:      auth.Viewer,
	recommendationv1.TrainingService_StartTraining_FullMethodName: auth.Operator,
	recommendationv1.TrainingService_CancelJob_FullMethodName:     auth.Operator,

	healthpb.Health_Check_FullMethodName:                                   auth.Public,
	healthpb.Health_List_FullMethodName:                                    auth.Public,
	healthpb.Health_Watch_FullMethodName:                                   auth.Public,
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      auth.Public,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: auth.Public,
}

// CheckAccessTable returns an error naming every method registered on s
// that MethodRoles lacks; call it once all services are registered.
func CheckAccessTable(s *grpc.Server) error {
	var missing []string
	for svc, info := range s.GetServiceInfo() {
		for _, m := range info.Methods {
			name := "/" + svc + "/" + m.Name
			if _, ok := MethodRoles[name]; !ok {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("transport: methods without an entry in the access table (MethodRoles): %s", strings.Join(missing, ", "))
	}
	return nil
}

// Tokens looks bearer tokens up; *auth.File and *auth.Set implement it.
type Tokens interface {
	Lookup(token string) (auth.Principal, bool)
}

// Authenticator checks each call's bearer token against Tokens and the
// method's role in MethodRoles, and puts the caller's auth.Principal in the
// call's context (see Actor). With nil Tokens authentication is off: every
// call runs as auth.Anonymous, an operator.
//
// Refusals: no token, a malformed Authorization value or an unknown token is
// Unauthenticated (HTTP 401 with WWW-Authenticate: Bearer through the
// gateway); a valid token whose role is too low is PermissionDenied (403).
// Messages never contain a token, and neither do the logs.
type Authenticator struct {
	tokens Tokens
}

// NewAuthenticator returns an Authenticator over tokens; nil turns
// authentication off.
func NewAuthenticator(tokens Tokens) *Authenticator { return &Authenticator{tokens: tokens} }

// ServerOptions returns the unary and stream interceptors, for
// NewGRPCServer's opts.
func (a *Authenticator) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			ctx, err := a.authorize(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, err := a.authorize(ss.Context(), info.FullMethod)
			if err != nil {
				return err
			}
			return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
		}),
	}
}

// contextStream is a ServerStream with another context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// authorize returns ctx with the caller's principal, or the refusal.
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	need, ok := MethodRoles[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "%s has no entry in the server's access table; it is refused to everyone", method)
	}
	if need == auth.Public {
		return ctx, nil
	}
	if a.tokens == nil {
		noteActor(ctx, auth.Anonymous.Name)
		return auth.WithPrincipal(ctx, auth.Anonymous), nil
	}
	var values []string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		values = md.Get("authorization")
	}
	p, err := a.check(values, need, method)
	if p.Name != "" {
		noteActor(ctx, p.Name) // refused for its role, too: the log says who tried
	}
	if err != nil {
		return nil, err
	}
	return auth.WithPrincipal(ctx, p), nil
}

// check authenticates the Authorization values and checks the role. A
// known token whose role is too low gives its principal with the
// PermissionDenied error.
func (a *Authenticator) check(values []string, need auth.Role, what string) (auth.Principal, error) {
	if len(values) == 0 {
		return auth.Principal{}, status.Error(codes.Unauthenticated,
			`missing bearer token: send the gRPC metadata "authorization: Bearer <token>" or the HTTP header "Authorization: Bearer <token>"`)
	}
	if len(values) > 1 {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "more than one authorization value; send one bearer token")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, `authorization: want "Bearer <token>"`)
	}
	p, ok := a.tokens.Lookup(token)
	if !ok {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	if !p.Role.Allows(need) {
		return p, status.Errorf(codes.PermissionDenied, "%s needs role %s or higher; the token of %q has role %s", what, need, p.Name, p.Role)
	}
	return p, nil
}

// RequireHTTP serves next only to callers whose Authorization header holds a
// token with role need or higher (any caller when authentication is off),
// answering 401 with WWW-Authenticate: Bearer or 403 otherwise, as JSON
// {"code", "message"} like the gateway's errors. It guards plain HTTP
// handlers such as /metrics; gateway routes are checked by the interceptors.
func (a *Authenticator) RequireHTTP(need auth.Role, what string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.tokens == nil {
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Anonymous)))
			return
		}
		p, err := a.check(r.Header.Values("Authorization"), need, what)
		if err != nil {
			st := status.Convert(err)
			code := http.StatusForbidden
			if st.Code() == codes.Unauthenticated {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", bearerChallenge)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", st.Code(), st.Message())
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

const bearerChallenge = `Bearer realm="recommendation-api"`

// WithBearerChallenge wraps a REST handler (the gateway) so that every 401
// answer carries WWW-Authenticate: Bearer (RFC 6750), streams included; the
// gateway alone would put the error message there.
func WithBearerChallenge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

type challengeWriter struct {
	http.ResponseWriter
}

func (c *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", bearerChallenge)
	}
	c.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming (WatchJob) working through the wrapper.
func (c *challengeWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (c *challengeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Actor returns the name of the caller of a checked call: its token's name,
// or "anonymous" when authentication is off or ctx carries no principal.
func Actor(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Name
	}
	return auth.Anonymous.Name
}

// recordedActor is the actor recorded for a change: the token's name for an
// authenticated caller, whose request actor field may be empty or that same
// name and is otherwise refused with PermissionDenied (a request cannot claim
// to be someone else). Without authentication (a loopback-only development
// server) the request's actor is recorded, or "anonymous" when it is empty.
func recordedActor(ctx context.Context, requested string) (string, error) {
	if p, ok := auth.FromContext(ctx); ok && p.Authenticated {
		if requested != "" && requested != p.Name {
			return "", status.Errorf(codes.PermissionDenied,
				"actor: %q is not the caller; the token is %q's (leave actor empty: the caller's token name is recorded)", requested, p.Name)
		}
		return p.Name, nil
	}
	if requested != "" {
		return requested, nil
	}
	return auth.Anonymous.Name, nil
}
