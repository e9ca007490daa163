package onnxfile_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

var update = flag.Bool("update", false, "rewrite testdata/ (the external-data model and the FuzzCheck seed corpus)")

// defaultModelFile is the embedded major-1 default model, a file the real pipeline made.
const defaultModelFile = "../defaultmodel/v1/predictor.onnx"

// ExternalDataFile is a model whose initializer layer0.bias is stored
// outside the file, in "secret.bin" relative to the reader's directory.
const externalDataFile = "testdata/external_data_v1.9.0.onnx"

func readDefaultModel(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(defaultModelFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit unmarshals b, lets f change it and marshals it again.
func edit(t testing.TB, b []byte, f func(mp *onnxpb.ModelProto)) []byte {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		t.Fatal(err)
	}
	f(&mp)
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// externalData moves initializer name's elements out of the file: raw_data
// goes, and ONNX's external_data (field 13: location, offset, length) and
// data_location = EXTERNAL (field 14) come, as unknown fields of the
// project's schema. With dataLocation false only external_data is written.
func externalData(t testing.TB, b []byte, name, location string, dataLocation bool) []byte {
	t.Helper()
	return edit(t, b, func(mp *onnxpb.ModelProto) {
		it := initializerOf(mp, name)
		n := len(it.RawData)
		it.RawData = nil
		var u []byte
		for _, kv := range [][2]string{{"location", location}, {"offset", "0"}, {"length", strconv.Itoa(n)}} {
			e := protowire.AppendTag(nil, 1, protowire.BytesType)
			e = protowire.AppendString(e, kv[0])
			e = protowire.AppendTag(e, 2, protowire.BytesType)
			e = protowire.AppendString(e, kv[1])
			u = protowire.AppendTag(u, 13, protowire.BytesType)
			u = protowire.AppendBytes(u, e)
		}
		if dataLocation {
			u = protowire.AppendTag(u, 14, protowire.VarintType)
			u = protowire.AppendVarint(u, 1) // EXTERNAL
		}
		it.ProtoReflect().SetUnknown(u)
	})
}

// unknownField appends field num (a varint 1) to the message f returns.
func unknownField(t testing.TB, b []byte, num protowire.Number, f func(mp *onnxpb.ModelProto) proto.Message) []byte {
	t.Helper()
	return edit(t, b, func(mp *onnxpb.ModelProto) {
		m := f(mp).ProtoReflect()
		u := protowire.AppendTag(append([]byte(nil), m.GetUnknown()...), num, protowire.VarintType)
		m.SetUnknown(protowire.AppendVarint(u, 1))
	})
}

func initializerOf(mp *onnxpb.ModelProto, name string) *onnxpb.TensorProto {
	for _, t := range mp.GetGraph().GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	panic("no initializer " + name)
}

// extraTrailingNode ends the graph in one more node: the last layer writes
// layer2.output and a Relu (the identity on the clipped outputs) writes the
// graph output, so ONNX Runtime computes the same answers.
func extraTrailingNode(t testing.TB, b []byte) []byte {
	t.Helper()
	return edit(t, b, func(mp *onnxpb.ModelProto) {
		g := mp.Graph
		last := g.Node[len(g.Node)-1]
		last.Output[0] = "layer2.output"
		g.Node = append(g.Node, &onnxpb.NodeProto{Name: proto.String("extra"), OpType: proto.String("Relu"),
			Input: []string{"layer2.output"}, Output: []string{model.OutputName}})
	})
}

// mutations are the refused variants of the default model that the tests
// and the seed corpus share: each with the sentinel and a fragment of the
// public message.
func mutations(t testing.TB) []struct {
	name     string
	b        []byte
	sentinel error
	want     string
} {
	b := readDefaultModel(t)
	dense := func(in, out int) model.DenseLayer {
		return model.DenseLayer{In: in, Out: out, Q: make([]int8, in*out), Scale: make([]float32, out), Bias: make([]float32, out), Activation: model.ActReLU}
	}
	wide := &model.QuantizedMLP{Layers: []model.DenseLayer{dense(model.NumFeatures, onnxfile.MaxWidth+1), dense(onnxfile.MaxWidth+1, model.NumOutputs)}}
	deep := &model.QuantizedMLP{}
	for range onnxfile.MaxLayers {
		deep.Layers = append(deep.Layers, dense(model.NumFeatures, model.NumFeatures))
	}
	deep.Layers = append(deep.Layers, dense(model.NumFeatures, model.NumOutputs))
	encodeOrFail := func(m *model.QuantizedMLP) []byte {
		out, err := onnxfile.Encode(m, model.MustParseVersion("v1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	bad := model.ErrInvalidModel
	return []struct {
		name     string
		b        []byte
		sentinel error
		want     string
	}{
		{"ExternalData", externalData(t, b, "layer0.bias", "secret.bin", true), bad, `initializer "layer0.bias" uses external data; only embedded tensors are accepted`},
		{"ExternalDataTraversal", externalData(t, b, "layer1.weight_q", "../../../../etc/passwd", true), bad, `initializer "layer1.weight_q" uses external data`},
		{"ExternalDataNoLocationFlag", externalData(t, b, "layer2.bias", "secret.bin", false), bad, `initializer "layer2.bias" uses external data`},
		{"ExternalDataLocationOnly", unknownField(t, b, 14, func(mp *onnxpb.ModelProto) proto.Message { return initializerOf(mp, "layer0.weight_scale") }), bad, `initializer "layer0.weight_scale" uses external data`},
		{"ExternalDataInAttribute", edit(t, b, func(mp *onnxpb.ModelProto) {
			tp := &onnxpb.TensorProto{Name: proto.String("t"), DataType: proto.Int32(1)}
			tp.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 14, protowire.VarintType), 1))
			mp.Graph.Node[0].Attribute = append(mp.Graph.Node[0].Attribute, &onnxpb.AttributeProto{Name: proto.String("value"), T: tp})
		}), bad, `uses external data`},
		{"SparseInitializer", unknownField(t, b, 15, func(mp *onnxpb.ModelProto) proto.Message { return mp.Graph }), bad, "the graph has field 15 (sparse_initializer)"},
		{"Functions", unknownField(t, b, 25, func(mp *onnxpb.ModelProto) proto.Message { return mp }), bad, "the model has field 25 (functions)"},
		{"SubgraphAttribute", unknownField(t, b, 6, func(mp *onnxpb.ModelProto) proto.Message { return mp.Graph.Node[0].Attribute[0] }), bad, `attribute "axis" of node "layer0.dequantize" has field 6`},
		{"ExtraTrailingNode", extraTrailingNode(t, b), bad, `node 12 ("extra") is Relu`},
		{"IRVersion7", edit(t, b, func(mp *onnxpb.ModelProto) { mp.IrVersion = proto.Int64(7) }), bad, "IR version 7"},
		{"Opset17", edit(t, b, func(mp *onnxpb.ModelProto) { mp.OpsetImport[0].Version = proto.Int64(17) }), bad, "opset"},
		{"SecondOpset", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.microsoft"), Version: proto.Int64(1)})
		}), bad, "opset"},
		{"RenamedNode", edit(t, b, func(mp *onnxpb.ModelProto) { mp.Graph.Node[4].Name = proto.String("mine") }), bad, `node 4 ("mine")`},
		{"NodeDomain", edit(t, b, func(mp *onnxpb.ModelProto) { mp.Graph.Node[1].Domain = proto.String("ai.onnx") }), bad, `node 1`},
		{"MatMulAttribute", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{{Name: proto.String("x"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}
		}), bad, `node 1`},
		{"NoZeroPoint", edit(t, b, func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].Input = mp.Graph.Node[0].Input[:2] }), bad, `node 0`},
		{"UnusedInitializer", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, &onnxpb.TensorProto{Name: proto.String("spare"), DataType: proto.Int32(1), Dims: []int64{1}, RawData: make([]byte, 4)})
		}), bad, "initializers"},
		{"FloatData", edit(t, b, func(mp *onnxpb.ModelProto) {
			it := initializerOf(mp, "layer1.bias")
			it.FloatData, it.RawData = make([]float32, len(it.RawData)/4), nil
		}), bad, `initializer "layer1.bias" stores its elements outside raw_data`},
		{"InitializerAsInput", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.Graph.Input = append(mp.Graph.Input, &onnxpb.ValueInfoProto{Name: proto.String("layer0.bias"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(1), Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 32}}}}}}}})
		}), bad, "graph lists 2 inputs"},
		{"ValueInfo", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.Graph.ValueInfo = append(mp.Graph.ValueInfo, proto.Clone(mp.Graph.Input[0]).(*onnxpb.ValueInfoProto))
		}), bad, "value_info"},
		{"MetadataProp", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String("k"), Value: proto.String("v")})
		}), bad, "metadata_props"},
		{"DocString", edit(t, b, func(mp *onnxpb.ModelProto) { mp.DocString = proto.String("mine") }), bad, "doc_string"},
		{"RenamedInput", edit(t, b, func(mp *onnxpb.ModelProto) {
			mp.Graph.Input[0].Name = proto.String("x")
			mp.Graph.Node[1].Input[0] = "x"
		}), model.ErrSignatureMismatch, "graph signature (x float32 [-1 12])"},
		{"TooDeep", encodeOrFail(deep), bad, fmt.Sprintf("more than %d layers", onnxfile.MaxLayers)},
		{"TooWide", encodeOrFail(wide), bad, fmt.Sprintf("at most %d are accepted", onnxfile.MaxWidth)},
		{"Truncated", b[:len(b)-1], bad, "protobuf"},
	}
}

