package traces_test

import (
	"path/filepath"
	"testing"

	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

func BenchmarkLoadShared(b *testing.B) {
	paths, _ := filepath.Glob(filepath.Join(sharedDir, "*.csv.gz"))
	if len(paths) == 0 {
		b.Skip("no shared data")
	}
	for b.Loop() {
		if _, err := traces.Load(paths, traces.Bitbrains, trainer.Step); err != nil {
			b.Fatal(err)
		}
	}
}
