package serving

// The ONNX Runtime adapter: the only file in the module that imports
// onnxruntime_go. Everything above it sees a Session that takes model bytes
// and runs [n,12] float32 rows to [n,5].

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// LibraryEnv is the environment variable naming the ONNX Runtime shared
// library (the Makefile sets it from scripts/install-onnxruntime.sh).
const LibraryEnv = "ONNXRUNTIME_LIB"

// projectLibrary is where scripts/install-onnxruntime.sh puts the library,
// relative to the repository root.
var projectLibrary = filepath.Join(".tools", "lib", "libonnxruntime.so.1")

// systemLibrary is the soname the dynamic loader searches for last.
const systemLibrary = "libonnxruntime.so.1"

var runtimeState struct {
	once sync.Once
	lib  string      // the library path InitRuntime used
	err  error       // InitRuntime's first (and only) result
	ok   atomic.Bool // set after lib, once the environment exists
}

// InitRuntime loads the ONNX Runtime shared library (1.24.x, the C API
// onnxruntime_go v1.27.0 is built against) and creates the process-wide ORT
// environment. It does so once per process: later calls do nothing and return
// the first call's result, whatever libPath they pass. The environment lives
// until the process exits.
//
// libPath "" resolves the library as: $ONNXRUNTIME_LIB if set; else the first
// .tools/lib/libonnxruntime.so.1 found walking up from the working directory
// (where scripts/install-onnxruntime.sh installs it); else
// "libonnxruntime.so.1" for the dynamic loader's own search. The error says
// which path failed and how to install the library.
func InitRuntime(libPath string) error {
	runtimeState.once.Do(func() {
		lib := libPath
		if lib == "" {
			lib = resolveLibrary()
		}
		runtimeState.lib = lib
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			runtimeState.err = fmt.Errorf("serving: load ONNX Runtime from %q: %w; run `make deps` or scripts/install-onnxruntime.sh, "+
				"then set %s to the path it prints", lib, err, LibraryEnv)
			return
		}
		runtimeState.ok.Store(true)
	})
	return runtimeState.err
}

// RuntimeInfo returns the library path InitRuntime loaded and the ONNX
// Runtime version it reports ("" for both before a successful InitRuntime).
func RuntimeInfo() (lib, version string) {
	if !runtimeState.ok.Load() {
		return "", ""
	}
	return runtimeState.lib, ort.GetVersion()
}

func resolveLibrary() string {
	if p := os.Getenv(LibraryEnv); p != "" {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, projectLibrary)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return systemLibrary
}

// SessionOptions tune an ONNX Runtime session. Zero values mean the defaults.
type SessionOptions struct {
	// IntraOpThreads parallelize one operator (default 1). The model is tiny
	// and gRPC already runs calls concurrently, so more threads per call
	// mostly add hand-off cost on a 2-core machine.
	IntraOpThreads int
	// InterOpThreads run independent operators in parallel (default 1; the
	// graph is a chain).
	InterOpThreads int
}

func (o SessionOptions) withDefaults() SessionOptions {
	if o.IntraOpThreads <= 0 {
		o.IntraOpThreads = 1
	}
	if o.InterOpThreads <= 0 {
		o.InterOpThreads = 1
	}
	return o
}

// Session is an ONNX Runtime inference session over one model's bytes, held
// in memory. Run may be called from many goroutines at once (ORT's Run is
// thread-safe on one session). Close must be called once no Run is in flight
// any more; the caller's reference count guarantees that.
type Session struct {
	ort      *ort.DynamicAdvancedSession
	mlp      *model.QuantizedMLP // decoded from the bytes by onnxfile.Check
	version  model.Version       // the version the bytes carry
	sig      model.Signature
	inWidth  int
	outWidth int
	closed   atomic.Bool
	close    sync.Once

	// pools[n-1] holds idle tensor pairs for runs of n ≤ maxPooledBatch
	// rows; ioLive counts the pairs not yet destroyed (idle or in use).
	pools  [maxPooledBatch]tensorPool
	ioLive atomic.Int64
}

// maxPooledBatch is the largest batch whose tensors a Session keeps for
// reuse. Making, binding and destroying an input and an output tensor per
// call cost a one-row Run about 3 µs of its 13.5 (four extra cgo calls, 12
// allocations); above a few rows ORT's own work dominates, and each batch
// size has a pool of its own.
const maxPooledBatch = 16