func TestCheck_OK(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"DefaultModel": readDefaultModel(t),
		"RandomMLP":    encode(t, onnxfile.RandomMLP(7)),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := onnxfile.Check(b)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			m, v, err := onnxfile.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Model, m) || c.Version != v || !bytes.Equal(c.Bytes, b) {
				t.Errorf("Check = %v %v; want what Decode gives (%v) and the bytes", c.Version, c.Model.Params(), v)
			}
		})
	}
}

func TestCheck_Refuses(t *testing.T) {
	t.Parallel()
	for _, tc := range mutations(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := onnxfile.Check(tc.b)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Check: accepted %v, err = %v; want %v", c != nil, err, tc.sentinel)
			}
			msg, ok := model.PublicMessage(err)
			t.Log(msg)
			if !ok || !strings.HasPrefix(msg, "model graph: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("public message %q (%v); want one starting %q and containing %q", msg, ok, "model graph: ", tc.want)
			}
		})
	}
}

// TestTestdata checks the committed files under testdata/ are what the
// helpers above make (run with -update to rewrite them): the external-data
// model, refused by Check, and the FuzzCheck seed corpus.
func TestTestdata(t *testing.T) {
	b := readDefaultModel(t)
	m, _, err := onnxfile.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{externalDataFile: externalData(t, encodeVersion(t, m, "v1.9.0"), "layer0.bias", "secret.bin", true)}
	seeds := map[string][]byte{"default_model": b}
	for _, tc := range mutations(t) {
		if tc.name != "TooWide" { // 50 KB of zeros adds nothing
			seeds[strings.ToLower(tc.name)] = tc.b
		}
	}
	for name, s := range seeds {
		files[filepath.Join("testdata", "fuzz", "FuzzCheck", name)] = []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n")
	}
	for path, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the tests make (%v); run go test ./internal/onnxfile -run TestTestdata -update", path, err)
		}
	}
	ext, err := os.ReadFile(externalDataFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxfile.Check(ext); err == nil || !strings.Contains(err.Error(), `initializer "layer0.bias" uses external data`) {
		t.Errorf("Check(%s) = %v; want the external data refused", externalDataFile, err)
	}
}

func encodeVersion(t testing.TB, m *model.QuantizedMLP, v string) []byte {
	t.Helper()
	b, err := onnxfile.Encode(m, model.MustParseVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
