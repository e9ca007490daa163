package trainer_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npz"

	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

func npzTestDataset(t testing.TB, n int) *trainer.Dataset {
	t.Helper()
	d, err := trainer.Generate(context.Background(), trainer.GenConfig{Samples: n, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func npzTestWrite(t testing.TB, d *trainer.Dataset) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "training_data.npz")
	if err := trainer.WriteNPZ(path, d); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNPZRoundTrip(t *testing.T) {
	t.Parallel()
	d := npzTestDataset(t, 321)
	path := npzTestWrite(t, d)
	got, err := trainer.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("read back a different dataset")
	}
	// Nothing but the file is left in the directory.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries; want only the .npz", len(ents))
	}
	// Overwriting replaces the file.
	d2 := npzTestDataset(t, 10)
	if err := trainer.WriteNPZ(path, d2); err != nil {
		t.Fatal(err)
	}
	if got, err := trainer.ReadNPZ(path); err != nil || got.N != 10 {
		t.Errorf("after overwrite: N = %v, err = %v; want 10, nil", got, err)
	}
}

// An independent reader (npyio) sees the shapes and values.
func TestNPZReadableByNpyio(t *testing.T) {
	t.Parallel()
	d := npzTestDataset(t, 50)
	r, err := npz.Open(npzTestWrite(t, d))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, c := range []struct {
		name  string
		descr string
		shape []int
	}{{"X.npy", "<f4", []int{50, 12}}, {"Y.npy", "<f4", []int{50, 5}}, {"workload.npy", "<i4", []int{50}}} {
		h := r.Header(c.name)
		if h == nil {
			t.Fatalf("npyio finds no %s", c.name)
		}
		if strings.Trim(h.Descr.Type, "'") != c.descr || !reflect.DeepEqual(h.Descr.Shape, c.shape) || h.Descr.Fortran {
			t.Errorf("%s: npyio reads %s %v fortran=%v; want %s %v", c.name, h.Descr.Type, h.Descr.Shape, h.Descr.Fortran, c.descr, c.shape)
		}
	}
	var x []float32
	if err := r.Read("X.npy", &x); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, d.X) {
		t.Errorf("npyio reads different X values")
	}
	var w []int32
	if err := r.Read("workload.npy", &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w, d.Workload) {
		t.Errorf("npyio reads different workload values")
	}
}

const npzTestPython = "/usr/bin/python3"

func npzTestNumpy(t *testing.T) {
	t.Helper()
	if err := exec.Command(npzTestPython, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s has no numpy: %v", npzTestPython, err)
	}
}

