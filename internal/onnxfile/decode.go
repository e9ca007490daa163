package onnxfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
)

// maxElements bounds an initializer's element count before anything is
// allocated for it; the served model has 512 weights in its widest layer.
const maxElements = 1 << 24

// invalid returns a *graphError wrapping model.ErrInvalidModel.
func invalid(format string, args ...any) error {
	return refuse(model.ErrInvalidModel, format, args...)
}

// maxReason bounds a refusal's text: names in a file can be as long as the
// file, and a status message travels in a header.
const maxReason = 400

// refuse returns a *graphError wrapping sentinel.
func refuse(sentinel error, format string, args ...any) error {
	r := fmt.Sprintf(format, args...)
	if len(r) > maxReason {
		r = strings.ToValidUTF8(r[:maxReason], "") + "…"
	}
	return &graphError{sentinel: sentinel, reason: r}
}

// graphError is why a model file was refused. Its reason names the part of
// the file and what is accepted, and echoes nothing but the file's own
// names, types and shapes, so it is also the public message (model.Publicer)
// a client is told: "model graph: <reason>".
type graphError struct {
	sentinel error // model.ErrInvalidModel or model.ErrSignatureMismatch
	reason   string
}

func (e *graphError) Error() string         { return "onnxfile: " + e.sentinel.Error() + ": " + e.reason }
func (e *graphError) Unwrap() error         { return e.sentinel }
func (e *graphError) PublicMessage() string { return "model graph: " + e.reason }

// Decode reads bytes written by Encode back into the model and its version.
// It walks the graph's nodes from the input (DequantizeLinear → MatMul → Add →
// optional Relu/Sigmoid/Clip per layer, ending in model.OutputName) and looks
// up each layer's initializers by the names the nodes use. Anything else —
// bytes that are not protobuf, another node pattern, wrong data types or
// shapes, a missing initializer or version — gives an error wrapping
// model.ErrInvalidModel that says what was wrong.
//
// Decode reads what it needs and ignores the rest (doc strings, unknown
// fields, unused initializers). Before bytes reach ONNX Runtime, use Check,
// which accepts only what Encode writes.
func Decode(b []byte) (*model.QuantizedMLP, model.Version, error) {
	mp, err := unmarshal(b)
	if err != nil {
		return nil, model.Version{}, err
	}
	return decodeModel(mp)
}

func decodeModel(mp *onnxpb.ModelProto) (*model.QuantizedMLP, model.Version, error) {
	version, err := modelVersion(mp)
	if err != nil {
		return nil, model.Version{}, err
	}
	if err := checkOpset(mp); err != nil {
		return nil, model.Version{}, err
	}
	g := mp.GetGraph()
	if err := checkIO(g); err != nil {
		return nil, model.Version{}, err
	}
	inits := make(map[string]*onnxpb.TensorProto, len(g.GetInitializer()))
	for _, t := range g.GetInitializer() {
		if _, dup := inits[t.GetName()]; dup {
			return nil, model.Version{}, invalid("initializer %q appears twice", t.GetName())
		}
		inits[t.GetName()] = t
	}

	w := walker{nodes: g.GetNode(), inits: inits}
	var m model.QuantizedMLP
	x, width := model.InputName, inputWidth(g)
	for w.pos < len(w.nodes) {
		if len(m.Layers) > 0 && w.nodes[w.pos].GetName() == headRelu {
			if err := w.head(x, width0(m.Layers)); err != nil {
				return nil, model.Version{}, err
			}
			m.Head, x = model.HeadHeadroom, model.OutputName
			break
		}
		if len(m.Layers) == MaxLayers {
			return nil, model.Version{}, invalid("graph has more than %d layers", MaxLayers)
		}
		l, out, err := w.layer(len(m.Layers), x, width)
		if err != nil {
			return nil, model.Version{}, err
		}
		m.Layers = append(m.Layers, l)
		x, width = out, l.Out
	}
	if len(m.Layers) == 0 {
		return nil, model.Version{}, invalid("graph has no nodes")
	}
	if x != model.OutputName {
		return nil, model.Version{}, invalid("last node writes %q; want the graph output %q", x, model.OutputName)
	}
	if err := m.Validate(); err != nil {
		return nil, model.Version{}, invalid("%v", err)
	}
	return &m, version, nil
}

