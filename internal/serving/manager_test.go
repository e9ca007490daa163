package serving

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// goldenValRows is how many random rows (besides the all-zero and all-one
// rows GoldenFor adds) become a test version's golden rows.
const goldenValRows = 6

// versionOf encodes q as version and describes it with a manifest whose
// checksum matches the bytes and whose golden rows are q's own answers, as
// the trainer writes them.
func versionOf(t testing.TB, q *model.QuantizedMLP, version string) ([]byte, *model.Manifest) {
	t.Helper()
	v := model.MustParseVersion(version)
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		t.Fatalf("Encode %s: %v", version, err)
	}
	return b, manifestFor(q, v, b)
}

func manifestFor(q *model.QuantizedMLP, v model.Version, b []byte) *model.Manifest {
	return &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   v,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Model:     model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.DefaultSignature(),
		Features:  model.DefaultFeatures(),
		Outputs:   model.DefaultOutputs(),
		Golden:    trainer.GoldenFor(q, rows(uint64(len(b)), goldenValRows), goldenValRows),
	}
}

// testVersion is RandomMLP(seed) as version.
func testVersion(t testing.TB, seed int64, version string) ([]byte, *model.Manifest) {
	t.Helper()
	return versionOf(t, onnxfile.RandomMLP(seed), version)
}

func newManager(t testing.TB) *Manager {
	t.Helper()
	initORT(t)
	m := NewManager(Options{})
	t.Cleanup(m.Close)
	return m
}

func mustLoad(t testing.TB, m *Manager, b []byte, man *model.Manifest) {
	t.Helper()
	if err := m.Load(b, man); err != nil {
		t.Fatalf("Load %s: %v", man.Version, err)
	}
}

func mustActivate(t testing.TB, m *Manager, v string) model.Version {
	t.Helper()
	prev, err := m.Activate(model.MustParseVersion(v))
	if err != nil {
		t.Fatalf("Activate %s: %v", v, err)
	}
	return prev
}

// checkServes acquires version ("" for the active one), runs a row and
// checks the lease names want.
func checkServes(t *testing.T, m *Manager, version, want string) {
	t.Helper()
	l, err := m.Acquire(version)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", version, err)
	}
	defer l.Release()
	if got := l.Manifest().Version.String(); got != want {
		t.Errorf("Acquire(%q) leased %s; want %s", version, got, want)
	}
	if _, err := l.Run(rows(1, 2), 2); err != nil {
		t.Errorf("Run on %s: %v", want, err)
	}
}

func TestManagerLoad(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		m := newManager(t)
		b, man := testVersion(t, 1, "v1.0.0")
		mustLoad(t, m, b, man)
		if got, want := m.LoadedVersions(), []string{"v1.0.0"}; !slices.Equal(got, want) {
			t.Errorf("LoadedVersions = %v; want %v", got, want)
		}
		if got := m.LiveSessions(); got != 1 {
			t.Errorf("LiveSessions = %d; want 1", got)
		}
		if m.Ready() || m.Active() != nil {
			t.Errorf("Ready = %v, Active = %v after Load alone; want not ready (Load does not activate)", m.Ready(), m.Active())
		}
		// The same bytes again are a no-op: no second session.
		mustLoad(t, m, b, man)
		if got := m.LiveSessions(); got != 1 {
			t.Errorf("LiveSessions after loading the same version twice = %d; want 1", got)
		}
	})

	t.Run("ErrVersionExists", func(t *testing.T) {
		t.Parallel()
		m := newManager(t)
		b, man := testVersion(t, 1, "v1.0.0")
		mustLoad(t, m, b, man)
		b2, man2 := testVersion(t, 2, "v1.0.0")
		err := m.Load(b2, man2)
		checkStepError(t, err, "check manifest", model.ErrVersionExists)
		if got := m.LiveSessions(); got != 1 {
			t.Errorf("LiveSessions = %d; want 1", got)
		}
	})
}

