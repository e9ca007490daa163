package onnxfile

import (
	"fmt"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
)

// Signature returns the I/O signature of the ONNX model in b: its graph inputs
// (leaving out those that are initializers, as IR < 4 files list them) and
// outputs, with element types named as ElemTypeName does and symbolic or
// unknown dimensions as -1. It works on any ONNX file whose inputs and
// outputs are tensors; otherwise, and for bytes that are not an ONNX model,
// it returns an error wrapping model.ErrInvalidModel.
func Signature(b []byte) (model.Signature, error) {
	mp, err := unmarshal(b)
	if err != nil {
		return model.Signature{}, err
	}
	return graphSignature(mp.GetGraph())
}

func graphSignature(g *onnxpb.GraphProto) (model.Signature, error) {
	inits := make(map[string]bool, len(g.GetInitializer()))
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var sig model.Signature
	for _, v := range g.GetInput() {
		if inits[v.GetName()] {
			continue
		}
		ts, err := tensorSpec(v)
		if err != nil {
			return model.Signature{}, err
		}
		sig.Inputs = append(sig.Inputs, ts)
	}
	for _, v := range g.GetOutput() {
		ts, err := tensorSpec(v)
		if err != nil {
			return model.Signature{}, err
		}
		sig.Outputs = append(sig.Outputs, ts)
	}
	return sig, nil
}

func tensorSpec(v *onnxpb.ValueInfoProto) (model.TensorSpec, error) {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return model.TensorSpec{}, invalid("graph value %q is not a tensor", v.GetName())
	}
	ts := model.TensorSpec{Name: v.GetName(), Type: ElemTypeName(tt.GetElemType())}
	if tt.GetShape() == nil {
		return model.TensorSpec{}, invalid("graph value %q has no shape", v.GetName())
	}
	ts.Shape = make([]int64, 0, len(tt.GetShape().GetDim()))
	for _, d := range tt.GetShape().GetDim() {
		n := int64(-1)
		if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && dv.DimValue >= 0 {
			n = dv.DimValue
		}
		ts.Shape = append(ts.Shape, n)
	}
	return ts, nil
}

// ElemTypeName names an ONNX tensor element type (a TensorProto.DataType
// value, which ONNX Runtime's ONNXTensorElementDataType shares) as
// model.TensorSpec.Type spells it: "float32", "int8", "int64", ...
func ElemTypeName(dt int32) string {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT:
		return "float32"
	case onnxpb.TensorProto_UINT8:
		return "uint8"
	case onnxpb.TensorProto_INT8:
		return "int8"
	case onnxpb.TensorProto_UINT16:
		return "uint16"
	case onnxpb.TensorProto_INT16:
		return "int16"
	case onnxpb.TensorProto_INT32:
		return "int32"
	case onnxpb.TensorProto_INT64:
		return "int64"
	case onnxpb.TensorProto_STRING:
		return "string"
	case onnxpb.TensorProto_BOOL:
		return "bool"
	case onnxpb.TensorProto_FLOAT16:
		return "float16"
	case onnxpb.TensorProto_DOUBLE:
		return "float64"
	case onnxpb.TensorProto_UINT32:
		return "uint32"
	case onnxpb.TensorProto_UINT64:
		return "uint64"
	case onnxpb.TensorProto_COMPLEX64:
		return "complex64"
	case onnxpb.TensorProto_COMPLEX128:
		return "complex128"
	case onnxpb.TensorProto_BFLOAT16:
		return "bfloat16"
	}
	return fmt.Sprintf("onnx_type_%d", dt)
}
