package transport_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/transport"
)

// heldModels holds every Acquire until release is closed, counting the
// calls waiting in entered, so a test can keep Predicts in flight.
type heldModels struct {
	transport.Models
	entered chan struct{}
	release chan struct{}
}

func (m *heldModels) Acquire(version string) (transport.Lease, error) {
	m.entered <- struct{}{}
	<-m.release
	return m.Models.Acquire(version)
}

func (m *heldModels) AcquireMajor(major int) (transport.Lease, error) {
	m.entered <- struct{}{}
	<-m.release
	return m.Models.AcquireMajor(major)
}

// TestMaxInflightPredicts fills the Predict slots and checks that one more
// call is refused at once with ResourceExhausted (429 over REST), that
// other methods are not limited, and that the slots free up.
func TestMaxInflightPredicts(t *testing.T) {
	t.Parallel()
	const limit = 2
	held := &heldModels{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s := newStack(t, stackOptions{
		limits:     transport.Limits{MaxInflightPredicts: limit},
		wrapModels: func(m transport.Models) transport.Models { held.Models = m; return held },
	})
	client := recommendationv1.NewRecommendationServiceClient(s.dial(t, nil))

	var wg sync.WaitGroup
	errs := make(chan error, limit)
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := client.Predict(bearer(t, ""), predictRequest())
			errs <- err
		}()
	}
	for range limit {
		<-held.entered
	}

	// Were the call queued, it would wait for the held ones and end with
	// the context's DeadlineExceeded instead.
	_, err := client.Predict(bearer(t, ""), predictRequest())
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "--max-inflight-predicts") {
		t.Errorf("Predict beyond the limit = %v; want ResourceExhausted naming --max-inflight-predicts", err)
	}
	code, _, body := s.rest(t, nil, "POST", "/v1/predict", "", predictBody)
	if code != http.StatusTooManyRequests {
		t.Errorf("REST Predict beyond the limit = %d %s; want 429", code, body)
	}
	reg := recommendationv1.NewModelRegistryServiceClient(s.dial(t, nil))
	if _, err := reg.ListVersions(bearer(t, ""), &recommendationv1.ListVersionsRequest{}); err != nil {
		t.Errorf("ListVersions while Predict is full = %v; want other methods unlimited", err)
	}

	close(held.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("held Predict = %v; want OK", err)
		}
	}
	for i := range limit + 1 { // every slot was given back
		if _, err := client.Predict(bearer(t, ""), predictRequest()); err != nil {
			t.Errorf("Predict %d after the held calls ended = %v; want OK", i, err)
		}
		<-held.entered
	}
}

// TestCallTimeout checks that --call-timeout bounds a unary call that the
// client gave no deadline: with 1ns every Predict has run out of time by the
// time it checks, over gRPC (DeadlineExceeded) and REST (504); streams are
// not bounded.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{limits: transport.Limits{CallTimeout: time.Nanosecond}})
	conn := s.dial(t, nil)
	_, err := recommendationv1.NewRecommendationServiceClient(conn).Predict(bearer(t, ""), predictRequest())
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Predict with a 1ns call timeout = %v; want DeadlineExceeded", err)
	}
	code, _, body := s.rest(t, nil, "POST", "/v1/predict", "", predictBody)
	if code != http.StatusGatewayTimeout {
		t.Errorf("REST Predict with a 1ns call timeout = %d %s; want 504", code, body)
	}
	// WatchJob is a stream: it gets to answer (NotFound for an unknown job).
	st, err := recommendationv1.NewTrainingServiceClient(conn).WatchJob(bearer(t, ""), &recommendationv1.WatchJobRequest{Id: "job-00000042"})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("WatchJob with a 1ns call timeout = %v; want NotFound (streams are not bounded)", err)
	}

	// The same call with no timeout runs.
	free := newStack(t, stackOptions{})
	if _, err := recommendationv1.NewRecommendationServiceClient(free.dial(t, nil)).Predict(bearer(t, ""), predictRequest()); err != nil {
		t.Errorf("Predict without a call timeout = %v", err)
	}
}
