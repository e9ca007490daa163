package serving

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// ortTolerance bounds |ONNX Runtime − model.QuantizedMLP.Forward| per output.
// Both compute the same float32 arithmetic on the same dequantized weights;
// they differ only in the order MatMul sums its 12, 32 and 16 products (ORT's
// MLAS kernels block and use FMA, Forward adds row by row) and in ORT's
// vectorized sigmoid. That is a few float32 ulps of values of order 1, far
// below 1e-5, while any real disagreement (a wrong axis, a transposed weight,
// a lost bias) shows up as 1e-2 or more.
const ortTolerance = 1e-5

// initORT loads ONNX Runtime for a test, failing (not skipping) when it is
// missing: the library is a build dependency that `make deps` installs.
func initORT(t testing.TB) {
	t.Helper()
	if err := InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime: %v", err)
	}
}

func encodeModel(t testing.TB, seed int64) (*model.QuantizedMLP, []byte) {
	t.Helper()
	m := onnxfile.RandomMLP(seed)
	b, err := onnxfile.Encode(m, model.MustParseVersion("v1.0.0"))
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return m, b
}

func newSession(t testing.TB, b []byte) *Session {
	t.Helper()
	s, err := NewSession(b, SessionOptions{})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rows returns n random rows in [0,1], preceded by an all-zeros and an
// all-ones row when n ≥ 2.
func rows(seed uint64, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, n*model.NumFeatures)
	for i := range x {
		x[i] = rng.Float32()
	}
	if n >= 2 {
		clear(x[:model.NumFeatures])
		for i := model.NumFeatures; i < 2*model.NumFeatures; i++ {
			x[i] = 1
		}
	}
	return x
}

func maxAbsDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outputs; want %d", len(got), len(want))
	}
	d := 0.0
	for i := range got {
		if math.IsNaN(float64(got[i])) {
			t.Fatalf("output %d is NaN", i)
		}
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
	}
	return d
}

func TestInitRuntime(t *testing.T) {
	initORT(t)
	if err := InitRuntime("/nonexistent/libonnxruntime.so.1"); err != nil {
		t.Errorf("second InitRuntime = %v; want the first call's nil (it runs once)", err)
	}
	lib, version := RuntimeInfo()
	t.Logf("ONNX Runtime %s from %s", version, lib)
	if lib == "" || version == "" {
		t.Errorf("RuntimeInfo() = %q, %q; want a path and a version", lib, version)
	}
}

func TestResolveLibrary(t *testing.T) {
	t.Run("Env", func(t *testing.T) {
		t.Setenv(LibraryEnv, "/opt/ort/libonnxruntime.so.1.24.1")
		if got := resolveLibrary(); got != "/opt/ort/libonnxruntime.so.1.24.1" {
			t.Errorf("resolveLibrary() = %q; want $%s", got, LibraryEnv)
		}
	})
	t.Run("WalkUp", func(t *testing.T) {
		root := t.TempDir()
		lib := filepath.Join(root, projectLibrary)
		deep := filepath.Join(root, "internal", "serving")
		if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(deep, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lib, []byte("not really a library"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv(LibraryEnv, "")
		t.Chdir(deep)
		if got := resolveLibrary(); got != lib {
			t.Errorf("resolveLibrary() = %q; want %q", got, lib)
		}
	})
	t.Run("System", func(t *testing.T) {
		t.Setenv(LibraryEnv, "")
		t.Chdir(t.TempDir())
		if got := resolveLibrary(); got != systemLibrary {
			t.Errorf("resolveLibrary() = %q; want %q", got, systemLibrary)
		}
	})
}

func TestSession_MatchesForward(t *testing.T) {
	initORT(t)
	for _, seed := range []int64{1, 2, 3} {
		m, b := encodeModel(t, seed)
		s := newSession(t, b)
		for _, n := range []int{1, 2, 1000} {
			t.Run(fmt.Sprintf("Seed%d/Batch%d", seed, n), func(t *testing.T) {
				x := rows(uint64(seed*1000+int64(n)), n)
				got, err := s.Run(x, n)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				d := maxAbsDiff(t, got, m.Forward(x, n))
				t.Logf("max |ORT − Forward| = %.3g over %d rows", d, n)
				if d > ortTolerance {
					t.Errorf("max |ORT − Forward| = %g; want ≤ %g", d, ortTolerance)
				}
			})
		}
	}
}

func TestSession_EdgeRows(t *testing.T) {
	initORT(t)
	m, b := encodeModel(t, 4)
	s := newSession(t, b)
	for name, v := range map[string]float32{"Zeros": 0, "Ones": 1} {
		t.Run(name, func(t *testing.T) {
			x := make([]float32, model.NumFeatures)
			for i := range x {
				x[i] = v
			}
			got, err := s.Run(x, 1)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if d := maxAbsDiff(t, got, m.Forward(x, 1)); d > ortTolerance {
				t.Errorf("max |ORT − Forward| = %g; want ≤ %g", d, ortTolerance)
			}
		})
	}
}

func TestSession_Signature(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 1)
	s := newSession(t, b)
	if got, want := s.Signature(), model.DefaultSignature(); !got.Equal(want) {
		t.Errorf("Signature() = %+v; want %+v", got, want)
	}
	fromFile, err := onnxfile.Signature(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Signature(); !got.Equal(fromFile) {
		t.Errorf("ORT's signature %+v differs from the file's %+v", got, fromFile)
	}
	s.Signature().Inputs[0].Shape[1] = 99 // a copy
	if got := s.Signature().Inputs[0].Shape[1]; got != model.NumFeatures {
		t.Errorf("Signature() shares its slices: width became %d", got)
	}
}

// mutate rewrites an encoded model's protobuf.
func mutate(t *testing.T, b []byte, f func(*onnxpb.ModelProto)) []byte {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		t.Fatal(err)
	}
	f(&mp)
	out, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNewSession_RefusesOtherNames: a renamed input runs in ONNX Runtime,
// but it is not what the project writes, so NewSession refuses it before
// ONNX Runtime sees it, saying why.
func TestNewSession_RefusesOtherNames(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 6)
	b = mutate(t, b, func(mp *onnxpb.ModelProto) {
		mp.Graph.Input[0].Name = proto.String("x")
		mp.Graph.Node[1].Input[0] = "x"
	})
	s, err := NewSession(b, SessionOptions{})
	if !errors.Is(err, model.ErrSignatureMismatch) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("NewSession(renamed input) err = %v; want ErrSignatureMismatch", err)
	}
	if msg, _ := model.PublicMessage(err); !strings.Contains(msg, "model graph: graph signature (x float32 [-1 12])") {
		t.Errorf("public message %q; want the signature it has and the one served", msg)
	}
}