func unmarshal(b []byte) (*onnxpb.ModelProto, error) {
	if len(b) == 0 {
		return nil, invalid("empty model bytes")
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		return nil, invalid("not an ONNX model (protobuf): %v", err)
	}
	if mp.GetGraph() == nil {
		return nil, invalid("model has no graph")
	}
	return &mp, nil
}

func modelVersion(mp *onnxpb.ModelProto) (model.Version, error) {
	var s string
	found := false
	for _, p := range mp.GetMetadataProps() {
		if p.GetKey() == VersionKey {
			if found {
				return model.Version{}, invalid("metadata_props has %q twice", VersionKey)
			}
			s, found = p.GetValue(), true
		}
	}
	if !found {
		return model.Version{}, invalid("metadata_props has no %q", VersionKey)
	}
	v, err := model.ParseVersion(s)
	if err != nil {
		return model.Version{}, invalid("metadata_props %q: %v", VersionKey, err)
	}
	if n := mp.GetModelVersion(); n != VersionNumber(v) {
		return model.Version{}, invalid("model_version %d does not match metadata version %s (want %d)", n, v, VersionNumber(v))
	}
	return v, nil
}

func checkOpset(mp *onnxpb.ModelProto) error {
	for _, o := range mp.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			if o.GetVersion() < MinOpset {
				return invalid("imports standard opset %d; want ≥ %d (per-axis DequantizeLinear)", o.GetVersion(), MinOpset)
			}
			return nil
		}
	}
	return invalid("model imports no standard ONNX opset")
}

// checkIO requires exactly the graph inputs and outputs Encode writes.
func checkIO(g *onnxpb.GraphProto) error {
	sig, err := graphSignature(g)
	if err != nil {
		return err
	}
	if w := inputWidth(g); w < 1 || w > model.MaxFeatures || !sig.Equal(model.SignatureFor(w)) {
		return invalid("graph signature %s; want %s with 1 to %d features", describe(sig), describe(model.DefaultSignature()), model.MaxFeatures)
	}
	return nil
}

// inputWidth is the declared width of the graph's first input, or 0.
func inputWidth(g *onnxpb.GraphProto) int {
	sig, err := graphSignature(g)
	if err != nil || len(sig.Inputs) != 1 || len(sig.Inputs[0].Shape) != 2 {
		return 0
	}
	return int(sig.Inputs[0].Shape[1])
}

// head decodes the headroom head (see encodeHead) reading z, the last
// layer's output, requiring its constants to be the head's own.
func width0(l []model.DenseLayer) int { return l[0].In }

