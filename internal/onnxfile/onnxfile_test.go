package onnxfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

var testVersion = model.MustParseVersion("v1.2.3")

func encode(t testing.TB, m *model.QuantizedMLP) []byte {
	t.Helper()
	b, err := onnxfile.Encode(m, testVersion)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func randomRows(seed uint64, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*model.NumFeatures)
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

func TestRandomMLP(t *testing.T) {
	m := onnxfile.RandomMLP(1)
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := m.Params(), 1029; got != want {
		t.Errorf("Params() = %d; want %d", got, want)
	}
	if !reflect.DeepEqual(m, onnxfile.RandomMLP(1)) {
		t.Error("RandomMLP(1) differs between calls")
	}
	if reflect.DeepEqual(m, onnxfile.RandomMLP(2)) {
		t.Error("RandomMLP(1) == RandomMLP(2)")
	}
	for i, l := range m.Layers {
		for k, q := range l.Q {
			if q < -127 {
				t.Fatalf("layer %d weight %d = %d; symmetric quantization stays in [-127, 127]", i, k, q)
			}
		}
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	m := onnxfile.RandomMLP(7)
	b := encode(t, m)

	t.Run("Size", func(t *testing.T) {
		t.Logf("12-32-16-5 model, %d parameters: %d bytes", m.Params(), len(b))
		if len(b) >= 100_000 {
			t.Errorf("file is %d bytes; want < 100 KB", len(b))
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		for range 5 {
			if again := encode(t, onnxfile.RandomMLP(7)); !bytes.Equal(again, b) {
				t.Fatal("encoding the same model twice gave different bytes")
			}
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		got, v, err := onnxfile.Decode(b)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if v != testVersion {
			t.Errorf("version = %s; want %s", v, testVersion)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("decoded model differs from the encoded one:\ngot  %+v\nwant %+v", got, m)
		}
		x := randomRows(3, 257)
		x = append(x, make([]float32, model.NumFeatures)...) // all zeros
		for range model.NumFeatures {
			x = append(x, 1)
		}
		n := len(x) / model.NumFeatures
		if want, got := m.Forward(x, n), got.Forward(x, n); !reflect.DeepEqual(got, want) {
			t.Error("Forward of the decoded model differs from the original's")
		}
	})
	t.Run("Header", func(t *testing.T) {
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(b, &mp); err != nil {
			t.Fatal(err)
		}
		if mp.GetIrVersion() != 8 || len(mp.GetOpsetImport()) != 1 || mp.GetOpsetImport()[0].GetVersion() != 13 ||
			mp.GetOpsetImport()[0].GetDomain() != "" || mp.GetProducerName() != "recommendation-api" ||
			mp.GetModelVersion() != 1_002_003 {
			t.Errorf("header: ir %d, opsets %v, producer %q, model_version %d; want 8, [(\"\", 13)], recommendation-api, 1002003",
				mp.GetIrVersion(), mp.GetOpsetImport(), mp.GetProducerName(), mp.GetModelVersion())
		}
		var ops []string
		for _, n := range mp.GetGraph().GetNode() {
			ops = append(ops, n.GetOpType())
		}
		want := strings.Repeat("DequantizeLinear MatMul Add Relu ", 2) + "DequantizeLinear MatMul Add Sigmoid"
		if got := strings.Join(ops, " "); got != want {
			t.Errorf("nodes %s; want %s", got, want)
		}
	})
	t.Run("Signature", func(t *testing.T) {
		sig, err := onnxfile.Signature(b)
		if err != nil {
			t.Fatalf("Signature: %v", err)
		}
		if want := model.DefaultSignature(); !sig.Equal(want) {
			t.Errorf("Signature = %+v; want %+v", sig, want)
		}
	})
}

func TestEncode_noActivation(t *testing.T) {
	t.Parallel()
	m := onnxfile.RandomMLP(9)
	m.Layers[2].Activation = model.ActNone
	got, _, err := onnxfile.Decode(encode(t, m))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Error("round trip of a model whose last layer has no activation changed it")
	}
}

func TestEncode_ErrInvalidModel(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(m *model.QuantizedMLP) *model.QuantizedMLP{
		"Nil":           func(*model.QuantizedMLP) *model.QuantizedMLP { return nil },
		"NoLayers":      func(*model.QuantizedMLP) *model.QuantizedMLP { return &model.QuantizedMLP{} },
		"ShortWeights":  func(m *model.QuantizedMLP) *model.QuantizedMLP { m.Layers[1].Q = m.Layers[1].Q[1:]; return m },
		"BadActivation": func(m *model.QuantizedMLP) *model.QuantizedMLP { m.Layers[0].Activation = "tanh"; return m },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := onnxfile.Encode(mutate(onnxfile.RandomMLP(1)), testVersion)
			if !errors.Is(err, model.ErrInvalidModel) {
				t.Errorf("Encode: err = %v; want ErrInvalidModel", err)
			}
		})
	}
}

// mutated encodes RandomMLP(5), lets f change the protobuf and marshals it again.
func mutated(t *testing.T, f func(mp *onnxpb.ModelProto)) []byte {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(encode(t, onnxfile.RandomMLP(5)), &mp); err != nil {
		t.Fatal(err)
	}
	f(&mp)
	b, err := proto.Marshal(&mp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func initializer(mp *onnxpb.ModelProto, name string) *onnxpb.TensorProto {
	for _, t := range mp.GetGraph().GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	panic("no initializer " + name)
}

func TestDecode_ErrInvalidModel(t *testing.T) {
	t.Parallel()
	valid := encode(t, onnxfile.RandomMLP(5))
	cases := []struct {
		name    string
		bytes   []byte
		message string // a fragment the error must contain
	}{
		{"Empty", nil, "empty"},
		{"Truncated", valid[:len(valid)/2], "protobuf"},
		{"TruncatedByOne", valid[:len(valid)-1], "protobuf"},
		{"Garbage", []byte("this is not an onnx file at all"), "protobuf"},
		{"NoGraph", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph = nil }), "no graph"},
		{"NoVersion", mutated(t, func(mp *onnxpb.ModelProto) { mp.MetadataProps = nil }), "version"},
		{"BadVersion", mutated(t, func(mp *onnxpb.ModelProto) { mp.MetadataProps[0].Value = proto.String("1.2") }), "invalid version"},
		{"ModelVersionMismatch", mutated(t, func(mp *onnxpb.ModelProto) { mp.ModelVersion = proto.Int64(7) }), "model_version"},
		{"OldOpset", mutated(t, func(mp *onnxpb.ModelProto) { mp.OpsetImport[0].Version = proto.Int64(10) }), "opset"},
		{"WrongInputName", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Input[0].Name = proto.String("x") }), "signature"},
		{"WrongOutputWidth", mutated(t, func(mp *onnxpb.ModelProto) {
			mp.Graph.Output[0].Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 4}
		}), "signature"},
		{"MissingInitializer", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Initializer = mp.Graph.Initializer[1:] }), "missing initializer"},
		{"DuplicateInitializer", mutated(t, func(mp *onnxpb.ModelProto) {
			mp.Graph.Initializer = append(mp.Graph.Initializer, mp.Graph.Initializer[0])
		}), "twice"},
		{"WeightsFloat", mutated(t, func(mp *onnxpb.ModelProto) {
			initializer(mp, "layer1.weight_q").DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
		}), "data type"},
		{"WeightsRank1", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer0.weight_q").Dims = []int64{384} }), "rank"},
		{"WeightsWrongIn", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer0.weight_q").Dims = []int64{32, 12} }), "width"},
		{"WeightsShortRaw", mutated(t, func(mp *onnxpb.ModelProto) {
			w := initializer(mp, "layer2.weight_q")
			w.RawData = w.RawData[:10]
		}), "raw bytes"},
		{"HugeDims", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer0.weight_q").Dims = []int64{1 << 40, 1 << 40} }), "shape"},
		{"NegativeDims", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer0.bias").Dims = []int64{-32} }), "shape"},
		{"ScaleWrongLength", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer1.weight_scale").Dims = []int64{15} }), "want [16]"},
		{"NaNBias", mutated(t, func(mp *onnxpb.ModelProto) {
			copy(initializer(mp, "layer1.bias").RawData, []byte{0, 0, 0xc0, 0x7f})
		}), "NaN"},
		{"NonzeroZeroPoint", mutated(t, func(mp *onnxpb.ModelProto) { initializer(mp, "layer0.weight_zero_point").RawData[3] = 1 }), "zero point"},
		{"AxisZero", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node[0].Attribute[0].I = proto.Int64(0) }), "axis"},
		{"UnknownOp", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node[1].OpType = proto.String("Gemm") }), "want MatMul"},
		{"CustomDomain", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node[2].Domain = proto.String("com.example") }), "domain"},
		{"RewiredMatMul", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node[5].Input[0] = "features" }), "MatMul"},
		{"LastLayerDropped", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node = mp.Graph.Node[:8] }), "last node"},
		{"NoNodes", mutated(t, func(mp *onnxpb.ModelProto) { mp.Graph.Node = nil }), "no nodes"},
		{"ExtraNode", mutated(t, func(mp *onnxpb.ModelProto) {
			mp.Graph.Node = append(mp.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("Identity"), Input: []string{"recommendations"}, Output: []string{"y"}})
		}), "Identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, _, err := onnxfile.Decode(tc.bytes)
			if !errors.Is(err, model.ErrInvalidModel) {
				t.Fatalf("Decode: model %v, err = %v; want ErrInvalidModel", m != nil, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Decode: err = %q; want it to mention %q", err, tc.message)
			}
		})
	}
}