// ioTensors is an input and an output tensor for one batch size, bound to
// the session's input and output names once, so a Run is one cgo call with
// no allocation. A Run owns it exclusively between get and put: ORT reads
// the input and writes the output through the binding while it runs.
type ioTensors struct {
	in, out *ort.Tensor[float32]
	bind    *ort.IoBinding
}

// tensorPool is a bounded lock-free free-list: a slot holds an idle
// *ioTensors or nil. Taking one swaps its slot to nil, so exactly one Run
// gets it; a pair that finds no empty slot is destroyed at once. Unlike a
// sync.Pool it never drops a pair on its own, so Close can destroy them all.
type tensorPool struct {
	slots []atomic.Pointer[ioTensors]
}

func (p *tensorPool) get() *ioTensors {
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			if t := p.slots[i].Swap(nil); t != nil {
				return t
			}
		}
	}
	return nil
}

// put stores t in an empty slot and returns its index, or -1 when the pool
// is full.
func (p *tensorPool) put(t *ioTensors) int {
	for i := range p.slots {
		if p.slots[i].Load() == nil && p.slots[i].CompareAndSwap(nil, t) {
			return i
		}
	}
	return -1
}

// openSessions counts the ONNX Runtime sessions of this process not yet
// destroyed, whichever Manager made them.
var openSessions atomic.Int64

// OpenSessions is the number of ONNX Runtime sessions created and not yet
// closed in this process; tests check it returns to 0 (a leaked session
// holds native memory).
func OpenSessions() int64 { return openSessions.Load() }

// NewSession creates a session from ONNX model bytes. The bytes are first
// decoded and checked by onnxfile.Check, so ONNX Runtime only ever sees a
// file exactly as this project's encoder writes it: no external data (no
// path is opened because of the bytes), only the operators, shapes and
// header Encode writes. A refused file gives an error wrapping
// model.ErrInvalidModel, or model.ErrSignatureMismatch when its inputs or
// outputs are not this server's, that is a model.Publicer naming the
// reason; so do bytes ONNX Runtime still refuses, without ORT's own text in
// the public message. InitRuntime must have succeeded first.
func NewSession(b []byte, opt SessionOptions) (*Session, error) {
	return newSessionWith(b, opt, sessionConfig)
}

// configEntry is an ONNX Runtime session config key and value.
type configEntry struct{ key, value string }

// sessionConfig makes ONNX Runtime dequantize the int8 weights once, when
// the session is created, instead of in every Run: by default ORT leaves
// DequantizeLinear out of constant folding, for its QDQ fusions, which this
// weight-only DequantizeLinear→MatMul graph has no use for. That halves a
// one-row Run (11 → 6 µs). The folded weights become constant initializers,
// which ORT would then prepack for MLAS's packed GEMM; that kernel sums in
// another order and moves a few outputs by an ulp, so prepacking is off, and
// the outputs stay bit for bit those of a session with ORT's defaults
// (TestSession_ConfigKeepsOutputs).
var sessionConfig = []configEntry{
	{"session.disable_quant_qdq", "1"},
	{"session.disable_prepacking", "1"},
}

func newSessionWith(b []byte, opt SessionOptions, config []configEntry) (*Session, error) {
	if !ort.IsInitialized() {
		return nil, errors.New("serving: new session: ONNX Runtime is not initialized; call InitRuntime first")
	}
	c, err := onnxfile.Check(b)
	if err != nil {
		return nil, fmt.Errorf("serving: new session: %w", err)
	}
	return newCheckedSession(c, opt, config)
}

// ortRefused is what a client is told when ONNX Runtime refuses a model
// that passed onnxfile.Check; ORT's message stays in the log.
const ortRefused = "ONNX Runtime could not load the model"

