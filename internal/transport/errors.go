package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"recommendation-api/internal/model"
)

// codeTable maps each domain sentinel to the one gRPC code it becomes; the
// gateway turns codes into HTTP statuses with runtime.HTTPStatusFromCode
// (InvalidArgument and FailedPrecondition 400, NotFound 404, AlreadyExists
// 409, ResourceExhausted 429, Unavailable 503, Canceled 499, DeadlineExceeded
// 504, Internal 500).
//
// What the client reads is decided apart from the internal error chain,
// which goes to the log:
//   - an error that carries a public message (model.Publicer, found with
//     errors.As, the outermost one) is answered with that message;
//   - otherwise an error of a class with a hint (the model-data classes,
//     whose messages can hold values computed from model bytes or stored
//     data, or a library's internals) is answered with the class and the
//     hint only: "checksum mismatch: the model bytes do not match ...";
//   - otherwise the class is the caller's to fix or wait out and its
//     producers put only the request's own values in the message (the
//     version asked for, what is accepted), so err's text is returned as is.
//
// ErrChecksumMismatch is FailedPrecondition, not DataLoss: the check exists
// to refuse bytes that do not match their manifest (a bad upload, or stored
// bytes that went bad) before they serve, the previous version keeps serving,
// and the operator's remedy is the same as for a signature or golden-row
// mismatch — register a good copy. DataLoss would surface as HTTP 500,
// indistinguishable from a server bug.
var codeTable = []struct {
	err    error
	code   codes.Code
	reason string // ErrorInfo reason: stable, for clients that branch
	http   int    // HTTP status when not the gateway's mapping of code; 0 otherwise
	hint   string // non-empty: without a public message, say only the class and this
}{
	{model.ErrInvalidInput, codes.InvalidArgument, "INVALID_INPUT", 0, ""},
	{model.ErrInvalidVersion, codes.InvalidArgument, "INVALID_VERSION", 0, ""},
	{model.ErrInvalidModel, codes.InvalidArgument, "INVALID_MODEL", 0, "the model bytes or manifest are malformed"},
	{model.ErrInvalidData, codes.InvalidArgument, "INVALID_DATA", 0, ""},
	{model.ErrVersionNotFound, codes.NotFound, "VERSION_NOT_FOUND", 0, ""},
	{model.ErrVersionExists, codes.AlreadyExists, "VERSION_EXISTS", 0, ""},
	{model.ErrNoActiveVersion, codes.Unavailable, "NO_ACTIVE_VERSION", 0, ""},
	{model.ErrChecksumMismatch, codes.FailedPrecondition, "CHECKSUM_MISMATCH", 0, "the model bytes do not match their manifest's sha256 and size"},
	{model.ErrSignatureMismatch, codes.FailedPrecondition, "SIGNATURE_MISMATCH", 0, ""},
	{model.ErrGoldenMismatch, codes.FailedPrecondition, "GOLDEN_MISMATCH", 0, "the model's answers to its golden rows are not the manifest's"},
	// A compare-and-swap that lost, and a registration retention would
	// delete at once, conflict with the registry's current state: 409.
	{model.ErrActiveMismatch, codes.FailedPrecondition, "ACTIVE_MISMATCH", http.StatusConflict, ""},
	{model.ErrVersionTooOld, codes.FailedPrecondition, "VERSION_TOO_OLD", http.StatusConflict, ""},
	// A full disk is not a client's rate limit (429): 507 Insufficient Storage.
	{model.ErrStorageFull, codes.ResourceExhausted, "STORAGE_FULL", http.StatusInsufficientStorage, ""},
	// A read-only data directory stays so until an operator remounts it:
	// retrying the call does not help (FailedPrecondition, not Unavailable,
	// which says the server cannot be reached and is worth retrying — the
	// server is up and serves Predict). Over REST it is the server that
	// cannot store, not a bad request (400): 507, like a full disk.
	{model.ErrStorageReadOnly, codes.FailedPrecondition, "STORAGE_READ_ONLY", http.StatusInsufficientStorage, ""},
	{model.ErrQueueFull, codes.ResourceExhausted, "QUEUE_FULL", 0, ""},
	{model.ErrJobNotFound, codes.NotFound, "JOB_NOT_FOUND", 0, ""},
	{model.ErrShuttingDown, codes.Unavailable, "SHUTTING_DOWN", 0, ""},
	{model.ErrConcurrentChange, codes.Aborted, "CONCURRENT_CHANGE", http.StatusConflict, ""},
	{context.Canceled, codes.Canceled, "", 0, ""},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "", 0, ""},
}

// ErrorDomain is the domain of the ErrorInfo detail attached to errors from
// the table; its metadata key "http_status" carries the HTTP status the
// gateway answers when it is not grpc-gateway's mapping of the code.
const ErrorDomain = "recommendation-api"

// tableStatus builds the status of a table error: its code, the client message,
// and an ErrorInfo detail with the reason (and HTTP status, when set).
func tableStatus(code codes.Code, reason string, httpStatus int, msg string) error {
	st := status.New(code, msg)
	if reason == "" {
		return st.Err()
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
	if httpStatus != 0 {
		info.Metadata = map[string]string{"http_status": strconv.Itoa(httpStatus)}
	}
	if withInfo, derr := st.WithDetails(info); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// httpStatusOf returns the HTTP status an ErrorInfo detail of st asks for,
// and 0 when none does.
func httpStatusOf(st *status.Status) int {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			if n, err := strconv.Atoi(info.GetMetadata()["http_status"]); err == nil && n >= 400 && n < 600 {
				return n
			}
		}
	}
	return 0
}

// internalMessage is all a client learns about an unexpected error.
const internalMessage = "internal error"

// Code returns the gRPC code err maps to: the code of the first sentinel in
// the table that err wraps, the code of a gRPC status error, or
// codes.Internal for anything else (codes.OK for nil).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// StatusError converts a handler's error into the gRPC status error to
// return. A domain sentinel becomes its table code, with the client message
// the table's comment describes; when that message is not err's own text,
// the full error is logged on log (slog.Default() when nil) at Warn with
// method, code and the message sent. An existing status error passes
// through. Anything else becomes Internal with the message "internal
// error", the real error logged at Error. It returns nil for nil.
func StatusError(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	for _, e := range codeTable {
		if !errors.Is(err, e.err) {
			continue
		}
		msg, ok := model.PublicMessage(err)
		switch {
		case ok:
		case e.hint != "":
			msg = e.err.Error() + ": " + e.hint
		default:
			msg = err.Error()
		}
		if msg != err.Error() {
			log.WarnContext(ctx, "request refused", "method", method, "code", e.code.String(), "client_message", msg, "err", err)
		}
		return tableStatus(e.code, e.reason, e.http, msg)
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, internalMessage)
}

// invalid returns an InvalidArgument status with msg.
func invalid(msg string) error { return status.Error(codes.InvalidArgument, msg) }
