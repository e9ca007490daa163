package transport_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/transport"
)

// scrape is one /metrics answer, parsed: "name{k="v",…}" → value, with the
// labels in the order the text has them (sorted by name).
type scrape map[string]float64

func (s *stack) scrape(t *testing.T) scrape {
	t.Helper()
	code, h, body := s.rest(t, nil, "GET", "/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q; want the text format", ct)
	}
	out := scrape{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// series names a series; labels as the text format orders them
// (alphabetically, a histogram's le last), as k, v pairs.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i] + `="` + labels[i+1] + `"`)
	}
	return name + "{" + b.String() + "}"
}

// TestMetrics scrapes /metrics after a Predict, a registration, a swap, a
// rollback, an automatic rollback recorded by the registry and a queued
// training job, and checks each series moved.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	conn := s.dial(t, nil)
	predict := recommendationv1.NewRecommendationServiceClient(conn)
	reg := recommendationv1.NewModelRegistryServiceClient(conn)
	train := recommendationv1.NewTrainingServiceClient(conn)
	before := s.scrape(t)

	const predictOK = `recommendation_grpc_requests_total{code="OK",method="Predict",service="recommendation.v1.RecommendationService"}`
	if _, err := predict.Predict(bearer(t, ""), predictRequest()); err != nil {
		t.Fatal(err)
	}
	code, _, body := s.rest(t, nil, "POST", "/v1/predict", "", predictBody)
	if code != http.StatusOK {
		t.Fatalf("REST Predict = %d %s", code, body)
	}
	if _, err := predict.Predict(bearer(t, ""), &recommendationv1.PredictRequest{}); err == nil {
		t.Fatal("empty Predict succeeded")
	}
	v110 := newRegVersion(t, "v1.2.0", 11)
	if _, err := reg.RegisterVersion(bearer(t, ""), registerRequest(t, v110.onnx, v110.man, "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ActivateVersion(bearer(t, ""), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0"}); err != nil {
		t.Fatal(err)
	}
	mid := s.scrape(t)
	// The probation watcher's rollback is recorded in the registry like
	// this; the counter reads the history, whoever wrote it.
	if _, err := s.store.SetActive(model.MustParseVersion("v1.1.0"), registry.Event{Action: registry.ActionAutoRollback, Reason: "test", Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Rollback(bearer(t, ""), &recommendationv1.RollbackRequest{ToVersion: "v1.2.0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := train.StartTraining(bearer(t, ""), &recommendationv1.StartTrainingRequest{Samples: 2000, Epochs: 1}); err != nil {
		t.Fatal(err)
	}
	after := s.scrape(t)

	for _, c := range []struct {
		series string
		from   scrape
		want   float64 // increase
	}{
		{predictOK, before, 2}, // gRPC and REST
		{`recommendation_grpc_requests_total{code="InvalidArgument",method="Predict",service="recommendation.v1.RecommendationService"}`, before, 1},
		{`recommendation_grpc_request_duration_seconds_count{code="OK",method="Predict",service="recommendation.v1.RecommendationService"}`, before, 2},
		{series("recommendation_predictions_total", "version", "v1.1.0"), before, 2},
		{series("recommendation_model_swaps_total", "action", "activate"), before, 1},
		{series("recommendation_model_swaps_total", "action", "rollback"), mid, 1},
		{series("recommendation_model_swaps_total", "action", "auto_rollback"), mid, 1},
		{series("recommendation_model_load_duration_seconds_count", "action", "register"), before, 1},
		{series("recommendation_model_load_duration_seconds_count", "action", "activate"), before, 1},
		{series("recommendation_model_load_duration_seconds_count", "action", "rollback"), mid, 1},
		{series("recommendation_registry_versions", "major", "1"), before, 1},
		{series("recommendation_registry_model_bytes", "major", "1"), before, float64(v110.man.Model.SizeBytes)},
		{series("recommendation_training_jobs", "state", "QUEUED"), before, 1},
	} {
		if got := after[c.series] - c.from[c.series]; got != c.want {
			t.Errorf("%s rose by %v; want %v", c.series, got, c.want)
		}
	}
	for _, c := range []struct {
		series string
		in     scrape
		want   float64
	}{
		{series("recommendation_active_model_info", "major", "1", "version", "v1.1.0"), before, 1},
		{series("recommendation_active_model_info", "major", "1", "version", "v1.2.0"), mid, 1},
		{series("recommendation_active_model_info", "major", "1", "version", "v1.2.0"), after, 1},
		{series("recommendation_training_job_duration_seconds_count", "state", "SUCCEEDED"), after, 0},
	} {
		got, ok := c.in[c.series]
		if !ok || got != c.want {
			t.Errorf("%s = %v (present %v); want %v", c.series, got, ok, c.want)
		}
	}
	if _, ok := mid[series("recommendation_active_model_info", "major", "1", "version", "v1.1.0")]; ok {
		t.Error("v1.1.0 still reported active after the swap to v1.2.0")
	}
	if n := mid["recommendation_serving_sessions"]; n < 2 {
		t.Errorf("recommendation_serving_sessions = %v after a swap; want the new and the warm previous version", n)
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	// Only the project's own series carry the prefix; none is unnamed.
	for k := range maps.Keys(after) {
		if !strings.HasPrefix(k, "recommendation_") && !strings.HasPrefix(k, "go_") && !strings.HasPrefix(k, "process_") && !strings.HasPrefix(k, "promhttp_") {
			t.Errorf("unexpected series %s", k)
		}
	}
}

// TestMetricsTrainingJobs checks the job series against jobs with known
// run times: the gauge counts every state, the histogram finished runs.
func TestMetricsTrainingJobs(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	job := func(st model.JobState, run time.Duration) *model.Job {
		j := &model.Job{State: st, CreatedAt: t0}
		if run > 0 {
			j.StartedAt, j.FinishedAt = t0, t0.Add(run)
		}
		return j
	}
	list := []*model.Job{
		job(model.JobSucceeded, 20*time.Second), job(model.JobSucceeded, 90*time.Second),
		job(model.JobFailed, 3*time.Second), job(model.JobCancelled, 0), job(model.JobQueued, 0),
	}
	m := transport.NewMetrics(transport.MetricSources{Jobs: func() ([]*model.Job, error) { return list, nil }})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s := &stack{restURL: srv.URL}
	got := s.scrape(t)
	for k, want := range map[string]float64{
		series("recommendation_training_jobs", "state", "SUCCEEDED"):                                     2,
		series("recommendation_training_jobs", "state", "CANCELLED"):                                     1,
		series("recommendation_training_jobs", "state", "RUNNING"):                                       0,
		series("recommendation_training_job_duration_seconds_count", "state", "SUCCEEDED"):               2,
		series("recommendation_training_job_duration_seconds_sum", "state", "SUCCEEDED"):                 110,
		series("recommendation_training_job_duration_seconds_bucket", "state", "SUCCEEDED", "le", "30"):  1,
		series("recommendation_training_job_duration_seconds_bucket", "state", "SUCCEEDED", "le", "120"): 2,
		series("recommendation_training_job_duration_seconds_bucket", "state", "FAILED", "le", "5"):      1,
		series("recommendation_training_job_duration_seconds_count", "state", "CANCELLED"):               0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", k, v, ok, want)
		}
	}
}
