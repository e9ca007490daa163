package jobs_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/trainer"
)

func TestMain(m *testing.M) {
	if err := serving.InitRuntime(""); err != nil {
		panic(err)
	}
	m.Run()
}

// fixture is a real registry (bbolt in a temporary directory), a real
// serving manager (ONNX Runtime) and a release controller serving the
// embedded default model, v1.1.0 (open), or every embedded default model,
// v1.1.0 and v2.0.0, as the server does (openAll).
type fixture struct {
	path   string
	store  *registry.Store
	models *serving.Manager
	ctl    *rollback.Controller
	closed bool
}

var defaultVersion = model.MustParseVersion("v1.1.0")

// open starts a fixture on the registry file at path (a new one when path
// is ""). It is closed at the end of the test unless closed before.
func open(t *testing.T, path string) *fixture {
	t.Helper()
	return openWith(t, path, defaultmodel.Load)
}

// openAll starts a fixture on a new registry seeded like the server's: the
// embedded default model of every major, each active.
func openAll(t *testing.T) *fixture {
	t.Helper()
	var seeds []rollback.Seed
	for _, load := range defaultmodel.All() {
		seeds = append(seeds, load)
	}
	return openWith(t, "", seeds...)
}

// openWith starts a fixture on the registry file at path (a new one when
// path is "") seeded with seeds.
func openWith(t *testing.T, path string, seeds ...rollback.Seed) *fixture {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "registry.db")
	}
	store, err := registry.Open(path, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{path: path, store: store, models: serving.NewManager(serving.Options{})}
	ctx, cancel := context.WithCancel(context.Background())
	f.ctl = rollback.New(store, f.models, rollback.Options{})
	if err := f.ctl.Start(ctx, seeds...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); f.close(t) })
	return f
}

// close checks the registry's consistency and releases everything.
func (f *fixture) close(t *testing.T) {
	t.Helper()
	if f.closed {
		return
	}
	f.closed = true
	if err := f.store.Check(); err != nil {
		t.Errorf("registry check: %v", err)
	}
	f.models.Close()
	if err := f.store.Close(); err != nil {
		t.Error(err)
	}
}

// manager returns a Manager over f; with run, its worker runs until the
// end of the test.
func (f *fixture) manager(t *testing.T, opts jobs.Options, run bool) *jobs.Manager {
	t.Helper()
	if opts.EvalSamples == 0 {
		opts.EvalSamples = 1000
	}
	m, err := jobs.New(f.store, f.ctl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { m.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	return m
}

// versions lists the registered versions.
func (f *fixture) versions(t *testing.T) []string {
	t.Helper()
	list, err := f.store.List()
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, e := range list {
		vs = append(vs, e.Manifest.Version.String())
	}
	return vs
}

// register stores a random (untrained) model as version v.
func (f *fixture) register(t *testing.T, v string) {
	t.Helper()
	f.registerWith(t, v, nil)
}

// registerWith stores a random (untrained) model as version v, its
// manifest changed by edit (when not nil) before registration.
func (f *fixture) registerWith(t *testing.T, v string, edit func(*model.Manifest)) {
	t.Helper()
	q := onnxfile.RandomMLP(int64(len(v)))
	ver := model.MustParseVersion(v)
	b, err := onnxfile.Encode(q, ver)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
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
	if edit != nil {
		edit(m)
	}
	if _, err := f.ctl.Register(context.Background(), b, m, "test", "fixture"); err != nil {
		t.Fatal(err)
	}
}

// small is a job that finishes in a few seconds.
func small(policy jobs.Policy) jobs.Request {
	return jobs.Request{Samples: 3000, Epochs: 3, Seed: 7, Policy: policy, Actor: "tester", Reason: "test"}
}

// wait watches job id until it ends and returns its events.
func wait(t *testing.T, m *jobs.Manager, id string) []jobs.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var events []jobs.Event
	if err := m.Watch(ctx, id, func(ev jobs.Event) error { events = append(events, ev); return nil }); err != nil {
		t.Fatalf("Watch(%s): %v", id, err)
	}
	return events
}