func (w *walker) head(z string, width int) error {
	const layer = -1
	relu, err := w.next(layer, "Relu", 1, 1)
	if err != nil {
		return err
	}
	base, err := w.next(layer, "MatMul", 2, 2)
	if err != nil {
		return err
	}
	gate, err := w.next(layer, "MatMul", 2, 2)
	if err != nil {
		return err
	}
	sum, err := w.next(layer, "Add", 2, 2)
	if err != nil {
		return err
	}
	skip, err := w.next(layer, "MatMul", 2, 2)
	if err != nil {
		return err
	}
	total, err := w.next(layer, "Add", 2, 2)
	if err != nil {
		return err
	}
	clip, err := w.next(layer, "Clip", 3, 3)
	if err != nil {
		return err
	}
	r, b, g, s := relu.GetOutput()[0], base.GetOutput()[0], gate.GetOutput()[0], sum.GetOutput()[0]
	switch {
	case relu.GetInput()[0] != z, base.GetInput()[0] != z, gate.GetInput()[0] != r,
		sum.GetInput()[0] != b, sum.GetInput()[1] != g, skip.GetInput()[0] != model.InputName,
		total.GetInput()[0] != s, total.GetInput()[1] != skip.GetOutput()[0], clip.GetInput()[0] != total.GetOutput()[0]:
		return invalid("the headroom head's nodes are not wired as this server writes them")
	case clip.GetOutput()[0] != model.OutputName:
		return invalid("the headroom head writes %q; want the graph output %q", clip.GetOutput()[0], model.OutputName)
	case w.pos != len(w.nodes):
		return invalid("the graph has nodes after the headroom head")
	}
	wantBase, wantGate := headMatrices()
	for _, c := range []struct {
		name string
		want []float32
	}{{base.GetInput()[1], wantBase}, {gate.GetInput()[1], wantGate}, {skip.GetInput()[1], skipMatrix(width)}} {
		t, err := w.init(layer, c.name, onnxpb.TensorProto_FLOAT, 2)
		if err != nil {
			return err
		}
		v, err := float32s(t, len(c.want))
		if err != nil {
			return invalid("head: %v", err)
		}
		for k := range v {
			if v[k] != c.want[k] {
				return invalid("head constant %q is not the headroom head's", c.name)
			}
		}
	}
	for k, want := range []float32{0, 1} {
		t, err := w.init(layer, clip.GetInput()[1+k], onnxpb.TensorProto_FLOAT, 0)
		if err != nil {
			return err
		}
		if v, err := float32s(t, 1); err != nil || v[0] != want {
			return invalid("head: Clip bound %q must be the scalar %v", clip.GetInput()[1+k], want)
		}
	}
	return nil
}

func describe(s model.Signature) string {
	str := func(ts []model.TensorSpec) string {
		out := "("
		for i, t := range ts {
			if i > 0 {
				out += ", "
			}
			out += fmt.Sprintf("%s %s %v", t.Name, t.Type, t.Shape)
		}
		return out + ")"
	}
	return str(s.Inputs) + " → " + str(s.Outputs)
}

// walker reads the node list one layer at a time.
type walker struct {
	nodes []*onnxpb.NodeProto
	pos   int
	inits map[string]*onnxpb.TensorProto
}

// next returns the next node if it has op type op, exactly nIn inputs (or
// between minIn and maxIn) and one output.
func (w *walker) next(layer int, op string, minIn, maxIn int) (*onnxpb.NodeProto, error) {
	if w.pos >= len(w.nodes) {
		return nil, invalid("layer %d: graph ends before its %s node", layer, op)
	}
	n := w.nodes[w.pos]
	if got := n.GetOpType(); got != op {
		return nil, invalid("layer %d: node %d (%q) is %s; want %s", layer, w.pos, n.GetName(), got, op)
	}
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		return nil, invalid("layer %d: node %q is in domain %q; want the standard domain", layer, n.GetName(), d)
	}
	if len(n.GetInput()) < minIn || len(n.GetInput()) > maxIn || len(n.GetOutput()) != 1 {
		return nil, invalid("layer %d: %s node %q has %d inputs and %d outputs", layer, op, n.GetName(), len(n.GetInput()), len(n.GetOutput()))
	}
	w.pos++
	return n, nil
}

