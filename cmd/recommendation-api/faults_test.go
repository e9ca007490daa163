package main

// The data directory's file system failing under the real binary: it turns
// read-only while the server runs, and it fills up during a training job.
// The server refuses each write with a status and a message naming the
// cause and the directory, keeps answering Predict, changes nothing in the
// registry, and once the operator has fixed the file system and restarted
// it, serves what the file holds and accepts writes again.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/transport"
)

// serveConn is a gRPC connection to a serve process.
type serveConn struct {
	predict  recommendationv1.RecommendationServiceClient
	registry recommendationv1.ModelRegistryServiceClient
	training recommendationv1.TrainingServiceClient
	http     *http.Client
	base     string // REST base URL
}

// dialReady connects to p and waits until its gRPC health says SERVING.
func dialReady(t *testing.T, p *serveProcess) *serveConn {
	t.Helper()
	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h := healthpb.NewHealthClient(conn)
	for deadline := time.Now().Add(waitFor); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not SERVING within %v: %v %v; stderr:\n%s", waitFor, resp.GetStatus(), err, p.stderr.String())
		}
	}
	c := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return &serveConn{
		predict:  recommendationv1.NewRecommendationServiceClient(conn),
		registry: recommendationv1.NewModelRegistryServiceClient(conn),
		training: recommendationv1.NewTrainingServiceClient(conn),
		http:     c,
		base:     "http://" + p.http,
	}
}

// stopServe sends SIGTERM and waits for the exit, which must be clean
// (exit 0, no panic).
func stopServe(t *testing.T, p *serveProcess) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(waitFor):
		t.Fatalf("serve did not exit within %v of SIGTERM; stderr:\n%s", waitFor, p.stderr.String())
	}
	if out := p.stderr.String(); p.err != nil || strings.Contains(out, "panic") {
		t.Fatalf("serve exited with %v after SIGTERM; stderr:\n%s", p.err, out)
	}
}

// versions is what ListVersions says: each version, whether it is active.
func (c *serveConn) versions(t *testing.T) string {
	t.Helper()
	resp, err := c.registry.ListVersions(t.Context(), &recommendationv1.ListVersionsRequest{})
	if err != nil {
		t.Fatalf("ListVersions: %v", err)
	}
	return fmt.Sprint(versionsOf(resp))
}

// serving is the version that answers a Predict of major 1.
func (c *serveConn) serving(t *testing.T) string {
	t.Helper()
	req := mixedRequest(3, 2)
	resp, err := c.predict.Predict(t.Context(), req)
	if err == nil {
		err = checkResponse(req, resp)
	}
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	return resp.GetModelVersion()
}

// startJob starts a training job over gRPC (policy always: if it got as
// far, it would change what serves).
func (c *serveConn) startJob(ctx context.Context, samples int64, epochs int32, version string) (*recommendationv1.Job, error) {
	resp, err := c.training.StartTraining(ctx, &recommendationv1.StartTrainingRequest{
		Samples: samples, Epochs: epochs, Seed: 7, Version: version, Major: 1,
		ActivationPolicy: recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS, Actor: "test", Reason: "storage fault",
	})
	return resp.GetJob(), err
}

// waitJob polls job id until it is RUNNING (final false) or has ended
// (final true), and returns it.
func (c *serveConn) waitJob(t *testing.T, id string, final bool) *recommendationv1.Job {
	t.Helper()
	for deadline := time.Now().Add(3 * waitFor); ; time.Sleep(10 * time.Millisecond) {
		resp, err := c.training.GetJob(t.Context(), &recommendationv1.GetJobRequest{Id: id})
		if err != nil {
			t.Fatalf("GetJob %s: %v", id, err)
		}
		j := resp.GetJob()
		switch s := j.GetState(); {
		case s == recommendationv1.JobState_JOB_STATE_SUCCEEDED || s == recommendationv1.JobState_JOB_STATE_FAILED || s == recommendationv1.JobState_JOB_STATE_CANCELLED:
			return j
		case !final && s == recommendationv1.JobState_JOB_STATE_RUNNING:
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is still %v", id, j.GetState())
		}
	}
}

