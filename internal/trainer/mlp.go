package trainer

import (
	"math"
	"math/rand/v2"

	"recommendation-api/internal/model"
)

// Widths of the network: 12 → 32 → 16 → 5 (major 1; WidthsFor gives
// each major's).
var Widths = []int{model.NumFeatures, 32, 16, model.NumOutputs}

// WidthsFor returns the layer widths of a major's network, input first:
// 12-32-16-5 for major 1, 16-32-16-5 for major 2.
func WidthsFor(major int) ([]int, error) {
	w, _, err := model.FormatFor(major)
	if err != nil {
		return nil, err
	}
	return []int{w, 32, 16, model.NumOutputs}, nil
}

// ActivationsFor returns the layer activations of a major's network: major
// 1 clips its outputs to [0,1]; major 2's last layer is linear and the
// headroom head (model.HeadHeadroom) clips.
func ActivationsFor(major int) []model.Activation {
	if major >= 2 {
		return []model.Activation{model.ActReLU, model.ActReLU, model.ActNone}
	}
	return Activations
}

// Activations per layer: ReLU, ReLU, then a clip to [0,1] (all five outputs
// are normalized quantities). The output is linear inside the range, so the
// network can carry a history percentile straight through to the output it
// forecasts; a sigmoid there trained markedly worse (docs/model.md).
var Activations = []model.Activation{model.ActReLU, model.ActReLU, model.ActClip}

// FloatMLP is the float64 network the trainer optimizes; Quantize turns it
// into the int8 model that is served.
type FloatMLP struct {
	Layers []FloatLayer
	Head   model.Head
}

// FloatLayer is y = act(x·W + b); W is In×Out row-major by input.
type FloatLayer struct {
	In, Out    int
	W, B       []float64
	Activation model.Activation
}

// NewFloatMLP returns a major-1 network with He-initialized weights drawn
// from rng.
func NewFloatMLP(rng *rand.Rand) *FloatMLP {
	m, _ := NewFloatMLPFor(rng, 1)
	return m
}

// NewFloatMLPFor returns a major's network (WidthsFor, ActivationsFor, its
// head) with He-initialized weights drawn from rng.
func NewFloatMLPFor(rng *rand.Rand, major int) (*FloatMLP, error) {
	return newFloatMLP(rng, major, 1)
}

// newFloatMLP is NewFloatMLPFor with the hidden layers widened n times (2
// for split towers: each tower as wide as the shared network).
func newFloatMLP(rng *rand.Rand, major, n int) (*FloatMLP, error) {
	widths, err := WidthsFor(major)
	if err != nil {
		return nil, err
	}
	for i := 1; i+1 < len(widths); i++ {
		widths[i] *= n
	}
	_, head, _ := model.FormatFor(major)
	acts := ActivationsFor(major)
	m := &FloatMLP{Head: head}
	for i := 0; i+1 < len(widths); i++ {
		in, out := widths[i], widths[i+1]
		l := FloatLayer{In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out), Activation: acts[i]}
		std := math.Sqrt(2 / float64(in))
		for j := range l.W {
			l.W[j] = rng.NormFloat64() * std
		}
		m.Layers = append(m.Layers, l)
	}
	if head == model.HeadHeadroom {
		// Start the headrooms open, so their ReLU passes gradient.
		last := &m.Layers[len(m.Layers)-1]
		last.B[outCPULimit], last.B[outMemLimit] = 0.1, 0.1
	}
	return m, nil
}

// InputWidth is the number of features the network reads.
func (m *FloatMLP) InputWidth() int { return m.Layers[0].In }

// Params returns the number of weights and biases.
func (m *FloatMLP) Params() int {
	n := 0
	for _, l := range m.Layers {
		n += len(l.W) + len(l.B)
	}
	return n
}

// Clone returns a deep copy.
func (m *FloatMLP) Clone() *FloatMLP {
	c := &FloatMLP{Layers: make([]FloatLayer, len(m.Layers)), Head: m.Head}
	for i, l := range m.Layers {
		l.W = append([]float64(nil), l.W...)
		l.B = append([]float64(nil), l.B...)
		c.Layers[i] = l
	}
	return c
}

// Forward runs n rows of x (n×12) and returns n×5 as float32.
func (m *FloatMLP) Forward(x []float32, n int) []float32 {
	out := make([]float32, n*model.NumOutputs)
	var ws workspace
	ws.init(m)
	w := m.InputWidth()
	for r := 0; r < n; r++ {
		y := m.forwardRow(x[r*w:(r+1)*w], &ws)
		for o, v := range y {
			out[r*model.NumOutputs+o] = float32(v)
		}
	}
	return out
}

// workspace holds one row's activations per layer (acts[0] is the input).
type workspace struct {
	acts [][]float64
	pre  []float64 // last layer's pre-activation (logits)
	grad [][]float64
}

func (ws *workspace) init(m *FloatMLP) {
	ws.acts = make([][]float64, len(m.Layers)+1)
	ws.grad = make([][]float64, len(m.Layers)+1)
	ws.acts[0] = make([]float64, m.Layers[0].In)
	ws.grad[0] = make([]float64, m.Layers[0].In)
	for i, l := range m.Layers {
		ws.acts[i+1] = make([]float64, l.Out)
		ws.grad[i+1] = make([]float64, l.Out)
	}
	ws.pre = make([]float64, m.Layers[len(m.Layers)-1].Out)
}

