package defaultmodel

import (
	"bytes"
	"context"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// Parameters of scripts/make-default-model.sh.
const (
	samples  = 100000
	dataSeed = 20261127
	seed     = 1
)

func TestLoad(t *testing.T) {
	b, m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != model.MustParseVersion("v1.0.0") || m.Architecture.Parameters != 1029 || len(b) >= 100<<10 {
		t.Fatalf("default model %s: %d parameters, %d bytes; want v1.0.0, 1029, < 100 KB", m.Version, m.Architecture.Parameters, len(b))
	}
	q, v, err := onnxfile.Decode(b)
	if err != nil || v != m.Version {
		t.Fatalf("Decode = %v, %v", v, err)
	}
	if err := m.CheckGolden(q.Forward(m.GoldenInput(), len(m.Golden.Inputs))); err != nil {
		t.Fatal(err)
	}
}

// TestReproducible retrains the default model the way `make default-model`
// does and requires the embedded bytes to come out identical: the embedded
// model is current and the pipeline deterministic.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("retrains on 100,000 samples")
	}
	ctx := context.Background()
	d, err := trainer.Generate(ctx, trainer.GenConfig{Samples: samples, Seed: dataSeed})
	if err != nil {
		t.Fatal(err)
	}
	cfg := trainer.DefaultTrainConfig()
	cfg.Seed = seed
	res, err := trainer.Train(ctx, d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := onnxfile.Encode(res.Quant, model.MustParseVersion("v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("retrained default model (sha256 %s) differs from the embedded one (sha256 %s): run make default-model",
			model.SHA256Hex(got), model.SHA256Hex(want))
	}
}
