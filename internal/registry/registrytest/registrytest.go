// Package registrytest is the contract every model.Registry keeps, as one
// suite of tests that each store runs against a real instance of itself
// (a bbolt file, an etcd cluster): registration, listing and loading,
// refusing damaged bytes, retention per major with its protected versions,
// activation with compare-and-swap, the rollback index, paged and trimmed
// history, records, and concurrent use.
package registrytest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"recommendation-api/internal/model"
)

// Options are the store settings a test asks for; zero fields mean the
// store's defaults (Keep 5, HistoryKeep 10,000, time.Now).
type Options struct {
	Keep, HistoryKeep int
	Now               func() time.Time
}

// Subject is a store under test.
type Subject struct {
	// Open returns a new, empty registry with opts, closing it when t
	// ends. Each call must give a registry of its own.
	Open func(t *testing.T, opts Options) model.Registry
	// Corrupt flips one byte of the stored model bytes of v behind r's
	// back and returns a registry reading the damaged store: r itself, or
	// a reopened one (closed when t ends).
	Corrupt func(t *testing.T, r model.Registry, v model.Version) model.Registry
}

// Run runs the contract against s. Its subtests run in parallel.
func Run(t *testing.T, s Subject) {
	c := &contract{s: s}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Empty", c.testEmpty},
		{"Register", c.testRegister},
		{"Retention", c.testRetention},
		{"RetentionPerMajor", c.testRetentionPerMajor},
		{"Load", c.testLoad},
		{"ChecksumMismatch", c.testChecksumMismatch},
		{"History", c.testHistory},
		{"SetActive", c.testSetActive},
		{"SetActiveIf", c.testSetActiveIf},
		{"PreviousActive", c.testPreviousActive},
		{"HistoryPage", c.testHistoryPage},
		{"Records", c.testRecords},
		{"Concurrent", c.testConcurrent},
		{"Close", c.testClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t)
		})
	}
}

type contract struct{ s Subject }

// open opens a registry whose invariants are checked when t ends.
func (c *contract) open(t *testing.T, opts Options) model.Registry {
	t.Helper()
	r := c.s.Open(t, opts)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if err := r.Check(); err != nil {
			t.Errorf("Check at the end of the test: %v", err)
		}
	})
	return r
}

// NewManifest returns a valid manifest describing b as version v. A
// registry does not interpret model bytes, so b can be anything.
func NewManifest(v model.Version, b []byte) *model.Manifest {
	in := make([]float32, model.NumFeatures)
	for i := range in {
		in[i] = float32(i) / model.NumFeatures
	}
	return &model.Manifest{
		Schema:       model.ManifestSchema,
		Version:      v,
		CreatedAt:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Model:        model.ModelFile{File: "predictor_" + v.String() + ".onnx", SHA256: model.SHA256Hex(b), SizeBytes: int64(len(b))},
		Signature:    model.DefaultSignature(),
		Features:     model.DefaultFeatures(),
		Outputs:      model.DefaultOutputs(),
		Quantization: model.DefaultQuantization(),
		Golden:       model.Golden{Tolerance: 1e-4, Inputs: [][]float32{in}, Outputs: [][]float32{{0.1, 0.2, 0.3, 0.4, 0.9}}},
	}
}

// ModelBytes returns n pseudo-random bytes determined by seed.
func ModelBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// FixedClock returns a Now that starts at a fixed time and ticks a second
// per call; safe for concurrent use.
func FixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func version(s string) model.Version { return model.MustParseVersion(s) }

// Register registers version vs with bytes derived from it, failing the
// test on error, and returns what it pruned.
func Register(t *testing.T, r model.Registry, vs string) []model.Version {
	t.Helper()
	v := version(vs)
	b := ModelBytes(uint64(v.Major*1_000_000+v.Minor*1_000+v.Patch), 512)
	pruned, err := r.Register(b, NewManifest(v, b), "test")
	if err != nil {
		t.Fatalf("Register(%s): %v", vs, err)
	}
	return pruned
}

// Listed returns the versions r lists, as strings.
func Listed(t *testing.T, r model.Registry) []string {
	t.Helper()
	list, err := r.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var vs []string
	for _, e := range list {
		vs = append(vs, e.Manifest.Version.String())
	}
	return vs
}

// History returns r's events, failing the test on error.
func History(t *testing.T, r model.Registry) []model.Event {
	t.Helper()
	h, err := r.History()
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return h
}