// forwardRow fills ws.acts and returns the output activations.
func (m *FloatMLP) forwardRow(x []float32, ws *workspace) []float64 {
	for i, v := range x {
		ws.acts[0][i] = float64(v)
	}
	for li, l := range m.Layers {
		in, out := ws.acts[li], ws.acts[li+1]
		copy(out, l.B)
		for i, xv := range in {
			if xv == 0 {
				continue
			}
			w := l.W[i*l.Out : (i+1)*l.Out]
			for o := range out {
				out[o] += xv * w[o]
			}
		}
		if li == len(m.Layers)-1 {
			copy(ws.pre, out)
		}
		for o, v := range out {
			out[o] = l.Activation.Apply(v)
		}
	}
	out := ws.acts[len(m.Layers)]
	if m.Head == model.HeadHeadroom {
		clip := func(v float64) float64 { return min(max(v, 0), 1) }
		z := ws.pre
		var sc, sm float64
		if c, mm := model.HeadSkip(len(x)); c >= 0 {
			sc, sm = float64(x[c]), float64(x[mm])
		}
		out[outCPURequest], out[outCPULimit] = clip(z[outCPURequest]+sc), clip(z[outCPURequest]+max(z[outCPULimit], 0)+sc)
		out[outMemRequest], out[outMemLimit] = clip(z[outMemRequest]+sm), clip(z[outMemRequest]+max(z[outMemLimit], 0)+sm)
		out[4] = clip(z[4])
	}
	return out
}

// headLeak is the slope the headroom's ReLU passes back below zero, so a
// closed headroom can reopen (the forward pass cuts it to zero exactly).
const headLeak = 0.01

// headBackward turns the gradient with respect to the outputs into the
// gradient with respect to the last layer's values, through the headroom
// head of the row last run (the clip passes gradient straight through, as
// ActClip does).
func (m *FloatMLP) headBackward(dOut []float64, ws *workspace) {
	if m.Head != model.HeadHeadroom {
		return
	}
	z := ws.pre
	for _, k := range [2]int{outCPURequest, outMemRequest} {
		dl := dOut[k+1]
		dOut[k] += dl
		if z[k+1] <= 0 {
			dl *= headLeak
		}
		dOut[k+1] = dl
	}
}

// backwardRow accumulates into g the gradient of the loss whose derivative
// with respect to the outputs is dOut, for the row last run by forwardRow.
func (m *FloatMLP) backwardRow(dOut []float64, ws *workspace, g *FloatMLP) {
	last := len(m.Layers)
	copy(ws.grad[last], dOut)
	for li := last - 1; li >= 0; li-- {
		l, gl := m.Layers[li], g.Layers[li]
		out, dy := ws.acts[li+1], ws.grad[li+1]
		for o, v := range out { // through the activation
			switch l.Activation {
			case model.ActReLU:
				if v <= 0 {
					dy[o] = 0
				}
			case model.ActSigmoid:
				dy[o] *= v * (1 - v)
				// ActClip passes the gradient straight through: a clipped
				// output still learns which way to move (no dead outputs).
			}
		}
		in, dx := ws.acts[li], ws.grad[li]
		for o, d := range dy {
			gl.B[o] += d
		}
		for i, xv := range in {
			w := l.W[i*l.Out : (i+1)*l.Out]
			gw := gl.W[i*l.Out : (i+1)*l.Out]
			s := 0.0
			for o, d := range dy {
				gw[o] += xv * d
				s += w[o] * d
			}
			dx[i] = s
		}
	}
}

// zeroLike returns a network of zeros shaped like m (a gradient buffer).
func zeroLike(m *FloatMLP) *FloatMLP {
	g := &FloatMLP{Layers: make([]FloatLayer, len(m.Layers)), Head: m.Head}
	for i, l := range m.Layers {
		g.Layers[i] = FloatLayer{In: l.In, Out: l.Out, W: make([]float64, len(l.W)), B: make([]float64, len(l.B)), Activation: l.Activation}
	}
	return g
}

// Quantize returns the int8 model: weights symmetric per output channel,
// scale[o] = max_i |W[i][o]| / 127, q = round(W/scale); biases stay float32.
func Quantize(m *FloatMLP) *model.QuantizedMLP {
	q := &model.QuantizedMLP{Head: m.Head}
	for _, l := range m.Layers {
		d := model.DenseLayer{In: l.In, Out: l.Out, Q: make([]int8, len(l.W)), Scale: make([]float32, l.Out), Bias: make([]float32, l.Out), Activation: l.Activation}
		for o := 0; o < l.Out; o++ {
			maxAbs := 0.0
			for i := 0; i < l.In; i++ {
				maxAbs = math.Max(maxAbs, math.Abs(l.W[i*l.Out+o]))
			}
			s := float32(maxAbs / 127)
			if s == 0 {
				s = 1
			}
			d.Scale[o] = s
			for i := 0; i < l.In; i++ {
				v := math.RoundToEven(l.W[i*l.Out+o] / float64(s))
				d.Q[i*l.Out+o] = int8(math.Max(-127, math.Min(127, v)))
			}
			d.Bias[o] = float32(l.B[o])
		}
		q.Layers = append(q.Layers, d)
	}
	return q
}

// ParamCount is the number of weights and biases of the architecture
// (12·32+32 + 32·16+16 + 16·5+5 = 1,029).
func ParamCount() int {
	n := 0
	for i := 0; i+1 < len(Widths); i++ {
		n += Widths[i]*Widths[i+1] + Widths[i+1]
	}
	return n
}