// layer decodes one DequantizeLinear → MatMul → Add → [Relu|Sigmoid] group
// reading x of the given width, and returns the layer and its output name.
func (w *walker) layer(i int, x string, width int) (model.DenseLayer, string, error) {
	var l model.DenseLayer
	dq, err := w.next(i, "DequantizeLinear", 2, 3)
	if err != nil {
		return l, "", err
	}
	if err := checkAxis(i, dq); err != nil {
		return l, "", err
	}
	qt, err := w.init(i, dq.GetInput()[0], onnxpb.TensorProto_INT8, 2)
	if err != nil {
		return l, "", err
	}
	l.In, l.Out = int(qt.GetDims()[0]), int(qt.GetDims()[1])
	if l.In != width {
		return l, "", invalid("layer %d: weight %q is [%d, %d]; its input has width %d", i, qt.GetName(), l.In, l.Out, width)
	}
	q, err := int8s(qt, l.In*l.Out)
	if err != nil {
		return l, "", invalid("layer %d: %v", i, err)
	}
	l.Q = q
	st, err := w.vector(i, dq.GetInput()[1], onnxpb.TensorProto_FLOAT, l.Out)
	if err != nil {
		return l, "", err
	}
	if l.Scale, err = float32s(st, l.Out); err != nil {
		return l, "", invalid("layer %d: %v", i, err)
	}
	if len(dq.GetInput()) == 3 && dq.GetInput()[2] != "" {
		zt, err := w.vector(i, dq.GetInput()[2], onnxpb.TensorProto_INT8, l.Out)
		if err != nil {
			return l, "", err
		}
		zp, err := int8s(zt, l.Out)
		if err != nil {
			return l, "", invalid("layer %d: %v", i, err)
		}
		for o, z := range zp {
			if z != 0 {
				return l, "", invalid("layer %d: zero point %q[%d] is %d; symmetric quantization needs 0", i, zt.GetName(), o, z)
			}
		}
	}

	mm, err := w.next(i, "MatMul", 2, 2)
	if err != nil {
		return l, "", err
	}
	if mm.GetInput()[0] != x || mm.GetInput()[1] != dq.GetOutput()[0] {
		return l, "", invalid("layer %d: MatMul %q multiplies %q; want (%q, %q)", i, mm.GetName(), mm.GetInput(), x, dq.GetOutput()[0])
	}
	add, err := w.next(i, "Add", 2, 2)
	if err != nil {
		return l, "", err
	}
	if add.GetInput()[0] != mm.GetOutput()[0] {
		return l, "", invalid("layer %d: Add %q adds to %q; want the MatMul output %q", i, add.GetName(), add.GetInput()[0], mm.GetOutput()[0])
	}
	bt, err := w.vector(i, add.GetInput()[1], onnxpb.TensorProto_FLOAT, l.Out)
	if err != nil {
		return l, "", err
	}
	if l.Bias, err = float32s(bt, l.Out); err != nil {
		return l, "", invalid("layer %d: %v", i, err)
	}

	out := add.GetOutput()[0]
	l.Activation = model.ActNone
	if w.pos < len(w.nodes) {
		n := w.nodes[w.pos]
		var act model.Activation
		switch n.GetOpType() {
		case "Relu":
			act = model.ActReLU
		case "Sigmoid":
			act = model.ActSigmoid
		case "Clip":
			act = model.ActClip
		}
		if act != "" && n.GetName() != headRelu {
			maxIn := 1
			if act == model.ActClip {
				maxIn = 3
			}
			n, err := w.next(i, n.GetOpType(), maxIn, maxIn)
			if err != nil {
				return l, "", err
			}
			if n.GetInput()[0] != out {
				return l, "", invalid("layer %d: %s %q reads %q; want the Add output %q", i, n.GetOpType(), n.GetName(), n.GetInput()[0], out)
			}
			if act == model.ActClip {
				for k, want := range []float32{0, 1} {
					t, err := w.init(i, n.GetInput()[1+k], onnxpb.TensorProto_FLOAT, 0)
					if err != nil {
						return l, "", err
					}
					v, err := float32s(t, 1)
					if err != nil || v[0] != want {
						return l, "", invalid("layer %d: Clip bound %q must be the scalar %v", i, n.GetInput()[1+k], want)
					}
				}
			}
			l.Activation, out = act, n.GetOutput()[0]
		}
	}
	return l, out, nil
}

