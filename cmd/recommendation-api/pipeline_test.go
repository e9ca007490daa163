package main

// End-to-end tests of the model pipeline subcommands (generate-data, train,
// validate, export) through run, the same entry point main uses, plus a few
// checks of the built binary's exit codes and stderr.

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"recommendation-api/internal/leakcheck"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/trainer"
)

// Small enough for `go test -race` on two busy cores.
const (
	testSamples     = "3000"
	testEpochs      = "3"
	testEvalSamples = "1000"
	testValSamples  = "1000"
)

// binPath is the recommendation-api command built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// The binary runs in temporary directories, where the walk up to
	// .tools/lib cannot find ONNX Runtime; name the library explicitly.
	if os.Getenv(serving.LibraryEnv) == "" {
		if p, err := filepath.Abs(filepath.Join("..", "..", ".tools", "lib", "libonnxruntime.so.1")); err == nil {
			if _, err := os.Stat(p); err == nil {
				os.Setenv(serving.LibraryEnv, p)
			}
		}
	}
	dir, err := os.MkdirTemp("", "recommendation-api-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "recommendation-api")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// Every in-process server a test started is stopped: no goroutine
		// and no ONNX Runtime session outlives the tests.
		if err := leakcheck.Check(); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			return 1
		}
	}
	return code
}

// needORT skips tests that load the model into ONNX Runtime when the library
// is not installed (`make deps`).
func needORT(t *testing.T) {
	t.Helper()
	p := os.Getenv(serving.LibraryEnv)
	if p == "" {
		t.Skipf("%s is not set and .tools/lib has no ONNX Runtime; run scripts/install-onnxruntime.sh", serving.LibraryEnv)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("ONNX Runtime library: %v", err)
	}
}

// runCmd runs the command line in-process and returns its stdout and error.
// stderr (flag usage) is logged when the test fails.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", args[0], stderr.String())
	}
	return stdout.String(), err
}

// mustRun runs the command line and fails the test on an error.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func generate(t *testing.T, path string, seed string) {
	t.Helper()
	mustRun(t, "generate-data", "--major", "1", "--samples", testSamples, "--seed", seed, "--output", path)
}

func train(t *testing.T, data, out, version, seed string) string {
	t.Helper()
	return mustRun(t, "train", "--data", data, "--output", out, "--version", version, "--seed", seed,
		"--epochs", testEpochs, "--eval-samples", testEvalSamples)
}

