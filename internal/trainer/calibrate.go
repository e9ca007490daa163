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
// edits q in place and returns the shifts. Coverage is counted on what
// Predict serves (model.Admissible: minimum ≤ request ≤ limit, with the
// requests' own shifts), so the target holds for the answers clients get
// and a limit is never counted below its request. The output activation
// is monotone, so a bias shift moves every prediction the same way; the
// search is a bisection on it.
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
		// What Predict serves for row r at shift s: the output made
		// admissible (model.Admissible) with the requests as calibrated so
		// far. A limit is then never below its request, and coverage is
		// counted on the served value.
		width := q.InputWidth()
		skipCPU, skipMem := model.HeadSkip(width)
		skip := func(r, o int) float64 {
			if q.Head != model.HeadHeadroom || skipCPU < 0 {
				return 0
			}
			if o <= outCPULimit {
				return float64(x[r*width+skipCPU])
			}
			return float64(x[r*width+skipMem])
		}
		served := func(r int, s float64) float64 {
			z := logits[r*model.NumOutputs : (r+1)*model.NumOutputs]
			var v float64
			if q.Head == model.HeadHeadroom && (o == outCPULimit || o == outMemLimit) {
				// limit = max + request + ReLU(headroom): the shift opens the headroom.
				v = outs[o].Denormalize(min(max(float64(z[o-1])+shift[o-1]+max(float64(z[o])+s, 0)+skip(r, o), 0), 1))
			} else {
				v = outs[o].Denormalize(last.Activation.Apply(float64(z[o]) + s + skip(r, o)))
			}
			switch o {
			case outCPULimit, outMemLimit:
				req := outs[o-1].Denormalize(last.Activation.Apply(float64(z[o-1]) + shift[o-1] + skip(r, o-1)))
				v = max(v, req, minimumOf(o))
			case outCPURequest, outMemRequest:
				v = max(v, minimumOf(o))
			}
			return v
		}
		under := func(s float64) float64 {
			c := 0
			for r := 0; r < n; r++ {
				if served(r, s) < need[r] {
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

// Output indexes in model order (model.DefaultOutputs).
const (
	outCPURequest = iota
	outCPULimit
	outMemRequest
	outMemLimit
)

// minimumOf is the served minimum of a resource output in its unit (cores
// or bytes).
func minimumOf(o int) float64 {
	if o == outCPURequest || o == outCPULimit {
		return model.MinCPUMillicores / 1000.0
	}
	return model.MinMemoryBytes
}

// logitsOf runs q with its last activation and head removed.
func logitsOf(q *model.QuantizedMLP, x []float32, n int) []float32 {
	c := &model.QuantizedMLP{Layers: append([]model.DenseLayer(nil), q.Layers...)}
	c.Layers[len(c.Layers)-1].Activation = model.ActNone
	return c.Forward(x, n)
}
