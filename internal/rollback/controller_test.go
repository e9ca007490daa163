package rollback

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/trainer"
)

func TestMain(m *testing.M) {
	if err := serving.InitRuntime(""); err != nil {
		panic(err)
	}
	m.Run()
}

// version builds a real model version: an encoded RandomMLP and its manifest
// with golden rows. broken versions give outputs far above 1 for every input.
func version(t testing.TB, v string, seed int64, broken bool) ([]byte, *model.Manifest) {
	t.Helper()
	q := onnxfile.RandomMLP(seed)
	if broken {
		last := &q.Layers[len(q.Layers)-1]
		last.Activation = model.ActNone
		for i := range last.Bias {
			last.Bias[i] = 5
		}
	}
	ver := model.MustParseVersion(v)
	b, err := onnxfile.Encode(q, ver)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	rows := make([]float32, 4*model.NumFeatures)
	for i := range rows {
		rows[i] = rng.Float32()
	}
	m := &model.Manifest{
		Schema: model.ManifestSchema, Version: ver, CreatedAt: time.Unix(1800000000, 0).UTC(),
		Model:     model.ModelFile{File: "predictor_" + v + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.DefaultSignature(), Features: model.DefaultFeatures(), Outputs: model.DefaultOutputs(),
		Golden: trainer.GoldenFor(q, rows, 4),
	}
	return b, m
}

type fixture struct {
	store  *registry.Store
	models *serving.Manager
	ctl    *Controller
	ctx    context.Context
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	store, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	models := serving.NewManager(serving.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-watched
		models.Close()
		if err := store.Check(); err != nil {
			t.Errorf("registry check: %v", err)
		}
		store.Close()
	})
	ctl := New(store, models, opts)
	seed := func() ([]byte, *model.Manifest, error) { b, m := version(t, "v1.0.0", 1, false); return b, m, nil }
	if err := ctl.Start(ctx, seed); err != nil {
		close(watched)
		t.Fatal(err)
	}
	go func() { defer close(watched); _ = ctl.Run(ctx) }()
	return &fixture{store, models, ctl, ctx}
}

func (f *fixture) serving(t *testing.T) string {
	t.Helper()
	l, err := f.models.Acquire("")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	return l.Manifest().Version.String()
}