// checkFailure checks that err is a one-line error with the wanted exit
// code that contains every one of want.
func checkFailure(t *testing.T, err error, code int, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error; want one containing %q", want)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	if got := exitCode(err); got != code {
		t.Errorf("exit code %d; want %d (error %q)", got, code, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

// snapshot lists every file (dotfiles included) under root with its sha256.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			files[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = model.SHA256Hex(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkUnchanged fails when root's files differ from before.
func checkUnchanged(t *testing.T, root string, before map[string]string) {
	t.Helper()
	after := snapshot(t, root)
	for name, h := range after {
		if b, ok := before[name]; !ok {
			t.Errorf("%s was written", name)
		} else if b != h {
			t.Errorf("%s was changed", name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("%s was removed", name)
		}
	}
}

func readManifest(t *testing.T, path string) *model.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.ParseManifest(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func TestPipeline(t *testing.T) {
	needORT(t)
	t.Parallel()
	root := t.TempDir()
	data := filepath.Join(root, "data.npz")
	models := filepath.Join(root, "models")
	exported := filepath.Join(root, "exported")

	out := mustRun(t, "generate-data", "--major", "1", "--samples", testSamples, "--seed", "3", "--output", data)
	if !strings.Contains(out, "wrote 3000 major-1 samples") {
		t.Errorf("generate-data stdout %q; want \"wrote 3000 major-1 samples\"", out)
	}

	out = train(t, data, models, "v1.0.0", "1")
	t.Run("TrainOutput", func(t *testing.T) {
		epochs := regexp.MustCompile(`(?m)^epoch +\d+/3 +loss [0-9.]+ +val [0-9.]+`).FindAllString(out, -1)
		if len(epochs) < 1 || len(epochs) > 3 {
			t.Errorf("got %d epoch progress lines; want 1..3 in:\n%s", len(epochs), out)
		}
		for _, want := range []string{
			"training v1.0.0 on 3000 samples of 12 features",
			"v1.0.0: 1029 parameters",
			"held-out set: 1000 samples",
			"wrote predictor_v1.0.0.onnx, predictor.onnx and manifest.json",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("train stdout lacks %q:\n%s", want, out)
			}
		}
	})
	checkModelDir(t, models)

	active := filepath.Join(models, "predictor.onnx")
	t.Run("ValidateIntegrity", func(t *testing.T) {
		out := mustRun(t, "validate", "--model", active, "--samples", testValSamples, "--baseline-gates=false")
		if !strings.Contains(out, "all gates passed") {
			t.Errorf("validate stdout lacks \"all gates passed\":\n%s", out)
		}
		for _, g := range []string{"checksum", "signature", "golden-rows", "ort-vs-go", "int8-vs-float"} {
			if !regexp.MustCompile(`(?m)^  PASS  ` + regexp.QuoteMeta(g) + ` `).MatchString(out) {
				t.Errorf("validate stdout lacks a PASS line for gate %s:\n%s", g, out)
			}
		}
	})
	t.Run("ValidateBaselineGates", func(t *testing.T) {
		// A 3-epoch model may or may not beat the VPA baseline; when it
		// does not, the error must name the first failed gate.
		out, err := runCmd(t, "validate", "--model", active, "--samples", testValSamples)
		if err == nil {
			if !strings.Contains(out, "all gates passed") {
				t.Errorf("validate succeeded without \"all gates passed\":\n%s", out)
			}
			return
		}
		checkFailure(t, err, 1, "validate: ", `gate "`, "failed")
		name := regexp.MustCompile(`gate "([^"]+)"`).FindStringSubmatch(err.Error())
		if name == nil || !strings.Contains(out, "FAIL  "+name[1]) {
			t.Errorf("error %q names a gate stdout does not show as FAIL:\n%s", err, out)
		}
	})
	t.Run("ValidateOnTraces", func(t *testing.T) {
		// On the held-out containers of a trace: five more gates, each
		// printed; validate fails exactly when an enforced one does.
		out, err := runCmd(t, "validate", "--model", active, "--samples", testValSamples, "--baseline-gates=false", "--trace", genericTrace(t))
		if !strings.Contains(out, "held-out real containers: 1 generic trace files, 2 of 4 containers held out, ") {
			t.Errorf("validate stdout lacks the held-out trace summary:\n%s", out)
		}
		for _, g := range []string{"real-oom", "real-slack-upper-bound", "real-slack-target", "real-fallback", "real-cpu"} {
			if !regexp.MustCompile(`(?m)^  (PASS|FAIL|MISS|info)  ` + regexp.QuoteMeta(g) + ` `).MatchString(out) {
				t.Errorf("validate stdout lacks a line for gate %s:\n%s", g, out)
			}
		}
		if failed := strings.Contains(out, "\n  FAIL  "); failed != (err != nil) {
			t.Errorf("a gate failed: %v, but validate returned %v:\n%s", failed, err, out)
		}
		// A shorter history than the model's window, and one that is not a single length.
		out, _ = runCmd(t, "validate", "--model", active, "--samples", testValSamples, "--baseline-gates=false", "--history", "1d", "--trace", genericTrace(t))
		if !strings.Contains(out, "at a 1d history (the model's window: 2d)") {
			t.Errorf("validate --history 1d stdout lacks the history it replayed:\n%s", out)
		}
		var u usageError
		if _, err := runCmd(t, "validate", "--model", active, "--history", "7d,2d", "--trace", genericTrace(t)); !errors.As(err, &u) {
			t.Errorf("validate --history 7d,2d: err = %v; want a usage error", err)
		}
	})
	t.Run("ValidateVersionedFile", func(t *testing.T) {
		mustRun(t, "validate", "--model", filepath.Join(models, "predictor_v1.0.0.onnx"), "--samples", testValSamples, "--baseline-gates=false")
	})

	t.Run("Export", func(t *testing.T) {
		out := mustRun(t, "export", "--model", active, "--output", exported)
		if !strings.Contains(out, "exported v1.0.0") {
			t.Errorf("export stdout %q; want \"exported v1.0.0\"", out)
		}
		checkModelDir(t, exported)
		for _, name := range []string{"predictor_v1.0.0.onnx", "predictor.onnx", "manifest.json", "manifest_v1.0.0.json"} {
			src, err := os.ReadFile(filepath.Join(models, name))
			if err != nil {
				t.Fatal(err)
			}
			dst, err := os.ReadFile(filepath.Join(exported, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(src, dst) {
				t.Errorf("exported %s differs from the trained one", name)
			}
		}
		// Exporting the same model again is not a conflict.
		mustRun(t, "export", "--model", active, "--output", exported)
		mustRun(t, "validate", "--model", filepath.Join(exported, "predictor.onnx"), "--samples", testValSamples, "--baseline-gates=false")
	})
}

// checkModelDir checks the four files of v1.0.0 in dir.
func checkModelDir(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"predictor_v1.0.0.onnx", "predictor.onnx", "manifest.json", "manifest_v1.0.0.json"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("missing: %v", err)
			continue
		}
		if st.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s has mode %v; want readable by the server's user (0644)", name, st.Mode().Perm())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "predictor.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= 100<<10 {
		t.Errorf("predictor.onnx is %d bytes; want < 100 KB", len(b))
	}
	versioned, err := os.ReadFile(filepath.Join(dir, "predictor_v1.0.0.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, versioned) {
		t.Error("predictor.onnx differs from predictor_v1.0.0.onnx")
	}
	sum := sha256.Sum256(b)
	for _, name := range []string{"manifest.json", "manifest_v1.0.0.json"} {
		m := readManifest(t, filepath.Join(dir, name))
		if got, want := m.Version.String(), "v1.0.0"; got != want {
			t.Errorf("%s: version %s; want %s", name, got, want)
		}
		if got, want := m.Architecture.Parameters, 1029; got != want {
			t.Errorf("%s: parameters %d; want %d", name, got, want)
		}
		if got, want := m.Model.SHA256, hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s; want %s (the file's)", name, got, want)
		}
		if got, want := m.Model.SizeBytes, int64(len(b)); got != want {
			t.Errorf("%s: size_bytes %d; want %d", name, got, want)
		}
		if got, want := m.Model.File, "predictor_v1.0.0.onnx"; got != want {
			t.Errorf("%s: file %q; want %q", name, got, want)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.npz"), filepath.Join(dir, "b.npz"), filepath.Join(dir, "c.npz")
	generate(t, a, "5")
	generate(t, b, "5")
	generate(t, c, "6")
	ab, bb, cb := readFile(t, a), readFile(t, b), readFile(t, c)
	if !bytes.Equal(ab, bb) {
		t.Error("generate-data with the same seed wrote different bytes")
	}
	if bytes.Equal(ab, cb) {
		t.Error("generate-data with seeds 5 and 6 wrote the same bytes")
	}
}

func TestTrainDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data.npz")
	generate(t, data, "5")
	train(t, data, filepath.Join(dir, "a"), "v1.0.0", "9")
	train(t, data, filepath.Join(dir, "b"), "v1.0.0", "9")
	a := readFile(t, filepath.Join(dir, "a", "predictor.onnx"))
	b := readFile(t, filepath.Join(dir, "b", "predictor.onnx"))
	if !bytes.Equal(a, b) {
		t.Errorf("train with the same data and seed wrote different models: sha256 %s and %s", model.SHA256Hex(a), model.SHA256Hex(b))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateDataBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		samples string
		want    []string
	}{
		{"ErrZeroSamples", "0", []string{"generate-data", "--samples 0", "1..10000000"}},
		{"ErrNegativeSamples", "-5", []string{"generate-data", "--samples -5"}},
		{"ErrTooManySamples", "10000001", []string{"--samples 10000001"}},
		{"ErrNonNumeric", "lots", []string{`"lots"`, "-samples"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			before := snapshot(t, dir)
			_, err := runCmd(t, "generate-data", "--samples", tt.samples, "--output", filepath.Join(dir, "out.npz"))
			checkFailure(t, err, 2, tt.want...)
			checkUnchanged(t, dir, before)
		})
	}
}

// npyFile is one array of a hand-written .npz.
type npyFile struct {
	name, descr, shape string
	data               []byte
}

// writeNPZ writes arrays as np.savez would: an uncompressed zip of .npy
// version 1.0 files.
func writeNPZ(t *testing.T, path string, arrays ...npyFile) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, a := range arrays {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", a.descr, a.shape)
		total := (10 + len(dict) + 1 + 63) / 64 * 64
		h := append([]byte("\x93NUMPY\x01\x00"), 0, 0)
		binary.LittleEndian.PutUint16(h[8:], uint16(total-10))
		h = append(h, dict...)
		for len(h) < total-1 {
			h = append(h, ' ')
		}
		h = append(h, '\n')
		if _, err := w.Write(append(h, a.data...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// float32s is n little-endian float32 copies of v.
func float32s(n int, v float32) []byte {
	b := make([]byte, 0, 4*n)
	for range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestTrainBadInput(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	good := filepath.Join(root, "good.npz")
	generate(t, good, "5")
	goodBytes := readFile(t, good)

	truncated := filepath.Join(root, "truncated.npz")
	if err := os.WriteFile(truncated, goodBytes[:len(goodBytes)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 10
	wrongShape := filepath.Join(root, "wrong-shape.npz")
	writeNPZ(t, wrongShape,
		npyFile{"X", "<f4", fmt.Sprintf("(%d, 11)", n), float32s(n*11, 0.5)},
		npyFile{"Y", "<f4", fmt.Sprintf("(%d, 5)", n), float32s(n*5, 0.5)},
		npyFile{"workload", "<i4", fmt.Sprintf("(%d,)", n), make([]byte, 4*n)},
	)
	noY := filepath.Join(root, "no-y.npz")
	writeNPZ(t, noY,
		npyFile{"X", "<f4", fmt.Sprintf("(%d, 12)", n), float32s(n*12, 0.5)},
		npyFile{"workload", "<i4", fmt.Sprintf("(%d,)", n), make([]byte, 4*n)},
	)

	for _, tt := range []struct {
		name  string
		args  []string
		code  int
		is    error
		wants []string
	}{
		{"ErrMissingFile", []string{"--data", filepath.Join(root, "missing.npz")}, 1, model.ErrInvalidData,
			[]string{"missing.npz", "cannot open"}},
		{"ErrTruncated", []string{"--data", truncated}, 1, model.ErrInvalidData,
			[]string{"truncated.npz", "truncated or corrupt"}},
		{"ErrWrongShape", []string{"--data", wrongShape}, 1, model.ErrInvalidData,
			[]string{"wrong-shape.npz", "array X", "shape", "(N, 12)"}},
		{"ErrMissingArray", []string{"--data", noY}, 1, model.ErrInvalidData,
			[]string{"no-y.npz", `no array "Y"`}},
		{"ErrVersionWithoutV", []string{"--data", good, "--version", "1.0"}, 2, model.ErrInvalidVersion,
			[]string{"--version", `"1.0"`}},
		{"ErrVersionPrerelease", []string{"--data", good, "--version", "v1.0.0-rc1"}, 2, model.ErrInvalidVersion,
			[]string{"--version", `"v1.0.0-rc1"`}},
		{"ErrVersionLeadingZero", []string{"--data", good, "--version", "v01.0.0"}, 2, model.ErrInvalidVersion,
			[]string{"--version", `"v01.0.0"`, "leading zero"}},
		{"ErrEpochs", []string{"--data", good, "--epochs", "0"}, 2, nil,
			[]string{"--epochs 0"}},
		{"ErrEnsembleZero", []string{"--data", good, "--ensemble", "0"}, 2, nil,
			[]string{"--ensemble 0", "want 1..16"}},
		{"ErrEnsembleLarge", []string{"--data", good, "--ensemble", "17"}, 2, nil,
			[]string{"--ensemble 17", "want 1..16"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, root)
			args := append([]string{"train", "--output", filepath.Join(root, "models"), "--epochs", testEpochs,
				"--eval-samples", testEvalSamples}, tt.args...)
			_, err := runCmd(t, args...)
			checkFailure(t, err, tt.code, append([]string{"train: "}, tt.wants...)...)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
			checkUnchanged(t, root, before)
		})
	}

	t.Run("ErrVersionExists", func(t *testing.T) {
		out := filepath.Join(root, "existing")
		train(t, good, out, "v1.0.0", "1")
		before := snapshot(t, root)
		_, err := runCmd(t, "train", "--data", good, "--output", out, "--version", "v1.0.0", "--seed", "2", "--epochs", testEpochs)
		checkFailure(t, err, 1, "v1.0.0", "already exists")
		if !errors.Is(err, model.ErrVersionExists) {
			t.Errorf("error %q does not wrap %q", err, model.ErrVersionExists)
		}
		checkUnchanged(t, root, before)
	})
}

// trainedModel generates data and trains v1.0.0 into root/dir.
func trainedModel(t *testing.T, root, dir, seed string) string {
	t.Helper()
	data := filepath.Join(root, "data.npz")
	if _, err := os.Stat(data); err != nil {
		generate(t, data, "5")
	}
	out := filepath.Join(root, dir)
	train(t, data, out, "v1.0.0", seed)
	return out
}

func TestValidateBadModel(t *testing.T) {
	needORT(t)
	t.Parallel()
	root := t.TempDir()
	good := trainedModel(t, root, "good", "1")

	t.Run("ErrNotONNX", func(t *testing.T) {
		// Random bytes with a manifest whose checksum matches them: the
		// checksum passes, decoding must not.
		dir := filepath.Join(root, "corrupt")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 3000)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		path := filepath.Join(dir, "predictor.onnx")
		if err := os.WriteFile(path, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		m := readManifest(t, filepath.Join(good, "manifest.json"))
		m.Model.SHA256, m.Model.SizeBytes = model.SHA256Hex(junk), int64(len(junk))
		mj, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root)
		_, err = runCmd(t, "validate", "--model", path, "--samples", testValSamples, "--baseline-gates=false")
		checkFailure(t, err, 1, "validate: ", path, "ONNX")
		if !errors.Is(err, model.ErrInvalidModel) {
			t.Errorf("error %q does not wrap %q", err, model.ErrInvalidModel)
		}
		// export refuses it too.
		_, err = runCmd(t, "export", "--model", path, "--output", filepath.Join(root, "exported"))
		checkFailure(t, err, 1, "export: ", path, "ONNX")
		checkUnchanged(t, root, before)
	})

	t.Run("ErrChecksumMismatch", func(t *testing.T) {
		dir := filepath.Join(root, "flipped")
		copyDir(t, good, dir)
		path := filepath.Join(dir, "predictor.onnx")
		b := readFile(t, path)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root)
		_, err := runCmd(t, "validate", "--model", path, "--samples", testValSamples, "--baseline-gates=false")
		checkFailure(t, err, 1, "validate: ", path, "checksum")
		if !errors.Is(err, model.ErrChecksumMismatch) {
			t.Errorf("error %q does not wrap %q", err, model.ErrChecksumMismatch)
		}
		_, err = runCmd(t, "export", "--model", path, "--output", filepath.Join(root, "exported"))
		checkFailure(t, err, 1, "export: ", "checksum")
		checkUnchanged(t, root, before)
	})

	t.Run("ErrMissingManifest", func(t *testing.T) {
		dir := filepath.Join(root, "alone")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "predictor.onnx")
		if err := os.WriteFile(path, readFile(t, filepath.Join(good, "predictor.onnx")), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runCmd(t, "validate", "--model", path, "--samples", testValSamples)
		checkFailure(t, err, 1, "validate: ", "manifest")
	})

	t.Run("ManifestArchitecture", func(t *testing.T) {
		// A manifest whose architecture is not the file's fails the
		// architecture gate, which names both fields.
		dir := filepath.Join(root, "misdescribed")
		copyDir(t, good, dir)
		m := readManifest(t, filepath.Join(dir, "manifest.json"))
		m.Architecture.Layers = append([]int(nil), m.Architecture.Layers...)
		m.Architecture.Layers[1] *= 2
		m.Architecture.Parameters++
		mj, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runCmd(t, "validate", "--model", filepath.Join(dir, "predictor.onnx"), "--samples", testValSamples, "--baseline-gates=false")
		if err == nil {
			t.Fatal("validate passed a manifest that misdescribes the network")
		}
		for _, want := range []string{"FAIL  architecture", "architecture.layers", "architecture.parameters"} {
			if !strings.Contains(out, want) {
				t.Errorf("validate output lacks %q:\n%s", want, out)
			}
		}
		// The server loads a manifest that leaves the architecture out;
		// validate, the release check, wants it declared.
		m.Architecture.Layers, m.Architecture.Parameters = nil, 0
		if mj, err = json.MarshalIndent(m, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err = runCmd(t, "validate", "--model", filepath.Join(dir, "predictor.onnx"), "--samples", testValSamples, "--baseline-gates=false")
		if err == nil || !strings.Contains(out, "FAIL  architecture") || !strings.Contains(out, "declares no layers") {
			t.Errorf("validate of a manifest without its architecture: err %v, output:\n%s", err, out)
		}
	})

	t.Run("ErrSamples", func(t *testing.T) {
		_, err := runCmd(t, "validate", "--model", filepath.Join(good, "predictor.onnx"), "--samples", "10")
		checkFailure(t, err, 2, "--samples 10")
	})
}

func TestExportRefusesOtherModelOfSameVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a := trainedModel(t, root, "a", "1")
	b := trainedModel(t, root, "b", "2")
	if bytes.Equal(readFile(t, filepath.Join(a, "predictor.onnx")), readFile(t, filepath.Join(b, "predictor.onnx"))) {
		t.Fatal("seeds 1 and 2 trained the same model; the test needs two different ones")
	}
	before := snapshot(t, root)
	_, err := runCmd(t, "export", "--model", filepath.Join(a, "predictor.onnx"), "--output", b)
	checkFailure(t, err, 1, "export: ", "v1.0.0", "predictor_v1.0.0.onnx")
	if !errors.Is(err, model.ErrVersionExists) {
		t.Errorf("error %q does not wrap %q", err, model.ErrVersionExists)
	}
	checkUnchanged(t, root, before)
}

func TestExportMissingOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := runCmd(t, "export", "--model", filepath.Join(dir, "predictor.onnx"))
	checkFailure(t, err, 2, "export: ", "--output")
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("export wrote %v", entries)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		out := mustRun(t, "help")
		for _, c := range commands() {
			if !strings.Contains(out, "  "+c.name+" ") {
				t.Errorf("help does not list %s:\n%s", c.name, out)
			}
		}
	})
	t.Run("ErrUnknownCommand", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"trian"}, &stdout, &stderr)
		checkFailure(t, err, 2, `unknown command "trian"`)
		if stdout.Len() > 0 {
			t.Errorf("unknown command wrote to stdout: %q", stdout.String())
		}
		if !strings.Contains(stderr.String(), "generate-data") {
			t.Errorf("unknown command's usage on stderr does not list commands:\n%s", stderr.String())
		}
	})
	t.Run("FlagHelp", func(t *testing.T) {
		for _, c := range []string{"generate-data", "train", "validate", "export"} {
			_, err := runCmd(t, c, "-h")
			if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 2 {
				t.Errorf("%s -h: error %v, exit code %d; want flag.ErrHelp and 2", c, err, exitCode(err))
			}
		}
	})
}

// TestHelpBinary checks the built binary's exit codes and that a failure is
// one line on stderr.
func TestHelpBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring
		stderr string // the whole of stderr, a regexp
	}{
		{"OK", []string{"help"}, 0, "  validate ", `^$`},
		{"ErrUnknownCommand", []string{"frobnicate"}, 2, "", `(?s)^usage: .*\nrecommendation-api: unknown command "frobnicate"\n$`},
		{"ErrZeroSamples", []string{"generate-data", "--samples", "0", "--output", filepath.Join(dir, "x.npz")}, 2, "",
			`^recommendation-api: generate-data: --samples 0; want 1\.\.10000000\n$`},
		{"ErrMissingData", []string{"train", "--data", filepath.Join(dir, "missing.npz"), "--output", filepath.Join(dir, "models")}, 1, "",
			`^recommendation-api: train: invalid training data: [^\n]*missing\.npz: cannot open[^\n]*\n$`},
		{"ErrBadVersion", []string{"train", "--version", "v1.0", "--output", filepath.Join(dir, "models")}, 2, "",
			`^recommendation-api: train: --version: invalid version "v1\.0"[^\n]*\n$`},
		{"ErrExportNoOutput", []string{"export"}, 2, "", `^recommendation-api: export: --output is required\n$`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), binPath, tt.args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d; want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q; want it to contain %q", stdout.String(), tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr.String()) {
				t.Errorf("stderr %q; want it to match %q", stderr.String(), tt.stderr)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		slices.Sort(names)
		t.Errorf("failed commands wrote %v", names)
	}
}