// registerVersionConn registers b, man over gRPC.
func registerVersionConn(ctx context.Context, c *serveConn, b []byte, man *model.Manifest) error {
	mj, err := json.Marshal(man)
	if err != nil {
		return err
	}
	_, err = c.registry.RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: string(mj), Actor: "test"})
	return err
}

// registerREST posts a version to POST /v1/models and returns the status
// and the gateway's error body.
func (c *serveConn) registerREST(t *testing.T, seed int64, version string) (int, restError) {
	t.Helper()
	b, man := testModelVersion(t, seed, version)
	mj, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]string{"onnx": base64.StdEncoding.EncodeToString(b), "manifestJson": string(mj), "actor": "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c.postREST(t, "/v1/models", string(body))
}

// postREST posts a JSON body and returns the status and the error body
// (zero on 200).
func (c *serveConn) postREST(t *testing.T, path, body string) (int, restError) {
	t.Helper()
	resp, err := c.http.Post(c.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e restError
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("POST %s: %d with a body that is not JSON: %q", path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, e
}

// wantStatus checks that err is a gRPC status of code whose message holds
// every one of parts and whose ErrorInfo reason is reason.
func wantStatus(t *testing.T, what string, err error, code codes.Code, reason string, parts ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: %v; want %v", what, err, code)
		return
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("%s: message %q does not say %q", what, st.Message(), p)
		}
	}
	got := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == transport.ErrorDomain {
			got = info.GetReason()
		}
	}
	if got != reason {
		t.Errorf("%s: ErrorInfo reason %q; want %q", what, got, reason)
	}
}

// wantREST checks a REST error answer.
func wantREST(t *testing.T, what string, code int, e restError, wantCode int, parts ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: HTTP %d %q; want %d", what, code, e.Message, wantCode)
		return
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Errorf("%s: message %q does not say %q", what, e.Message, p)
		}
	}
}

// predictLoad is Predict traffic every 10 ms over gRPC, counting failures:
// serving must go on whatever the data directory does.
type predictLoad struct {
	stop, done chan struct{}
	callTally
}

func startPredictLoad(c *serveConn) *predictLoad {
	l := &predictLoad{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req := mixedRequest(i, 2)
			resp, err := c.predict.Predict(ctx, req)
			cancel()
			if err == nil {
				err = checkResponse(req, resp)
			}
			l.record(err)
		}
	}()
	return l
}

// end stops the load and fails the test if a call failed.
func (l *predictLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	<-l.done
	if l.calls.Load() == 0 || l.failed.Load() > 0 {
		t.Errorf("Predict under the storage fault: %d of %d calls failed: %q", l.failed.Load(), l.calls.Load(), l.errs)
	}
}

// checkRegistryFile opens the registry file with the server down and runs
// its consistency check; it returns the active version of each major.
func checkRegistryFile(t *testing.T, dataDir string) string {
	t.Helper()
	store, err := registry.Open(filepath.Join(dataDir, "registry.db"), registry.Options{})
	if err != nil {
		t.Fatalf("registry after the fault: %v", err)
	}
	defer store.Close()
	if err := store.Check(); err != nil {
		t.Fatalf("registry after the fault: %v", err)
	}
	a, err := store.Actives()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(a)
}

// ext4Mount is an ext4 file system in an image on a loop device, mounted
// with errors=remount-ro. An error the kernel reports on it
// (/sys/fs/ext4/<dev>/trigger_fs_error) turns it read-only at once, for the
// files already open for writing too, as on a failing disk: every write,
// fdatasync and create then fails with EROFS. (A tmpfs cannot be made
// read-only under the server: `mount -o remount,ro` refuses with EBUSY while
// a file — the registry — is open for writing, as does a read-only bind
// mount.)
type ext4Mount struct {
	img, dev, dir string
	mounted       bool
}

