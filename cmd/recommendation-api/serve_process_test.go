package main

// The real binary's process life: start-up failures (each exits non-zero
// with one line on stderr naming the cause, and no panic) and a shutdown
// bounded by --shutdown-timeout.

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/serving"
)

// startFailure runs the binary's serve with args (loopback ports unless
// args set them) and returns its stderr, checking that it exits 1 within
// waitFor with exactly one line and no panic.
func startFailure(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitFor):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("serve did not exit within %v; stderr:\n%s", waitFor, stderr.String())
	}
	out := stderr.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("serve exited with %v; want exit code 1; stderr:\n%s", err, out)
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
		t.Fatalf("stderr has a panic:\n%s", out)
	}
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 1 || out == "" {
		t.Errorf("stderr has %d lines; want exactly one:\n%s", len(lines), out)
	}
	return out
}

func serveCmd(args ...string) *exec.Cmd {
	base := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--token-file", processTokenFile()}
	return exec.Command(binPath, append(base, args...)...)
}

func wantIn(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("stderr %q does not say %q", out, p)
		}
	}
}

// asOtherUser makes cmd run as a user who is not the owner of the test's
// files: as root, nobody (the binary and ONNX Runtime must be readable by
// it); otherwise it returns false, and the caller uses file modes instead.
func asOtherUser(t *testing.T, cmd *exec.Cmd) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("running as root and there is no user nobody to run the server as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(filepath.Dir(binPath), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{binPath, os.Getenv(serving.LibraryEnv)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o004 == 0 {
			t.Skipf("%s is not readable by nobody, so the server cannot run as nobody", p)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return true
}

// worldDir is a directory under the system temporary directory that any
// user can reach (t.TempDir's parents are private to the test's user).
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "reco-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(d, 0o755); os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestServeStartFailures(t *testing.T) {
	needORT(t)
	t.Parallel()

	t.Run("RESTPortInUse", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out := startFailure(t, serveCmd("--data-dir", t.TempDir(), "--http-addr", l.Addr().String()))
		wantIn(t, out, "serve: REST listener "+l.Addr().String()+": address already in use", "--http-addr")
	})
	t.Run("GRPCPortInUse", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out := startFailure(t, serveCmd("--data-dir", t.TempDir(), "--grpc-addr", l.Addr().String()))
		wantIn(t, out, "serve: gRPC listener "+l.Addr().String()+": address already in use", "--grpc-addr")
	})
	t.Run("SecondServerOnDataDir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		first, _ := startBinary(t, dir)
		out := startFailure(t, serveCmd("--data-dir", dir))
		wantIn(t, out, "serve: registry "+filepath.Join(dir, "registry.db")+" is locked by another process (pid "+strconv.Itoa(first.Process.Pid)+")",
			"is another server running on this data directory?")
	})
	t.Run("NoONNXRuntime", func(t *testing.T) {
		t.Parallel()
		lib := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
		out := startFailure(t, serveCmd("--data-dir", t.TempDir(), "--onnxruntime-lib", lib))
		wantIn(t, out, "ONNX Runtime", lib, "ONNXRUNTIME_LIB")
	})
	t.Run("DataDirNotWritable", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(worldDir(t), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := serveCmd("--data-dir", dir)
		if !asOtherUser(t, cmd) {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		out := startFailure(t, cmd)
		wantIn(t, out, "serve: data directory "+dir+" is not writable by this process", "--data-dir")
	})
	t.Run("DataDirCannotBeCreated", func(t *testing.T) {
		t.Parallel()
		parent := worldDir(t)
		dir := filepath.Join(parent, "a", "data")
		cmd := serveCmd("--data-dir", dir)
		if !asOtherUser(t, cmd) {
			if err := os.Chmod(parent, 0o555); err != nil {
				t.Fatal(err)
			}
		}
		out := startFailure(t, cmd)
		wantIn(t, out, "serve: data directory "+dir+" cannot be created: permission denied")
	})
	t.Run("RegistryFileNotOurs", func(t *testing.T) {
		t.Parallel()
		dir := worldDir(t)
		path := filepath.Join(dir, "registry.db")
		store, err := registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		store.Close()
		cmd := serveCmd("--data-dir", dir)
		if !asOtherUser(t, cmd) {
			if err := os.Chmod(path, 0o000); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, 0o777); err != nil { // the directory is writable: only the file is refused
			t.Fatal(err)
		}
		out := startFailure(t, cmd)
		wantIn(t, out, "serve: registry "+path+" cannot be opened for reading and writing by this process", "the file is owned by uid")
	})
}

