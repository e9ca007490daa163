package transport

import (
	"context"
	"errors"
	"log/slog"

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
	err  error
	code codes.Code
	hint string // non-empty: without a public message, say only the class and this
}{
	{model.ErrInvalidInput, codes.InvalidArgument, ""},
	{model.ErrInvalidVersion, codes.InvalidArgument, ""},
	{model.ErrInvalidModel, codes.InvalidArgument, "the model bytes or manifest are malformed"},
	{model.ErrInvalidData, codes.InvalidArgument, ""},
	{model.ErrVersionNotFound, codes.NotFound, ""},
	{model.ErrVersionExists, codes.AlreadyExists, ""},
	{model.ErrNoActiveVersion, codes.Unavailable, ""},
	{model.ErrChecksumMismatch, codes.FailedPrecondition, "the model bytes do not match their manifest's sha256 and size"},
	{model.ErrSignatureMismatch, codes.FailedPrecondition, ""},
	{model.ErrGoldenMismatch, codes.FailedPrecondition, "the model's answers to its golden rows are not the manifest's"},
	{model.ErrQueueFull, codes.ResourceExhausted, ""},
	{model.ErrJobNotFound, codes.NotFound, ""},
	{context.Canceled, codes.Canceled, ""},
	{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
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
		return status.Error(e.code, msg)
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, internalMessage)
}

// invalid returns an InvalidArgument status with msg.
func invalid(msg string) error { return status.Error(codes.InvalidArgument, msg) }
