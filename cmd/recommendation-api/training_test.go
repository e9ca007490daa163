package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/registry"
)

// restJSON sends a JSON body (or none) and decodes a 200 answer into out.
func restJSON(t *testing.T, c *http.Client, method, url, body string, out proto.Message) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	} else if out != nil {
		if err := protojson.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

// TestTrainingJobEndToEnd follows the flow through the real server:
// embedded model → job started over REST → followed over the gRPC WatchJob
// stream → version registered (and activated per policy) → Predict names it
// → rollback over REST → Predict names the old one.
func TestTrainingJobEndToEnd(t *testing.T) {
	needORT(t)
	ts := startServer(t, nil)
	base := "http://" + ts.httpAddr
	defaultV := defaultVersion(t).Version.String()
	training := recommendationv1.NewTrainingServiceClient(ts.conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := func(body string) string {
		var resp recommendationv1.StartTrainingResponse
		if code := restJSON(t, ts.http, http.MethodPost, base+"/v1/training-jobs", body, &resp); code != http.StatusOK {
			t.Fatalf("POST /v1/training-jobs = %d", code)
		}
		if resp.GetJob().GetId() == "" {
			t.Fatalf("StartTraining returned no job id: %v", &resp)
		}
		return resp.GetJob().GetId()
	}
	watch := func(id string) (*recommendationv1.Job, int) {
		stream, err := training.WatchJob(ctx, &recommendationv1.WatchJobRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		epochs := 0
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				t.Fatalf("WatchJob %s ended without a final event", id)
			}
			if err != nil {
				t.Fatalf("WatchJob %s: %v", id, err)
			}
			ev := r.GetEvent()
			if ev.GetPhase() == recommendationv1.JobPhase_JOB_PHASE_TRAINING && ev.GetEpoch() > 0 {
				epochs++
			}
			switch ev.GetState() {
			case recommendationv1.JobState_JOB_STATE_SUCCEEDED, recommendationv1.JobState_JOB_STATE_FAILED, recommendationv1.JobState_JOB_STATE_CANCELLED:
				if ev.GetJob() == nil {
					t.Fatalf("final event carries no job: %v", ev)
				}
				return ev.GetJob(), epochs
			}
		}
	}
	predictVersion := func() string {
		resp, err := ts.client.Predict(ctx, mixedRequest(0, 2))
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		return resp.GetModelVersion()
	}

	// IF_BETTER: whatever it decides must follow from the recorded numbers.
	// The jobs train major 1 (a job that names no major trains the newest
	// served one): the calls of predictVersion are answered by major 1.
	id := start(`{"major":1,"samples":"3000","epochs":3,"seed":"5","bump":"minor","activation_policy":"ACTIVATION_POLICY_IF_BETTER","actor":"alice","reason":"e2e"}`)
	job, epochs := watch(id)
	if job.GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || !job.GetRegistered() || job.GetVersion() != "v1.2.0" || job.GetParentVersion() != defaultV {
		t.Fatalf("job = %v; want SUCCEEDED, v1.2.0 registered with parent %s", job, defaultV)
	}
	if epochs == 0 {
		t.Errorf("WatchJob sent no training progress events")
	}
	ev := job.GetEvaluation()
	better := ev.GetCandidate().GetScores().GetOomRate() <= ev.GetActive().GetScores().GetOomRate() &&
		ev.GetCandidate().GetMeanLimitSlack() < ev.GetActive().GetMeanLimitSlack()
	if got := job.GetActivation().GetActivated(); got != better {
		t.Fatalf("IF_BETTER activated=%v, but the recorded numbers say better=%v: %v", got, better, ev)
	}
	want := defaultV
	if better {
		want = "v1.2.0"
	}
	if got := predictVersion(); got != want {
		t.Fatalf("after the IF_BETTER job Predict names %s, want %s", got, want)
	}

	// ALWAYS: activated through the release flow; Predict names it.
	id = start(`{"major":1,"samples":"3000","epochs":2,"seed":"6","version":"v1.3.0","activation_policy":"ACTIVATION_POLICY_ALWAYS","actor":"alice"}`)
	if job, _ = watch(id); job.GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || !job.GetActivation().GetActivated() {
		t.Fatalf("ALWAYS job = %v; want SUCCEEDED and activated", job)
	}
	if got := predictVersion(); got != "v1.3.0" {
		t.Fatalf("Predict names %s after the ALWAYS job, want v1.3.0", got)
	}

	// Roll back over REST: the version active before v1.3.0 serves again.
	var rb recommendationv1.RollbackResponse
	if code := restJSON(t, ts.http, http.MethodPost, base+"/v1/models:rollback", `{"reason":"e2e rollback","actor":"bob"}`, &rb); code != http.StatusOK {
		t.Fatalf("rollback = %d", code)
	}
	if got := predictVersion(); got != want {
		t.Fatalf("after rollback Predict names %s, want %s", got, want)
	}

	// The jobs are listed, newest first, over REST.
	var list recommendationv1.ListJobsResponse
	if code := restJSON(t, ts.http, http.MethodGet, base+"/v1/training-jobs", "", &list); code != http.StatusOK || len(list.GetJobs()) != 2 {
		t.Fatalf("GET /v1/training-jobs = %d with %d jobs; want 200 and 2", code, len(list.GetJobs()))
	}
}

var listening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// startBinary runs the real binary on dataDir and returns its REST address.
// extra flags follow the defaults.
func startBinary(t *testing.T, dataDir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	args := []string{"serve", "--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text", "--insecure-no-auth"}
	cmd := exec.Command(binPath, append(args, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[2]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("server did not report its addresses")
	}
	return nil, ""
}

// TestTrainingJobInterruptedByKill kills the real server process (SIGKILL)
// while a job trains; after a restart the job reads FAILED (interrupted)
// and the registry is unchanged and consistent.
func TestTrainingJobInterruptedByKill(t *testing.T) {
	needORT(t)
	dataDir := t.TempDir()
	cmd, addr := startBinary(t, dataDir)
	c := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + addr

	var started recommendationv1.StartTrainingResponse
	if code := restJSON(t, c, http.MethodPost, base+"/v1/training-jobs", `{"samples":"400000","epochs":200,"seed":"9","bump":"patch"}`, &started); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	id := started.GetJob().GetId()
	var models0 recommendationv1.ListVersionsResponse
	restJSON(t, c, http.MethodGet, base+"/v1/models", "", &models0)

	deadline := time.Now().Add(time.Minute)
	for {
		var got recommendationv1.GetJobResponse
		restJSON(t, c, http.MethodGet, base+"/v1/training-jobs/"+id, "", &got)
		if got.GetJob().GetState() == recommendationv1.JobState_JOB_STATE_RUNNING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran: %v", got.GetJob())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // into generation or training
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The registry file is consistent after the kill.
	store, err := registry.Open(filepath.Join(dataDir, "registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(); err != nil {
		t.Fatalf("registry after SIGKILL: %v", err)
	}
	store.Close()

	_, addr = startBinary(t, dataDir)
	base = "http://" + addr
	var got recommendationv1.GetJobResponse
	if code := restJSON(t, c, http.MethodGet, base+"/v1/training-jobs/"+id, "", &got); code != http.StatusOK {
		t.Fatalf("GET job after restart = %d", code)
	}
	if got.GetJob().GetState() != recommendationv1.JobState_JOB_STATE_FAILED || !strings.Contains(got.GetJob().GetError(), "interrupted") || got.GetJob().GetRegistered() {
		t.Fatalf("job after restart = %v; want FAILED, interrupted, nothing registered", got.GetJob())
	}
	var models1 recommendationv1.ListVersionsResponse
	restJSON(t, c, http.MethodGet, base+"/v1/models", "", &models1)
	if a, b := fmt.Sprint(versionsOf(&models0)), fmt.Sprint(versionsOf(&models1)); a != b {
		t.Fatalf("registry changed across the interrupted job: %s -> %s", a, b)
	}
}

func versionsOf(r *recommendationv1.ListVersionsResponse) []string {
	var out []string
	for _, v := range r.GetVersions() {
		out = append(out, fmt.Sprintf("%s active=%v", v.GetVersion(), v.GetActive()))
	}
	return out
}
