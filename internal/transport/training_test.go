package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// trainEnv is the training API wired like the server: a real bbolt
// registry in t.TempDir(), ONNX Runtime sessions, the release controller
// serving the embedded default model (v1.1.0), a jobs.Manager, the
// TrainingServer on a gRPC server over loopback TCP and the real gateway
// in front of it.
type trainEnv struct {
	jobs   *jobs.Manager
	ctl    *rollback.Controller
	client recommendationv1.TrainingServiceClient
	rest   *httptest.Server
	logs   *syncBuffer
}

// newTrainEnv starts a trainEnv; with run, the job worker runs.
func newTrainEnv(t *testing.T, opts jobs.Options, run bool) *trainEnv {
	t.Helper()
	if err := serving.InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime: %v (set %s to libonnxruntime.so.1)", err, serving.LibraryEnv)
	}
	e := &trainEnv{logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	models := serving.NewManager(serving.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	e.ctl = rollback.New(store, models, rollback.Options{Log: log})
	if err := e.ctl.Start(ctx, defaultmodel.Load); err != nil {
		t.Fatal(err)
	}
	opts.Log = log
	if opts.EvalSamples == 0 {
		opts.EvalSamples = 1000
	}
	if e.jobs, err = jobs.New(store, e.ctl, opts); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	if run {
		wg.Go(func() { e.jobs.Run(ctx) })
	}

	srv := transport.NewGRPCServer(log, transport.NewHealth())
	recommendationv1.RegisterTrainingServiceServer(srv, transport.NewTrainingServer(e.jobs, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Serve(lis) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	e.client = recommendationv1.NewTrainingServiceClient(conn)
	gw, err := transport.NewGateway(ctx, lis.Addr().String(), transport.GatewayOptions{
		Models: transport.ModelsOf(models), Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rest = httptest.NewServer(gw)

	t.Cleanup(func() {
		e.rest.Close()
		_ = conn.Close()
		srv.Stop()
		cancel()
		wg.Wait()
		if err := store.Check(); err != nil {
			t.Errorf("registry consistency: %v", err)
		}
		models.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})
	return e
}

// do sends a REST request (a JSON body when body is not "") and returns the
// status and body.
func (e *trainEnv) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.rest.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// restJob decodes a response holding {"job": ...}.
func restJob(t *testing.T, b []byte) *recommendationv1.Job {
	t.Helper()
	var resp recommendationv1.GetJobResponse // StartTraining and CancelJob answer the same shape
	if err := protojson.Unmarshal(b, &resp); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return resp.GetJob()
}

// watch follows a job over the gRPC stream until its final event, or until
// stop says so, and returns the events.
func (e *trainEnv) watch(t *testing.T, id string, stop func(*recommendationv1.JobEvent) bool) []*recommendationv1.JobEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := e.client.WatchJob(ctx, &recommendationv1.WatchJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var events []*recommendationv1.JobEvent
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return events
		}
		if err != nil {
			t.Fatalf("WatchJob(%s) after %d events: %v", id, len(events), err)
		}
		events = append(events, resp.GetEvent())
		if stop != nil && stop(resp.GetEvent()) {
			return events
		}
	}
}

func TestTrainingJobOverRESTAndGRPC(t *testing.T) {
	e := newTrainEnv(t, jobs.Options{}, true)

	// Start over REST.
	code, b := e.do(t, http.MethodPost, "/v1/training-jobs",
		`{"samples": 3000, "epochs": 3, "seed": 7, "workloadMix": [1, 1, 1, 1, 1], "activation_policy": "ACTIVATION_POLICY_ALWAYS", "actor": "alice", "reason": "nightly"}`)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/training-jobs = %d %s", code, b)
	}
	started := restJob(t, b)
	if started.GetState() != recommendationv1.JobState_JOB_STATE_QUEUED || started.GetVersion() != "v1.1.1" ||
		started.GetParams().GetActor() != "alice" || started.GetParams().GetBatchSize() != 256 || started.GetCreatedAt() == nil || started.GetStartedAt() != nil {
		t.Errorf("started job: %v", started)
	}
	id := started.GetId()

	// Follow it over the gRPC stream.
	events := e.watch(t, id, nil)
	last := events[len(events)-1]
	if last.GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || last.GetJob() == nil || last.GetPhase() != recommendationv1.JobPhase_JOB_PHASE_DONE {
		t.Fatalf("final event %v", last)
	}
	trained := false
	for _, ev := range events {
		if ev.GetJobId() != id || ev.GetTime() == nil {
			t.Errorf("event %v", ev)
		}
		if ev.GetPhase() == recommendationv1.JobPhase_JOB_PHASE_TRAINING && ev.GetEpoch() > 0 {
			trained = true
			if ev.GetEpochs() != 3 || !(ev.GetLoss() > 0) || !(ev.GetValLoss() > 0) || ev.GetElapsed().AsDuration() <= 0 {
				t.Errorf("training event %v", ev)
			}
		}
	}
	if !trained {
		t.Errorf("no training epoch among %d events", len(events))
	}
	final := last.GetJob()
	if !final.GetRegistered() || final.GetParentVersion() != "v1.1.0" || !final.GetActivation().GetActivated() ||
		final.GetActivation().GetPolicy() != recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS ||
		final.GetEvaluation().GetActive().GetVersion() != "v1.1.0" || final.GetEvaluation().GetCandidate().GetVersion() != "v1.1.1" ||
		len(final.GetEvaluation().GetCandidate().GetMae()) != 5 || final.GetEvaluation().GetVpaBaseline() == nil || final.GetFinishedAt() == nil {
		t.Errorf("final job %v", final)
	}
	if v, _ := e.ctl.Active(0); v.String() != "v1.1.1" {
		t.Errorf("active version %s; want v1.1.1", v)
	}

	// GetJob and ListJobs, over gRPC and REST.
	got, err := e.client.GetJob(context.Background(), &recommendationv1.GetJobRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetJob().GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || got.GetJob().GetVersion() != "v1.1.1" {
		t.Errorf("GetJob: %v", got.GetJob())
	}
	code, b = e.do(t, http.MethodGet, "/v1/training-jobs/"+id, "")
	if code != http.StatusOK || restJob(t, b).GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED {
		t.Errorf("GET /v1/training-jobs/%s = %d %s", id, code, b)
	}
	if !bytes.Contains(b, []byte(`"state":"JOB_STATE_SUCCEEDED"`)) || !bytes.Contains(b, []byte(`"parentVersion":"v1.1.0"`)) {
		t.Errorf("REST job JSON lacks readable enums or camelCase fields: %s", b)
	}

	// Cancel a running job over REST.
	second, err := e.client.StartTraining(context.Background(), &recommendationv1.StartTrainingRequest{
		Samples: 5000, Epochs: 500, Seed: 1, ActivationPolicy: recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := second.GetJob().GetParams().GetActor(); a != "anonymous" {
		t.Errorf("actor of a caller without a token %q; want anonymous", a)
	}
	e.watch(t, second.GetJob().GetId(), func(ev *recommendationv1.JobEvent) bool {
		return ev.GetPhase() == recommendationv1.JobPhase_JOB_PHASE_TRAINING
	})
	code, b = e.do(t, http.MethodPost, "/v1/training-jobs/"+second.GetJob().GetId()+":cancel", `{}`)
	if code != http.StatusOK {
		t.Fatalf("cancel = %d %s", code, b)
	}
	if c := restJob(t, b); c.GetState() != recommendationv1.JobState_JOB_STATE_CANCELLED || c.GetRegistered() || c.GetError() == "" {
		t.Errorf("cancelled job %v", c)
	}
	if v, _ := e.ctl.Active(0); v.String() != "v1.1.1" {
		t.Errorf("active version %s after a cancelled ALWAYS job; want v1.1.1", v)
	}

	code, b = e.do(t, http.MethodGet, "/v1/training-jobs", "")
	var list recommendationv1.ListJobsResponse
	if code != http.StatusOK || protojson.Unmarshal(b, &list) != nil {
		t.Fatalf("GET /v1/training-jobs = %d %s", code, b)
	}
	if len(list.GetJobs()) != 2 || list.GetJobs()[0].GetId() != second.GetJob().GetId() || list.GetJobs()[1].GetId() != id {
		t.Errorf("ListJobs not newest first: %v", list.GetJobs())
	}

	// The REST watch route is not taken for GetJob: it streams the final event.
	code, b = e.do(t, http.MethodGet, "/v1/training-jobs/"+id+":watch", "")
	if code != http.StatusOK {
		t.Fatalf("GET :watch = %d %s", code, b)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var lines int
	for sc.Scan() {
		lines++
		var chunk struct {
			Result json.RawMessage `json:"result"`
		}
		var resp recommendationv1.WatchJobResponse
		if err := json.Unmarshal(sc.Bytes(), &chunk); err != nil || protojson.Unmarshal(chunk.Result, &resp) != nil {
			t.Fatalf("stream line %q: %v", sc.Bytes(), err)
		}
		if resp.GetEvent().GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || resp.GetEvent().GetJob().GetId() != id {
			t.Errorf("REST watch event %v", resp.GetEvent())
		}
	}
	if lines != 1 {
		t.Errorf("REST watch of a finished job sent %d lines; want its final event: %s", lines, b)
	}
}

func TestTrainingBadRequests(t *testing.T) {
	e := newTrainEnv(t, jobs.Options{QueueSize: 1}, false) // no worker: a started job stays queued

	for _, tc := range []struct {
		name, body string
		code       int
		says       string
	}{
		{"Samples", `{"samples": 10, "epochs": 3}`, http.StatusBadRequest, "samples: 10; want 1000 to 1000000"},
		{"Epochs", `{"samples": 3000}`, http.StatusBadRequest, "epochs: 0; want 1 to 500"},
		{"LearningRate", `{"samples": 3000, "epochs": 3, "learningRate": 2}`, http.StatusBadRequest, "learning_rate: 2"},
		{"BatchSize", `{"samples": 3000, "epochs": 3, "batchSize": 100000}`, http.StatusBadRequest, "batch_size: 100000"},
		{"Mix", `{"samples": 3000, "epochs": 3, "workloadMix": [1, 2]}`, http.StatusBadRequest, "workload_mix: 2 weights"},
		{"Version", `{"samples": 3000, "epochs": 3, "version": "1.2"}`, http.StatusBadRequest, "version: invalid version"},
		{"Bump", `{"samples": 3000, "epochs": 3, "bump": "major"}`, http.StatusBadRequest, "bump: major would produce v2.0.0"},
		{"VersionExists", `{"samples": 3000, "epochs": 3, "version": "v1.1.0"}`, http.StatusConflict, "version: v1.1.0 is already registered"},
		{"UnknownField", `{"samples": 3000, "epochs": 3, "sample": 1}`, http.StatusBadRequest, "sample"},
		{"UnknownPolicy", `{"samples": 3000, "epochs": 3, "activationPolicy": "SOMETIMES"}`, http.StatusBadRequest, "activationPolicy"},
	} {
		t.Run("REST"+tc.name, func(t *testing.T) {
			code, b := e.do(t, http.MethodPost, "/v1/training-jobs", tc.body)
			var re restError
			_ = json.Unmarshal(b, &re)
			if code != tc.code || !strings.Contains(re.Message, tc.says) {
				t.Errorf("POST %s = %d %s; want %d saying %q", tc.body, code, b, tc.code, tc.says)
			}
		})
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *recommendationv1.StartTrainingRequest
		code codes.Code
		says string
	}{
		{"Epochs", &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 501}, codes.InvalidArgument, "epochs: 501"},
		{"Samples", &recommendationv1.StartTrainingRequest{Samples: 1 << 40, Epochs: 3}, codes.InvalidArgument, "samples:"},
		{"Policy", &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3, ActivationPolicy: 9}, codes.InvalidArgument, "activation_policy: 9"},
		{"Actor", &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3, Actor: "system"}, codes.InvalidArgument, "actor: \"system\" is reserved"},
		{"OtherMajor", &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3, Version: "v2.1.0"}, codes.InvalidArgument, "the job trains major 1 (set major)"},
	} {
		t.Run("GRPC"+tc.name, func(t *testing.T) {
			_, err := e.client.StartTraining(ctx, tc.req)
			if s := status.Convert(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.says) {
				t.Errorf("StartTraining(%v) = %v; want %v saying %q", tc.req, err, tc.code, tc.says)
			}
		})
	}

	t.Run("UnknownJob", func(t *testing.T) {
		if code, b := e.do(t, http.MethodGet, "/v1/training-jobs/job-00000042", ""); code != http.StatusNotFound {
			t.Errorf("GET unknown job = %d %s; want 404", code, b)
		}
		if code, b := e.do(t, http.MethodPost, "/v1/training-jobs/job-00000042:cancel", "{}"); code != http.StatusNotFound {
			t.Errorf("cancel unknown job = %d %s; want 404", code, b)
		}
		stream, err := e.client.WatchJob(ctx, &recommendationv1.WatchJobRequest{Id: "job-00000042"})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.NotFound {
			t.Errorf("WatchJob(unknown) = %v; want NotFound", err)
		}
		if _, err := e.client.GetJob(ctx, &recommendationv1.GetJobRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("GetJob(no id) = %v; want InvalidArgument", err)
		}
	})

	// Nothing was queued by the refused requests; the queue holds one.
	if list, _ := e.jobs.List(); len(list) != 0 {
		t.Fatalf("refused requests queued %d jobs", len(list))
	}
	if _, err := e.client.StartTraining(ctx, &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3}); err != nil {
		t.Fatal(err)
	}
	code, b := e.do(t, http.MethodPost, "/v1/training-jobs", `{"samples": 3000, "epochs": 3}`)
	var re restError
	_ = json.Unmarshal(b, &re)
	if code != http.StatusTooManyRequests || !strings.Contains(re.Message, "training queue full") {
		t.Errorf("POST with a full queue = %d %s; want 429", code, b)
	}
	_, err := e.client.StartTraining(ctx, &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("StartTraining with a full queue = %v; want ResourceExhausted", err)
	}
}
