package main

// Start-up failures of the real binary: each exits non-zero with one line on
// stderr naming the cause, and no panic.

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	base := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
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