func TestNPZReadableByNumpy(t *testing.T) {
	t.Parallel()
	npzTestNumpy(t)
	d := npzTestDataset(t, 123)
	path := npzTestWrite(t, d)
	out, err := exec.Command(npzTestPython, "-c", `import sys, numpy as np
d = np.load(sys.argv[1])
print(d['X'].shape, d['X'].dtype, d['Y'].shape, d['Y'].dtype, d['workload'].shape, d['workload'].dtype)
print(repr(float(d['X'][7, 3])), int(d['workload'][122]), bool(d['X'].flags['C_CONTIGUOUS']))`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if want := "(123, 12) float32 (123, 5) float32 (123,) int32"; lines[0] != want {
		t.Errorf("numpy reads %q; want %q", lines[0], want)
	}
	var x float64
	var w int
	var contiguous string
	if _, err := fmt.Sscan(lines[1], &x, &w, &contiguous); err != nil || float32(x) != d.X[7*12+3] || int32(w) != d.Workload[122] || contiguous != "True" {
		t.Errorf("numpy reads X[7,3]=%v workload[122]=%v C order=%s; want %v %v True", x, w, contiguous, d.X[7*12+3], d.Workload[122])
	}
}

// Files numpy writes, plain and compressed, read back.
func TestNPZReadsNumpyFiles(t *testing.T) {
	t.Parallel()
	npzTestNumpy(t)
	dir := t.TempDir()
	out, err := exec.Command(npzTestPython, "-c", `import sys, numpy as np
x = np.linspace(0, 1, 36, dtype=np.float32).reshape(3, 12)
y = np.full((3, 5), 0.5, dtype=np.float32)
w = np.array([0, 2, 4], dtype=np.int32)
np.savez(sys.argv[1] + '/plain.npz', X=x, Y=y, workload=w)
np.savez_compressed(sys.argv[1] + '/packed.npz', X=x, Y=y, workload=w, extra=np.arange(4))`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	for _, name := range []string{"plain.npz", "packed.npz"} {
		d, err := trainer.ReadNPZ(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.N != 3 || d.X[35] != 1 || d.Y[14] != 0.5 || !reflect.DeepEqual(d.Workload, []int32{0, 2, 4}) {
			t.Errorf("%s: read %+v", name, d)
		}
	}
}

// npzTestArray returns a .npy v1.0 array with the given header fields.
func npzTestArray(descr, shape string, fortran bool, data []byte) []byte {
	f := "False"
	if fortran {
		f = "True"
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, f, shape)
	for (10+len(dict)+1)%64 != 0 {
		dict += " "
	}
	dict += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(dict)), byte(len(dict)>>8))
	return append(append(b, dict...), data...)
}

func npzTestFloats(n int, v float32) []byte {
	b := make([]byte, 0, 4*n)
	for range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func npzTestInts(v ...int32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

// npzTestZip writes a zip of the named entries in order.
func npzTestZip(t *testing.T, path string, entries ...any) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		w, err := zw.Create(entries[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[i+1].([]byte))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadNPZErrInvalidData(t *testing.T) {
	t.Parallel()
	good := npzTestWrite(t, npzTestDataset(t, 4))
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	x := npzTestArray("<f4", "(4, 12)", false, npzTestFloats(n*12, 0.5))
	y := npzTestArray("<f4", "(4, 5)", false, npzTestFloats(n*5, 0.5))
	w := npzTestArray("<i4", "(4,)", false, npzTestInts(0, 1, 2, 3))
	for _, c := range []struct {
		name   string
		make   func(t *testing.T, path string) // writes the bad file at path
		phrase string
	}{
		{"Missing", func(*testing.T, string) {}, "no such file"},
		{"Directory", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }, "is a directory"},
		{"Empty", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o644) }, "not a readable zip archive"},
		{"Garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("X,Y\n1,2\n"), 0o644) }, "not a readable zip archive"},
		{"Truncated", func(t *testing.T, p string) { os.WriteFile(p, goodBytes[:len(goodBytes)/2], 0o644) }, "truncated or corrupt"},
		{"CorruptData", func(t *testing.T, p string) {
			b := bytes.Clone(goodBytes)
			b[200] ^= 0x40 // inside X's stored data: the CRC no longer matches
			os.WriteFile(p, b, 0o644)
		}, "corrupt"},
		{"MissingArray", func(t *testing.T, p string) { npzTestZip(t, p, "X.npy", x, "Y.npy", y) }, `no array "workload" (the archive holds X, Y)`},
		{"NotNpy", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", []byte("hello"), "Y.npy", y, "workload.npy", w)
		}, "array X: not a .npy array"},
		{"WrongDtype", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f8", "(4, 12)", false, npzTestFloats(n*24, 0)), "Y.npy", y, "workload.npy", w)
		}, "array X: dtype <f8; want <f4 (float32"},
		{"WrongIntDtype", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", x, "Y.npy", y, "workload.npy", npzTestArray("<i8", "(4,)", false, npzTestInts(0, 0, 1, 0, 2, 0, 3, 0)))
		}, "array workload: dtype <i8; want <i4 (int32"},
		{"BigEndian", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", x, "Y.npy", npzTestArray(">f4", "(4, 5)", false, npzTestFloats(n*5, 0)), "workload.npy", w)
		}, "array Y: dtype >f4"},
		{"WrongWidth", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(4, 11)", false, npzTestFloats(n*11, 0.5)), "Y.npy", y, "workload.npy", w)
		}, "array X: shape (4, 11); want (N, 12)"},
		{"OneDimensionalX", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(48,)", false, npzTestFloats(n*12, 0.5)), "Y.npy", y, "workload.npy", w)
		}, "array X: shape (48,); want (N, 12)"},
		{"TwoDimensionalWorkload", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", x, "Y.npy", y, "workload.npy", npzTestArray("<i4", "(4, 1)", false, npzTestInts(0, 1, 2, 3)))
		}, "array workload: shape (4, 1); want (N,)"},
		{"MismatchedN", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", x, "Y.npy", npzTestArray("<f4", "(3, 5)", false, npzTestFloats(15, 0.5)), "workload.npy", w)
		}, "array Y has 3 rows but X has 4"},
		{"NoSamples", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(0, 12)", false, nil), "Y.npy", y, "workload.npy", w)
		}, "array X: holds no samples"},
		{"ShortData", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(4, 12)", false, npzTestFloats(47, 0.5)), "Y.npy", y, "workload.npy", w)
		}, "array X: holds 188 data bytes; want 4×12×4"},
		{"Fortran", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(4, 12)", true, npzTestFloats(48, 0.5)), "Y.npy", y, "workload.npy", w)
		}, "array X: stored in Fortran order"},
		{"NaN", func(t *testing.T, p string) {
			b := npzTestFloats(48, 0.5)
			binary.LittleEndian.PutUint32(b[4*13:], math.Float32bits(float32(math.NaN())))
			npzTestZip(t, p, "X.npy", npzTestArray("<f4", "(4, 12)", false, b), "Y.npy", y, "workload.npy", w)
		}, "X[1,1] = NaN; want normalized values in [0,1]"},
		{"OutOfRange", func(t *testing.T, p string) {
			b := npzTestFloats(20, 0.5)
			binary.LittleEndian.PutUint32(b[4*19:], math.Float32bits(1.5))
			npzTestZip(t, p, "X.npy", x, "Y.npy", npzTestArray("<f4", "(4, 5)", false, b), "workload.npy", w)
		}, "Y[3,4] = 1.5; want normalized values in [0,1]"},
		{"BadWorkload", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", x, "Y.npy", y, "workload.npy", npzTestArray("<i4", "(4,)", false, npzTestInts(0, 1, 7, 3)))
		}, "workload[2] = 7; want a workload type 0..4"},
		{"BadHeader", func(t *testing.T, p string) {
			npzTestZip(t, p, "X.npy", []byte("\x93NUMPY\x01\x00\x04\x00{}\n\n"), "Y.npy", y, "workload.npy", w)
		}, "array X: unreadable header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "bad.npz")
			c.make(t, path)
			d, err := trainer.ReadNPZ(path)
			if !errors.Is(err, model.ErrInvalidData) {
				t.Fatalf("ReadNPZ = %v, %v; want ErrInvalidData", d, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.phrase) || strings.Contains(msg, "\n") {
				t.Errorf("err = %q; want one line naming %s and saying %q", msg, path, c.phrase)
			}
		})
	}
}