// newCheckedSession creates a session from a file onnxfile.Check accepted.
func newCheckedSession(c *onnxfile.Checked, opt SessionOptions, config []configEntry) (*Session, error) {
	if !ort.IsInitialized() {
		return nil, errors.New("serving: new session: ONNX Runtime is not initialized; call InitRuntime first")
	}
	b := c.Bytes
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(b)
	if err != nil {
		return nil, model.Public(fmt.Errorf("serving: new session: %w: ONNX Runtime refuses the model: %v", model.ErrInvalidModel, err), ortRefused)
	}
	s := &Session{mlp: c.Model, version: c.Version}
	if s.sig, err = signature(ins, outs); err != nil {
		return nil, fmt.Errorf("serving: new session: %w", err)
	}
	if err := checkServable(s.sig); err != nil {
		return nil, fmt.Errorf("serving: new session: %w", err)
	}
	s.inWidth, s.outWidth = int(s.sig.Inputs[0].Shape[1]), int(s.sig.Outputs[0].Shape[1])

	opt = opt.withDefaults()
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("serving: new session: options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opt.IntraOpThreads); err != nil {
		return nil, fmt.Errorf("serving: new session: intra-op threads %d: %w", opt.IntraOpThreads, err)
	}
	if err := so.SetInterOpNumThreads(opt.InterOpThreads); err != nil {
		return nil, fmt.Errorf("serving: new session: inter-op threads %d: %w", opt.InterOpThreads, err)
	}
	for _, e := range config {
		if err := so.AddSessionConfigEntry(e.key, e.value); err != nil {
			return nil, fmt.Errorf("serving: new session: option %s=%s: %w", e.key, e.value, err)
		}
	}
	s.ort, err = ort.NewDynamicAdvancedSessionWithONNXData(b,
		[]string{s.sig.Inputs[0].Name}, []string{s.sig.Outputs[0].Name}, so)
	if err != nil {
		return nil, model.Public(fmt.Errorf("serving: new session: %w: ONNX Runtime refuses the model: %v", model.ErrInvalidModel, err), ortRefused)
	}
	openSessions.Add(1)
	// Enough idle pairs per batch size for every P to have a Run in flight
	// and another waiting; more concurrent Runs create and destroy theirs.
	slots := min(max(2*runtime.GOMAXPROCS(0), 4), 32)
	all := make([]atomic.Pointer[ioTensors], maxPooledBatch*slots)
	for i := range s.pools {
		s.pools[i].slots = all[i*slots : (i+1)*slots]
	}
	return s, nil
}

// signature converts ORT's I/O info; ORT reports dynamic dimensions as -1.
func signature(ins, outs []ort.InputOutputInfo) (model.Signature, error) {
	conv := func(infos []ort.InputOutputInfo) ([]model.TensorSpec, error) {
		specs := make([]model.TensorSpec, 0, len(infos))
		for _, in := range infos {
			if in.OrtValueType != ort.ONNXTypeTensor {
				return nil, fmt.Errorf("%w: %q is a %v, not a tensor", model.ErrSignatureMismatch, in.Name, in.OrtValueType)
			}
			shape := make([]int64, len(in.Dimensions))
			for i, d := range in.Dimensions {
				shape[i] = max(d, -1)
			}
			specs = append(specs, model.TensorSpec{Name: in.Name, Type: onnxfile.ElemTypeName(int32(in.DataType)), Shape: shape})
		}
		return specs, nil
	}
	var sig model.Signature
	var err error
	if sig.Inputs, err = conv(ins); err != nil {
		return sig, err
	}
	sig.Outputs, err = conv(outs)
	return sig, err
}

// checkServable requires what Run relies on: one float32 [-1, w] input and
// one float32 [-1, w'] output.
func checkServable(sig model.Signature) error {
	if len(sig.Inputs) != 1 || len(sig.Outputs) != 1 {
		return fmt.Errorf("%w: model has %d inputs and %d outputs; want 1 and 1", model.ErrSignatureMismatch, len(sig.Inputs), len(sig.Outputs))
	}
	for _, t := range []model.TensorSpec{sig.Inputs[0], sig.Outputs[0]} {
		if t.Type != "float32" || len(t.Shape) != 2 || t.Shape[0] != -1 || t.Shape[1] <= 0 {
			return fmt.Errorf("%w: tensor %q is %s %v; want float32 [-1, width] (dynamic batch)", model.ErrSignatureMismatch, t.Name, t.Type, t.Shape)
		}
	}
	return nil
}

// Model returns the model decoded from the session's bytes, whose pure-Go
// forward pass (model.QuantizedMLP.Forward) Run must agree with. The caller
// must not modify it.
func (s *Session) Model() *model.QuantizedMLP { return s.mlp }

// Version returns the version the session's bytes carry (onnxfile's
// metadata_props "version").
func (s *Session) Version() model.Version { return s.version }

// Signature returns the model's I/O signature as ONNX Runtime sees it, with
// dynamic dimensions as -1. The caller may modify the returned value.
func (s *Session) Signature() model.Signature {
	clone := func(ts []model.TensorSpec) []model.TensorSpec {
		out := make([]model.TensorSpec, len(ts))
		for i, t := range ts {
			t.Shape = append([]int64(nil), t.Shape...)
			out[i] = t
		}
		return out
	}
	return model.Signature{Inputs: clone(s.sig.Inputs), Outputs: clone(s.sig.Outputs)}
}

