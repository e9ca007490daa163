package trainer

import (
	"context"
	"math/rand/v2"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// randomRows returns n rows of width values uniform in [0, 1), drawn from
// the PCG seeded with (s1, s2).
func randomRows(s1, s2 uint64, n, width int) []float32 {
	rng := rand.New(rand.NewPCG(s1, s2))
	x := make([]float32, n*width)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

// encodeChecked encodes q as version v and fails the test unless the
// upload checker accepts the file.
func encodeChecked(t *testing.T, q *model.QuantizedMLP, v string) []byte {
	t.Helper()
	b, err := onnxfile.Encode(q, model.MustParseVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxfile.Check(b); err != nil {
		t.Fatalf("Check: %v", err)
	}
	return b
}

// trainPriced trains a short major-2 network on d (6 epochs, patience 2),
// its CPU limit priced by the share it throttles (price 10) when throttle
// is set, after edit adjusts the config.
func trainPriced(t *testing.T, d *Dataset, throttle bool, edit func(*TrainConfig)) *Result {
	t.Helper()
	cfg := DefaultTrainConfigFor(2)
	cfg.Epochs, cfg.Patience = 6, 2
	if throttle {
		cfg.ThrottleShare, cfg.OverrunPrice[outCPULimit] = true, 10
	}
	edit(&cfg)
	res, err := Train(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
