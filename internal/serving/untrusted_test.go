package serving

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// externalDataModel is v1.9.0 of the default model's weights with
// initializer layer0.bias stored in "secret.bin", relative to the reader's
// working directory (internal/onnxfile's TestTestdata writes it).
const externalDataModel = "../onnxfile/testdata/external_data_v1.9.0.onnx"

// watchOpens returns a function that drains and describes the IN_OPEN and
// IN_ACCESS events on path ("" when there were none).
func watchOpens(t *testing.T, path string) func() string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify_init1: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", path, err)
	}
	return func() string {
		var out []string
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) || n <= 0 {
				return strings.Join(out, " ")
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; { // wd, mask, cookie, len, name[len]
				mask, l := binary.NativeEndian.Uint32(buf[off+4:]), int(binary.NativeEndian.Uint32(buf[off+12:]))
				out = append(out, fmt.Sprintf("mask %#x", mask))
				off += unix.SizeofInotifyEvent + l
			}
		}
	}
}

// TestNewSession_ExternalDataOpensNothing: a model whose initializer names
// a file beside the server is refused, and the file is never opened — by
// NewSession (the evaluate and validate commands) or by Manager.Load (every
// registration and activation). ONNX Runtime would read the initializer
// from the file and serve answers computed from it.
func TestNewSession_ExternalDataOpensNothing(t *testing.T) {
	initORT(t)
	b, err := os.ReadFile(externalDataModel)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.bin")
	if err := os.WriteFile(secret, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // ONNX Runtime resolves the location from the working directory
	events := watchOpens(t, secret)

	s, err := NewSession(b, SessionOptions{})
	if s != nil {
		s.Close()
	}
	const want = `model graph: initializer "layer0.bias" uses external data; only embedded tensors are accepted`
	if msg, _ := model.PublicMessage(err); !errors.Is(err, model.ErrInvalidModel) || msg != want {
		t.Errorf("NewSession = %v (public %q); want ErrInvalidModel saying %q", err, msg, want)
	}

	m := NewManager(Options{})
	defer m.Close()
	man := manifestFor(onnxfile.RandomMLP(1), model.MustParseVersion("v1.9.0"), b)
	checkStepError(t, m.Load(b, man), "check graph", model.ErrInvalidModel)

	if ev := events(); ev != "" {
		t.Errorf("%s was opened: %s", secret, ev)
	}
	if _, err := os.ReadFile(secret); err != nil || events() == "" { // the watch works
		t.Fatalf("reading %s ourselves raised no event (%v)", secret, err)
	}
}

// TestManagerLoad_GoldenHidesAnswers: a golden mismatch tells the client
// the step, row and output, not the model's answer; the log (Error) has it.
func TestManagerLoad_GoldenHidesAnswers(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	q := onnxfile.RandomMLP(2)
	b, man := versionOf(t, q, "v1.9.0")
	man.Golden.Outputs[1][2] += 0.25
	err := m.Load(b, man)
	checkStepError(t, err, "golden rows", model.ErrGoldenMismatch)
	got := q.Forward(man.Golden.Inputs[1], 1)[2]
	msg, _ := model.PublicMessage(err)
	for _, v := range []float32{got, man.Golden.Outputs[1][2]} {
		s := strconv.FormatFloat(float64(v), 'g', -1, 32)
		if strings.Contains(msg, s) {
			t.Errorf("public message %q holds the value %s", msg, s)
		}
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Error %q lacks the value %s the log needs", err, s)
		}
	}
	if want := "load v1.9.0: golden rows: golden rows mismatch: row 1 output mem_request"; !strings.HasPrefix(msg, want) {
		t.Errorf("public message %q; want it to start %q", msg, want)
	}
}

// TestAgrees: ONNX Runtime's answers are compared with the pure-Go forward
// pass of the weights the server decoded; a session of other weights fails
// the comparison, without values in the public message.
func TestAgrees(t *testing.T) {
	t.Parallel()
	initORT(t)
	q, b := encodeModel(t, 1)
	s := newSession(t, b)
	x := rows(4, 3)
	if err := agrees(s, q, x, 3, model.NumFeatures); err != nil {
		t.Fatalf("agrees(own weights) = %v", err)
	}
	err := agrees(s, onnxfile.RandomMLP(2), x, 3, model.NumFeatures)
	if !errors.Is(err, model.ErrGoldenMismatch) {
		t.Fatalf("agrees(other weights) = %v; want ErrGoldenMismatch", err)
	}
	msg, ok := model.PublicMessage(err)
	if !ok || strings.ContainsAny(strings.TrimSuffix(msg, "0.0001"), "0123456789") {
		t.Errorf("public message %q (%v); want the reason and the tolerance, no values", msg, ok)
	}
}
