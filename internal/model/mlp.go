package model

import (
	"fmt"
	"math"
)

// Activation of a dense layer.
type Activation string

const (
	ActNone    Activation = "none"
	ActReLU    Activation = "relu"
	ActSigmoid Activation = "sigmoid"
	// ActClip clips to [0,1] (ONNX Clip with min 0, max 1): the output layer's
	// activation, linear inside the range every output is normalized to.
	ActClip Activation = "clip"
)

// DenseLayer is y = act(x·W + b) with W stored as int8, quantized
// symmetrically per output channel: W[i][o] ≈ float32(Q[i*Out+o]) * Scale[o].
// The bias and the activations stay float32.
type DenseLayer struct {
	In, Out    int
	Q          []int8    // In*Out weights, row-major by input: Q[i*Out+o]
	Scale      []float32 // Out per-channel scales
	Bias       []float32 // Out biases
	Activation Activation
}

// QuantizedMLP is the served model: a stack of int8 dense layers.
type QuantizedMLP struct {
	Layers []DenseLayer
}

// Params returns the number of weights and biases (1,029 for 12-32-16-5).
func (m *QuantizedMLP) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += l.In*l.Out + l.Out
	}
	return n
}

// Validate checks the layer shapes chain from NumFeatures to NumOutputs.
func (m *QuantizedMLP) Validate() error {
	if len(m.Layers) == 0 {
		return fmt.Errorf("%w: model has no layers", ErrInvalidModel)
	}
	in := NumFeatures
	for i, l := range m.Layers {
		if l.In != in || l.Out <= 0 || len(l.Q) != l.In*l.Out || len(l.Scale) != l.Out || len(l.Bias) != l.Out {
			return fmt.Errorf("%w: layer %d has inconsistent shapes (in %d, out %d, %d weights, %d scales, %d biases)",
				ErrInvalidModel, i, l.In, l.Out, len(l.Q), len(l.Scale), len(l.Bias))
		}
		in = l.Out
	}
	if in != NumOutputs {
		return fmt.Errorf("%w: model has %d outputs; want %d", ErrInvalidModel, in, NumOutputs)
	}
	return nil
}

// Forward runs the quantized model on n rows of x ([n, NumFeatures], row-major)
// and returns [n, NumOutputs]. It computes what the exported ONNX graph
// computes (DequantizeLinear → MatMul → Add → activation) in float32.
func (m *QuantizedMLP) Forward(x []float32, n int) []float32 {
	cur, width := x, NumFeatures
	for _, l := range m.Layers {
		w := make([]float32, len(l.Q))
		for i := 0; i < l.In; i++ {
			for o := 0; o < l.Out; o++ {
				w[i*l.Out+o] = float32(l.Q[i*l.Out+o]) * l.Scale[o]
			}
		}
		next := make([]float32, n*l.Out)
		for r := 0; r < n; r++ {
			row := cur[r*width : (r+1)*width]
			out := next[r*l.Out : (r+1)*l.Out]
			for i, xv := range row {
				if xv == 0 {
					continue
				}
				wi := w[i*l.Out : (i+1)*l.Out]
				for o := range out {
					out[o] += xv * wi[o]
				}
			}
			for o := range out {
				out[o] = float32(l.Activation.Apply(float64(out[o] + l.Bias[o])))
			}
		}
		cur, width = next, l.Out
	}
	return cur
}

// Apply computes the activation of v (ActNone and unknown: v itself).
func (a Activation) Apply(v float64) float64 {
	switch a {
	case ActReLU:
		if v < 0 {
			return 0
		}
	case ActSigmoid:
		return 1 / (1 + math.Exp(-v))
	case ActClip:
		return min(max(v, 0), 1)
	}
	return v
}