// Run runs n rows of x (row-major [n, input width], 12 for the served
// model) and returns a new slice [n, output width]. x is read, not kept or
// changed. It is safe for concurrent use. A batch that does not match x
// gives an error wrapping model.ErrInvalidInput; a closed session an error.
//
// Batches of up to maxPooledBatch rows run on tensors kept from earlier
// Runs of the same size (x is copied in, the output copied out); larger
// ones wrap x and a new output slice in tensors made for the call.
func (s *Session) Run(x []float32, n int) ([]float32, error) {
	if n <= 0 || len(x) != n*s.inWidth {
		return nil, fmt.Errorf("serving: run: %w: %d values for %d rows of %d features", model.ErrInvalidInput, len(x), n, s.inWidth)
	}
	if s.closed.Load() {
		return nil, errors.New("serving: run: session is closed")
	}
	if n <= maxPooledBatch {
		return s.runPooled(x, n)
	}
	return s.runFresh(x, n)
}

func (s *Session) runPooled(x []float32, n int) ([]float32, error) {
	pool := &s.pools[n-1]
	t := pool.get()
	if t == nil {
		var err error
		if t, err = s.newIOTensors(n); err != nil {
			return nil, err
		}
	}
	copy(t.in.GetData(), x)
	if err := s.ort.RunWithBinding(t.bind); err != nil {
		s.destroyIOTensors(t)
		return nil, fmt.Errorf("serving: run %d rows: %w", n, err)
	}
	y := make([]float32, n*s.outWidth)
	copy(y, t.out.GetData())
	s.putIOTensors(pool, t)
	return y, nil
}

// putIOTensors returns t to its pool, or destroys it when the pool is full.
// Should a Run wrongly overlap Close, t is not leaked either: Close drains
// the pools after setting closed, so Close or this check finds t.
func (s *Session) putIOTensors(pool *tensorPool, t *ioTensors) {
	i := pool.put(t)
	if i < 0 {
		s.destroyIOTensors(t)
		return
	}
	if s.closed.Load() && pool.slots[i].CompareAndSwap(t, nil) {
		s.destroyIOTensors(t)
	}
}

func (s *Session) newIOTensors(n int) (*ioTensors, error) {
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(s.inWidth)))
	if err != nil {
		return nil, fmt.Errorf("serving: run: input tensor: %w", err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(s.outWidth)))
	if err != nil {
		in.Destroy()
		return nil, fmt.Errorf("serving: run: output tensor: %w", err)
	}
	bind, err := s.ort.CreateIoBinding()
	if err == nil {
		if err = bind.BindInput(s.sig.Inputs[0].Name, in); err == nil {
			err = bind.BindOutput(s.sig.Outputs[0].Name, out)
		}
		if err != nil {
			bind.Destroy()
		}
	}
	if err != nil {
		in.Destroy()
		out.Destroy()
		return nil, fmt.Errorf("serving: run: bind tensors: %w", err)
	}
	s.ioLive.Add(1)
	return &ioTensors{in: in, out: out, bind: bind}, nil
}

func (s *Session) destroyIOTensors(t *ioTensors) {
	t.bind.Destroy()
	t.in.Destroy()
	t.out.Destroy()
	s.ioLive.Add(-1)
}

// runFresh runs x through tensors made for this call only: x itself backs
// the input, and the output tensor writes straight into the returned slice.
func (s *Session) runFresh(x []float32, n int) ([]float32, error) {
	in, err := ort.NewTensor(ort.NewShape(int64(n), int64(s.inWidth)), x)
	if err != nil {
		return nil, fmt.Errorf("serving: run: input tensor: %w", err)
	}
	defer in.Destroy()
	y := make([]float32, n*s.outWidth)
	out, err := ort.NewTensor(ort.NewShape(int64(n), int64(s.outWidth)), y)
	if err != nil {
		return nil, fmt.Errorf("serving: run: output tensor: %w", err)
	}
	defer out.Destroy()
	if err := s.ort.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return nil, fmt.Errorf("serving: run %d rows: %w", n, err)
	}
	return y, nil
}

// Close destroys the pooled tensors and the ONNX Runtime session. Later
// calls do nothing; Run after Close returns an error. It must not overlap a
// Run in flight.
func (s *Session) Close() error {
	var err error
	s.close.Do(func() {
		s.closed.Store(true)
		for i := range s.pools {
			for j := range s.pools[i].slots {
				if t := s.pools[i].slots[j].Swap(nil); t != nil {
					s.destroyIOTensors(t)
				}
			}
		}
		err = s.ort.Destroy()
		openSessions.Add(-1)
	})
	return err
}
