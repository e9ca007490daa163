package defaultmodel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// Parameters of scripts/make-default-model.sh.
const (
	mixSynthetic = 20000
	dataSeed     = 20261127
	seed         = 1
)

// Trace directories of scripts/make-default-model.sh, under $TRACES or
// ../shared/data next to the repository.
var traceDirs = []string{"bitbrains-rnd-2013-7", "bitbrains-rnd-2013-8"}

// recipe is how the script makes one major's default model.
type recipe struct {
	version string
	params  int
	// histories are generate-data's --trace-history in steps (nil: the
	// major's window).
	histories []int
	// train adjusts the major's default training configuration the way the
	// script's train flags do.
	train func(*trainer.TrainConfig)
}

var recipes = []recipe{
	{"v1.1.0", 1029, nil, func(c *trainer.TrainConfig) {
		// --learning-rate 0.01 --cpu-overrun-price 0 --mem-overrun-price 1 --mem-limit-under 0.02 --cpu-limit-under 0.1 --weight-averaging 0.999
		c.LearningRate = 0.01
		c.OverrunPrice[1] = 0
		c.OverrunPrice[3] = 1
		c.UnderTarget[3] = 0.02
		c.UnderTarget[1] = 0.1
		c.Averaging = 0.999
	}},
	// --trace-history 7d,2d; train --learning-rate 0.01 --cpu-throttle-share --cpu-overrun-price 10 --separate-cpu:
	// two networks side by side, the hidden layers stored dense
	{"v2.0.0", 16*64 + 64 + 64*32 + 32 + 32*5 + 5, []int{7 * 288, 2 * 288}, func(c *trainer.TrainConfig) {
		c.LearningRate = 0.01
		c.ThrottleShare, c.OverrunPrice[1] = true, 10
		c.SeparateCPU = true
	}},
}

func TestLoad(t *testing.T) {
	all := All()
	if len(all) != len(recipes) {
		t.Fatalf("All() returns %d loaders; want %d", len(all), len(recipes))
	}
	for i, r := range recipes {
		want := model.MustParseVersion(r.version)
		b, m, err := all[i]()
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != want || m.Architecture.Parameters != r.params || len(b) >= 100<<10 {
			t.Fatalf("default model %d: %s, %d parameters, %d bytes; want %s, %d, < 100 KB",
				i, m.Version, m.Architecture.Parameters, len(b), want, r.params)
		}
		lb, lm, err := LoadMajor(want.Major)
		if err != nil || !bytes.Equal(lb, b) || lm.Version != want {
			t.Fatalf("LoadMajor(%d) = %v, %v; want All()[%d]'s %s", want.Major, lm, err, i, want)
		}
		width, _, err := model.FormatFor(want.Major)
		if err != nil || m.Width() != width {
			t.Fatalf("%s: %d features; major %d has %d (%v)", want, m.Width(), want.Major, width, err)
		}
		q, v, err := onnxfile.Decode(b)
		if err != nil || v != m.Version {
			t.Fatalf("Decode = %v, %v", v, err)
		}
		if err := m.CheckGolden(q.Forward(m.GoldenInput(), len(m.Golden.Inputs))); err != nil {
			t.Fatal(err)
		}
	}
	if _, m, err := Load(); err != nil || m.Version != model.MustParseVersion("v1.1.0") {
		t.Fatalf("Load() = %v, %v; want the major-1 default v1.1.0", m, err)
	}
	if _, _, err := LoadMajor(9); err == nil {
		t.Fatal("LoadMajor(9) succeeded; no such default model is embedded")
	}
}

// traceRoot is the directory holding the script's trace directories, or ""
// when they are absent.
func traceRoot(t *testing.T) string {
	root := os.Getenv("TRACES")
	if root == "" {
		root = filepath.Join("..", "..", "..", "shared", "data") // ../shared/data next to the repository
	}
	for _, d := range traceDirs {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Logf("trace directory %s not found (set TRACES to the directory holding %v)", filepath.Join(root, d), traceDirs)
			return ""
		}
	}
	return root
}

// TestReproducible retrains both default models the way `make default-model`
// does (generate-data --trace ... --mix-synthetic, then train) and requires
// the embedded bytes to come out identical: the embedded models are current
// and the pipeline deterministic.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 260 trace files and retrains two models")
	}
	root := traceRoot(t)
	if root == "" {
		t.Skip("the Bitbrains traces the default models are trained on are not on this machine")
	}
	var paths []string
	for _, d := range traceDirs {
		paths = append(paths, filepath.Join(root, d))
	}
	// generate-data --trace: expand, detect the format, load at the
	// trainer's step.
	series, _, _, err := traces.LoadPaths(paths, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range recipes {
		t.Run(r.version, func(t *testing.T) {
			v := model.MustParseVersion(r.version)
			// Training containers only, one sample per default stride, then
			// --mix-synthetic simulated containers from --seed.
			d, err := traces.TrainingData(series, r.histories, traces.DefaultTrainStride, v.Major, false)
			if err != nil {
				t.Fatal(err)
			}
			syn, err := trainer.Generate(ctx, trainer.GenConfig{Samples: mixSynthetic, Seed: dataSeed, Major: v.Major})
			if err != nil {
				t.Fatal(err)
			}
			// Through the .npz file, as the script's train reads it.
			npz := filepath.Join(t.TempDir(), "data.npz")
			if err := trainer.WriteNPZ(npz, traces.Concat(d, syn)); err != nil {
				t.Fatal(err)
			}
			if d, err = trainer.ReadNPZ(npz); err != nil {
				t.Fatal(err)
			}
			cfg := trainer.DefaultTrainConfigFor(v.Major)
			cfg.Seed = seed
			r.train(&cfg)
			res, err := trainer.Train(ctx, d, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := onnxfile.Encode(res.Quant, v)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := LoadMajor(v.Major)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("retrained %s (sha256 %s) differs from the embedded one (sha256 %s): run make default-model",
					v, model.SHA256Hex(got), model.SHA256Hex(want))
			}
		})
	}
}
