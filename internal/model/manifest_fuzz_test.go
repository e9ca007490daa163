package model_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"recommendation-api/internal/model"
)

// FuzzParseManifest decodes fuzzed manifest JSON (an upload's
// manifest_json). It never panics; an error wraps model.ErrInvalidModel; a
// manifest it accepts validates and survives a JSON round trip unchanged.
// The seed corpus is in testdata/fuzz/FuzzParseManifest, plus the embedded
// default model's manifest.
func FuzzParseManifest(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "defaultmodel", "manifest.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":1,"version":"v1.0.0"}`))
	f.Add([]byte(`{"schema":1,"version":"v1.0.0","golden":{"tolerance":1e9}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := model.ParseManifest(b)
		if err != nil {
			if !errors.Is(err, model.ErrInvalidModel) {
				t.Fatalf("ParseManifest error %v does not wrap ErrInvalidModel", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ParseManifest accepted a manifest Validate refuses: %v", err)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal an accepted manifest: %v", err)
		}
		m2, err := model.ParseManifest(again)
		if err != nil {
			t.Fatalf("the re-encoded manifest does not parse: %v\n%s", err, again)
		}
		if m2.Version != m.Version || m2.Model != m.Model || len(m2.Features) != len(m.Features) {
			t.Fatalf("round trip changed the manifest: %+v -> %+v", m, m2)
		}
	})
}