func checkStepError(t *testing.T, err error, step string, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("Load error = %v; want one wrapping %v", err, sentinel)
	}
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("Load error %v (%T) is not a *StepError", err, err)
	}
	if se.Step != step {
		t.Errorf("StepError.Step = %q; want %q (error %v)", se.Step, step, err)
	}
	if !strings.Contains(err.Error(), se.Version.String()) {
		t.Errorf("Load error %q does not name the version %s", err, se.Version)
	}
	prefix := fmt.Sprintf("load %s: %s: ", se.Version, step)
	if msg, ok := model.PublicMessage(err); !ok || !strings.HasPrefix(msg, prefix) || strings.Contains(msg, "internal error") {
		t.Errorf("public message %q (%v); want it to start %q and say why", msg, ok, prefix)
	}
}

// TestManagerLoadRefuses loads bad versions next to an active one: each
// refusal names its step and sentinel, and the active version keeps serving
// with no session gained or lost.
func TestManagerLoadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		make     func(t *testing.T) ([]byte, *model.Manifest)
		step     string
		sentinel error
	}{
		{"ErrChecksumMismatch", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			b[len(b)/2] ^= 0x01 // tampered after the manifest was written
			return b, man
		}, "verify checksum", model.ErrChecksumMismatch},
		{"ErrChecksumMismatchSize", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			return b[:len(b)-1], man
		}, "verify checksum", model.ErrChecksumMismatch},
		{"ErrInvalidModel", func(t *testing.T) ([]byte, *model.Manifest) {
			// Bytes that match their manifest but are not an ONNX model.
			b := []byte("this is not an ONNX model, though its checksum is right")
			return b, manifestFor(onnxfile.RandomMLP(2), model.MustParseVersion("v1.9.0"), b)
		}, "check graph", model.ErrInvalidModel},
		{"ErrInvalidModelTruncated", func(t *testing.T) ([]byte, *model.Manifest) {
			b, _ := testVersion(t, 2, "v1.9.0")
			b = b[:len(b)/2]
			return b, manifestFor(onnxfile.RandomMLP(2), model.MustParseVersion("v1.9.0"), b)
		}, "check graph", model.ErrInvalidModel},
		{"ErrInvalidModelExtraNode", func(t *testing.T) ([]byte, *model.Manifest) {
			// A valid MLP and one more node (the identity on [0,1]): ONNX
			// Runtime would answer the golden rows right.
			q := onnxfile.RandomMLP(2)
			b, _ := versionOf(t, q, "v1.9.0")
			b = mutate(t, b, func(mp *onnxpb.ModelProto) {
				g := mp.Graph
				g.Node[len(g.Node)-1].Output[0] = "layer2.output"
				g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("Relu"), Input: []string{"layer2.output"}, Output: []string{model.OutputName}})
			})
			return b, manifestFor(q, model.MustParseVersion("v1.9.0"), b)
		}, "check graph", model.ErrInvalidModel},
		{"ErrInvalidModelVersion", func(t *testing.T) ([]byte, *model.Manifest) {
			// v1.3.0's bytes under a manifest for v1.9.0.
			q := onnxfile.RandomMLP(2)
			b, _ := versionOf(t, q, "v1.3.0")
			return b, manifestFor(q, model.MustParseVersion("v1.9.0"), b)
		}, "check version", model.ErrInvalidModel},
		{"ErrInvalidModelArchitectureLayers", func(t *testing.T) ([]byte, *model.Manifest) {
			// The manifest lists a network twice as wide as the file's.
			q := onnxfile.RandomMLP(2)
			b, man := versionOf(t, q, "v1.9.0")
			man.Architecture = model.Architecture{Layers: q.Widths(), Parameters: q.Params()}
			man.Architecture.Layers[1] *= 2
			return b, man
		}, "check architecture", model.ErrInvalidModel},
		{"ErrInvalidModelArchitectureTooMany", func(t *testing.T) ([]byte, *model.Manifest) {
			// A million widths are refused as a manifest, before the bytes
			// are read, in a short message.
			b, man := testVersion(t, 2, "v1.9.0")
			man.Architecture.Layers = make([]int, 1<<20)
			return b, man
		}, "check manifest", model.ErrInvalidModel},
		{"ErrInvalidModelArchitectureParameters", func(t *testing.T) ([]byte, *model.Manifest) {
			q := onnxfile.RandomMLP(2)
			b, man := versionOf(t, q, "v1.9.0")
			man.Architecture = model.Architecture{Layers: q.Widths(), Parameters: q.Params() + 1}
			return b, man
		}, "check architecture", model.ErrInvalidModel},
		{"ErrInvalidModelLooseTolerance", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			man.Golden.Tolerance = 1e9
			return b, man
		}, "check manifest", model.ErrInvalidModel},
		{"ErrGoldenMismatchZeros", func(t *testing.T) ([]byte, *model.Manifest) {
			// All-zero answers: only a huge tolerance let them pass.
			b, man := testVersion(t, 2, "v1.9.0")
			for _, o := range man.Golden.Outputs {
				clear(o)
			}
			return b, man
		}, "golden rows", model.ErrGoldenMismatch},
		{"ErrSignatureMismatch", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			man.Signature.Outputs[0].Name = "scores" // the manifest promises another output
			return b, man
		}, "check signature", model.ErrSignatureMismatch},
		{"ErrGoldenMismatch", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			man.Golden.Outputs[3][1] += 0.25
			return b, man
		}, "golden rows", model.ErrGoldenMismatch},
		{"ErrGoldenMismatchOtherModel", func(t *testing.T) ([]byte, *model.Manifest) {
			// The golden rows of another model: right shape, wrong answers.
			b, man := testVersion(t, 2, "v1.9.0")
			_, other := testVersion(t, 3, "v1.9.0")
			man.Golden = other.Golden
			return b, man
		}, "golden rows", model.ErrGoldenMismatch},
		{"ErrInvalidModelManifest", func(t *testing.T) ([]byte, *model.Manifest) {
			b, man := testVersion(t, 2, "v1.9.0")
			man.Golden.Tolerance = 0
			return b, man
		}, "check manifest", model.ErrInvalidModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newManager(t)
			b1, man1 := testVersion(t, 1, "v1.0.0")
			mustLoad(t, m, b1, man1)
			mustActivate(t, m, "v1.0.0")
			live, loaded := m.LiveSessions(), m.LoadedVersions()

			b, man := tt.make(t)
			err := m.Load(b, man)
			checkStepError(t, err, tt.step, tt.sentinel)
			if msg, _ := model.PublicMessage(err); len(msg) > 600 {
				t.Errorf("public message of %d bytes; want a short one", len(msg))
			}

			if got := m.Active(); got == nil || got.Version.String() != "v1.0.0" {
				t.Errorf("Active = %v after a refused Load; want v1.0.0", got)
			}
			checkServes(t, m, "", "v1.0.0")
			if got := m.LiveSessions(); got != live {
				t.Errorf("LiveSessions = %d after a refused Load; want %d", got, live)
			}
			if got := m.LoadedVersions(); !slices.Equal(got, loaded) {
				t.Errorf("LoadedVersions = %v after a refused Load; want %v", got, loaded)
			}
			if _, err := m.Acquire("v1.9.0"); !errors.Is(err, model.ErrVersionNotFound) {
				t.Errorf("Acquire(refused version) error = %v; want ErrVersionNotFound", err)
			}
		})
	}
}

