package registry_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"recommendation-api/internal/registry"
)

// FuzzOpenLayout1 opens testdata/layout1.db with up to 64 bytes
// overwritten at a fuzzed offset, which runs the in-place upgrade to the
// current layout on whatever the damaged file holds. The process must never
// panic: Open either succeeds, and then Check, List, Load and History
// answer (nil or an error), or it fails with an error naming the file.
// The seed corpus is in testdata/fuzz/FuzzOpenLayout1.
func FuzzOpenLayout1(f *testing.F) {
	orig, err := os.ReadFile(filepath.Join("testdata", "layout1.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{})              // the file as it is
	f.Add(uint32(0), []byte("not a bbolt")) // the first meta page
	f.Add(uint32(4096), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint32(len(orig)-100), []byte(`{"version":"v9"`))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		if len(patch) > 64 {
			patch = patch[:64]
		}
		b := append([]byte(nil), orig...)
		copy(b[int(off)%len(b):], patch)
		path := filepath.Join(t.TempDir(), "registry.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := registry.Open(path, registry.Options{Timeout: time.Second})
		if err != nil {
			if !containsPath(err.Error(), path) {
				t.Fatalf("Open error %q does not name the file", err)
			}
			return
		}
		defer s.Close()
		_ = s.Check()
		list, err := s.List()
		if err == nil {
			for _, e := range list {
				_, _, _ = s.Load(e.Manifest.Version)
			}
		}
		_, _ = s.History()
		_, _ = s.Actives()
	})
}

func containsPath(msg, path string) bool {
	for i := 0; i+len(path) <= len(msg); i++ {
		if msg[i:i+len(path)] == path {
			return true
		}
	}
	return false
}
