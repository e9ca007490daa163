package trainer

import (
	"context"
	"math/rand/v2"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// TestSplitTowers trains major-2 networks that differ only in how the CPU
// limit is priced. With split towers the memory outputs and the confidence
// of the served int8 models agree bit for bit on any input while the CPU
// limits differ, no weight joins the towers, and the file still passes the
// upload checker; with one shared network the same change moves memory.
func TestSplitTowers(t *testing.T) {
	t.Parallel()
	d, err := Generate(context.Background(), GenConfig{Samples: 3000, Seed: 5, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	train := func(split, throttle bool) *Result {
		cfg := DefaultTrainConfigFor(2)
		cfg.Epochs, cfg.Patience, cfg.SplitTowers = 6, 2, split
		if throttle {
			cfg.ThrottleShare, cfg.OverrunPrice[outCPULimit] = true, 10
		}
		res, err := Train(context.Background(), d, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 3000
	x := make([]float32, n*16)
	for i := range x {
		x[i] = rng.Float32()
	}
	// differ counts the rows whose CPU limit and whose memory or confidence
	// outputs differ between a and b.
	differ := func(a, b *Result) (cpu, mem int) {
		ya, yb := a.Quant.Forward(x, n), b.Quant.Forward(x, n)
		for r := 0; r < n; r++ {
			if ya[r*5+outCPULimit] != yb[r*5+outCPULimit] {
				cpu++
			}
			for _, o := range []int{outMemRequest, outMemLimit, 4} {
				if ya[r*5+o] != yb[r*5+o] {
					mem++
					break
				}
			}
		}
		return cpu, mem
	}

	step, share := train(true, false), train(true, true)
	if cpu, mem := differ(step, share); cpu == 0 || mem != 0 {
		t.Errorf("split towers: the CPU price changed the CPU limit of %d rows and memory or confidence of %d of %d; want some and none", cpu, mem, n)
	}
	if step.Config.Hyper()["towers"] == "" {
		t.Error("the manifest's hyperparameters do not record the split")
	}
	tw := newTowers(share.Float)
	for li, l := range share.Quant.Layers {
		if want := []int{16, 64, 32}[li]; l.In != want {
			t.Fatalf("layer %d reads %d units; want %d (each tower as wide as the shared network)", li, l.In, want)
		}
		for i := 0; i < l.In; i++ {
			for o := 0; o < l.Out; o++ {
				if !tw.kept(li, i, o) && (l.Q[i*l.Out+o] != 0 || share.Float.Layers[li].W[i*l.Out+o] != 0) {
					t.Fatalf("layer %d: weight %d→%d joins the towers", li, i, o)
				}
			}
		}
	}
	b, err := onnxfile.Encode(share.Quant, model.MustParseVersion("v2.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxfile.Check(b); err != nil {
		t.Fatalf("Check: %v", err)
	}

	if _, mem := differ(train(false, false), train(false, true)); mem == 0 {
		t.Error("shared network: the CPU price left every memory output unchanged; the test cannot tell split from shared")
	}
}