func TestManagerAcquire(t *testing.T) {
	t.Parallel()
	m := newManager(t)

	if _, err := m.Acquire(""); !errors.Is(err, model.ErrNoActiveVersion) {
		t.Errorf("Acquire(\"\") on an empty manager: %v; want ErrNoActiveVersion", err)
	}
	b1, man1 := testVersion(t, 1, "v1.0.0")
	b2, man2 := testVersion(t, 2, "v1.1.0")
	mustLoad(t, m, b1, man1)
	mustLoad(t, m, b2, man2)
	if _, err := m.Acquire(""); !errors.Is(err, model.ErrNoActiveVersion) {
		t.Errorf("Acquire(\"\") with versions loaded but none active: %v; want ErrNoActiveVersion", err)
	}
	checkServes(t, m, "v1.1.0", "v1.1.0") // a pinned loaded version needs no activation
	mustActivate(t, m, "v1.0.0")

	tests := []struct {
		name, version string
		want          string
		err           error
	}{
		{"OK", "", "v1.0.0", nil},
		{"OKPinned", "v1.1.0", "v1.1.0", nil},
		{"OKPinnedActive", "v1.0.0", "v1.0.0", nil},
		{"ErrVersionNotFound", "v9.9.9", "", model.ErrVersionNotFound},
		{"ErrInvalidVersion", "1.0", "", model.ErrInvalidVersion},
		{"ErrInvalidVersionLatest", "latest", "", model.ErrInvalidVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.err == nil {
				checkServes(t, m, tt.version, tt.want)
				return
			}
			l, err := m.Acquire(tt.version)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Acquire(%q) = %v, %v; want error wrapping %v", tt.version, l, err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.version) {
				t.Errorf("Acquire(%q) error %q does not name the version", tt.version, err)
			}
		})
	}
}