func versionStrings(vs []model.Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

func (c *contract) testEmpty(t *testing.T) {
	r := c.open(t, Options{})
	if got := Listed(t, r); len(got) != 0 {
		t.Errorf("List of a new registry = %v; want none", got)
	}
	if _, err := r.Newest(); !errors.Is(err, model.ErrVersionNotFound) {
		t.Errorf("Newest of a new registry: err = %v; want ErrVersionNotFound", err)
	}
	if _, err := r.Active(1); !errors.Is(err, model.ErrNoActiveVersion) {
		t.Errorf("Active of a new registry: err = %v; want ErrNoActiveVersion", err)
	}
	if a, err := r.Actives(); err != nil || len(a) != 0 {
		t.Errorf("Actives of a new registry = %v, %v; want none", a, err)
	}
	if h := History(t, r); len(h) != 0 {
		t.Errorf("History of a new registry = %+v; want none", h)
	}
}

func (c *contract) testRegister(t *testing.T) {
	good := ModelBytes(1, 1000)
	tests := []struct {
		name    string
		bytes   []byte
		m       func() *model.Manifest
		wantErr error
	}{
		{"OK", good, func() *model.Manifest { return NewManifest(version("v1.0.1"), good) }, nil},
		{"OKEmptyBytes", nil, func() *model.Manifest { return NewManifest(version("v1.0.1"), nil) }, nil},
		{"OKOlderVersion", good, func() *model.Manifest { return NewManifest(version("v0.9.0"), good) }, nil},
		{"ErrVersionExists", good, func() *model.Manifest { return NewManifest(version("v1.0.0"), good) }, model.ErrVersionExists},
		{"ErrChecksumMismatch", good, func() *model.Manifest { return NewManifest(version("v1.0.1"), ModelBytes(2, 1000)) }, model.ErrChecksumMismatch},
		{"ErrChecksumMismatchSize", good[:999], func() *model.Manifest {
			m := NewManifest(version("v1.0.1"), good)
			m.Model.SHA256 = model.SHA256Hex(good[:999])
			return m
		}, model.ErrChecksumMismatch},
		{"ErrInvalidModelSchema", good, func() *model.Manifest {
			m := NewManifest(version("v1.0.1"), good)
			m.Schema = 2
			return m
		}, model.ErrInvalidModel},
		{"ErrInvalidModelNoGolden", good, func() *model.Manifest {
			m := NewManifest(version("v1.0.1"), good)
			m.Golden.Inputs, m.Golden.Outputs = nil, nil
			return m
		}, model.ErrInvalidModel},
		{"ErrInvalidModelNoVersion", good, func() *model.Manifest { return NewManifest(model.Version{}, good) }, model.ErrInvalidModel},
		{"ErrInvalidModelNil", good, func() *model.Manifest { return nil }, model.ErrInvalidModel},
		{"ErrInvalidVersion", good, func() *model.Manifest { return NewManifest(model.Version{Major: 1, Minor: -1}, good) }, model.ErrInvalidVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.open(t, Options{Now: FixedClock()})
			Register(t, r, "v1.0.0")
			beforeList, beforeHist := Listed(t, r), History(t, r)
			m := tt.m()
			pruned, err := r.Register(tt.bytes, m, "alice")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Register: err = %v; want %v", err, tt.wantErr)
			}
			if len(pruned) != 0 {
				t.Errorf("Register pruned %v; want nothing", pruned)
			}
			if tt.wantErr != nil {
				if m != nil && !m.Version.IsZero() && !strings.Contains(err.Error(), m.Version.String()) {
					t.Errorf("Register: err = %v; want it to name %s", err, m.Version)
				}
				if got := Listed(t, r); !slices.Equal(got, beforeList) {
					t.Errorf("after a refused Register, List = %v; want %v unchanged", got, beforeList)
				}
				if got := History(t, r); !reflect.DeepEqual(got, beforeHist) {
					t.Errorf("after a refused Register, History = %+v; want %+v unchanged", got, beforeHist)
				}
				return
			}
			b, got, err := r.Load(m.Version)
			if err != nil {
				t.Fatalf("Load(%s): %v", m.Version, err)
			}
			if !bytes.Equal(b, tt.bytes) {
				t.Errorf("Load(%s) bytes differ from the registered ones", m.Version)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("Load(%s) manifest = %+v; want %+v", m.Version, got, m)
			}
			h := History(t, r)
			last := h[len(h)-1]
			if last.Action != model.ActionRegister || last.To != m.Version.String() || last.Actor != "alice" || last.Seq != uint64(len(h)) || last.Major != m.Version.Major {
				t.Errorf("last event = %+v; want register of %s by alice, seq %d", last, m.Version, len(h))
			}
		})
	}
}