func checkAxis(i int, dq *onnxpb.NodeProto) error {
	axis := int64(1) // DequantizeLinear's default
	for _, a := range dq.GetAttribute() {
		switch a.GetName() {
		case "axis":
			if a.GetType() != onnxpb.AttributeProto_INT {
				return invalid("layer %d: DequantizeLinear axis attribute has type %v; want INT", i, a.GetType())
			}
			axis = a.GetI()
		default:
			return invalid("layer %d: DequantizeLinear has unexpected attribute %q", i, a.GetName())
		}
	}
	if axis != 1 && axis != -1 {
		return invalid("layer %d: DequantizeLinear axis %d; want 1 (per output channel)", i, axis)
	}
	return nil
}

// init returns the initializer called name with data type dt and rank dims,
// every dimension positive.
func (w *walker) init(i int, name string, dt onnxpb.TensorProto_DataType, rank int) (*onnxpb.TensorProto, error) {
	t, ok := w.inits[name]
	if !ok {
		return nil, invalid("layer %d: missing initializer %q", i, name)
	}
	if got := onnxpb.TensorProto_DataType(t.GetDataType()); got != dt {
		return nil, invalid("layer %d: initializer %q has data type %v; want %v", i, name, got, dt)
	}
	if len(t.GetDims()) != rank {
		return nil, invalid("layer %d: initializer %q has shape %v; want rank %d", i, name, t.GetDims(), rank)
	}
	n := int64(1)
	for _, d := range t.GetDims() {
		if d <= 0 || d > maxElements {
			return nil, invalid("layer %d: initializer %q has shape %v", i, name, t.GetDims())
		}
		if n *= d; n > maxElements {
			return nil, invalid("layer %d: initializer %q has %v elements; at most %d are accepted", i, name, t.GetDims(), maxElements)
		}
	}
	return t, nil
}

// vector returns the initializer called name, of type dt and shape [n].
func (w *walker) vector(i int, name string, dt onnxpb.TensorProto_DataType, n int) (*onnxpb.TensorProto, error) {
	t, err := w.init(i, name, dt, 1)
	if err != nil {
		return nil, err
	}
	if t.GetDims()[0] != int64(n) {
		return nil, invalid("layer %d: initializer %q has shape %v; want [%d]", i, name, t.GetDims(), n)
	}
	return t, nil
}

// int8s reads n int8 elements from raw_data or int32_data.
func int8s(t *onnxpb.TensorProto, n int) ([]int8, error) {
	out := make([]int8, n)
	switch raw, i32 := t.GetRawData(), t.GetInt32Data(); {
	case raw != nil:
		if len(raw) != n {
			return nil, fmt.Errorf("initializer %q has %d raw bytes; want %d", t.GetName(), len(raw), n)
		}
		for k, v := range raw {
			out[k] = int8(v)
		}
	case len(i32) == n:
		for k, v := range i32 {
			if v < math.MinInt8 || v > math.MaxInt8 {
				return nil, fmt.Errorf("initializer %q element %d is %d, outside int8", t.GetName(), k, v)
			}
			out[k] = int8(v)
		}
	default:
		return nil, fmt.Errorf("initializer %q has %d int32_data elements and no raw_data; want %d", t.GetName(), len(i32), n)
	}
	return out, nil
}

// float32s reads n finite float32 elements from raw_data or float_data.
func float32s(t *onnxpb.TensorProto, n int) ([]float32, error) {
	out := make([]float32, n)
	switch raw, fd := t.GetRawData(), t.GetFloatData(); {
	case raw != nil:
		if len(raw) != 4*n {
			return nil, fmt.Errorf("initializer %q has %d raw bytes; want %d", t.GetName(), len(raw), 4*n)
		}
		for k := range out {
			out[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
		}
	case len(fd) == n:
		copy(out, fd)
	default:
		return nil, fmt.Errorf("initializer %q has %d float_data elements and no raw_data; want %d", t.GetName(), len(fd), n)
	}
	for k, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("initializer %q element %d is %v", t.GetName(), k, v)
		}
	}
	return out, nil
}