func TestManagerActivateUnload(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	for i, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0"} {
		b, man := testVersion(t, int64(i+1), v)
		mustLoad(t, m, b, man)
	}

	t.Run("ErrVersionNotFound", func(t *testing.T) {
		if _, err := m.Activate(model.MustParseVersion("v3.0.0")); !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("Activate(not loaded) = %v; want ErrVersionNotFound", err)
		}
		if m.Ready() {
			t.Error("Ready after a refused Activate")
		}
		if err := m.Unload(model.MustParseVersion("v3.0.0")); !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("Unload(not loaded) = %v; want ErrVersionNotFound", err)
		}
	})
	t.Run("ReturnsPrevious", func(t *testing.T) {
		if prev := mustActivate(t, m, "v1.0.0"); !prev.IsZero() {
			t.Errorf("first Activate returned previous %s; want none", prev)
		}
		if prev := mustActivate(t, m, "v1.1.0"); prev.String() != "v1.0.0" {
			t.Errorf("Activate(v1.1.0) returned previous %s; want v1.0.0", prev)
		}
		checkServes(t, m, "", "v1.1.0")
		checkServes(t, m, "v1.0.0", "v1.0.0") // the previous one stays warm
	})
	t.Run("UnloadActiveRefused", func(t *testing.T) {
		err := m.Unload(model.MustParseVersion("v1.1.0"))
		if err == nil || !strings.Contains(err.Error(), "active") {
			t.Fatalf("Unload(active) = %v; want an error saying it is active", err)
		}
		checkServes(t, m, "", "v1.1.0")
		if got := m.LiveSessions(); got != 3 {
			t.Errorf("LiveSessions = %d; want 3", got)
		}
	})
	t.Run("KeepOnly", func(t *testing.T) {
		m.KeepOnly(model.MustParseVersion("v1.0.0"))
		if got, want := m.LoadedVersions(), []string{"v1.0.0", "v1.1.0"}; !slices.Equal(got, want) {
			t.Errorf("LoadedVersions after KeepOnly(v1.0.0) with v1.1.0 active = %v; want %v", got, want)
		}
		if got := m.LiveSessions(); got != 2 {
			t.Errorf("LiveSessions = %d; want 2 (nothing in flight)", got)
		}
		m.KeepOnly()
		if got, want := m.LoadedVersions(), []string{"v1.1.0"}; !slices.Equal(got, want) {
			t.Errorf("LoadedVersions after KeepOnly() = %v; want %v", got, want)
		}
		if got := m.LiveSessions(); got != 1 {
			t.Errorf("LiveSessions = %d; want 1", got)
		}
	})
	t.Run("Close", func(t *testing.T) {
		m.Close()
		if _, err := m.Acquire(""); !errors.Is(err, model.ErrNoActiveVersion) {
			t.Errorf("Acquire after Close = %v; want ErrNoActiveVersion", err)
		}
		if got := m.LiveSessions(); got != 0 {
			t.Errorf("LiveSessions after Close = %d; want 0", got)
		}
	})
}