// serveProcess is the binary's serve running in a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	http   string        // REST address
	grpc   string        // gRPC address
	exited chan struct{} // closed when it has exited; err is then set
	err    error
}

// startServe runs serve on dataDir with extra flags (text logs) and waits
// until it listens. It is killed at the end of the test if still running.
func startServe(t *testing.T, dataDir string, extra ...string) *serveProcess {
	t.Helper()
	args := []string{"serve", "--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text", "--insecure-no-auth"}
	p := &serveProcess{cmd: exec.Command(binPath, append(args, extra...)...), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.exited })
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.grpc, p.http = m[1], m[2]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("serve exited before listening: %v; stderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not report its addresses; stderr:\n%s", p.stderr.String())
		}
	}
}

// TestShutdownDeadlineWithStuckJob: SIGTERM while a training job is blocked
// in a read that does not heed its context (a trace file that never
// delivers data: a FIFO nobody writes, as a hung network mount would be).
// The process still exits once --shutdown-timeout has passed, saying why,
// and after a restart the job reads FAILED "interrupted".
func TestShutdownDeadlineWithStuckJob(t *testing.T) {
	needORT(t)
	t.Parallel()
	dataDir, traceDir := t.TempDir(), t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(traceDir, "stuck.csv"), 0o600); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	const timeout = 2 * time.Second
	p := startServe(t, dataDir, "--trace-dir", traceDir, "--shutdown-timeout", timeout.String())
	base := "http://" + p.http
	c := &http.Client{Timeout: 10 * time.Second}
	var started recommendationv1.StartTrainingResponse
	if code := restJSON(t, c, http.MethodPost, base+"/v1/training-jobs",
		`{"traces":["stuck.csv"],"trace_format":"generic","epochs":2,"bump":"patch"}`, &started); code != http.StatusOK {
		t.Fatalf("start = %d", code)
	}
	id := started.GetJob().GetId()
	for deadline := time.Now().Add(waitFor); ; time.Sleep(20 * time.Millisecond) {
		var got recommendationv1.GetJobResponse
		restJSON(t, c, http.MethodGet, base+"/v1/training-jobs/"+id, "", &got)
		if got.GetJob().GetState() == recommendationv1.JobState_JOB_STATE_RUNNING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran: %v", got.GetJob())
		}
	}
	// RUNNING comes before the job opens the trace: wait until it is
	// blocked on the FIFO (a non-blocking open for writing succeeds only
	// once a reader has it open), and keep that writer open without writing,
	// so the job's read blocks rather than seeing end of file.
	fifo := filepath.Join(traceDir, "stuck.csv")
	for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
		fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			t.Cleanup(func() { syscall.Close(fd) })
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job never opened %s: %v", fifo, err)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A hang guard: without the deadline the process never exits.
	select {
	case <-p.exited:
	case <-time.After(timeout + waitFor):
		t.Fatalf("the server did not exit after SIGTERM with a stuck job (--shutdown-timeout %v); stderr:\n%s", timeout, p.stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit = %v; want exit code 1 (the shutdown was incomplete)", p.err)
	}
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "did not stop within --shutdown-timeout "+timeout.String()) {
		t.Errorf("last stderr line %q; want it to say the job worker did not stop within the timeout", last)
	}

	q := startServe(t, dataDir, "--trace-dir", traceDir)
	var got recommendationv1.GetJobResponse
	if code := restJSON(t, c, http.MethodGet, "http://"+q.http+"/v1/training-jobs/"+id, "", &got); code != http.StatusOK {
		t.Fatalf("GET job after restart = %d", code)
	}
	if j := got.GetJob(); j.GetState() != recommendationv1.JobState_JOB_STATE_FAILED || !strings.HasPrefix(j.GetError(), "interrupted") || j.GetRegistered() {
		t.Fatalf("job after restart = %v; want FAILED, interrupted, nothing registered", j)
	}
}