// TestNewSession_Decoded: a session keeps the model and version its bytes
// decode to, for Load's own forward pass and version check.
func TestNewSession_Decoded(t *testing.T) {
	initORT(t)
	m, b := encodeModel(t, 3)
	s := newSession(t, b)
	if !reflect.DeepEqual(s.Model(), m) || s.Version() != model.MustParseVersion("v1.0.0") {
		t.Errorf("Model, Version = %d params, %v; want the encoded model and v1.0.0", s.Model().Params(), s.Version())
	}
}

func TestNewSession_ErrInvalidModel(t *testing.T) {
	initORT(t)
	_, valid := encodeModel(t, 1)
	for name, b := range map[string][]byte{
		"Empty":     nil,
		"Garbage":   []byte("definitely not an onnx model"),
		"Truncated": valid[:len(valid)/2],
		"UnknownOp": mutate(t, valid, func(mp *onnxpb.ModelProto) { mp.Graph.Node[1].OpType = proto.String("NoSuchOp") }),
		"MissingInitializer": mutate(t, valid, func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer = mp.Graph.Initializer[1:]
		}),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSession(b, SessionOptions{})
			if !errors.Is(err, model.ErrInvalidModel) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("NewSession err = %v; want ErrInvalidModel", err)
			}
			msg, ok := model.PublicMessage(err)
			if !ok || !strings.HasPrefix(msg, "model graph: ") {
				t.Errorf("public message %q, %v; want the checker's reason", msg, ok)
			}
			t.Logf("%v", err)
		})
	}
}

func TestNewSession_ErrSignatureMismatch(t *testing.T) {
	initORT(t)
	_, valid := encodeModel(t, 1)
	twoOutputs := mutate(t, valid, func(mp *onnxpb.ModelProto) {
		extra := proto.Clone(mp.Graph.Output[0]).(*onnxpb.ValueInfoProto)
		extra.Name = proto.String("layer0.output")
		extra.Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 32}
		mp.Graph.Output = append(mp.Graph.Output, extra)
	})
	s, err := NewSession(twoOutputs, SessionOptions{})
	if !errors.Is(err, model.ErrSignatureMismatch) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("NewSession err = %v; want ErrSignatureMismatch", err)
	}
}

func TestSession_Run_ErrInvalidInput(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 1)
	s := newSession(t, b)
	for name, tc := range map[string]struct {
		x []float32
		n int
	}{
		"ZeroRows":  {nil, 0},
		"Negative":  {make([]float32, 12), -1},
		"Short":     {make([]float32, 23), 2},
		"Long":      {make([]float32, 25), 2},
		"WrongRows": {make([]float32, 24), 1},
	} {
		if _, err := s.Run(tc.x, tc.n); !errors.Is(err, model.ErrInvalidInput) {
			t.Errorf("%s: Run err = %v; want ErrInvalidInput", name, err)
		}
	}
}