// TestPipelineMajor2 runs generate-data, train, validate and export for
// major 2: 16 features from a 7-day history, the headroom head (no answer
// has a request above its limit), ONNX Runtime agreeing with the Go forward
// pass, and a version whose major does not match the data refused.
func TestPipelineMajor2(t *testing.T) {
	needORT(t)
	t.Parallel()
	root := t.TempDir()
	data := filepath.Join(root, "data.npz")
	models := filepath.Join(root, "models")
	out := mustRun(t, "generate-data", "--major", "2", "--samples", testSamples, "--seed", "3", "--output", data)
	if !strings.Contains(out, "wrote 3000 major-2 samples (16 features)") {
		t.Errorf("generate-data stdout %q; want 3000 major-2 samples of 16 features", out)
	}
	_, err := runCmd(t, "train", "--data", data, "--output", filepath.Join(root, "v1"), "--version", "v1.0.0", "--epochs", "1")
	checkFailure(t, err, 2, "major-2 features", "--major 1")

	out = train(t, data, models, "v2.0.0", "1")
	if !strings.Contains(out, "training v2.0.0 on 3000 samples of 16 features") {
		t.Errorf("train stdout lacks the major-2 line:\n%s", out)
	}
	active := filepath.Join(models, "predictor.onnx")
	out = mustRun(t, "validate", "--model", active, "--samples", testValSamples, "--baseline-gates=false")
	for _, want := range []string{"PASS  signature", "[-1 16]", "PASS  ort-vs-go", "CPU request > limit 0, memory request > limit 0", "all gates passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate stdout lacks %q:\n%s", want, out)
		}
	}
	exported := filepath.Join(root, "exported")
	mustRun(t, "export", "--model", active, "--output", exported)
	b, m, err := trainer.ReadModelFile(filepath.Join(exported, "predictor.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version.Major != 2 || m.HistoryWindowHours != 168 || m.Width() != 16 {
		t.Errorf("exported manifest %s: window %d h, %d features; want v2, 168 h, 16", m.Version, m.HistoryWindowHours, m.Width())
	}
	if _, err := onnxfile.Check(b); err != nil {
		t.Errorf("exported model fails Check: %v", err)
	}
}
