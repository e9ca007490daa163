package trainer

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
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
		return trainPriced(t, d, throttle, func(c *TrainConfig) { c.SplitTowers = split })
	}
	const n = 3000
	x := randomRows(7, 8, n, 16)
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
	if h := step.Record.Hyper; h["towers"] == "" || h["tower_best_epochs"] == "" {
		t.Errorf("hyperparameters %v do not record the split and each tower's best epoch", h)
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
	encodeChecked(t, share.Quant, "v2.1.0")

	if _, mem := differ(train(false, false), train(false, true)); mem == 0 {
		t.Error("shared network: the CPU price left every memory output unchanged; the test cannot tell split from shared")
	}
}

// TestTowerKeeper feeds the keeper validation losses by hand: the memory
// tower is best at epoch 2 and then improves again at epoch 6, after its
// patience ran out, while the CPU tower improves until epoch 8. The kept
// network holds epoch 8's CPU tower and epoch 2's memory tower (training
// alone, memory would have stopped at epoch 5), and training ends only when
// both towers have stopped.
func TestTowerKeeper(t *testing.T) {
	t.Parallel()
	net, err := newFloatMLP(rand.New(rand.NewPCG(1, 2)), 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	tw := newTowers(net)
	at := func(epoch int) *FloatMLP { // every weight and bias = epoch
		m := net.Clone()
		for _, l := range m.Layers {
			for i := range l.W {
				l.W[i] = float64(epoch)
			}
			for i := range l.B {
				l.B[i] = float64(epoch)
			}
		}
		return m
	}
	best := net.Clone()
	k := newKeeper(2, 3, func(i int, cur *FloatMLP) { tw.copyTower(best, cur, i) })
	cpu := []float64{9, 8, 7, 6, 5, 4, 3, 2, 2, 2, 2, 2}
	mem := []float64{5, 3, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1}
	doneAt := 0
	for e := 1; e <= len(cpu); e++ {
		k.observe(e, []float64{cpu[e-1], mem[e-1]}, at(e))
		if k.done() {
			doneAt = e
			break
		}
		if e == 5 && (!k.stopped[towerMem] || k.stopped[towerCPU]) {
			t.Fatalf("epoch 5: stopped %v; want the memory tower alone (3 epochs without improving)", k.stopped)
		}
	}
	if doneAt != 11 || !slices.Equal(k.epoch, []int{8, 2}) {
		t.Fatalf("done at epoch %d, best epochs %v; want 11 and [8 2]", doneAt, k.epoch)
	}
	for li, l := range best.Layers {
		for o, u := range tw.units[li] {
			want := map[int]float64{towerCPU: 8, towerMem: 2}[u]
			if l.B[o] != want {
				t.Fatalf("layer %d unit %d (tower %d): bias %v; want epoch %v's", li, o, u, l.B[o], want)
			}
			for i := 0; i < l.In; i++ {
				if w := l.W[i*l.Out+o]; w != want {
					t.Fatalf("layer %d weight %d→%d (tower %d): %v; want epoch %v's", li, i, o, u, w, want)
				}
			}
		}
	}
}

// TestKeeperOneTower: a shared network is one tower, kept whole: the kept
// network is the best epoch's, and training stops after patience epochs
// without improving (an improvement under the 1e-4 relative threshold does
// not count).
func TestKeeperOneTower(t *testing.T) {
	t.Parallel()
	var best *FloatMLP
	k := newKeeper(1, 2, func(_ int, cur *FloatMLP) { best = cur })
	nets := make([]*FloatMLP, 8)
	losses := []float64{5, 4, 4 * (1 - 1e-5), 3, 3, 3, 1, 1}
	doneAt := 0
	for e := 1; e <= len(losses); e++ {
		nets[e-1] = &FloatMLP{}
		k.observe(e, []float64{losses[e-1]}, nets[e-1])
		if k.done() {
			doneAt = e
			break
		}
	}
	loss, epoch := k.best()
	if doneAt != 6 || epoch != 4 || loss != 3 || best != nets[3] {
		t.Fatalf("done at %d, best epoch %d (loss %v), kept epoch %d's network: %v; want done at 6, epoch 4, loss 3", doneAt, epoch, loss, 4, best == nets[3])
	}
}
