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
// Errors in this table are the caller's to fix or wait out, so their message
// (which names the value and what is accepted) is returned as is.
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
}{
	{model.ErrInvalidInput, codes.InvalidArgument},
	{model.ErrInvalidVersion, codes.InvalidArgument},
	{model.ErrInvalidModel, codes.InvalidArgument},
	{model.ErrInvalidData, codes.InvalidArgument},
	{model.ErrVersionNotFound, codes.NotFound},
	{model.ErrVersionExists, codes.AlreadyExists},
	{model.ErrNoActiveVersion, codes.Unavailable},
	{model.ErrChecksumMismatch, codes.FailedPrecondition},
	{model.ErrSignatureMismatch, codes.FailedPrecondition},
	{model.ErrGoldenMismatch, codes.FailedPrecondition},
	{model.ErrQueueFull, codes.ResourceExhausted},
	{model.ErrJobNotFound, codes.NotFound},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
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
// return: a domain sentinel becomes its table code with err's message, an
// existing status error passes through, and anything else becomes Internal
// with the message "internal error" while the real error is logged on log
// (slog.Default() when nil) with method. It returns nil for nil.
func StatusError(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, internalMessage)
}

// invalid returns an InvalidArgument status with msg.
func invalid(msg string) error { return status.Error(codes.InvalidArgument, msg) }
