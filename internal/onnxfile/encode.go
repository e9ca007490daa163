package onnxfile

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
)

// Format constants of the files Encode writes.
const (
	// IRVersion is the ONNX IR version written (python3-onnx 1.12 accepts ≤ 8).
	IRVersion = 8
	// Opset is the standard ONNX operator set version written. Decode accepts
	// files importing any standard opset from MinOpset on.
	Opset = 13
	// MinOpset is the first opset whose DequantizeLinear takes per-axis scales.
	MinOpset = 13
	// Producer is the producer_name written.
	Producer = "recommendation-api"
	// VersionKey is the metadata_props key holding the model's semantic version.
	VersionKey = "version"
	// BatchDim is the symbolic name of the dynamic batch dimension.
	BatchDim = "N"
)

const graphName = "recommender"

// Initializer and value names of layer i.
func weightQName(i int) string         { return fmt.Sprintf("layer%d.weight_q", i) }
func weightScaleName(i int) string     { return fmt.Sprintf("layer%d.weight_scale", i) }
func weightZeroName(i int) string      { return fmt.Sprintf("layer%d.weight_zero_point", i) }
func clipMinName(i int) string         { return fmt.Sprintf("layer%d.clip_min", i) }
func clipMaxName(i int) string         { return fmt.Sprintf("layer%d.clip_max", i) }
func biasName(i int) string            { return fmt.Sprintf("layer%d.bias", i) }
func valueName(i int, s string) string { return fmt.Sprintf("layer%d.%s", i, s) }

// VersionNumber is the model_version Encode writes for v: major·1e6 + minor·1e3 + patch.
func VersionNumber(v model.Version) int64 {
	return int64(v.Major)*1_000_000 + int64(v.Minor)*1_000 + int64(v.Patch)
}

// Encode writes m as an ONNX model (layout in the package documentation)
// carrying version. The same model and version always give the same bytes.
// It returns an error wrapping model.ErrInvalidModel if m fails Validate or a
// layer has an activation other than relu, sigmoid or none.
func Encode(m *model.QuantizedMLP, version model.Version) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("onnxfile: encode: %w: nil model", model.ErrInvalidModel)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("onnxfile: encode: %w", err)
	}
	g := &onnxpb.GraphProto{
		Name:      proto.String(graphName),
		DocString: proto.String("int8 weight-only MLP: DequantizeLinear → MatMul → Add → activation per layer"),
		Input:     []*onnxpb.ValueInfoProto{floatValueInfo(model.InputName, m.InputWidth())},
		Output:    []*onnxpb.ValueInfoProto{floatValueInfo(model.OutputName, model.NumOutputs)},
	}
	x := model.InputName
	for i, l := range m.Layers {
		last := i == len(m.Layers)-1
		var act string
		switch l.Activation {
		case model.ActReLU:
			act = "Relu"
		case model.ActSigmoid:
			act = "Sigmoid"
		case model.ActClip:
			act = "Clip"
		case model.ActNone, "":
		default:
			return nil, fmt.Errorf("onnxfile: encode: %w: layer %d has activation %q; want %s, %s, %s or %s",
				model.ErrInvalidModel, i, l.Activation, model.ActReLU, model.ActSigmoid, model.ActClip, model.ActNone)
		}
		q := make([]byte, len(l.Q))
		for k, v := range l.Q {
			q[k] = byte(v)
		}
		g.Initializer = append(g.Initializer,
			tensor(weightQName(i), onnxpb.TensorProto_INT8, []int64{int64(l.In), int64(l.Out)}, q),
			tensor(weightScaleName(i), onnxpb.TensorProto_FLOAT, []int64{int64(l.Out)}, floatBytes(l.Scale)),
			tensor(weightZeroName(i), onnxpb.TensorProto_INT8, []int64{int64(l.Out)}, make([]byte, l.Out)),
			tensor(biasName(i), onnxpb.TensorProto_FLOAT, []int64{int64(l.Out)}, floatBytes(l.Bias)),
		)

		w, mm, add := valueName(i, "weight"), valueName(i, "matmul"), valueName(i, "add")
		out := valueName(i, "output")
		if last && m.Head == model.HeadNone {
			out = model.OutputName
		}
		addOut := add
		if act == "" {
			addOut = out
		}
		g.Node = append(g.Node,
			node(valueName(i, "dequantize"), "DequantizeLinear",
				[]string{weightQName(i), weightScaleName(i), weightZeroName(i)}, w,
				&onnxpb.AttributeProto{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}),
			node(valueName(i, "matmul"), "MatMul", []string{x, w}, mm),
			node(valueName(i, "add"), "Add", []string{mm, biasName(i)}, addOut),
		)
		switch act {
		case "":
		case "Clip": // opset 13 Clip takes its bounds as inputs
			g.Initializer = append(g.Initializer,
				tensor(clipMinName(i), onnxpb.TensorProto_FLOAT, nil, floatBytes([]float32{0})),
				tensor(clipMaxName(i), onnxpb.TensorProto_FLOAT, nil, floatBytes([]float32{1})))
			g.Node = append(g.Node, node(valueName(i, "activation"), act, []string{add, clipMinName(i), clipMaxName(i)}, out))
		default:
			g.Node = append(g.Node, node(valueName(i, "activation"), act, []string{add}, out))
		}
		x = out
	}
	if m.Head == model.HeadHeadroom {
		encodeHead(g, x, m.InputWidth())
	}
	mp := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName: proto.String(Producer),
		ModelVersion: proto.Int64(VersionNumber(version)),
		DocString: proto.String(fmt.Sprintf("recommendation-api resource recommender %s: %d features in, %d outputs, %d parameters",
			version, m.InputWidth(), model.NumOutputs, m.Params())),
		Graph:         g,
		MetadataProps: []*onnxpb.StringStringEntryProto{{Key: proto.String(VersionKey), Value: proto.String(version.String())}},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("onnxfile: encode: marshal: %w", err)
	}
	return b, nil
}