func TestStartSeedsAndRestartServesRecordedActive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	run := func(register func(*Controller)) string {
		store, err := registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		models := serving.NewManager(serving.Options{})
		defer models.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ctl := New(store, models, Options{})
		if err := ctl.Start(ctx, func() ([]byte, *model.Manifest, error) { b, m := version(t, "v1.0.0", 1, false); return b, m, nil }); err != nil {
			t.Fatal(err)
		}
		if register != nil {
			register(ctl)
		}
		return models.Active().Version.String()
	}
	if got := run(nil); got != "v1.0.0" {
		t.Fatalf("first start serves %s, want the seed v1.0.0", got)
	}
	got := run(func(c *Controller) {
		b, m := version(t, "v1.1.0", 2, false)
		if _, err := c.Register(context.Background(), b, m, "test", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Activate(context.Background(), m.Version, model.Change{Reason: "", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	})
	if got != "v1.1.0" {
		t.Fatalf("after activate serves %s", got)
	}
	if got := run(nil); got != "v1.1.0" {
		t.Fatalf("after restart serves %s, want the recorded active v1.1.0", got)
	}
}

func TestActivateAndRollback(t *testing.T) {
	f := newFixture(t, Options{})
	b, m := version(t, "v1.1.0", 2, false)
	if _, err := f.ctl.Register(f.ctx, b, m, "alice", "new model"); err != nil {
		t.Fatal(err)
	}
	res, err := f.ctl.Activate(f.ctx, m.Version, model.Change{Reason: "try it", Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	ev := res.Event
	if ev.From != "v1.0.0" || ev.To != "v1.1.0" || ev.Actor != "alice" || ev.Action != registry.ActionActivate {
		t.Fatalf("activate event = %+v", ev)
	}
	if got := f.serving(t); got != "v1.1.0" {
		t.Fatalf("serving %s after activate", got)
	}
	if v, ok := f.ctl.OnProbation(); !ok || v.String() != "v1.1.0" {
		t.Fatalf("probation = %v %v, want v1.1.0", v, ok)
	}
	if _, warm := f.models.StatsOf(model.MustParseVersion("v1.0.0")); !warm {
		t.Fatalf("previous version is not kept warm")
	}
	res, err = f.ctl.Rollback(f.ctx, model.Version{}, 0, model.Change{Reason: "", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	ev = res.Event
	if ev.From != "v1.1.0" || ev.To != "v1.0.0" || ev.Action != registry.ActionRollback || ev.Reason != "operator request" {
		t.Fatalf("rollback event = %+v", ev)
	}
	if got := f.serving(t); got != "v1.0.0" {
		t.Fatalf("serving %s after rollback", got)
	}
	if _, err := f.ctl.Rollback(f.ctx, model.Version{}, 0, model.Change{Reason: "", Actor: "bob"}); !errors.Is(err, model.ErrVersionNotFound) {
		t.Fatalf("rollback past the first version: %v, want ErrVersionNotFound", err)
	}
}

func TestFailedReleaseChangesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	before, _ := f.store.History()
	for name, tc := range map[string]struct {
		run  func() error
		want error
	}{
		"ErrVersionNotFound": {func() error {
			_, err := f.ctl.Activate(f.ctx, model.MustParseVersion("v1.9.9"), model.Change{Reason: "", Actor: "t"})
			return err
		}, model.ErrVersionNotFound},
		"ErrSignatureMismatch": {func() error {
			// Another input format under major 1: features in another order.
			b, m := version(t, "v1.5.0", 3, false)
			m.Features[0], m.Features[1] = m.Features[1], m.Features[0]
			_, err := f.ctl.Register(f.ctx, b, m, "t", "")
			return err
		}, model.ErrSignatureMismatch},
		"ErrChecksumMismatch": {func() error {
			b, m := version(t, "v1.2.0", 3, false)
			b[len(b)/2] ^= 0xff
			_, err := f.ctl.Register(f.ctx, b, m, "t", "")
			return err
		}, model.ErrChecksumMismatch},
		"ErrGoldenMismatch": {func() error {
			b, m := version(t, "v1.3.0", 4, false)
			m.Golden.Outputs[0][0] += 0.5
			_, err := f.ctl.Register(f.ctx, b, m, "t", "")
			return err
		}, model.ErrGoldenMismatch},
		"ErrInvalidModel": {func() error {
			b := []byte("not an onnx model at all")
			_, m := version(t, "v1.4.0", 5, false)
			m.Model.SHA256, m.Model.SizeBytes = model.SHA256Hex(b), int64(len(b))
			_, err := f.ctl.Register(f.ctx, b, m, "t", "")
			return err
		}, model.ErrInvalidModel},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if got := f.serving(t); got != "v1.0.0" {
				t.Fatalf("serving %s after a failed release", got)
			}
		})
	}
	after, _ := f.store.History()
	if len(after) != len(before) {
		t.Fatalf("history grew from %d to %d events after failed releases", len(before), len(after))
	}
	if vs, _ := f.store.List(); len(vs) != 1 {
		t.Fatalf("registry holds %d versions after failed registers, want 1", len(vs))
	}
}

// TestAutoRollback activates a version whose outputs are all out of range:
// every Predict on it fails, and the watcher rolls back within probation.
func TestAutoRollback(t *testing.T) {
	f := newFixture(t, Options{Probation: time.Minute, CheckInterval: 20 * time.Millisecond, MinCalls: 10, FailureThreshold: 0.2})
	b, m := version(t, "v1.1.0", 7, true)
	if _, err := f.ctl.Register(f.ctx, b, m, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ctl.Activate(f.ctx, m.Version, model.Change{Reason: "", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, model.NumFeatures)
	deadline := time.Now().Add(time.Minute) // the probation window
	failures := 0
	for time.Now().Before(deadline) {
		l, err := f.models.Acquire("")
		if err != nil {
			t.Fatal(err)
		}
		v := l.Manifest().Version.String()
		_, err = l.Run(x, 1)
		l.Release()
		if v == "v1.0.0" {
			break
		}
		if err == nil {
			t.Fatalf("broken version answered without error")
		}
		failures++
		time.Sleep(time.Millisecond)
	}
	if got := f.serving(t); got != "v1.0.0" {
		t.Fatalf("still serving %s after %d failures; want the automatic rollback to v1.0.0", got, failures)
	}
	// The swap is visible before the registry write ends; OnProbation waits
	// for the release (it takes the controller's lock).
	if v, on := f.ctl.OnProbation(); on {
		t.Fatalf("%s still on probation after the automatic rollback", v)
	}
	h, _ := f.store.History()
	last := h[len(h)-1]
	if last.Action != registry.ActionAutoRollback || last.From != "v1.1.0" || last.To != "v1.0.0" || last.Actor != "system" || last.Reason == "" {
		t.Fatalf("last history event = %+v; want an auto_rollback from v1.1.0 to v1.0.0 with a reason", last)
	}
	t.Logf("rolled back after %d failed calls: %s", failures, last.Reason)
}

// TestConcurrentReleasesAreSerialized runs activations and rollbacks from
// several goroutines; the history must be a consistent chain.
func TestConcurrentReleasesAreSerialized(t *testing.T) {
	f := newFixture(t, Options{})
	for i, v := range []string{"v1.1.0", "v1.2.0"} {
		b, m := version(t, v, int64(10+i), false)
		if _, err := f.ctl.Register(f.ctx, b, m, "t", ""); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				v := []string{"v1.0.0", "v1.1.0", "v1.2.0"}[(g+i)%3]
				if _, err := f.ctl.Activate(f.ctx, model.MustParseVersion(v), model.Change{Reason: "", Actor: "t"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	h, _ := f.store.History()
	prev := ""
	for _, ev := range h {
		if ev.Action != registry.ActionActivate && ev.Action != registry.ActionRollback {
			continue
		}
		if ev.From != prev {
			t.Fatalf("event %+v: from %q, but the previous move went to %q", ev, ev.From, prev)
		}
		prev = ev.To
	}
	if got := f.serving(t); got != prev {
		t.Fatalf("serving %s, history ends at %s", got, prev)
	}
	if n := f.models.LiveSessions(); n > 2 {
		t.Fatalf("%d live sessions; want the active one and at most one warm", n)
	}
}

// failingLoads is the registry with Load of one version failing while
// fail is set, counting the attempts.
type failingLoads struct {
	model.Registry
	version  model.Version
	fail     atomic.Bool
	attempts atomic.Int64
}

func (f *failingLoads) Load(v model.Version) ([]byte, *model.Manifest, error) {
	if v == f.version {
		f.attempts.Add(1)
		if f.fail.Load() {
			return nil, nil, fmt.Errorf("registry: load %s: %w", v, model.ErrStorageReadOnly)
		}
	}
	return f.Registry.Load(v)
}

// TestAutoRollbackBacksOff: when the automatic rollback cannot load its
// target, the watcher retries after 1 s, 2 s, ... (on the controller's
// clock) instead of at every check, and rolls back once it can.
func TestAutoRollbackBacksOff(t *testing.T) {
	store, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := &failingLoads{Registry: store, version: model.MustParseVersion("v1.0.0")}
	models := serving.NewManager(serving.Options{})
	defer models.Close()
	var clock atomic.Int64 // seconds since an epoch
	now := func() time.Time { return time.Unix(1_800_000_000+clock.Load(), 0) }
	ctl := New(reg, models, Options{Probation: time.Hour, MinCalls: 5, FailureThreshold: 0.2, Now: now})
	seed := func() ([]byte, *model.Manifest, error) { b, m := version(t, "v1.0.0", 1, false); return b, m, nil }
	if err := ctl.Start(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	b, m := version(t, "v1.1.0", 7, true)
	if _, err := ctl.Register(context.Background(), b, m, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Activate(context.Background(), m.Version, model.Change{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, model.NumFeatures)
	for range 10 {
		l, err := models.Acquire("")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = l.Run(x, 1) // the broken version fails every call
		l.Release()
	}
	reg.fail.Store(true)
	reg.attempts.Store(0)
	ctl.checkProbations() // attempt 1 fails: retry in 1 s
	ctl.checkProbations() // too early
	clock.Add(1)
	ctl.checkProbations() // attempt 2 fails: retry in 2 s
	clock.Add(1)
	ctl.checkProbations() // too early
	if got := reg.attempts.Load(); got != 2 {
		t.Fatalf("%d load attempts over 4 checks in 2 s; want 2 (backing off)", got)
	}
	reg.fail.Store(false)
	clock.Add(1)
	ctl.checkProbations()
	if got := models.Active().Version.String(); got != "v1.0.0" {
		t.Fatalf("serving %s once the target loads; want the automatic rollback to v1.0.0", got)
	}
	if v, on := ctl.OnProbation(); on {
		t.Errorf("%s still on probation after the automatic rollback", v)
	}
}
