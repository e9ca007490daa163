package onnxfile

import (
	"math"
	"math/rand/v2"

	"recommendation-api/internal/model"
)

// RandomMLP returns a deterministic random 12-32-16-5 model (ReLU, ReLU,
// Sigmoid; 1,029 parameters) for tests and benchmarks in any package. The
// same seed always gives the same model. Float weights are drawn with He
// scaling (normal, stddev √(2/in)) and quantized as the trainer does:
// symmetric per output channel, scale[o] = max_i |w[i][o]| / 127,
// q = round(w/scale) clamped to [-127, 127]. Biases are uniform in [-0.1, 0.1].
func RandomMLP(seed int64) *model.QuantizedMLP {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_0c7a_11ab_1e5))
	return randomLayers(rng, []int{model.NumFeatures, 32, 16, model.NumOutputs},
		[]model.Activation{model.ActReLU, model.ActReLU, model.ActSigmoid}, 0.1, &model.QuantizedMLP{})
}

// RandomMLPV2 returns a deterministic random model in major 2's format:
// 16-32-16-5 (ReLU, ReLU, none) ending in the headroom head, with biases
// spread wide enough that some headrooms come out negative (and are cut to
// zero by the head).
func RandomMLPV2(seed int64) *model.QuantizedMLP {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_0c7a_11ab_1e6))
	width, _, _ := model.FormatFor(2)
	return randomLayers(rng, []int{width, 32, 16, model.NumOutputs},
		[]model.Activation{model.ActReLU, model.ActReLU, model.ActNone}, 0.3, &model.QuantizedMLP{Head: model.HeadHeadroom})
}

// randomLayers appends to m dense layers of the given widths and
// activations: He-scaled normal weights quantized per output column, biases
// uniform in [-biasSpread, biasSpread].
func randomLayers(rng *rand.Rand, widths []int, acts []model.Activation, biasSpread float64, m *model.QuantizedMLP) *model.QuantizedMLP {
	for k := range acts {
		in, out := widths[k], widths[k+1]
		w := make([]float64, in*out)
		std := math.Sqrt(2 / float64(in))
		for j := range w {
			w[j] = rng.NormFloat64() * std
		}
		q, scale := quantizeColumns(w, in, out)
		bias := make([]float32, out)
		for o := range bias {
			bias[o] = float32(rng.Float64()*2*biasSpread - biasSpread)
		}
		m.Layers = append(m.Layers, model.DenseLayer{
			In: in, Out: out, Q: q, Scale: scale, Bias: bias, Activation: acts[k],
		})
	}
	return m
}

// quantizeColumns quantizes w ([in, out], row-major) symmetrically per output
// column. An all-zero column gets scale 1 and zero weights.
func quantizeColumns(w []float64, in, out int) ([]int8, []float32) {
	q := make([]int8, in*out)
	scale := make([]float32, out)
	for o := 0; o < out; o++ {
		maxAbs := 0.0
		for i := 0; i < in; i++ {
			maxAbs = math.Max(maxAbs, math.Abs(w[i*out+o]))
		}
		s := float32(maxAbs / 127)
		if s == 0 {
			s = 1
		}
		scale[o] = s
		for i := 0; i < in; i++ {
			v := math.Round(w[i*out+o] / float64(s))
			q[i*out+o] = int8(math.Max(-127, math.Min(127, v)))
		}
	}
	return q, scale
}