func TestSession_Close(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 1)
	s, err := NewSession(b, SessionOptions{IntraOpThreads: 2, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(rows(1, 3), 3); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(rows(1, 3), 3); err == nil {
		t.Error("Run after Close succeeded; want an error")
	}
}

func TestSession_ConcurrentRun(t *testing.T) {
	initORT(t)
	m, b := encodeModel(t, 8)
	s := newSession(t, b)
	const goroutines, calls = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				n := 1 + (g*calls+c)%17
				x := rows(uint64(g*calls+c), n)
				got, err := s.Run(x, n)
				if err != nil {
					errs <- err
					return
				}
				want := m.Forward(x, n)
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); !(d <= ortTolerance) {
						errs <- fmt.Errorf("goroutine %d call %d output %d: ORT %v, Forward %v", g, c, i, got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// sameBits reports the first index where got and want differ in any bit,
// or -1.
func sameBits(got, want []float32) int {
	if len(got) != len(want) {
		return 0
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

// TestSession_PooledRun runs batches of every pooled size and a few larger
// ones from many goroutines at once, on one session, and checks each answer
// is bit for bit what tensors made for the call give (runFresh, the path
// for large batches). Then it checks Close destroys every pooled tensor pair.
func TestSession_PooledRun(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 9)
	s, err := NewSession(b, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				n := 1 + (g*calls+c)%(maxPooledBatch+3) // 1..19: pooled and not
				x := rows(uint64(g*calls+c), n)
				got, err := s.Run(x, n)
				if err != nil {
					errs <- err
					return
				}
				want, err := s.runFresh(x, n)
				if err != nil {
					errs <- err
					return
				}
				if i := sameBits(got, want); i >= 0 {
					errs <- fmt.Errorf("goroutine %d call %d, %d rows: output %d is %v pooled, %v unpooled", g, c, n, i, got[i], want[i])
					return
				}
				if i := sameBits(x, rows(uint64(g*calls+c), n)); i >= 0 {
					errs <- fmt.Errorf("goroutine %d call %d: Run changed input %d", g, c, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	idle := 0
	for i := range s.pools {
		for j := range s.pools[i].slots {
			if s.pools[i].slots[j].Load() != nil {
				idle++
			}
		}
	}
	live := int(s.ioLive.Load())
	t.Logf("%d pooled tensor pairs after the runs (%d slots per batch size)", live, len(s.pools[0].slots))
	if live == 0 || live != idle {
		t.Errorf("%d tensor pairs alive, %d idle in the pools; want the same, more than 0 (no Run in flight)", live, idle)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.ioLive.Load(); n != 0 {
		t.Errorf("%d tensor pairs not destroyed after Close", n)
	}
	if _, err := s.Run(rows(1, 1), 1); err == nil {
		t.Error("Run after Close succeeded")
	}
	if n := s.ioLive.Load(); n != 0 {
		t.Errorf("Run after Close left %d tensor pairs", n)
	}
}

// TestSession_PoolFull checks a pair that finds its pool full is destroyed
// at once rather than kept or leaked.
func TestSession_PoolFull(t *testing.T) {
	initORT(t)
	_, b := encodeModel(t, 10)
	s := newSession(t, b)
	slots := len(s.pools[0].slots)
	var held []*ioTensors
	for range slots + 2 { // taken by concurrent Runs
		io, err := s.newIOTensors(1)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, io)
	}
	for _, io := range held {
		s.putIOTensors(&s.pools[0], io)
	}
	if got := s.ioLive.Load(); got != int64(slots) {
		t.Errorf("%d pairs alive after returning %d to a pool of %d; want %d", got, slots+2, slots, slots)
	}
}

// TestSession_ConfigKeepsOutputs checks the session options NewSession sets
// (sessionConfig: weights dequantized once, no prepacking) give bit for bit
// the outputs of a session with ONNX Runtime's defaults, for each output
// activation a model may use, pooled and unpooled batch sizes, and one and
// two intra-op threads.
func TestSession_ConfigKeepsOutputs(t *testing.T) {
	initORT(t)
	for seed := int64(1); seed <= 4; seed++ {
		for _, act := range []model.Activation{model.ActSigmoid, model.ActClip, model.ActNone} {
			m := onnxfile.RandomMLP(seed)
			m.Layers[len(m.Layers)-1].Activation = act
			b, err := onnxfile.Encode(m, model.MustParseVersion("v1.0.0"))
			if err != nil {
				t.Fatal(err)
			}
			opt := SessionOptions{IntraOpThreads: 1 + int(seed)%2}
			tuned, err := NewSession(b, opt)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := newSessionWith(b, opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 5, 16, 17, 100, 1000} {
				x := rows(uint64(seed*100+int64(n)), n)
				got, err := tuned.Run(x, n)
				if err != nil {
					t.Fatal(err)
				}
				want, err := plain.Run(x, n)
				if err != nil {
					t.Fatal(err)
				}
				if i := sameBits(got, want); i >= 0 {
					t.Errorf("seed %d, %s output, %d rows: output %d is %v with sessionConfig, %v with ORT's defaults",
						seed, act, n, i, got[i], want[i])
				}
			}
			tuned.Close()
			plain.Close()
		}
	}
}

// Benchmarks: compare ns/op of BenchmarkSessionRun and BenchmarkForwardGo at
// the same batch size for the ONNX Runtime / pure Go ratio.

func BenchmarkSessionRun(b *testing.B) {
	initORT(b)
	_, mb := encodeModel(b, 1)
	s := newSession(b, mb)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			x := rows(1, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Run(x, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

func BenchmarkForwardGo(b *testing.B) {
	m := onnxfile.RandomMLP(1)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			x := rows(1, n)
			b.ReportAllocs()
			for b.Loop() {
				m.Forward(x, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}
