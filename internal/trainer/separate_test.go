package trainer

import (
	"context"
	"testing"

	"recommendation-api/internal/model"
)

// TestSeparateCPU trains a major-2 network with a separate CPU network and
// the two networks it is made of, each alone: the throttle-share network
// (the CPU settings given) and the default one. On any input the served
// int8 model answers the CPU outputs of the first and the memory outputs
// and confidence of the second bit for bit, and so do the float twin and
// the calibration shifts; the file passes the upload checker, and the
// manifest records the choice.
func TestSeparateCPU(t *testing.T) {
	t.Parallel()
	d, err := Generate(context.Background(), GenConfig{Samples: 3000, Seed: 5, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	alone := func(*TrainConfig) {}
	cpu, mem := trainPriced(t, d, true, alone), trainPriced(t, d, false, alone)
	both := trainPriced(t, d, true, func(c *TrainConfig) { c.SeparateCPU = true })

	const n = 3000
	x := randomRows(7, 8, n, 16)
	from := func(o int) *Result {
		if outputTower(o) == towerCPU {
			return cpu
		}
		return mem
	}
	yCPU, yMem, yBoth := cpu.Quant.Forward(x, n), mem.Quant.Forward(x, n), both.Quant.Forward(x, n)
	fCPU, fMem, fBoth := cpu.Float.Forward(x, n), mem.Float.Forward(x, n), both.Float.Forward(x, n)
	differ := 0
	for r := 0; r < n; r++ {
		for o := range model.NumOutputs {
			want, fwant := yMem[r*5+o], fMem[r*5+o]
			if from(o) == cpu {
				want, fwant = yCPU[r*5+o], fCPU[r*5+o]
			}
			if got := yBoth[r*5+o]; got != want {
				t.Fatalf("row %d output %d: int8 model %v; want its network's %v", r, o, got, want)
			}
			if got := fBoth[r*5+o]; got != fwant {
				t.Fatalf("row %d output %d: float twin %v; want its network's %v", r, o, got, fwant)
			}
		}
		if yCPU[r*5+outCPULimit] != yMem[r*5+outCPULimit] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the two networks agree on every CPU limit: the test cannot tell which one served it")
	}
	for o := range model.NumOutputs {
		if want := from(o).Shift[o]; both.Shift[o] != want {
			t.Errorf("output %d: calibration shift %v; want its network's %v", o, both.Shift[o], want)
		}
	}
	for li, l := range both.Quant.Layers {
		if want := []int{16, 64, 32}[li]; l.In != want {
			t.Fatalf("layer %d reads %d units; want %d (two networks side by side)", li, l.In, want)
		}
	}
	if h := both.Record.Hyper; h["cpu_network"] == "" || h["cpu_network_best_epochs"] == "" || h["throttle_share"] != "true" {
		t.Errorf("hyperparameters %v do not record the separate CPU network, its settings and each member's best epoch", h)
	}
	encodeChecked(t, both.Quant, "v2.1.0")
}

// TestSeparateCPUExclusive: a separate CPU network is not combined with
// split towers or an ensemble.
func TestSeparateCPUExclusive(t *testing.T) {
	t.Parallel()
	for _, c := range []TrainConfig{{SeparateCPU: true, SplitTowers: true}, {SeparateCPU: true, Ensemble: 2}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted; want an error", c)
		}
	}
}
