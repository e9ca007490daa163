package trainer

import (
	"math"
	"slices"
)

// Split towers (TrainConfig.SplitTowers): the network is two networks of
// the shared one's widths side by side in one graph, one for the CPU
// outputs and one for the memory outputs and the confidence. Every hidden
// unit belongs to one tower; a weight between units of different towers is
// zero from the start and after every step, so the int8 file has the same
// layers and operators and serves unchanged. Each tower keeps the weights
// of its own best validation epoch and stops on its own patience
// (towerKeeper), so what the CPU outputs are trained on (a throttling
// price, say) moves no memory output by a single bit.

// tower numbers: the inputs feed both.
const (
	towerBoth = -1
	towerCPU  = 0
	towerMem  = 1
)

// outputTower is the tower each output belongs to.
func outputTower(o int) int {
	if o == outCPURequest || o == outCPULimit {
		return towerCPU
	}
	return towerMem
}

// towers says which tower every unit of a network belongs to.
type towers struct {
	units [][]int // units[li] for the outputs of layer li
}

// newTowers splits m's hidden units in halves, CPU first.
func newTowers(m *FloatMLP) *towers {
	t := &towers{units: make([][]int, len(m.Layers))}
	for li, l := range m.Layers {
		u := make([]int, l.Out)
		for o := range u {
			switch {
			case li == len(m.Layers)-1:
				u[o] = outputTower(o)
			case o < l.Out/2:
				u[o] = towerCPU
			default:
				u[o] = towerMem
			}
		}
		t.units[li] = u
	}
	return t
}

// in returns the tower of input i of layer li.
func (t *towers) in(li, i int) int {
	if li == 0 {
		return towerBoth
	}
	return t.units[li-1][i]
}

// kept reports whether the weight from input i to output o of layer li
// may be non-zero.
func (t *towers) kept(li, i, o int) bool {
	ti := t.in(li, i)
	return ti == towerBoth || ti == t.units[li][o]
}

// init zeroes the cut weights of a freshly initialized m and rescales each
// unit's kept weights to its own fan-in, so He initialization keeps its
// variance.
func (t *towers) init(m *FloatMLP) {
	for li, l := range m.Layers {
		for o := 0; o < l.Out; o++ {
			fan := 0
			for i := 0; i < l.In; i++ {
				if t.kept(li, i, o) {
					fan++
				}
			}
			s := math.Sqrt(float64(l.In) / float64(max(fan, 1)))
			for i := 0; i < l.In; i++ {
				if t.kept(li, i, o) {
					l.W[i*l.Out+o] *= s
				} else {
					l.W[i*l.Out+o] = 0
				}
			}
		}
	}
}

// cut zeroes the weights between towers (after an optimizer step).
func (t *towers) cut(m *FloatMLP) {
	for li, l := range m.Layers {
		for i := 0; i < l.In; i++ {
			for o := 0; o < l.Out; o++ {
				if !t.kept(li, i, o) {
					l.W[i*l.Out+o] = 0
				}
			}
		}
	}
}

// copyTower copies tower k's weights and biases from src into dst: those
// of the units it owns, whose inputs are its own units or the features.
func (t *towers) copyTower(dst, src *FloatMLP, k int) {
	for li, l := range src.Layers {
		d := dst.Layers[li]
		for o, u := range t.units[li] {
			if u != k {
				continue
			}
			d.B[o] = l.B[o]
			for i := 0; i < l.In; i++ {
				d.W[i*l.Out+o] = l.W[i*l.Out+o]
			}
		}
	}
}

// lossByTower is lossOn split by the towers the outputs belong to.
func lossByTower(m *FloatMLP, x, y []float32, n int, lw lossWeights) [2]float64 {
	var loss [2]float64
	eachLoss(m, x, y, n, lw, func(o int, l float64) { loss[outputTower(o)] += l })
	return [2]float64{loss[0] / float64(n), loss[1] / float64(n)}
}

// keeper keeps the weights of each tower's own best validation epoch
// (keepTower copies a tower of the current network into the kept one) and
// stops keeping a tower once it has gone patience epochs without
// improving. A shared network is one tower, kept whole; with split towers
// what a tower ends with is what it would end with trained alone (its
// gradients, Adam moments and moving average are its own), however long
// the other tower goes on improving. Training ends when every tower has
// stopped.
type keeper struct {
	keepTower func(tower int, cur *FloatMLP)
	patience  int
	loss      []float64
	epoch     []int
	stopped   []bool
}

func newKeeper(towers, patience int, keepTower func(tower int, cur *FloatMLP)) *keeper {
	k := &keeper{keepTower: keepTower, patience: patience,
		loss: make([]float64, towers), epoch: make([]int, towers), stopped: make([]bool, towers)}
	for i := range k.loss {
		k.loss[i] = math.Inf(1)
	}
	return k
}

// observe records epoch's validation loss of each tower of cur.
func (k *keeper) observe(epoch int, loss []float64, cur *FloatMLP) {
	for i, l := range loss {
		if k.stopped[i] {
			continue
		}
		if l < k.loss[i]*(1-1e-4) {
			k.keepTower(i, cur)
			k.loss[i], k.epoch[i] = l, epoch
		} else if epoch-k.epoch[i] >= k.patience {
			k.stopped[i] = true
		}
	}
}

// done reports whether every tower has stopped.
func (k *keeper) done() bool { return !slices.Contains(k.stopped, false) }

// best returns the kept towers' summed validation loss and their latest
// best epoch.
func (k *keeper) best() (loss float64, epoch int) {
	for i, l := range k.loss {
		loss += l
		epoch = max(epoch, k.epoch[i])
	}
	return loss, epoch
}