func (c *contract) testRetention(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		// Registered out of order: semver decides, so v1.0.10 is newer
		// than v1.0.9, and v0.9.0 is another major with its own five.
		t.Parallel()
		r := c.open(t, Options{})
		steps := []struct {
			register   string
			wantPruned []string
		}{
			{"v1.0.9", nil}, {"v1.0.10", nil}, {"v1.0.2", nil}, {"v0.9.0", nil}, {"v1.1.0", nil},
			{"v1.0.11", nil}, {"v1.0.12", []string{"v1.0.2"}}, {"v2.0.0", nil},
		}
		for _, st := range steps {
			if got := versionStrings(Register(t, r, st.register)); !slices.Equal(got, st.wantPruned) {
				t.Errorf("Register(%s) pruned %v; want %v", st.register, got, st.wantPruned)
			}
		}
		before := History(t, r)
		b := ModelBytes(99, 100)
		if _, err := r.Register(b, NewManifest(version("v1.0.1"), b), "test"); !errors.Is(err, model.ErrVersionTooOld) {
			t.Errorf("Register(v1.0.1): err = %v; want %v", err, model.ErrVersionTooOld)
		} else if !strings.Contains(err.Error(), "v1.0.9") {
			t.Errorf("Register(v1.0.1): %q does not name the oldest kept version v1.0.9", err)
		}
		if after := History(t, r); len(after) != len(before) {
			t.Errorf("a refused registration wrote %d events", len(after)-len(before))
		}
		want := []string{"v0.9.0", "v1.0.9", "v1.0.10", "v1.0.11", "v1.0.12", "v1.1.0", "v2.0.0"}
		if got := Listed(t, r); !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v", got, want)
		}
		if v, err := r.Newest(); err != nil || v.String() != "v2.0.0" {
			t.Errorf("Newest = %v, %v; want v2.0.0", v, err)
		}
		var prunes []string
		for _, ev := range History(t, r) {
			if ev.Action == model.ActionPrune {
				prunes = append(prunes, ev.From)
				if ev.Major != 1 {
					t.Errorf("prune event %+v; want major 1", ev)
				}
			}
		}
		if want := []string{"v1.0.2"}; !slices.Equal(prunes, want) {
			t.Errorf("prune events for %v; want %v", prunes, want)
		}
		if _, _, err := r.Load(version("v1.0.2")); !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("Load of a pruned version: err = %v; want ErrVersionNotFound", err)
		}
	})
	t.Run("OKActiveAndTargetKept", func(t *testing.T) {
		t.Parallel()
		r := c.open(t, Options{})
		Register(t, r, "v1.0.0")
		if _, err := r.SetActive(version("v1.0.0"), model.Event{}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1.0.1", "v1.0.2", "v1.0.3", "v1.0.4", "v1.0.5", "v1.0.6"} {
			Register(t, r, v)
		}
		if got, want := Listed(t, r), []string{"v1.0.0", "v1.0.2", "v1.0.3", "v1.0.4", "v1.0.5", "v1.0.6"}; !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v (the active version kept)", got, want)
		}
		list, _ := r.List()
		if !list[0].Active || slices.ContainsFunc(list[1:], func(e model.Entry) bool { return e.Active }) {
			t.Errorf("List marks the wrong version active: %+v", list)
		}
		// Once another version is active, the old one is its rollback
		// target and stays; it goes once it is neither.
		if _, err := r.SetActive(version("v1.0.6"), model.Event{}); err != nil {
			t.Fatal(err)
		}
		if got := versionStrings(Register(t, r, "v1.0.7")); !slices.Equal(got, []string{"v1.0.2"}) {
			t.Errorf("Register(v1.0.7) pruned %v; want [v1.0.2] (v1.0.0 is the rollback target)", got)
		}
		if _, err := r.SetActive(version("v1.0.7"), model.Event{}); err != nil {
			t.Fatal(err)
		}
		if got := versionStrings(Register(t, r, "v1.0.8")); !slices.Equal(got, []string{"v1.0.0", "v1.0.3"}) {
			t.Errorf("Register(v1.0.8) pruned %v; want [v1.0.0 v1.0.3]", got)
		}
		// v1.0.0 left the rollback index with its deletion.
		if v, err := r.PreviousActive(1); err != nil || v.String() != "v1.0.6" {
			t.Errorf("PreviousActive = %v, %v; want v1.0.6", v, err)
		}
	})
	t.Run("OKKeep2", func(t *testing.T) {
		t.Parallel()
		r := c.open(t, Options{Keep: 2})
		for _, v := range []string{"v1.0.0", "v1.0.1", "v1.0.2"} {
			Register(t, r, v)
		}
		if got, want := Listed(t, r), []string{"v1.0.1", "v1.0.2"}; !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v", got, want)
		}
	})
}

