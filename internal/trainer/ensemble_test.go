package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"recommendation-api/internal/model"
)

// TestStack checks that a stacked network computes the mean of its
// members' last layers: with a linear last layer and no head the output is
// exactly the members' mean, and a stack of copies answers as the network.
func TestStack(t *testing.T) {
	t.Parallel()
	var nets []*FloatMLP
	for k := range 3 {
		n, err := NewFloatMLPFor(rand.New(rand.NewPCG(uint64(k), 9)), 2)
		if err != nil {
			t.Fatal(err)
		}
		n.Head, n.Layers[len(n.Layers)-1].Activation = "", model.ActNone
		nets = append(nets, n)
	}
	const rows = 200
	x := randomRows(3, 4, rows, 16)
	s := stack(nets, everyMember)
	if got := []int{s.Layers[0].Out, s.Layers[1].Out, s.Layers[2].In}; got[0] != 96 || got[1] != 48 || got[2] != 48 {
		t.Fatalf("stacked widths %v; want the members' side by side (96, 48, 48)", got)
	}
	want := make([]float64, rows*model.NumOutputs)
	for _, n := range nets {
		var ws workspace
		ws.init(n)
		for r := 0; r < rows; r++ {
			for o, v := range n.forwardRow(x[r*16:(r+1)*16], &ws) {
				want[r*model.NumOutputs+o] += v / 3
			}
		}
	}
	var ws workspace
	ws.init(s)
	for r := 0; r < rows; r++ {
		for o, v := range s.forwardRow(x[r*16:(r+1)*16], &ws) {
			if w := want[r*model.NumOutputs+o]; math.Abs(v-w) > 1e-12 {
				t.Fatalf("row %d output %d: stack %v, members' mean %v", r, o, v, w)
			}
		}
	}
	// With a clip as the last activation (major 1) the stack clips the
	// members' mean once.
	for _, n := range nets {
		n.Layers[len(n.Layers)-1].Activation = model.ActClip
	}
	clipped := stack(nets, everyMember)
	ws.init(clipped)
	for r := 0; r < rows; r++ {
		for o, v := range clipped.forwardRow(x[r*16:(r+1)*16], &ws) {
			if w := min(max(want[r*model.NumOutputs+o], 0), 1); math.Abs(v-w) > 1e-12 {
				t.Fatalf("row %d output %d: clipped stack %v, the members' mean clipped %v", r, o, v, w)
			}
		}
	}
	one := nets[0]
	one.Head, one.Layers[2].Activation = model.HeadHeadroom, model.ActNone
	copies := stack([]*FloatMLP{one, one.Clone(), one.Clone(), one.Clone()}, everyMember)
	a, b := one.Forward(x, rows), copies.Forward(x, rows)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			t.Fatalf("value %d: a stack of four copies answers %v, the network %v", i, b[i], a[i])
		}
	}
}

// TestTrainEnsemble trains a three-network ensemble: its first member is
// the network Train makes alone with the same seed, the others differ, the
// served file passes the upload checker, and the manifest says what was
// trained: its layers and its hyperparameters.
func TestTrainEnsemble(t *testing.T) {
	t.Parallel()
	d, err := Generate(context.Background(), GenConfig{Samples: 1500, Seed: 11, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultTrainConfigFor(2)
	cfg.Epochs, cfg.Patience = 4, 2
	single, err := Train(context.Background(), d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ensemble = 3
	var last Progress
	ens, err := Train(context.Background(), d, cfg, func(p Progress) {
		if p.Phase == "training" {
			last = p
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if last.Epochs != 12 || last.Epoch <= 8 {
		t.Errorf("last progress: epoch %d of %d; want the third member's, of 3 × 4", last.Epoch, last.Epochs)
	}
	l0, s0 := ens.Float.Layers[0], single.Float.Layers[0]
	if l0.Out != 3*s0.Out {
		t.Fatalf("first layer: %d units; want 3 × %d", l0.Out, s0.Out)
	}
	same, other := true, true
	for i := 0; i < l0.In; i++ {
		for o := 0; o < s0.Out; o++ {
			same = same && l0.W[i*l0.Out+o] == s0.W[i*s0.Out+o]
			other = other && l0.W[i*l0.Out+s0.Out+o] == s0.W[i*s0.Out+o]
		}
	}
	if !same || other {
		t.Errorf("first member equals the single network: %v (want true); second member equals it too: %v (want false)", same, other)
	}
	if h := ens.Record.Hyper; h["ensemble"] == "" || h["ensemble_best_epochs"] == "" {
		t.Errorf("hyperparameters %v do not record the ensemble", h)
	}
	b := encodeChecked(t, ens.Quant, "v2.1.0")
	m := NewManifest(model.MustParseVersion("v2.1.0"), b, ens, nil, time.Unix(0, 0))
	if got := m.Architecture.Layers; !slices.Equal(got, []int{16, 96, 48, 5}) || m.Architecture.Parameters != ens.Quant.Params() {
		t.Errorf("manifest architecture: layers %v, %d parameters; want [16 96 48 5], %d", got, m.Architecture.Parameters, ens.Quant.Params())
	}
	if err := (TrainConfig{Ensemble: 17}).Validate(); err == nil {
		t.Error("an ensemble of 17 validated; want at most 16")
	}
}
