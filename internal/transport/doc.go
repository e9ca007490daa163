// Package transport is the service's network edge: the gRPC handlers, the
// grpc-gateway REST mapping, health and reflection, and the one table that
// turns domain errors into gRPC codes (and, through the gateway, HTTP
// statuses). It is the only package that imports grpc, grpc/status,
// grpc/codes and the gateway runtime; the model life cycle behind it is
// reached through the small Models / Lease interfaces, which
// internal/serving implements.
//
// Pieces:
//
//   - PredictServer implements recommendation.v1.RecommendationService. It
//     validates the whole request before it leases a model version, so bad
//     input never touches a session, and every InvalidArgument message names
//     the field with its index and says what is accepted, e.g.
//     "instances[3].features.values[7]: NaN; want a finite number in [0,1]".
//     Raw metrics are normalized with the leased version's own manifest, and
//     outputs are converted to millicores and bytes with it too, so a
//     response is consistent with the version it names.
//   - RegistryServer implements recommendation.v1.ModelRegistryService over
//     Releases (rollback.Controller): list, get, upload, activate, roll
//     back, history, download. TrainingServer implements
//     recommendation.v1.TrainingService over jobs.Manager, with WatchJob as
//     a server stream (and newline-delimited JSON over REST).
//   - NewGRPCServer builds a *grpc.Server with server reflection (for
//     grpcurl), the standard grpc.health.v1 service (see Health: NOT_SERVING
//     until a model is loaded) and interceptors that log calls and turn a
//     handler panic into codes.Internal.
//   - NewGateway builds the REST handler: grpc-gateway routes from
//     api/proto/recommendation/v1/http.yaml, connected to the gRPC server
//     in process, plus /healthz, /readyz and /openapi.json.
//
// Security and operation: Authenticator checks bearer tokens
// (internal/auth) against MethodRoles, the one access table, on every gRPC
// call; REST calls are the same calls through the gateway, which reaches
// the server in process (InProcess), so one check covers both, and Actor
// gives the token name the registry and training servers record. Limits
// bound unary calls in time and Predict calls in number. CertFile,
// ServerTLSConfig and ServerCredentials give both ports TLS (optionally
// mutual) with certificates reloaded when their files change. Metrics are
// the Prometheus series, on a registry of their own.
//
// What a client reads about an error is not the error's text: StatusError
// answers with the public message the error chain carries (model.Public,
// model.Publicer), or for the model-data classes (invalid model, checksum,
// golden rows) without one only the class, and logs the full chain. So a
// refusal never echoes values computed from model bytes or stored data, nor
// ONNX Runtime's own messages.
//
// Caveats: the REST JSON decoder rejects unknown fields (a misspelt field is
// a 400 naming it, not a silently empty instance); JSON field names are
// lowerCamelCase on output (containerId) and either spelling is accepted on
// input; NaN and infinities are the JSON strings "NaN", "Infinity" and
// "-Infinity" (protojson), which Predict rejects. FailedPrecondition is HTTP
// 400, not 412, as grpc-gateway maps it.
package transport