func (c *contract) testRetentionPerMajor(t *testing.T) {
	r := c.open(t, Options{Keep: 2})
	for _, v := range []string{"v1.0.0", "v2.0.0", "v2.0.1"} {
		Register(t, r, v)
	}
	if _, err := r.SetActive(version("v1.0.0"), model.Event{}); err != nil {
		t.Fatal(err)
	}
	if got := versionStrings(Register(t, r, "v2.0.2")); !slices.Equal(got, []string{"v2.0.0"}) {
		t.Errorf("Register(v2.0.2) pruned %v; want [v2.0.0]", got)
	}
	Register(t, r, "v1.0.1")
	b := ModelBytes(7, 64)
	pruned, err := r.RegisterWith(b, NewManifest(version("v2.0.3"), b), model.RegisterOptions{Actor: "t", Reason: "weekly", Protect: []model.Version{version("v2.0.1")}})
	if err != nil || len(pruned) != 0 {
		t.Errorf("RegisterWith protecting v2.0.1 pruned %v, %v; want none", pruned, err)
	}
	if got := Listed(t, r); !slices.Equal(got, []string{"v1.0.0", "v1.0.1", "v2.0.1", "v2.0.2", "v2.0.3"}) {
		t.Errorf("List = %v", got)
	}
	h := History(t, r)
	if ev := h[len(h)-1]; ev.Action != model.ActionRegister || ev.Reason != "weekly" || ev.Major != 2 || ev.Actor != "t" {
		t.Errorf("register event %+v; want the reason, actor and major recorded", ev)
	}
	// The active version of major 2 and its rollback target are kept in
	// major 2 while major 1 keeps its own.
	for _, v := range []string{"v2.0.1", "v2.0.2"} {
		if _, err := r.SetActive(version(v), model.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := versionStrings(Register(t, r, "v2.0.4")); len(got) != 0 {
		t.Errorf("Register(v2.0.4) pruned %v; want none (v2.0.2 active, v2.0.1 its rollback target)", got)
	}
	if got := versionStrings(Register(t, r, "v2.0.5")); !slices.Equal(got, []string{"v2.0.3"}) {
		t.Errorf("Register(v2.0.5) pruned %v; want [v2.0.3] (v2.0.2 active, v2.0.1 its rollback target)", got)
	}
	a, err := r.Actives()
	if err != nil || len(a) != 2 || a[1].String() != "v1.0.0" || a[2].String() != "v2.0.2" {
		t.Errorf("Actives = %v, %v; want 1: v1.0.0, 2: v2.0.2", a, err)
	}
}

func (c *contract) testLoad(t *testing.T) {
	r := c.open(t, Options{})
	Register(t, r, "v1.0.0")
	for _, tt := range []struct {
		name    string
		v       model.Version
		wantErr error
	}{
		{"OK", version("v1.0.0"), nil},
		{"ErrVersionNotFound", version("v1.0.1"), model.ErrVersionNotFound},
		{"ErrVersionNotFoundZero", model.Version{}, model.ErrVersionNotFound},
		{"ErrInvalidVersion", model.Version{Major: -1}, model.ErrInvalidVersion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := r.Load(tt.v); !errors.Is(err, tt.wantErr) {
				t.Errorf("Load(%s): err = %v; want %v", tt.v, err, tt.wantErr)
			}
			_, err := r.Manifest(tt.v)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Manifest(%s): err = %v; want %v", tt.v, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.v.String()) {
				t.Errorf("Manifest(%s): err = %v; want it to name the version", tt.v, err)
			}
		})
	}
	t.Run("OKCopy", func(t *testing.T) {
		b, _, err := r.Load(version("v1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		clear(b) // the caller owns the bytes
		if _, _, err := r.Load(version("v1.0.0")); err != nil {
			t.Errorf("Load after scribbling on a previous result: %v", err)
		}
	})
}

func (c *contract) testChecksumMismatch(t *testing.T) {
	r := c.s.Open(t, Options{}) // Corrupt may close it; Check runs below
	Register(t, r, "v1.0.0")
	Register(t, r, "v1.0.1")
	r = c.s.Corrupt(t, r, version("v1.0.0"))
	b, m, err := r.Load(version("v1.0.0"))
	if !errors.Is(err, model.ErrChecksumMismatch) || !strings.Contains(err.Error(), "v1.0.0") {
		t.Errorf("Load(v1.0.0): err = %v; want ErrChecksumMismatch naming v1.0.0", err)
	}
	if b != nil || m != nil {
		t.Errorf("Load(v1.0.0) returned bytes or a manifest with its error")
	}
	if m, err := r.Manifest(version("v1.0.0")); err != nil || m.Version.String() != "v1.0.0" {
		t.Errorf("Manifest(v1.0.0) = %v, %v; want the manifest", m, err)
	}
	if _, _, err := r.Load(version("v1.0.1")); err != nil {
		t.Errorf("Load(v1.0.1): %v", err)
	}
	// The structure is intact (Check does not hash); only a value changed.
	if err := r.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func (c *contract) testHistory(t *testing.T) {
	r := c.open(t, Options{Now: FixedClock()})
	Register(t, r, "v1.0.0")
	Register(t, r, "v1.1.0")
	at := time.Date(2025, 7, 1, 9, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	var returned []model.Event
	for _, st := range []struct {
		to string
		ev model.Event
	}{
		{"v1.0.0", model.Event{Reason: "first model", Actor: "alice"}},
		{"v1.1.0", model.Event{Action: model.ActionActivate, Reason: "better mae", Actor: "bob", Time: at}},
		{"v1.0.0", model.Event{Action: model.ActionRollback, Reason: "oom rate up", Actor: "carol", From: "ignored"}},
	} {
		ev, err := r.SetActive(version(st.to), st.ev)
		if err != nil {
			t.Fatalf("SetActive(%s): %v", st.to, err)
		}
		returned = append(returned, ev)
	}
	h := History(t, r)
	want := []model.Event{
		{Seq: 1, Time: time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC), Action: "register", Major: 1, To: "v1.0.0", Actor: "test"},
		{Seq: 2, Time: time.Date(2025, 6, 1, 12, 0, 2, 0, time.UTC), Action: "register", Major: 1, To: "v1.1.0", Actor: "test"},
		{Seq: 3, Time: time.Date(2025, 6, 1, 12, 0, 3, 0, time.UTC), Action: "activate", Major: 1, To: "v1.0.0", Reason: "first model", Actor: "alice"},
		{Seq: 4, Time: at.UTC(), Action: "activate", Major: 1, From: "v1.0.0", To: "v1.1.0", Reason: "better mae", Actor: "bob"},
		{Seq: 5, Time: time.Date(2025, 6, 1, 12, 0, 4, 0, time.UTC), Action: "rollback", Major: 1, From: "v1.1.0", To: "v1.0.0", Reason: "oom rate up", Actor: "carol"},
	}
	if !reflect.DeepEqual(returned, h[2:]) {
		t.Errorf("SetActive returned %+v; History has %+v", returned, h[2:])
	}
	if len(h) != len(want) {
		t.Fatalf("History has %d events; want %d: %+v", len(h), len(want), h)
	}
	for i := range want {
		if !h[i].Time.Equal(want[i].Time) {
			t.Errorf("event %d time = %v; want %v", i, h[i].Time, want[i].Time)
		}
		h[i].Time, want[i].Time = time.Time{}, time.Time{}
		if h[i] != want[i] {
			t.Errorf("event %d = %+v; want %+v", i, h[i], want[i])
		}
	}
	if v, err := r.Active(1); err != nil || v.String() != "v1.0.0" {
		t.Errorf("Active = %v, %v; want v1.0.0", v, err)
	}
	if v, err := r.PreviousActive(1); !errors.Is(err, model.ErrVersionNotFound) {
		t.Errorf("PreviousActive after rolling back to the first version = %v, %v; want ErrVersionNotFound", v, err)
	}
}

func (c *contract) testSetActive(t *testing.T) {
	for _, tt := range []struct {
		name    string
		to      model.Version
		action  string
		wantErr error
	}{
		{"OK", version("v1.0.0"), "", nil},
		{"OKAutoRollback", version("v1.0.0"), model.ActionAutoRollback, nil},
		{"ErrVersionNotFound", version("v1.0.1"), "", model.ErrVersionNotFound},
		{"ErrInvalidVersion", model.Version{Patch: -3}, "", model.ErrInvalidVersion},
		{"ErrAction", version("v1.0.0"), model.ActionPrune, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.open(t, Options{})
			Register(t, r, "v1.0.0")
			before := History(t, r)
			_, err := r.SetActive(tt.to, model.Event{Action: tt.action})
			if tt.name == "ErrAction" {
				if err == nil || !strings.Contains(err.Error(), model.ActionPrune) {
					t.Fatalf("SetActive with action %q: err = %v; want it refused naming the action", tt.action, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SetActive(%s): err = %v; want %v", tt.to, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.to.String()) {
					t.Errorf("SetActive: err = %v; want it to name %s", err, tt.to)
				}
				if _, err := r.Active(1); !errors.Is(err, model.ErrNoActiveVersion) {
					t.Errorf("Active after a refused SetActive: err = %v; want ErrNoActiveVersion", err)
				}
				if got := History(t, r); !reflect.DeepEqual(got, before) {
					t.Errorf("History after a refused SetActive = %+v; want %+v", got, before)
				}
				return
			}
			if v, err := r.Active(1); err != nil || v != tt.to {
				t.Errorf("Active = %v, %v; want %s", v, err, tt.to)
			}
		})
	}
}

func (c *contract) testSetActiveIf(t *testing.T) {
	r := c.open(t, Options{})
	Register(t, r, "v1.0.0")
	Register(t, r, "v1.1.0")
	none := model.Version{}
	if _, err := r.SetActiveIf(version("v1.0.0"), model.Event{}, &none); err != nil {
		t.Fatalf("first activation expecting none: %v", err)
	}
	if _, err := r.SetActiveIf(version("v1.1.0"), model.Event{}, &none); !errors.Is(err, model.ErrActiveMismatch) {
		t.Errorf("expecting none while v1.0.0 is active: err = %v; want %v", err, model.ErrActiveMismatch)
	}
	n := len(History(t, r))
	want := version("v1.1.0")
	if _, err := r.SetActiveIf(version("v1.1.0"), model.Event{}, &want); !errors.Is(err, model.ErrActiveMismatch) || !strings.Contains(err.Error(), "active version of major 1 is v1.0.0") {
		t.Errorf("err = %v; want %v naming the actual active v1.0.0", err, model.ErrActiveMismatch)
	}
	if _, err := r.SetActive(version("v1.0.0"), model.Event{Action: model.ActionRollback}); !errors.Is(err, model.ErrAlreadyActive) {
		t.Errorf("re-activating the active version: err = %v; want %v", err, model.ErrAlreadyActive)
	}
	if got := len(History(t, r)); got != n {
		t.Errorf("refused changes wrote %d events", got-n)
	}
	if v, _ := r.Active(1); v.String() != "v1.0.0" {
		t.Errorf("active %s after refused changes; want v1.0.0", v)
	}
	exp := version("v1.0.0")
	ev, err := r.SetActiveIf(version("v1.1.0"), model.Event{}, &exp)
	if err != nil || ev.From != "v1.0.0" || ev.Major != 1 || ev.Seq != uint64(n+1) {
		t.Errorf("SetActiveIf expecting the active version = %+v, %v; want from v1.0.0, seq %d", ev, err, n+1)
	}
}

func (c *contract) testPreviousActive(t *testing.T) {
	// Each step is "a v" (activate), "r v" (rollback), "R v"
	// (auto_rollback) or "+ v" (register, which may prune); v1.0.0..v1.0.4
	// are registered first, Keep is 5.
	for _, tt := range []struct {
		name    string
		steps   []string
		want    string
		wantErr error
	}{
		{"OK", []string{"a v1.0.0", "a v1.0.1"}, "v1.0.0", nil},
		{"OKChain", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "r v1.0.1"}, "v1.0.0", nil},
		{"OKAutoRollback", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "R v1.0.1"}, "v1.0.0", nil},
		{"OKRollbackPastOne", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "a v1.0.3", "r v1.0.1"}, "v1.0.0", nil},
		{"OKRollbackElsewhere", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "r v1.0.4"}, "v1.0.1", nil},
		{"OKReactivate", []string{"a v1.0.0", "a v1.0.1", "a v1.0.0"}, "v1.0.1", nil},
		{"OKSameTwice", []string{"a v1.0.0", "a v1.0.1", "a v1.0.1"}, "v1.0.0", nil},
		{"OKTargetKept", []string{"a v1.0.3", "a v1.0.1", "a v1.0.4", "+ v1.0.5", "+ v1.0.6"}, "v1.0.1", nil},
		{"OKWalkBack", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "a v1.0.3", "r v1.0.2", "r v1.0.1"}, "v1.0.0", nil},
		{"ErrNoActiveVersion", nil, "", model.ErrNoActiveVersion},
		{"ErrVersionNotFoundFirst", []string{"a v1.0.0"}, "", model.ErrVersionNotFound},
		{"ErrVersionNotFoundRolledBack", []string{"a v1.0.0", "a v1.0.1", "r v1.0.0"}, "", model.ErrVersionNotFound},
		{"ErrVersionNotFoundPruned", []string{"a v1.0.0", "a v1.0.1", "a v1.0.4", "+ v1.0.5", "+ v1.0.6", "r v1.0.1"}, "", model.ErrVersionNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.open(t, Options{})
			for _, v := range []string{"v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3", "v1.0.4"} {
				Register(t, r, v)
			}
			for _, st := range tt.steps {
				op, v, _ := strings.Cut(st, " ")
				if op == "+" {
					Register(t, r, v)
					continue
				}
				action := map[string]string{"a": model.ActionActivate, "r": model.ActionRollback, "R": model.ActionAutoRollback}[op]
				if _, err := r.SetActive(version(v), model.Event{Action: action}); err != nil && !errors.Is(err, model.ErrAlreadyActive) {
					t.Fatalf("SetActive(%s): %v", v, err)
				}
			}
			got, err := r.PreviousActive(1)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PreviousActive: err = %v; want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got.String() != tt.want {
				t.Errorf("PreviousActive = %s; want %s", got, tt.want)
			}
		})
	}
}