// mountExt4 makes and mounts a 64 MiB ext4 file system, skipping the test
// when it cannot (not root, no loop device, no e2fsprogs). It is unmounted
// and its loop device detached when the test ends.
func mountExt4(t *testing.T) *ext4Mount {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a file system needs root")
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("making a read-only file system needs %s: %v", tool, err)
		}
	}
	m := &ext4Mount{img: filepath.Join(t.TempDir(), "fs.img"), dir: t.TempDir()}
	if err := os.WriteFile(m.img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", m.img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", m.img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device for the image: %v\n%s", err, out)
	}
	m.dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if m.mounted {
			if err := syscall.Unmount(m.dir, 0); err != nil {
				_ = syscall.Unmount(m.dir, syscall.MNT_DETACH)
			}
		}
		if out, err := exec.Command("losetup", "--detach", m.dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v\n%s", m.dev, err, out)
		}
	})
	if err := syscall.Mount(m.dev, m.dir, "ext4", 0, "errors=remount-ro"); err != nil {
		t.Skipf("cannot mount ext4 here: %v", err)
	}
	m.mounted = true
	if _, err := os.Stat(m.trigger()); err != nil {
		t.Skipf("this kernel cannot trigger an ext4 error: %v", err)
	}
	return m
}

func (m *ext4Mount) trigger() string {
	return filepath.Join("/sys/fs/ext4", filepath.Base(m.dev), "trigger_fs_error")
}

// turnReadOnly reports an error on the file system, which remounts itself
// read-only, and waits until a write in it fails with EROFS.
func (m *ext4Mount) turnReadOnly(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(m.trigger(), []byte("test: the data directory's disk fails"), 0); err != nil {
		t.Fatalf("trigger an ext4 error: %v", err)
	}
	probe := filepath.Join(m.dir, "probe")
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		err := os.WriteFile(probe, []byte("x"), 0o600)
		if errors.Is(err, syscall.EROFS) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file system is not read-only after the error: writing %s: %v", probe, err)
		}
	}
}

// repair is what an operator does once the server is stopped: unmount,
// e2fsck, mount read-write again.
func (m *ext4Mount) repair(t *testing.T) {
	t.Helper()
	if err := syscall.Unmount(m.dir, 0); err != nil {
		t.Fatalf("unmount %s: %v", m.dir, err)
	}
	m.mounted = false
	// e2fsck exits 1 when it fixed something (here: the error flag).
	out, err := exec.Command("e2fsck", "-f", "-y", m.dev).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("e2fsck %s: %v\n%s", m.dev, err, out)
	}
	if err := syscall.Mount(m.dev, m.dir, "ext4", 0, "errors=remount-ro"); err != nil {
		t.Fatalf("mount %s again: %v", m.dev, err)
	}
	m.mounted = true
}

