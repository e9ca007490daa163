package trainer

import (
	"recommendation-api/internal/model"
)

// LabelHeadroom is, per output, the factor the label puts above the usage it
// promises to cover (limits are the future p99 CPU / peak memory × 1.05). A
// prediction below label/LabelHeadroom means throttling or an OOM kill.
var LabelHeadroom = [model.NumOutputs]float64{1, 1.05, 1, 1.05, 1}

// Calibrate shifts the last layer's bias of each output with a positive
// target so that at most that share of the n validation rows fall below what
// their label promises, choosing the smallest such shift (least slack). It
// edits q in place and returns the shifts. The output activation is
// monotone, so a bias shift moves every prediction the same way; the search
// is a bisection on it.
func Calibrate(q *model.QuantizedMLP, x, y []float32, n int, target [model.NumOutputs]float64) [model.NumOutputs]float64 {
	last := &q.Layers[len(q.Layers)-1]
	logits := logitsOf(q, x, n)
	outs := model.DefaultOutputs()
	var shift [model.NumOutputs]float64
	for o := range target {
		if !(target[o] > 0) {
			continue
		}
		// What each row needs, in raw units.
		need := make([]float64, n)
		for r := 0; r < n; r++ {
			need[r] = outs[o].Denormalize(float64(y[r*model.NumOutputs+o])) / LabelHeadroom[o]
		}
		under := func(s float64) float64 {
			c := 0
			for r := 0; r < n; r++ {
				p := last.Activation.Apply(float64(logits[r*model.NumOutputs+o]) + s)
				if outs[o].Denormalize(p) < need[r] {
					c++
				}
			}
			return float64(c) / float64(n)
		}
		lo, hi := -1.0, 1.0
		if under(lo) <= target[o] {
			hi = lo
		}
		for i := 0; i < 40 && hi-lo > 1e-4; i++ {
			mid := (lo + hi) / 2
			if under(mid) <= target[o] {
				hi = mid
			} else {
				lo = mid
			}
		}
		shift[o] = float64(float32(hi))
		last.Bias[o] += float32(hi)
	}
	return shift
}

// logitsOf runs q with its last activation removed.
func logitsOf(q *model.QuantizedMLP, x []float32, n int) []float32 {
	c := &model.QuantizedMLP{Layers: append([]model.DenseLayer(nil), q.Layers...)}
	c.Layers[len(c.Layers)-1].Activation = model.ActNone
	return c.Forward(x, n)
}