// Names of the headroom head's nodes and constants.
const (
	headRelu    = "head.relu"
	headBase    = "head.base"
	headGate    = "head.gate"
	headSum     = "head.sum"
	headClip    = "head.clip"
	headSkip    = "head.skip"
	headTotal   = "head.total"
	headSkipM   = "head.skip_matrix"
	headBaseM   = "head.base_matrix"
	headGateM   = "head.gate_matrix"
	headClipMin = "head.clip_min"
	headClipMax = "head.clip_max"
)

// headMatrices are the head's constant 5×5 matrices: base copies each
// request to itself and to its limit (and the confidence to itself), gate
// picks each ReLU'd headroom into its limit. z·base + ReLU(z)·gate is then
// [z_cr, z_cr + ReLU(z_ch), z_mr, z_mr + ReLU(z_mh), z_c]: every product is
// by 0 or 1 and every sum adds zeros to one value, except the limits' one
// addition, so ONNX Runtime and model.Head.ApplyHead round alike.
func headMatrices() (base, gate []float32) {
	const n = model.NumOutputs
	base, gate = make([]float32, n*n), make([]float32, n*n)
	base[0*n+0], base[0*n+1] = 1, 1
	base[2*n+2], base[2*n+3] = 1, 1
	base[4*n+4] = 1
	gate[1*n+1], gate[3*n+3] = 1, 1
	return base, gate
}

// skipMatrix is the head's constant [width,5] matrix: x·S puts the
// normalized cpu_p95 under both CPU outputs and mem_max under both memory
// outputs (model.HeadSkip).
func skipMatrix(width int) []float32 {
	const n = model.NumOutputs
	s := make([]float32, width*n)
	c, m := model.HeadSkip(width)
	if c >= 0 && m >= 0 {
		s[c*n+0], s[c*n+1] = 1, 1
		s[m*n+2], s[m*n+3] = 1, 1
	}
	return s
}

// encodeHead appends the headroom head reading z (the last layer's Add
// output) and the graph input: Relu, two MatMuls by the constant matrices,
// Add, the input's maxima (MatMul by the skip matrix), Add, Clip to [0,1].
func encodeHead(g *onnxpb.GraphProto, z string, width int) {
	base, gate := headMatrices()
	dims := []int64{model.NumOutputs, model.NumOutputs}
	g.Initializer = append(g.Initializer,
		tensor(headBaseM, onnxpb.TensorProto_FLOAT, dims, floatBytes(base)),
		tensor(headGateM, onnxpb.TensorProto_FLOAT, dims, floatBytes(gate)),
		tensor(headSkipM, onnxpb.TensorProto_FLOAT, []int64{int64(width), model.NumOutputs}, floatBytes(skipMatrix(width))),
		tensor(headClipMin, onnxpb.TensorProto_FLOAT, nil, floatBytes([]float32{0})),
		tensor(headClipMax, onnxpb.TensorProto_FLOAT, nil, floatBytes([]float32{1})),
	)
	g.Node = append(g.Node,
		node(headRelu, "Relu", []string{z}, headRelu),
		node(headBase, "MatMul", []string{z, headBaseM}, headBase),
		node(headGate, "MatMul", []string{headRelu, headGateM}, headGate),
		node(headSum, "Add", []string{headBase, headGate}, headSum),
		node(headSkip, "MatMul", []string{model.InputName, headSkipM}, headSkip),
		node(headTotal, "Add", []string{headSum, headSkip}, headTotal),
		node(headClip, "Clip", []string{headTotal, headClipMin, headClipMax}, model.OutputName),
	)
}

// floatValueInfo is a float32 tensor [N, width].
func floatValueInfo(name string, width int) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: BatchDim}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(width)}},
			}},
		}}},
	}
}

func tensor(name string, dt onnxpb.TensorProto_DataType, dims []int64, raw []byte) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(dt)),
		Dims:     dims,
		RawData:  raw,
	}
}

func node(name, op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{
		Name:      proto.String(name),
		OpType:    proto.String(op),
		Input:     in,
		Output:    []string{out},
		Attribute: attrs,
	}
}

// floatBytes is v as little-endian IEEE 754 float32s (ONNX raw_data).
func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