// TestDataDirReadOnlyAtRunTime: the data directory's file system turns
// read-only under the running server, while a training job runs. Every
// write is refused with FAILED_PRECONDITION / 507 STORAGE_READ_ONLY naming
// the directory (register over both transports, activate, start a job); the
// running job ends FAILED saying so; the registry, the active versions and
// Predict are untouched throughout. SIGTERM stops the server cleanly; after
// the operator's repair the file is consistent, a restart serves the same
// versions, the job reads FAILED and nothing of it was registered, and
// writes work again.
func TestDataDirReadOnlyAtRunTime(t *testing.T) {
	needORT(t)
	fs := mountExt4(t)
	dataDir := filepath.Join(fs.dir, "data")
	p := startServe(t, dataDir)
	c := dialReady(t, p)
	ctx := t.Context()

	// A version registered while the disk works, to try activating later.
	b, man := testModelVersion(t, 41, "v1.0.1")
	if err := registerVersionConn(ctx, c, b, man); err != nil {
		t.Fatalf("register v1.0.1 on a writable disk: %v", err)
	}
	before, active := c.versions(t), c.serving(t)
	job, err := c.startJob(ctx, 20000, 20, "v1.2.0")
	if err != nil {
		t.Fatalf("StartTraining on a writable disk: %v", err)
	}
	c.waitJob(t, job.GetId(), false)

	load := startPredictLoad(c)
	fs.turnReadOnly(t)
	readOnly := []string{"the data directory " + dataDir + " is on a read-only file system", "nothing was stored"}

	// (a) Registering is refused, over both transports.
	b2, man2 := testModelVersion(t, 42, "v1.0.2")
	wantStatus(t, "RegisterVersion (gRPC)", registerVersionConn(ctx, c, b2, man2), codes.FailedPrecondition, "STORAGE_READ_ONLY", readOnly...)
	code, e := c.registerREST(t, 43, "v1.0.3")
	wantREST(t, "POST /v1/models", code, e, http.StatusInsufficientStorage, readOnly...)
	// So is an activation; the version active before keeps serving.
	_, err = c.registry.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.0.1", Actor: "test", Reason: "storage fault"})
	wantStatus(t, "ActivateVersion", err, codes.FailedPrecondition, "STORAGE_READ_ONLY", "read-only file system", dataDir)
	if got := c.serving(t); got != active {
		t.Errorf("after the refused activation Predict names %s; want %s", got, active)
	}
	// (b) A new job is refused: its record cannot be stored.
	_, err = c.startJob(ctx, 3000, 2, "v1.3.0")
	wantStatus(t, "StartTraining (gRPC)", err, codes.FailedPrecondition, "STORAGE_READ_ONLY", readOnly...)
	code, e = c.postREST(t, "/v1/training-jobs", `{"samples":"3000","epochs":2,"version":"v1.3.0","major":1}`)
	wantREST(t, "POST /v1/training-jobs", code, e, http.StatusInsufficientStorage, readOnly...)
	// The running job fails when it registers, saying why.
	j := c.waitJob(t, job.GetId(), true)
	if j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || j.GetRegistered() ||
		!strings.Contains(j.GetError(), "read-only file system") || !strings.Contains(j.GetError(), dataDir) {
		t.Errorf("the job running when the disk turned read-only: %v; want FAILED naming the read-only %s, nothing registered", j, dataDir)
	}
	list, err := c.training.ListJobs(ctx, &recommendationv1.ListJobsRequest{})
	if err != nil || len(list.GetJobs()) != 1 {
		t.Errorf("ListJobs on a read-only disk: %d jobs, %v; want the one job", len(list.GetJobs()), err)
	}
	// (a) Nothing changed; (c) Predict answered throughout.
	if after := c.versions(t); after != before {
		t.Errorf("the versions changed on a read-only disk: %s -> %s", before, after)
	}
	if got := c.serving(t); got != active {
		t.Errorf("Predict names %s on a read-only disk; want %s", got, active)
	}
	load.end(t)
	if log := p.stderr.String(); !strings.Contains(log, "read-only file system") {
		t.Errorf("the server log does not say the disk is read-only:\n%s", log)
	}

	// (d) Stop, repair, restart: the same versions serve.
	stopServe(t, p)
	fs.repair(t)
	actives := checkRegistryFile(t, dataDir)
	q := startServe(t, dataDir)
	c = dialReady(t, q)
	if after := c.versions(t); after != before {
		t.Errorf("after the restart the versions are %s; want %s", after, before)
	}
	if got := c.serving(t); got != active {
		t.Errorf("after the restart Predict names %s; want %s (actives in the file: %s)", got, active, actives)
	}
	// The job's final state could not be saved: its record says it was
	// running when the server stopped.
	got, err := c.training.GetJob(ctx, &recommendationv1.GetJobRequest{Id: job.GetId()})
	if j := got.GetJob(); err != nil || j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || j.GetRegistered() || !strings.HasPrefix(j.GetError(), "interrupted") {
		t.Errorf("the job after the restart: %v, %v; want FAILED, interrupted, nothing registered", j, err)
	}
	if err := registerVersionConn(ctx, c, b2, man2); err != nil {
		t.Errorf("register v1.0.2 after the repair: %v", err)
	}
	if t.Failed() {
		t.Logf("first server's log:\n%s", p.stderr.String())
	}
}