// TestManagerLeaseOutlivesUnload holds a lease on the active version while
// it is replaced and unloaded: the lease keeps working, and the session is
// destroyed only when the lease is released.
func TestManagerLeaseOutlivesUnload(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	b1, man1 := testVersion(t, 1, "v1.0.0")
	b2, man2 := testVersion(t, 2, "v1.1.0")
	mustLoad(t, m, b1, man1)
	mustLoad(t, m, b2, man2)
	mustActivate(t, m, "v1.0.0")

	lease, err := m.Acquire("")
	if err != nil {
		t.Fatal(err)
	}
	sess := lease.l.sess
	want, err := lease.Run(rows(7, 4), 4)
	if err != nil {
		t.Fatal(err)
	}

	if prev := mustActivate(t, m, "v1.1.0"); prev.String() != "v1.0.0" {
		t.Fatalf("Activate returned %s; want v1.0.0", prev)
	}
	if err := m.Unload(model.MustParseVersion("v1.0.0")); err != nil {
		t.Fatalf("Unload(v1.0.0) while leased: %v", err)
	}
	if got, want := m.LoadedVersions(), []string{"v1.1.0"}; !slices.Equal(got, want) {
		t.Errorf("LoadedVersions = %v; want %v", got, want)
	}
	if got := m.LiveSessions(); got != 2 {
		t.Errorf("LiveSessions with an unloaded version still leased = %d; want 2", got)
	}
	if sess.closed.Load() {
		t.Fatal("the unloaded version's session was destroyed while a lease on it is held")
	}
	if _, err := m.Acquire("v1.0.0"); !errors.Is(err, model.ErrVersionNotFound) {
		t.Errorf("Acquire(unloaded v1.0.0) = %v; want ErrVersionNotFound", err)
	}
	checkServes(t, m, "", "v1.1.0")

	got, err := lease.Run(rows(7, 4), 4)
	if err != nil {
		t.Fatalf("Run on a lease of an unloaded version: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Run after the swap = %v; want %v (same version, same answer)", got, want)
	}
	if v := lease.Manifest().Version.String(); v != "v1.0.0" {
		t.Errorf("lease.Manifest().Version = %s; want v1.0.0", v)
	}

	lease.Release()
	if got := m.LiveSessions(); got != 1 {
		t.Errorf("LiveSessions after the last lease is released = %d; want 1", got)
	}
	if !sess.closed.Load() {
		t.Error("the unloaded version's session is still open after its last lease was released")
	}
	lease.Release() // a second Release must not release the version again
	if got := m.LiveSessions(); got != 1 {
		t.Errorf("LiveSessions after a second Release = %d; want 1", got)
	}
	checkServes(t, m, "", "v1.1.0")
}

// TestTryAcquireNeverRevives: once a version's count reached zero (its
// session destroyed), no lease can be taken on it again.
func TestTryAcquireNeverRevives(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	b, man := testVersion(t, 1, "v1.0.0")
	mustLoad(t, m, b, man)
	l := (*m.byVersion.Load())["v1.0.0"]
	if err := m.Unload(man.Version); err != nil {
		t.Fatal(err)
	}
	if l.refs.Load() != 0 || !l.sess.closed.Load() {
		t.Fatalf("after Unload with no lease: refs %d, closed %v; want 0, true", l.refs.Load(), l.sess.closed.Load())
	}
	if l.tryAcquire() {
		t.Fatal("tryAcquire succeeded on a destroyed version")
	}
	if got := l.refs.Load(); got != 0 {
		t.Errorf("refs after a refused tryAcquire = %d; want 0", got)
	}
}

