package trainer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

// GenConfig configures the synthetic data generator.
type GenConfig struct {
	Samples int
	Seed    int64
	Mix     [NumWorkloads]float64 // relative weights of workload types; all zero = uniform
	Workers int                   // 0 = runtime.GOMAXPROCS(0)
	// HistorySteps and FutureSteps are the lengths, in 5-minute steps, of the
	// history window the features come from and of the following window the
	// labels come from. 0 means the defaults: 576 (48 h) and 288 (24 h).
	// Each must lie in 12 (1 h) .. 8640 (30 days). With Major 2 the
	// history defaults to its 7-day window (2016 steps).
	HistorySteps, FutureSteps int
	// Major selects the features computed (model.FeaturesFor); 0 means 1.
	Major int
	// Peaks adds transient memory peaks like real ones (genPeaks,
	// docs/data.md) to every workload type. Major 2 always has them; major
	// 1's data leaves them out unless set, so its files stay as they were.
	Peaks bool
}

// Dataset is a generated or loaded training set.
type Dataset struct {
	N int
	// Width is the number of features per row, a major's (model.FormatFor);
	// 0 means major 1's 12.
	Width    int
	X        []float32 // N×Width normalized features, row-major
	Y        []float32 // N×5 normalized labels (model.DefaultOutputs() normalization)
	Workload []int32   // N workload type indexes
}

// FeatureWidth is the number of features per row (Width, or 12 when 0).
func (d *Dataset) FeatureWidth() int {
	if d.Width == 0 {
		return model.NumFeatures
	}
	return d.Width
}

// Major returns the model major whose features the rows hold, from their
// width; a width no major has gives an error wrapping model.ErrInvalidData.
func (d *Dataset) Major() (int, error) {
	return MajorOfWidth(d.FeatureWidth())
}

// MajorOfWidth returns the major whose input has width features.
func MajorOfWidth(width int) (int, error) {
	for _, major := range model.Majors {
		if w, _, _ := model.FormatFor(major); w == width {
			return major, nil
		}
	}
	return 0, fmt.Errorf("%w: rows of %d features; no model major reads that many", model.ErrInvalidData, width)
}

// Outcome summarizes one sample's FOLLOWING window (raw units) for scoring.
type Outcome struct {
	CPUP95, MemP95, MemMax float32
	CPUSorted              []float32 // the future CPU samples, ascending (for throttling rate at any limit)
}

// Rec is a recommendation in raw units: cores and bytes.
type Rec struct{ CPURequest, CPULimit, MemRequest, MemLimit float64 }

// EvalSet is a Dataset with what scoring needs: each sample's following
// window and the VPA baseline's recommendation from the same history.
type EvalSet struct {
	Dataset
	Future []Outcome // per sample
	VPA    []Rec     // VPA-style baseline computed from the same history
}

