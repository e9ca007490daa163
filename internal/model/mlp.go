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

// Head names what follows the last dense layer.
type Head string

const (
	// HeadNone: the last layer's activation gives the outputs (major 1).
	HeadNone Head = ""
	// HeadHeadroom: the last layer (activation none) gives, per resource, a
	// request z_r relative to a history statistic and a headroom z_h; with
	// x_c and x_m the normalized cpu_p95 and mem_max inputs (HeadSkip), the
	// outputs are clip([x_c + z_cr, x_c + z_cr + ReLU(z_ch),
	// x_m + z_mr, x_m + z_mr + ReLU(z_mh), z_c], 0, 1). Each limit is at
	// least its request in the graph itself, whatever the weights, and the
	// network learns factors around those statistics (the heuristics
	// CPU limit = k × p95 and memory limit = k × max are its zero point,
	// since the normalization is logarithmic). Major 2.
	HeadHeadroom Head = "headroom"
)

// QuantizedMLP is the served model: a stack of int8 dense layers and the
// head that turns the last layer's values into the outputs.
type QuantizedMLP struct {
	Layers []DenseLayer
	Head   Head
}

// InputWidth returns the number of input features the model reads.
func (m *QuantizedMLP) InputWidth() int {
	if len(m.Layers) == 0 {
		return 0
	}
	return m.Layers[0].In
}

// FormatFor returns the graph format of a major: its input width and head
// (major 1: 12 features, no head; major 2: 16 features, the headroom head).
// An unknown major gives an error wrapping ErrInvalidModel.
func FormatFor(major int) (width int, head Head, err error) {
	specs, err := FeaturesFor(major)
	if err != nil {
		return 0, "", err
	}
	if major >= 2 {
		head = HeadHeadroom
	}
	return len(specs), head, nil
}

// HeadSkip returns the input columns of major 2's headroom head: the
// positions of cpu_p95 and mem_max in a model reading width features (-1
// when the width is not major 2's). The network's CPU outputs are offsets
// from the history's CPU p95 (what VPA's upper bound and a p95 heuristic
// start from; the maximum of bursty CPU is a poor start), its memory
// outputs offsets from the history's memory maximum.
func HeadSkip(width int) (cpu, mem int) {
	specs, _ := FeaturesFor(2)
	if width != len(specs) {
		return -1, -1
	}
	cpu, mem = -1, -1
	for i, s := range specs {
		switch s.Name {
		case "cpu_p95":
			cpu = i
		case FeatureMemMax:
			mem = i
		}
	}
	return cpu, mem
}

// ApplyHead turns one row of the last layer's values (after its
// activation) into the outputs, given the row's input x, in float32 as the
// ONNX graph computes them: base = z·B + ReLU(z)·G, then + x·S, then clip.
func (h Head) ApplyHead(z, x []float32) {
	if h != HeadHeadroom || len(z) != NumOutputs {
		return
	}
	relu := func(v float32) float32 {
		if v < 0 {
			return 0
		}
		return v
	}
	clip := func(v float32) float32 { return min(max(v, 0), 1) }
	var sc, sm float32
	if c, m := HeadSkip(len(x)); c >= 0 && m >= 0 {
		sc, sm = x[c], x[m]
	}
	z[1] = clip((z[0] + relu(z[1])) + sc)
	z[3] = clip((z[2] + relu(z[3])) + sm)
	z[0], z[2], z[4] = clip(z[0]+sc), clip(z[2]+sm), clip(z[4])
}

// Params returns the number of weights and biases (1,029 for 12-32-16-5).
func (m *QuantizedMLP) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += l.In*l.Out + l.Out
	}
	return n
}

// Widths returns the layer widths, inputs first ([12, 32, 16, 5]): what a
// manifest's architecture.layers says.
func (m *QuantizedMLP) Widths() []int {
	if len(m.Layers) == 0 {
		return nil
	}
	w := []int{m.Layers[0].In}
	for _, l := range m.Layers {
		w = append(w, l.Out)
	}
	return w
}

// Validate checks the layer shapes chain from 1..MaxFeatures inputs to
// NumOutputs, and that a headroom head follows a last layer without
// activation.
func (m *QuantizedMLP) Validate() error {
	if len(m.Layers) == 0 {
		return fmt.Errorf("%w: model has no layers", ErrInvalidModel)
	}
	in := m.Layers[0].In
	if in < 1 || in > MaxFeatures {
		return fmt.Errorf("%w: model reads %d features; want 1 to %d", ErrInvalidModel, in, MaxFeatures)
	}
	switch m.Head {
	case HeadNone:
	case HeadHeadroom:
		if a := m.Layers[len(m.Layers)-1].Activation; a != ActNone && a != "" {
			return fmt.Errorf("%w: the headroom head needs a last layer without activation; it has %s", ErrInvalidModel, a)
		}
		if c, _ := HeadSkip(m.InputWidth()); c < 0 {
			return fmt.Errorf("%w: the headroom head reads major 2's history maxima; the model reads %d features", ErrInvalidModel, m.InputWidth())
		}
	default:
		return fmt.Errorf("%w: head %q; want none or %s", ErrInvalidModel, m.Head, HeadHeadroom)
	}
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

// Forward runs the quantized model on n rows of x ([n, InputWidth()],
// row-major) and returns [n, NumOutputs]. It computes what the exported ONNX
// graph computes (DequantizeLinear → MatMul → Add → activation per layer,
// then the head) in float32.
func (m *QuantizedMLP) Forward(x []float32, n int) []float32 {
	cur, width := x, m.InputWidth()
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
	if m.Head == HeadHeadroom {
		in := m.InputWidth()
		for r := 0; r < n; r++ {
			m.Head.ApplyHead(cur[r*width:(r+1)*width], x[r*in:(r+1)*in])
		}
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