func (c *contract) testHistoryPage(t *testing.T) {
	r := c.open(t, Options{HistoryKeep: 10})
	Register(t, r, "v1.0.0")
	Register(t, r, "v1.0.1")
	Register(t, r, "v2.0.0")
	for i := range 11 {
		to := []string{"v1.0.0", "v1.0.1"}[i%2]
		if _, err := r.SetActive(version(to), model.Event{Reason: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// 14 events, 10 kept: seq 5..14.
	all := History(t, r)
	if len(all) != 10 || all[0].Seq != 5 || all[9].Seq != 14 {
		t.Fatalf("History kept %d events, seq %d..%d; want 10, 5..14", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	var seqs []uint64
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := r.HistoryPage(model.HistoryQuery{PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page {
			seqs = append(seqs, ev.Seq)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages; want 3", pages+1)
			}
			break
		}
		token = next
	}
	if want := []uint64{14, 13, 12, 11, 10, 9, 8, 7, 6, 5}; !slices.Equal(seqs, want) {
		t.Errorf("pages gave seq %v; want %v", seqs, want)
	}
	// Exactly a page of matches: no next page.
	if page, next, err := r.HistoryPage(model.HistoryQuery{PageSize: 10}); err != nil || len(page) != 10 || next != "" {
		t.Errorf("a page of all 10: %d events, next %q, %v; want 10 and no next page", len(page), next, err)
	}
	if page, _, err := r.HistoryPage(model.HistoryQuery{Action: model.ActionRegister}); err != nil || len(page) != 0 {
		t.Errorf("register events after trimming: %v, %v; want none", page, err)
	}
	if page, _, err := r.HistoryPage(model.HistoryQuery{Major: 2}); err != nil || len(page) != 0 {
		t.Errorf("major 2 events after trimming: %v, %v; want none", page, err)
	}
	page, next, err := r.HistoryPage(model.HistoryQuery{PageSize: 2, PageToken: "8", Action: model.ActionActivate, Major: 1})
	if err != nil || len(page) != 2 || page[0].Seq != 7 || page[1].Seq != 6 || next != "6" {
		t.Errorf("page before seq 8 = %+v, next %q, %v; want seq 7, 6 and next 6", page, next, err)
	}
	for _, bad := range []model.HistoryQuery{{PageToken: "abc"}, {PageToken: "0"}, {PageSize: model.MaxHistoryPage + 1}} {
		if _, _, err := r.HistoryPage(bad); !errors.Is(err, model.ErrInvalidInput) {
			t.Errorf("HistoryPage(%+v): err = %v; want %v", bad, err, model.ErrInvalidInput)
		}
	}
	// The rollback target does not depend on the trimmed events.
	if v, err := r.PreviousActive(1); err != nil || v.String() != "v1.0.1" {
		t.Errorf("PreviousActive after trimming = %v, %v; want v1.0.1", v, err)
	}
}

func (c *contract) testRecords(t *testing.T) {
	r := c.open(t, Options{})
	for _, kv := range [][2]string{{"job-2", "b"}, {"job-1", "a"}, {"job-3", "c"}, {"job-1", "a2"}} {
		if err := r.PutRecord("jobs", kv[0], []byte(kv[1])); err != nil {
			t.Fatalf("PutRecord(%s): %v", kv[0], err)
		}
	}
	if got, err := r.GetRecord("jobs", "job-1"); err != nil || string(got) != "a2" {
		t.Errorf("GetRecord(jobs, job-1) = %q, %v; want \"a2\"", got, err)
	}
	got, err := r.ListRecords("jobs")
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, v := range got {
		vs = append(vs, string(v))
	}
	if want := []string{"a2", "b", "c"}; !slices.Equal(vs, want) {
		t.Errorf("ListRecords(jobs) = %q; want %q (key order)", vs, want)
	}
	if got, err := r.ListRecords("nothing"); err != nil || len(got) != 0 {
		t.Errorf("ListRecords(nothing) = %q, %v; want none", got, err)
	}
	// A record bucket named like the registry's own data is a different one,
	// and one bucket's name is never a prefix of another's keys.
	if err := r.PutRecord("models", "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRecord("jo", "bs/job-9", []byte("z")); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRecord("jobs/x", "job-9", []byte("w")); err != nil {
		t.Fatal(err)
	}
	if got := Listed(t, r); len(got) != 0 {
		t.Errorf("List after PutRecord(models, ...) = %v; want none", got)
	}
	if got, err := r.ListRecords("jobs"); err != nil || len(got) != 3 {
		t.Errorf("ListRecords(jobs) after writing buckets jo and jobs/x: %q, %v; want its 3 records", got, err)
	}
	for _, tt := range []struct{ name, bucket, key string }{
		{"ErrRecordNotFound", "jobs", "job-9"},
		{"ErrRecordNotFoundBucket", "nothing", "job-1"},
		{"ErrRecordNotFoundEmptyKey", "jobs", ""},
	} {
		if _, err := r.GetRecord(tt.bucket, tt.key); !errors.Is(err, model.ErrRecordNotFound) || !strings.Contains(err.Error(), tt.bucket+"/"+tt.key) {
			t.Errorf("%s: GetRecord(%q, %q): err = %v; want ErrRecordNotFound naming them", tt.name, tt.bucket, tt.key, err)
		}
	}
	if err := r.PutRecord("", "k", nil); err == nil {
		t.Error("PutRecord with an empty bucket succeeded")
	}
	if err := r.PutRecord("jobs", "", nil); err == nil {
		t.Error("PutRecord with an empty key succeeded")
	}
}

// testConcurrent registers, activates and reads from several goroutines at
// once and checks the end state adds up: every accepted registration and
// applied activation is in the history exactly once, numbered without gaps.
func (c *contract) testConcurrent(t *testing.T) {
	const writers, perWriter, readers = 4, 6, 2
	r := c.open(t, Options{})
	var (
		wg, readerWG sync.WaitGroup
		errMu        sync.Mutex // guards errs
		errs         []error
		stopped      = make(chan struct{})
		accepted     atomic.Int64
		activations  atomic.Int64
	)
	report := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range perWriter {
				v := model.Version{Major: 1, Minor: w, Patch: i}
				b := ModelBytes(uint64(w*100+i), 1000+rng.IntN(4000))
				_, err := r.Register(b, NewManifest(v, b), fmt.Sprintf("writer-%d", w))
				if errors.Is(err, model.ErrVersionTooOld) {
					continue // other writers registered five newer ones
				}
				if err != nil {
					report(err)
					return
				}
				accepted.Add(1)
				to := v
				if list, err := r.List(); err == nil && rng.IntN(2) == 0 {
					to = list[rng.IntN(len(list))].Manifest.Version
				}
				// Another writer may prune to between List and SetActive.
				_, err = r.SetActive(to, model.Event{Actor: fmt.Sprintf("writer-%d", w)})
				switch {
				case err == nil:
					activations.Add(1)
				case !errors.Is(err, model.ErrVersionNotFound) && !errors.Is(err, model.ErrAlreadyActive):
					report(err)
				}
			}
		})
	}
	for range readers {
		readerWG.Go(func() {
			for {
				select {
				case <-stopped:
					return
				default:
				}
				if v, err := r.Active(1); err == nil {
					// The active version can never be pruned under us.
					if _, _, err := r.Load(v); err != nil && !errors.Is(err, model.ErrVersionNotFound) {
						report(fmt.Errorf("Load(active %s): %w", v, err))
					}
				}
				if _, err := r.List(); err != nil {
					report(err)
				}
			}
		})
	}
	wg.Wait()
	close(stopped)
	readerWG.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	list, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	active, err := r.Active(1)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list); n < 5 || n > 7 {
		t.Errorf("%d versions remain; want 5 to 7 (five, the active version, its rollback target)", n)
	}
	var registers, prunes, acts int
	var last model.Event
	for i, ev := range History(t, r) {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		switch ev.Action {
		case model.ActionRegister:
			registers++
		case model.ActionPrune:
			prunes++
		default:
			acts++
			last = ev
		}
	}
	if n := int(accepted.Load()); registers != n || prunes != registers-len(list) {
		t.Errorf("history has %d registers and %d prunes; want %d and %d", registers, prunes, n, n-len(list))
	}
	if n := int(activations.Load()); acts != n {
		t.Errorf("history has %d activations; %d were applied", acts, n)
	}
	if last.To != active.String() {
		t.Errorf("last activation %+v; active is %s", last, active)
	}
}

func (c *contract) testClose(t *testing.T) {
	r := c.s.Open(t, Options{})
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.List(); err == nil {
		t.Error("List after Close succeeded")
	}
}