func TestSignature_ErrInvalidModel(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"Empty":     nil,
		"Garbage":   {0xff, 0xff, 0xff},
		"Truncated": encode(t, onnxfile.RandomMLP(1))[:100],
	} {
		if _, err := onnxfile.Signature(b); !errors.Is(err, model.ErrInvalidModel) {
			t.Errorf("%s: Signature err = %v; want ErrInvalidModel", name, err)
		}
	}
}

// TestONNXChecker runs the onnx package's own checker (Debian python3-onnx,
// IR ≤ 8, opset ≤ 17) with full shape inference on an encoded model: an
// independent reader of the format. The checker missing is a failure, since
// `make deps` installs it; set RECO_SKIP_ONNX_CHECKER=1 to skip this test on
// machines without it.
func TestONNXChecker(t *testing.T) {
	t.Parallel()
	const python = "/usr/bin/python3" // the system Python that python3-onnx installs into
	if out, err := exec.Command(python, "-c", "import onnx").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("onnx.checker unavailable (%s -c 'import onnx': %v %s)", python, err, bytes.TrimSpace(out))
		if os.Getenv("RECO_SKIP_ONNX_CHECKER") == "1" {
			t.Skip(msg + "; skipped because RECO_SKIP_ONNX_CHECKER=1")
		}
		t.Fatal(msg + ": run `make deps` (it installs Debian's python3-onnx) or set RECO_SKIP_ONNX_CHECKER=1 to skip")
	}
	file := filepath.Join(t.TempDir(), "predictor_v1.2.3.onnx")
	if err := os.WriteFile(file, encode(t, onnxfile.RandomMLP(11)), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print(m.ir_version, m.opset_import[0].version, dict((p.key, p.value) for p in m.metadata_props)["version"])`
	out, err := exec.Command(python, "-c", script, file).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker rejected the model: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "8 13 v1.2.3"; got != want {
		t.Errorf("checker printed %q; want %q", got, want)
	}
}

func ExampleEncode() {
	m := onnxfile.RandomMLP(1)
	b, err := onnxfile.Encode(m, model.MustParseVersion("v1.0.0"))
	if err != nil {
		panic(err)
	}
	back, version, err := onnxfile.Decode(b)
	if err != nil {
		panic(err)
	}
	sig, _ := onnxfile.Signature(b)
	fmt.Println(version, back.Params(), "parameters,", len(b) < 100_000)
	fmt.Println(sig.Inputs[0].Name, sig.Inputs[0].Shape, "→", sig.Outputs[0].Name, sig.Outputs[0].Shape)
	// Output:
	// v1.0.0 1029 parameters, true
	// features [-1 12] → recommendations [-1 5]
}
