package registry_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// newManifest returns a valid manifest describing b as version v. The
// registry does not interpret model bytes, so b can be anything.
func newManifest(v model.Version, b []byte) *model.Manifest {
	in := make([]float32, model.NumFeatures)
	for i := range in {
		in[i] = float32(i) / model.NumFeatures
	}
	out := []float32{0.1, 0.2, 0.3, 0.4, 0.9}
	return &model.Manifest{
		Schema:    model.ManifestSchema,
		Version:   v,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Model: model.ModelFile{
			File:      "predictor_" + v.String() + ".onnx",
			SHA256:    model.SHA256Hex(b),
			SizeBytes: int64(len(b)),
		},
		Signature:    model.DefaultSignature(),
		Features:     model.DefaultFeatures(),
		Outputs:      model.DefaultOutputs(),
		Quantization: model.DefaultQuantization(),
		Golden: model.Golden{
			Tolerance: 1e-4,
			Inputs:    [][]float32{in},
			Outputs:   [][]float32{out},
		},
	}
}

// modelBytes returns n pseudo-random bytes determined by seed.
func modelBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// version parses a version constant.
func version(s string) model.Version { return model.MustParseVersion(s) }

// fixedClock returns a Now that starts at a fixed time and ticks a second
// per call. Tests using it must not call it concurrently.
func fixedClock() func() time.Time {
	t := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// openStore opens a registry in a fresh temporary directory. When the test
// ends it closes the store and checks the file with bbolt's consistency
// check, opened read-only, failing the test if it is not clean.
func openStore(t *testing.T, opts registry.Options) (*registry.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	t.Cleanup(func() { checkFile(t, path) })
	s, err := registry.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// checkFile runs bbolt's consistency check on the closed file at path.
func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Errorf("reopen %s read-only for the check: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("bbolt check of %s: %v", path, err)
	}
}

// register registers version vs with random bytes, failing the test on error.
func register(t *testing.T, s *registry.Store, vs string) []model.Version {
	t.Helper()
	v := version(vs)
	b := modelBytes(uint64(v.Major*1_000_000+v.Minor*1_000+v.Patch), 512)
	pruned, err := s.Register(b, newManifest(v, b), "test")
	if err != nil {
		t.Fatalf("Register(%s): %v", vs, err)
	}
	return pruned
}

// listed returns the versions s lists, as strings.
func listed(t *testing.T, s *registry.Store) []string {
	t.Helper()
	list, err := s.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var vs []string
	for _, e := range list {
		vs = append(vs, e.Manifest.Version.String())
	}
	return vs
}

func versionStrings(vs []model.Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}