func TestWriteNPZLeavesNothingOnError(t *testing.T) {
	t.Parallel()
	d := npzTestDataset(t, 3)
	t.Run("DirectoryIsCreated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "d.npz")
		if err := trainer.WriteNPZ(path, d); err != nil {
			t.Fatal(err)
		}
		npzTestEmpty(t, filepath.Dir(path), 1)
	})
	t.Run("ParentIsAFile", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "data"), nil, 0o644)
		if err := trainer.WriteNPZ(filepath.Join(dir, "data", "d.npz"), d); err == nil {
			t.Fatal("WriteNPZ under a file succeeded")
		}
		npzTestEmpty(t, dir, 1)
	})
	t.Run("TargetIsDirectory", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "d.npz")
		os.Mkdir(target, 0o755)
		if err := trainer.WriteNPZ(target, d); err == nil {
			t.Fatal("WriteNPZ over a directory succeeded")
		}
		npzTestEmpty(t, dir, 1)
	})
	t.Run("InconsistentDataset", func(t *testing.T) {
		dir := t.TempDir()
		bad := *d
		bad.Y = bad.Y[:5]
		err := trainer.WriteNPZ(filepath.Join(dir, "d.npz"), &bad)
		if !errors.Is(err, model.ErrInvalidData) {
			t.Fatalf("err = %v; want ErrInvalidData", err)
		}
		npzTestEmpty(t, dir, 0)
		if err := trainer.WriteNPZ(filepath.Join(dir, "d.npz"), &trainer.Dataset{}); !errors.Is(err, model.ErrInvalidData) {
			t.Errorf("empty dataset: err = %v; want ErrInvalidData", err)
		}
		if err := trainer.WriteNPZ(filepath.Join(dir, "d.npz"), nil); !errors.Is(err, model.ErrInvalidData) {
			t.Errorf("nil dataset: err = %v; want ErrInvalidData", err)
		}
		npzTestEmpty(t, dir, 0)
	})
}

// npzTestEmpty checks dir holds exactly want entries (no temporary files).
func npzTestEmpty(t *testing.T, dir string, want int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != want {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v; want %d entries", names, want)
	}
}

func FuzzReadNPZ(f *testing.F) {
	d, err := trainer.Generate(context.Background(), trainer.GenConfig{Samples: 2, Seed: 1})
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "seed.npz")
	if err := trainer.WriteNPZ(path, d); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.npz")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := trainer.ReadNPZ(p)
		if err != nil {
			if !errors.Is(err, model.ErrInvalidData) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %q; want one line wrapping ErrInvalidData", err)
			}
			return
		}
		if d.N < 1 || len(d.X) != d.N*12 || len(d.Y) != d.N*5 || len(d.Workload) != d.N {
			t.Fatalf("inconsistent dataset N=%d %d %d %d", d.N, len(d.X), len(d.Y), len(d.Workload))
		}
	})
}
