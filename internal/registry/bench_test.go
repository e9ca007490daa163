package registry_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// BenchmarkRollbackTarget measures finding and recording a rollback (and
// the re-activation after it) with
// histories of different lengths: the target comes from the rollback index,
// so the cost stays flat as the history grows (and HistoryKeep bounds it).
func BenchmarkRollbackTarget(b *testing.B) {
	for _, events := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("history=%d", events), func(b *testing.B) {
			s := benchStore(b, events)
			b.ResetTimer()
			// One iteration: find the target, roll back to it, activate the
			// version rolled back from again (so the index never runs dry).
			for b.Loop() {
				cur, err := s.Active(1)
				if err != nil {
					b.Fatal(err)
				}
				prev, err := s.PreviousActive(1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.SetActive(prev, registry.Event{Action: registry.ActionRollback, Actor: "bench"}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.SetActive(cur, registry.Event{Actor: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPreviousActive measures the read alone, without the fsync of
// the commits: one index read whatever the history's length.
func BenchmarkPreviousActive(b *testing.B) {
	for _, events := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("history=%d", events), func(b *testing.B) {
			s := benchStore(b, events)
			for b.Loop() {
				if _, err := s.PreviousActive(1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchStore opens a registry with v1.0.0 and v1.0.1 and a history of
// events alternating activations between them.
func benchStore(b *testing.B, events int) *registry.Store {
	b.Helper()
	s, err := registry.Open(filepath.Join(b.TempDir(), "registry.db"), registry.Options{HistoryKeep: events})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, v := range []string{"v1.0.0", "v1.0.1"} {
		m := modelBytes(1, 256)
		if _, err := s.Register(m, newManifest(model.MustParseVersion(v), m), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	if err := registry.FillHistory(s, events, "v1.0.0", "v1.0.1"); err != nil {
		b.Fatal(err)
	}
	return s
}
