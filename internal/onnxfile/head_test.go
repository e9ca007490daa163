package onnxfile_test

import (
	"bytes"
	"errors"
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

// TestHeadroomHead_RoundTrip: a major-2 graph passes Check, decodes to the
// model it was written from, and its forward pass never gives a limit
// below its request, over random inputs.
func TestHeadroomHead_RoundTrip(t *testing.T) {
	t.Parallel()
	m := onnxfile.RandomMLPV2(3)
	b := encodeVersion(t, m, "v2.0.0")
	c, err := onnxfile.Check(b)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !reflect.DeepEqual(c.Model, m) || c.Model.Head != model.HeadHeadroom {
		t.Fatalf("Check decoded another model (head %q)", c.Model.Head)
	}
	sig, err := onnxfile.Signature(b)
	if err != nil || !sig.Equal(model.SignatureFor(m.InputWidth())) {
		t.Fatalf("signature %v, %v", sig, err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 5000
	x := make([]float32, n*m.InputWidth())
	for i := range x {
		switch rng.IntN(4) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = 1
		default:
			x[i] = rng.Float32()
		}
	}
	y := m.Forward(x, n)
	negative := 0
	for r := 0; r < n; r++ {
		row := y[r*model.NumOutputs : (r+1)*model.NumOutputs]
		if row[1] < row[0] || row[3] < row[2] {
			t.Fatalf("row %d: %v; want cpu_limit ≥ cpu_request and mem_limit ≥ mem_request", r, row)
		}
		for _, v := range row {
			if v < 0 || v > 1 {
				t.Fatalf("row %d: %v outside [0,1]", r, row)
			}
		}
		if row[1] == row[0] || row[3] == row[2] {
			negative++
		}
	}
	// The random biases make some headrooms negative: the head's ReLU is
	// exercised, not only its sum.
	if negative == 0 {
		t.Errorf("no row had a zero headroom; the test does not exercise the ReLU")
	}
}

// TestHeadroomHead_Refused: Check refuses graphs that mix the majors'
// formats, and heads that are not exactly the one Encode writes.
func TestHeadroomHead_Refused(t *testing.T) {
	t.Parallel()
	v2 := onnxfile.RandomMLPV2(4)
	v1 := onnxfile.RandomMLP(4)
	noHead := *v2
	noHead.Head = model.HeadNone
	v1Head := *v1
	v1Head.Layers = append([]model.DenseLayer(nil), v1.Layers...)
	v1Head.Layers[2].Activation = model.ActNone
	v1Head.Head = model.HeadHeadroom

	// A 12-feature model cannot carry the head: it reads major 2's maxima.
	if _, err := onnxfile.Encode(&v1Head, model.MustParseVersion("v1.5.0")); !errors.Is(err, model.ErrInvalidModel) {
		t.Errorf("Encode(12 features with the head) = %v; want ErrInvalidModel", err)
	}

	tamper := func(edit func(g *onnxpb.GraphProto)) []byte {
		var mp onnxpb.ModelProto
		if err := proto.Unmarshal(encodeVersion(t, v2, "v2.0.0"), &mp); err != nil {
			t.Fatal(err)
		}
		edit(mp.GetGraph())
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&mp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	initializer := func(g *onnxpb.GraphProto, name string) *onnxpb.TensorProto {
		for _, t := range g.GetInitializer() {
			if t.GetName() == name {
				return t
			}
		}
		t.Fatalf("no initializer %s", name)
		return nil
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		sentinel error
		want     string
	}{
		{"V2AsMajor1", encodeVersion(t, v2, "v1.5.0"), model.ErrSignatureMismatch, "major 1"},
		{"V1AsMajor2", encodeVersion(t, v1, "v2.0.0"), model.ErrSignatureMismatch, "major 2"},
		{"Major2WithoutHead", encodeVersion(t, &noHead, "v2.0.0"), model.ErrInvalidModel, "headroom head"},
		{"Major3", encodeVersion(t, v2, "v3.0.0"), model.ErrSignatureMismatch, "majors"},
		{"GateMatrixChanged", tamper(func(g *onnxpb.GraphProto) {
			raw := initializer(g, "head.gate_matrix").RawData
			raw[4*1+3] ^= 0x80 // gate[0][1] = -0: still a zero, but not the bytes written
		}), model.ErrInvalidModel, "head.gate_matrix"},
		{"BaseMatrixScaled", tamper(func(g *onnxpb.GraphProto) {
			raw := initializer(g, "head.base_matrix").RawData
			raw[3] = 0x40 // base[0][0] = 2
		}), model.ErrInvalidModel, "head"},
		{"ClipBoundMoved", tamper(func(g *onnxpb.GraphProto) {
			raw := initializer(g, "head.clip_max").RawData
			raw[3] = 0x40 // 2
		}), model.ErrInvalidModel, "Clip bound"},
		{"SkipMatrixMoved", tamper(func(g *onnxpb.GraphProto) {
			raw := initializer(g, "head.skip_matrix").RawData
			raw[4*(5*13+3)+3] = 0    // mem_max no longer under mem_limit
			raw[4*(5*14+3)+3] = 0x3f // mem_max_24h instead
			raw[4*(5*14+3)+2] = 0x80
		}), model.ErrInvalidModel, "head.skip_matrix"},
		{"HeadRewired", tamper(func(g *onnxpb.GraphProto) {
			for _, n := range g.GetNode() {
				if n.GetName() == "head.sum" {
					n.Input[1] = n.Input[0] // base + base: limit = 2 × request
				}
			}
		}), model.ErrInvalidModel, "wired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := onnxfile.Check(tc.b)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Check: accepted %v, err = %v; want %v", c != nil, err, tc.sentinel)
			}
			msg, _ := model.PublicMessage(err)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("public message %q; want it to contain %q", msg, tc.want)
			}
		})
	}
}

// TestHeadroomHead_ONNXChecker runs python3-onnx's checker with full shape
// inference on a major-2 graph.
func TestHeadroomHead_ONNXChecker(t *testing.T) {
	t.Parallel()
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import onnx").CombinedOutput(); err != nil {
		if os.Getenv("RECO_SKIP_ONNX_CHECKER") == "1" {
			t.Skip("onnx.checker unavailable; RECO_SKIP_ONNX_CHECKER=1")
		}
		t.Fatalf("onnx.checker unavailable: %v %s", err, bytes.TrimSpace(out))
	}
	file := filepath.Join(t.TempDir(), "predictor_v2.0.0.onnx")
	if err := os.WriteFile(file, encodeVersion(t, onnxfile.RandomMLPV2(11), "v2.0.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
print([d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim])`
	out, err := exec.Command(python, "-c", script, file).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker rejected the model: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "[0, 5]" {
		t.Errorf("inferred output dims %s; want [0, 5] (dynamic batch, 5 outputs)", got)
	}
}
