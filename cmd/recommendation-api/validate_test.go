package main

import (
	"maps"
	"strings"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// TestInt8VsFloatGate: the gate compares the int8 and float errors on the
// same rows, the manifest's held-out set, regenerated; rows it cannot
// regenerate make the gate advisory instead of comparing different rows.
func TestInt8VsFloatGate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	q := onnxfile.RandomMLP(3)
	const n, seed = 500, 99
	ev, err := trainer.GenerateEval(ctx, trainer.GenConfig{Samples: n, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := trainer.Evaluate(func(x []float32, k int) ([]float32, error) { return q.Forward(x, k), nil }, nil, ev, model.DefaultOutputs(), seed)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(heldOutSeed int64, floatMAE map[string]float64) *model.Manifest {
		return &model.Manifest{Outputs: model.DefaultOutputs(), Metrics: &model.Metrics{
			HeldOutSamples: n, HeldOutSeed: heldOutSeed, MAE: maps.Clone(rec.MAE), FloatMAE: floatMAE}}
	}
	scaled := func(f float64) map[string]float64 {
		m := maps.Clone(rec.MAE)
		for k := range m {
			m[k] *= f
		}
		return m
	}

	tests := []struct {
		name             string
		man              *model.Manifest
		passed, advisory bool
		detail           string
	}{
		// The float twin was as good as the int8 model on those rows.
		{"OK", manifest(seed, scaled(1)), true, false, "on the manifest's 500 held-out rows (seed 99)"},
		// Quantization doubled the error: far past the allowance.
		{"ErrQuantizationLoss", manifest(seed, scaled(0.5)), false, false, "allowed increase"},
		// The recorded MAE is not reproduced: other rows, no comparison.
		{"NotTheSameRows", manifest(seed+1, scaled(1)), false, true, "not measured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := int8VsFloatGate(ctx, q, tt.man)
			if err != nil {
				t.Fatal(err)
			}
			if g == nil || g.Name != "int8-vs-float" || g.Passed != tt.passed || g.Advisory != tt.advisory || !strings.Contains(g.Detail, tt.detail) {
				t.Errorf("gate = %+v; want passed %v, advisory %v, detail mentioning %q", g, tt.passed, tt.advisory, tt.detail)
			}
		})
	}
	t.Run("NoFloatMAE", func(t *testing.T) {
		t.Parallel()
		if g, err := int8VsFloatGate(ctx, q, manifest(seed, nil)); g != nil || err != nil {
			t.Errorf("gate without a recorded float MAE = %+v, %v; want none", g, err)
		}
	})
}