// TestManagerSwapUnderLoad hammers Acquire/Run/Release from several
// goroutines (active and pinned) while another loads, activates and unloads
// versions as fast as it can. No Run may ever see a destroyed session, no
// lease may name a version that was never activated, and the sessions all
// end up destroyed or loaded.
func TestManagerSwapUnderLoad(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	versions := []string{"v1.0.0", "v1.1.0", "v1.2.0"}
	type ver struct {
		b   []byte
		man *model.Manifest
	}
	vs := make([]ver, len(versions))
	for i, v := range versions {
		vs[i].b, vs[i].man = testVersion(t, int64(i+1), v)
	}
	mustLoad(t, m, vs[0].b, vs[0].man)
	mustActivate(t, m, versions[0])

	const workers, swaps = 4, 30
	var (
		stop    atomic.Bool
		calls   atomic.Int64 // successful calls
		tries   atomic.Int64 // every Acquire attempt
		pinned  atomic.Int64
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errs    []string
		maxLive atomic.Int64
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	x := rows(3, 3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				tries.Add(1)
				version := ""
				if w%2 == 1 && i%2 == 0 {
					version = versions[i%len(versions)] // may be unloaded: NotFound is the only allowed refusal
				}
				l, err := m.Acquire(version)
				if err != nil {
					if version == "" || !errors.Is(err, model.ErrVersionNotFound) {
						fail("Acquire(%q): %v", version, err)
					}
					continue
				}
				got := l.Manifest().Version.String()
				if version != "" && got != version {
					fail("Acquire(%q) leased %s", version, got)
				}
				if !slices.Contains(versions, got) {
					fail("leased unknown version %s", got)
				}
				if _, err := l.Run(x, 3); err != nil {
					fail("Run on %s: %v", got, err)
				}
				l.Release()
				calls.Add(1)
				if version != "" {
					pinned.Add(1)
				}
			}
		}()
	}

	// Each swap loads the next version, activates it and keeps only the
	// previous one warm, so the one before is unloaded while calls may
	// still hold it.
	for i := 1; i <= swaps; i++ {
		next := vs[i%len(vs)]
		if err := m.Load(next.b, next.man); err != nil {
			t.Fatalf("swap %d: Load %s: %v", i, next.man.Version, err)
		}
		prev, err := m.Activate(next.man.Version)
		if err != nil {
			t.Fatalf("swap %d: Activate: %v", i, err)
		}
		m.KeepOnly(prev)
		if n := int64(m.LiveSessions()); n > maxLive.Load() {
			maxLive.Store(n)
		}
		// Let every swap meet some calls.
		for before := tries.Load(); tries.Load() < before+int64(workers); {
			time.Sleep(50 * time.Microsecond)
		}
	}
	stop.Store(true)
	wg.Wait()

	for _, e := range errs {
		t.Error(e)
	}
	// Sessions alive: the 2 loaded ones plus, at most, one held per worker.
	if got := maxLive.Load(); got > 2+workers {
		t.Errorf("LiveSessions reached %d during the swaps; want at most %d", got, 2+workers)
	}
	if got, loaded := m.LiveSessions(), m.LoadedVersions(); got != len(loaded) || got != 2 {
		t.Errorf("LiveSessions = %d with %v loaded and no call in flight; want 2", got, loaded)
	}
	t.Logf("%d calls (%d pinned) during %d swaps, at most %d live sessions", calls.Load(), pinned.Load(), swaps, maxLive.Load())
}

// TestLeaseRunOutOfRange serves a version whose outputs leave [0,1]: Run
// refuses them and the version's stats count the failure.
func TestLeaseRunOutOfRange(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	q := onnxfile.RandomMLP(4)
	last := &q.Layers[len(q.Layers)-1]
	last.Activation = model.ActNone
	for o := range last.Bias {
		last.Bias[o] = 10 // far above 1 whatever the hidden units give
	}
	b, man := versionOf(t, q, "v1.0.0")
	mustLoad(t, m, b, man) // the golden rows agree: the model is what it claims
	mustActivate(t, m, "v1.0.0")

	l, err := m.Acquire("")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	_, err = l.Run(rows(5, 2), 2)
	if err == nil || !strings.Contains(err.Error(), "[0,1]") || !strings.Contains(err.Error(), "v1.0.0") {
		t.Fatalf("Run on out-of-range outputs = %v; want an error naming the version and [0,1]", err)
	}
	st, ok := m.StatsOf(man.Version)
	if !ok {
		t.Fatal("StatsOf(loaded version) not found")
	}
	if st != (StatsSnapshot{Calls: 1, Failures: 1}) {
		t.Errorf("StatsOf = %+v; want 1 call, 1 failure", st)
	}

	// A good version counts calls without failures.
	b2, man2 := testVersion(t, 5, "v1.1.0")
	mustLoad(t, m, b2, man2)
	checkServes(t, m, "v1.1.0", "v1.1.0")
	if st, _ := m.StatsOf(man2.Version); st != (StatsSnapshot{Calls: 1}) {
		t.Errorf("StatsOf(good version) = %+v; want 1 call, 0 failures", st)
	}
	if _, ok := m.StatsOf(model.MustParseVersion("v9.0.0")); ok {
		t.Error("StatsOf(not loaded) found")
	}
}

// BenchmarkAcquireRelease is the Predict hot path's cost in the manager: an
// atomic load and a reference count up and down, from all Ps at once.
func BenchmarkAcquireRelease(b *testing.B) {
	initORT(b)
	m := NewManager(Options{})
	defer m.Close()
	bb, man := testVersion(b, 1, "v1.0.0")
	mustLoad(b, m, bb, man)
	mustActivate(b, m, "v1.0.0")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := m.Acquire("")
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}

