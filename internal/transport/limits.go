package transport

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// Limits bound what calls may take. Zero fields are no limit.
type Limits struct {
	// CallTimeout is the longest a unary call may run: its context gets
	// this deadline unless the client sent an earlier one. A call past it
	// ends with DeadlineExceeded (HTTP 504). Streams (WatchJob, health
	// Watch, reflection) are not bounded: a watch lasts as long as its job.
	CallTimeout time.Duration
	// MaxInflightPredicts caps Predict calls running at once. One more is
	// refused at once, not queued, with ResourceExhausted (HTTP 429), so
	// a saturated server sheds load instead of growing a queue of calls
	// that will time out anyway.
	MaxInflightPredicts int
}

// ServerOptions returns the interceptors enforcing l, for NewGRPCServer's
// opts; put them after the Authenticator's so a refused caller takes no
// Predict slot.
func (l Limits) ServerOptions() []grpc.ServerOption {
	var sem *semaphore.Weighted
	if l.MaxInflightPredicts > 0 {
		sem = semaphore.NewWeighted(int64(l.MaxInflightPredicts))
	}
	timeout := l.CallTimeout
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if sem != nil && info.FullMethod == recommendationv1.RecommendationService_Predict_FullMethodName {
				if !sem.TryAcquire(1) {
					return nil, status.Error(codes.ResourceExhausted, fmt.Sprintf(
						"server busy: %d Predict calls are already running, the limit (--max-inflight-predicts); retry after a short backoff", l.MaxInflightPredicts))
				}
				defer sem.Release(1)
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return handler(ctx, req)
		})}
}