// fillDisk writes a file in dir until the file system has no space left,
// and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} { // down to the last byte
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}

// TestTrainingJobOnFullDisk: the data directory's file system fills up
// while a training job runs. The job ends FAILED when it registers, with a
// message naming the full directory; a job started on the full disk is
// refused with RESOURCE_EXHAUSTED / 507 STORAGE_FULL or, when the registry
// file still has room for the job's record, fails the same way; Predict
// goes on and nothing is registered. Once the filler is deleted and the
// server restarted, the file is consistent, the same versions serve, and a
// new job trains and registers.
func TestTrainingJobOnFullDisk(t *testing.T) {
	needORT(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=32m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	dataDir := filepath.Join(dir, "data")
	p := startServe(t, dataDir)
	c := dialReady(t, p)
	ctx := t.Context()
	before, active := c.versions(t), c.serving(t)
	full := "no space left in the data directory " + dataDir

	job, err := c.startJob(ctx, 20000, 20, "v1.2.0")
	if err != nil {
		t.Fatalf("StartTraining with room on the disk: %v", err)
	}
	c.waitJob(t, job.GetId(), false)
	load := startPredictLoad(c)
	filler := fillDisk(t, dir)

	j := c.waitJob(t, job.GetId(), true)
	if j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || j.GetRegistered() || !strings.Contains(j.GetError(), full) {
		t.Errorf("the job running when the disk filled: %v; want FAILED saying %q, nothing registered", j, full)
	}
	// A job started on the full disk.
	j2, err := c.startJob(ctx, 3000, 2, "v1.3.0")
	if err != nil {
		wantStatus(t, "StartTraining on a full disk", err, codes.ResourceExhausted, "STORAGE_FULL", full)
		code, e := c.postREST(t, "/v1/training-jobs", `{"samples":"3000","epochs":2,"version":"v1.3.0","major":1}`)
		wantREST(t, "POST /v1/training-jobs on a full disk", code, e, http.StatusInsufficientStorage, full)
	} else {
		t.Logf("the job's record still fitted in the registry file; the job runs")
		if j := c.waitJob(t, j2.GetId(), true); j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || j.GetRegistered() || !strings.Contains(j.GetError(), full) {
			t.Errorf("a job started on a full disk: %v; want FAILED saying %q, nothing registered", j, full)
		}
	}
	if after := c.versions(t); after != before {
		t.Errorf("the versions changed on a full disk: %s -> %s", before, after)
	}
	if got := c.serving(t); got != active {
		t.Errorf("Predict names %s on a full disk; want %s", got, active)
	}
	load.end(t)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	stopServe(t, p)
	checkRegistryFile(t, dataDir)
	q := startServe(t, dataDir)
	c = dialReady(t, q)
	if after := c.versions(t); after != before {
		t.Errorf("after the restart the versions are %s; want %s", after, before)
	}
	if got := c.serving(t); got != active {
		t.Errorf("after the restart Predict names %s; want %s", got, active)
	}
	got, err := c.training.GetJob(ctx, &recommendationv1.GetJobRequest{Id: job.GetId()})
	if j := got.GetJob(); err != nil || j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || j.GetRegistered() {
		t.Errorf("the job after the restart: %v, %v; want FAILED, nothing registered", j, err)
	}
	job, err = c.startJob(ctx, 3000, 2, "v1.4.0")
	if err != nil {
		t.Fatalf("StartTraining after the disk was freed: %v", err)
	}
	if j := c.waitJob(t, job.GetId(), true); j.GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || !j.GetRegistered() {
		t.Errorf("a job after the disk was freed: %v; want SUCCEEDED and registered", j)
	}
	if got := c.serving(t); got != "v1.4.0" {
		t.Errorf("after the job (policy always) Predict names %s; want v1.4.0", got)
	}
	if t.Failed() {
		t.Logf("first server's log:\n%s", p.stderr.String())
	}
}
