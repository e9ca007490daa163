package trainer

import (
	"context"
	"testing"
	"time"

	"recommendation-api/internal/model"
)

// TestTrainMajor2 trains a small major-2 model: 16 features from a 7-day
// history, the headroom head, limits never below requests whatever the
// input, and a graph the checker accepts as major 2.
func TestTrainMajor2(t *testing.T) {
	t.Parallel()
	d, err := Generate(context.Background(), GenConfig{Samples: 600, Seed: 3, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d.FeatureWidth() != 16 || len(d.X) != 600*16 {
		t.Fatalf("width %d, %d values; want 16 features per row", d.FeatureWidth(), len(d.X))
	}
	cfg := DefaultTrainConfig()
	cfg.Epochs = 3
	res, err := Train(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Major != 2 || res.Quant.Head != model.HeadHeadroom || res.Quant.InputWidth() != 16 {
		t.Fatalf("major %d, head %q, width %d", res.Major, res.Quant.Head, res.Quant.InputWidth())
	}
	x := randomRows(1, 2, 2000, 16)
	y := res.Quant.Forward(x, 2000)
	for r := 0; r < 2000; r++ {
		if y[r*5+1] < y[r*5] || y[r*5+3] < y[r*5+2] {
			t.Fatalf("row %d: %v; want limits ≥ requests", r, y[r*5:r*5+5])
		}
	}
	b := encodeChecked(t, res.Quant, "v2.0.0")
	m := NewManifest(model.MustParseVersion("v2.0.0"), b, res, nil, time.Unix(0, 0))
	if err := m.Validate(); err != nil || m.HistoryWindowHours != 168 || len(m.Features) != 16 {
		t.Fatalf("manifest: %v, window %d h, %d features", err, m.HistoryWindowHours, len(m.Features))
	}
}
