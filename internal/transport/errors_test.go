package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"recommendation-api/internal/model"
	"recommendation-api/internal/transport"
)

// releaseStep is a release-flow step error that says which step failed in
// its Error text only, as rollback.StepError does.
type releaseStep struct {
	step string
	err  error
}

func (e *releaseStep) Error() string {
	return fmt.Sprintf("release v1.9.0: %s failed: %v", e.step, e.err)
}
func (e *releaseStep) Unwrap() error { return e.err }

// publicStep is the same step error adopting model.Publicer.
type publicStep struct{ releaseStep }

func (e *publicStep) PublicMessage() string {
	return fmt.Sprintf("release v1.9.0: %s failed: %s", e.step, model.PublicOr(e.err, "checksum mismatch"))
}

// TestStatusError_PublicMessages: the client reads the public message of
// the error chain, or for the model-data classes only the class, never the
// values computed from the bytes in the chain; the log has the full chain.
func TestStatusError_PublicMessages(t *testing.T) {
	t.Parallel()
	const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // computed from stored bytes
	stored := fmt.Errorf("registry: load v1.9.0: %w: model bytes have sha256 %s", model.ErrChecksumMismatch, sha)
	golden := model.Public(fmt.Errorf("%w: row 2: got 0.734, want 0.5", model.ErrGoldenMismatch), "golden rows mismatch: row 2 output cpu_limit")
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"UnmarkedStepOverStoredData", &releaseStep{"read", stored}, codes.FailedPrecondition,
			"checksum mismatch: the model bytes do not match their manifest's sha256 and size"},
		{"PublicStepOverStoredData", &publicStep{releaseStep{"read", stored}}, codes.FailedPrecondition,
			"release v1.9.0: read failed: checksum mismatch"},
		{"UnmarkedStepOverPublic", &releaseStep{"load", golden}, codes.FailedPrecondition,
			"golden rows mismatch: row 2 output cpu_limit"},
		{"PublicStepOverPublic", &publicStep{releaseStep{"load", golden}}, codes.FailedPrecondition,
			"release v1.9.0: load failed: golden rows mismatch: row 2 output cpu_limit"},
		{"PublicWithoutClass", model.Public(errors.New("bbolt: page 7 corrupt"), "the registry could not be read"), codes.Internal,
			"internal error"},
		{"RequestValuesPassThrough", fmt.Errorf("release v9.9.9: read failed: %w: v9.9.9", model.ErrVersionNotFound), codes.NotFound,
			"release v9.9.9: read failed: version not found: v9.9.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			st := status.Convert(transport.StatusError(context.Background(), slogTo(&logs), "/test/Method", tt.err))
			if st.Code() != tt.code || st.Message() != tt.msg {
				t.Errorf("status = %v %q; want %v %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			if st.Message() != tt.err.Error() && !strings.Contains(logs.String(), tt.err.Error()[:20]) {
				t.Errorf("log %q lacks the withheld error %q", logs.String(), tt.err)
			}
			for _, computed := range []string{sha, "0.734", "page 7"} {
				if strings.Contains(st.Message(), computed) {
					t.Errorf("message %q holds %q", st.Message(), computed)
				}
			}
		})
	}
}