// TestManagerMajorsSideBySide: each major has its own active version;
// activating one major leaves the other's serving, KeepOnly never unloads
// an active version of any major, and AcquireMajor leases the right one.
func TestManagerMajorsSideBySide(t *testing.T) {
	initORT(t)
	m := NewManager(Options{})
	defer m.Close()
	for i, v := range []string{"v1.0.0", "v1.1.0"} {
		b, man := testVersion(t, int64(i+1), v)
		mustLoad(t, m, b, man)
	}
	b2, man2 := versionV2(t, 3, "v2.0.0")
	mustLoad(t, m, b2, man2)
	mustActivate(t, m, "v1.0.0")
	if prev := mustActivate(t, m, "v2.0.0"); !prev.IsZero() {
		t.Errorf("first activation of major 2 replaced %s; want none", prev)
	}
	if prev := mustActivate(t, m, "v1.1.0"); prev.String() != "v1.0.0" {
		t.Errorf("activating v1.1.0 replaced %s; want v1.0.0", prev)
	}
	m.KeepOnly()
	if got, want := m.LoadedVersions(), []string{"v1.1.0", "v2.0.0"}; !slices.Equal(got, want) {
		t.Errorf("after KeepOnly() loaded %v; want both majors' actives %v", got, want)
	}
	for major, want := range map[int]string{1: "v1.1.0", 2: "v2.0.0"} {
		l, err := m.AcquireMajor(major)
		if err != nil {
			t.Fatalf("AcquireMajor(%d): %v", major, err)
		}
		if got := l.Manifest().Version.String(); got != want {
			t.Errorf("AcquireMajor(%d) leased %s; want %s", major, got, want)
		}
		l.Release()
	}
	if _, err := m.AcquireMajor(3); !errors.Is(err, model.ErrNoActiveVersion) {
		t.Errorf("AcquireMajor(3): %v; want %v", err, model.ErrNoActiveVersion)
	}
	if err := m.Unload(model.MustParseVersion("v2.0.0")); err == nil {
		t.Error("Unload of major 2's active version succeeded")
	}
	if got := fmt.Sprint(m.Majors()); got != "[1 2]" {
		t.Errorf("Majors = %s; want [1 2]", got)
	}
	checkServes(t, m, "", "v1.1.0") // a caller naming nothing gets the lowest major
}

// versionV2 is RandomMLPV2(seed) as version, with major 2's declared
// features and signature.
func versionV2(t testing.TB, seed int64, version string) ([]byte, *model.Manifest) {
	t.Helper()
	q := onnxfile.RandomMLPV2(seed)
	v := model.MustParseVersion(version)
	b, err := onnxfile.Encode(q, v)
	if err != nil {
		t.Fatalf("Encode %s: %v", version, err)
	}
	feats, err := model.FeaturesFor(2)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 4*len(feats))
	for i := range x {
		x[i] = float32((i*7)%11) / 10
	}
	return b, &model.Manifest{
		Schema: model.ManifestSchema, Version: v, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Model:     model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature: model.SignatureFor(len(feats)), Features: feats, Outputs: model.DefaultOutputs(),
		Golden: trainer.GoldenFor(q, x, 4),
	}
}

// TestManagerLoadArchitectureMessage: a refused architecture names the
// manifest's wrong field and value and nothing read from the file.
func TestManagerLoadArchitectureMessage(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	q := onnxfile.RandomMLP(2)
	b, man := versionOf(t, q, "v1.9.0")
	man.Architecture = model.Architecture{Layers: q.Widths(), Parameters: q.Params()}
	man.Architecture.Layers[1] *= 2
	msg, _ := model.PublicMessage(m.Load(b, man))
	if !strings.Contains(msg, fmt.Sprint(man.Architecture.Layers)) || !strings.Contains(msg, "architecture.layers") ||
		strings.Contains(msg, "architecture.parameters") || strings.Contains(msg, fmt.Sprint(q.Widths())) {
		t.Errorf("public message %q; want it to name architecture.layers %v alone, and not the file's widths %v", msg, man.Architecture.Layers, q.Widths())
	}
	man.Architecture = model.Architecture{Layers: q.Widths(), Parameters: q.Params()}
	mustLoad(t, m, b, man) // declared right, it loads
}