// Generate simulates cfg.Samples containers and returns their normalized
// features (from the history window) and labels (from the following
// window); docs/data.md defines both. The same cfg gives the same bytes
// whatever cfg.Workers. It returns an error wrapping model.ErrInvalidInput
// for a bad cfg, or ctx's error if ctx ends first.
func Generate(ctx context.Context, cfg GenConfig) (*Dataset, error) {
	ev, err := genRun(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	return &ev.Dataset, nil
}

// GenerateEval is Generate (same X, Y and Workload for the same cfg) plus,
// per sample, the following window's Outcome and the VPA baseline.
func GenerateEval(ctx context.Context, cfg GenConfig) (*EvalSet, error) {
	return genRun(ctx, cfg, true)
}

// Label definitions (docs/data.md): percentiles of the following window.
const (
	genLimitHeadroom = 1.05
	genMinCPU        = 0.01        // cores: the smallest request or limit recommended
	genMinMemLabel   = 16 * genMiB // bytes
	genConfCPUFloor  = 0.001       // cores: usage below this counts as this in the confidence ratio
	genConfMemFloor  = genMiB      // bytes: likewise
)

// genChunk is how many consecutive samples a worker claims at once; the
// context is checked between chunks.
const genChunk = 128

// genResolve applies the defaults and checks cfg.
func genResolve(cfg GenConfig) (GenConfig, [NumWorkloads]float64, error) {
	var cum [NumWorkloads]float64
	bad := func(format string, args ...any) (GenConfig, [NumWorkloads]float64, error) {
		return cfg, cum, fmt.Errorf("%w: generator config: "+format, append([]any{model.ErrInvalidInput}, args...)...)
	}
	if cfg.Samples < 1 {
		return bad("%d samples; want at least 1", cfg.Samples)
	}
	if cfg.Workers < 0 {
		return bad("%d workers; want 0 (one per CPU) or more", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Major == 0 {
		cfg.Major = 1
	}
	if _, err := model.FeaturesFor(cfg.Major); err != nil {
		return bad("major %d; want one of %v", cfg.Major, model.Majors)
	}
	if cfg.HistorySteps == 0 {
		win, _ := model.HistoryWindowFor(cfg.Major)
		cfg.HistorySteps = int(win / genStep)
	}
	if cfg.FutureSteps == 0 {
		cfg.FutureSteps = genDefaultFuture
	}
	for _, s := range [...]struct {
		name string
		v    int
	}{{"history", cfg.HistorySteps}, {"future", cfg.FutureSteps}} {
		if s.v < genMinSteps || s.v > genMaxSteps {
			return bad("%s window of %d steps; want %d..%d 5-minute steps (0 = default)", s.name, s.v, genMinSteps, genMaxSteps)
		}
	}
	mix, total := cfg.Mix, 0.0
	for i, w := range mix {
		if !(w >= 0) || math.IsInf(w, 1) {
			return bad("mix weight %v for %s; want a finite weight ≥ 0", w, WorkloadNames[i])
		}
		total += w
	}
	if math.IsInf(total, 1) {
		return bad("mix weights sum to +Inf; want a finite sum")
	}
	if total == 0 {
		for i := range mix {
			mix[i] = 1
		}
		total = NumWorkloads
	}
	// cum[k] is the share of types 0..k; from the last type with a weight
	// on it is exactly 1, so rounding never picks a type weighted 0.
	acc, last := 0.0, 0
	for i, w := range mix {
		acc += w / total
		cum[i] = acc
		if w > 0 {
			last = i
		}
	}
	for i := last; i < NumWorkloads; i++ {
		cum[i] = 1
	}
	return cfg, cum, nil
}

func genRun(ctx context.Context, cfg GenConfig, eval bool) (*EvalSet, error) {
	cfg, cum, err := genResolve(cfg)
	if err != nil {
		return nil, err
	}
	n := cfg.Samples
	specsIn, _ := model.FeaturesFor(cfg.Major)
	width := len(specsIn)
	ev := &EvalSet{Dataset: Dataset{
		N:        n,
		X:        make([]float32, n*width),
		Y:        make([]float32, n*model.NumOutputs),
		Workload: make([]int32, n),
	}}
	if cfg.Major != 1 {
		ev.Width = width
	}
	if eval {
		ev.Future = make([]Outcome, n)
		ev.VPA = make([]Rec, n)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		g := newGenWorker(cfg, cum)
		for ctx.Err() == nil {
			lo := int(next.Add(genChunk)) - genChunk
			if lo >= n {
				return
			}
			for i := lo; i < min(lo+genChunk, n); i++ {
				if err := g.sample(ev, i, eval); err != nil {
					cancel(err)
					return
				}
			}
		}
	}
	// One worker runs on the calling goroutine, so a caller that pinned its
	// OS thread (a training job at low CPU priority) keeps all the work there.
	if workers := min(cfg.Workers, (n+genChunk-1)/genChunk); workers <= 1 {
		work()
	} else {
		for range workers {
			wg.Go(work)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return ev, nil
}

// genWorker holds one goroutine's random source and buffers.
type genWorker struct {
	cfg      GenConfig
	cum      [NumWorkloads]float64
	src      rand.PCG
	rng      *rand.Rand
	cpu, mem []float64 // history then future
	fs       features.Scratch
	layout   *features.Layout
	row      []float32
	specsIn  []model.Spec
	specsOut []model.Spec
}

func newGenWorker(cfg GenConfig, cum [NumWorkloads]float64) *genWorker {
	specsIn, _ := model.FeaturesFor(cfg.Major)
	layout, _ := features.NewLayout(specsIn) // catalogue features: no error
	g := &genWorker{cfg: cfg, cum: cum, specsIn: specsIn, specsOut: model.DefaultOutputs(), layout: layout, row: make([]float32, len(specsIn))}
	g.rng = rand.New(&g.src)
	steps := cfg.HistorySteps + cfg.FutureSteps
	g.cpu, g.mem = make([]float64, steps), make([]float64, steps)
	return g
}

var (
	genFuturePercentilesCPU = []float64{90, 95, 99}
	genFuturePercentilesMem = []float64{90, 95, 100}
)

// sample simulates container i and fills its rows of ev.
func (g *genWorker) sample(ev *EvalSet, i int, eval bool) error {
	g.src.Seed(genMix64(uint64(g.cfg.Seed)), genMix64(uint64(i)))
	c := genDraw(g.rng, &g.cum)
	h := g.cfg.HistorySteps
	sim := genSim{r: g.rng, src: &g.src, c: &c, hist: h, cpu: g.cpu, mem: g.mem, peaks: g.cfg.Peaks || g.cfg.Major >= 2}
	sim.run()

	// A workload younger than the history window has only its own life as
	// history (at least an hour).
	hs := min(h, max(genMinSteps, int(c.ageDays*float64(genStepsPerDay))))
	win := features.Window{
		End:      genEpoch.Add(time.Duration(c.startStep+h-1) * genStep),
		Step:     genStep,
		CPU:      g.cpu[h-hs : h],
		Mem:      g.mem[h-hs : h],
		CPULimit: c.cpuLimit,
	}
	raw, err := g.fs.FromHistory(win, c.ageDays)
	if err != nil {
		return fmt.Errorf("sample %d: %w", i, err)
	}
	if err := g.layout.NormalizeInto(raw, g.row); err != nil {
		return fmt.Errorf("sample %d: %w", i, err)
	}
	copy(ev.X[i*len(g.row):], g.row)
	ev.Workload[i] = int32(c.kind)

	histMemMax := 0.0
	for _, m := range win.Mem {
		if m > histMemMax {
			histMemMax = m
		}
	}
	futCPU := g.cpu[h:]
	fu := SummarizeFuture(&g.fs, futCPU, g.mem[h:])
	labels := Labels(raw, histMemMax, fu)
	y := ev.Y[i*model.NumOutputs : (i+1)*model.NumOutputs]
	for j, v := range labels {
		y[j] = float32(g.specsOut[j].Normalize(v))
	}

	if eval {
		sorted := make([]float32, len(futCPU))
		for j, v := range futCPU {
			sorted[j] = float32(v)
		}
		slices.Sort(sorted)
		ev.Future[i] = Outcome{CPUP95: float32(fu.CPUP95), MemP95: float32(fu.MemP95), MemMax: float32(fu.MemMax), CPUSorted: sorted}
		ev.VPA[i] = VPA(win)
	}
	return nil
}
