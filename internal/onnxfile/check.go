package onnxfile

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	onnxpb "recommendation-api/api/onnx/onnx"
	"recommendation-api/internal/model"
)

// Limits Check puts on the network, beyond the layer pattern: Encode can
// write any stack of dense layers, the trainer writes 12-32-16-5 (wider
// with split towers or an ensemble).
const (
	// MaxLayers is the most dense layers a checked model may have.
	MaxLayers = model.MaxLayers
	// MaxWidth is the widest layer output a checked model may have.
	MaxWidth = model.MaxWidth
)

// Checked is a model file that passed Check: the model and version decoded
// from it, and the file itself, which is byte for byte what
// Encode(Model, Version) writes.
type Checked struct {
	Model   *model.QuantizedMLP
	Version model.Version
	Bytes   []byte
}

// Check decodes b and accepts it only if it is exactly a file Encode writes:
// the header (IR version, opset, producer, version metadata), the graph's
// inputs and outputs, the node pattern and order, the initializers' names,
// types, shapes and embedded raw_data, and nothing else. It is the gate
// before ONNX Runtime: nothing it accepts makes ONNX Runtime open a path
// (no external data), load an operator Encode does not write, or compute
// something other than what model.QuantizedMLP.Forward computes for the
// decoded weights.
//
// It reads only b: it opens no file and never panics (FuzzCheck). A refusal
// is an error wrapping model.ErrSignatureMismatch when the graph's inputs or
// outputs are not this server's, and model.ErrInvalidModel otherwise; it is
// a model.Publicer whose message names the reason ("model graph: initializer
// \"layer0.bias\" uses external data; only embedded tensors are accepted").
func Check(b []byte) (*Checked, error) {
	mp, err := unmarshal(b)
	if err != nil {
		return nil, err
	}
	if err := checkUnknown(mp.ProtoReflect(), "the model"); err != nil {
		return nil, err
	}
	if err := checkHeader(mp); err != nil {
		return nil, err
	}
	sig, err := graphSignature(mp.GetGraph())
	if err != nil {
		return nil, err
	}
	m, v, err := decodeModel(mp)
	if err != nil {
		if !sigKnown(sig) {
			return nil, refuse(model.ErrSignatureMismatch, "graph signature %s; this server serves %s", describe(sig), describeKnown())
		}
		return nil, err
	}
	// The graph format is the major's: its input width and head.
	width, head, err := model.FormatFor(v.Major)
	if err != nil {
		return nil, refuse(model.ErrSignatureMismatch, "model version %s: this server serves majors %v", v, model.Majors)
	}
	if want := model.SignatureFor(width); !sig.Equal(want) {
		return nil, refuse(model.ErrSignatureMismatch, "graph signature %s; major %d is served as %s", describe(sig), v.Major, describe(want))
	}
	if m.Head != head {
		return nil, invalid("major %d graphs end in %s; this one in %s", v.Major, headName(head), headName(m.Head))
	}
	for i, l := range m.Layers {
		if l.Out > MaxWidth {
			return nil, invalid("layer %d has %d outputs; at most %d are accepted", i, l.Out, MaxWidth)
		}
	}
	want, err := Encode(m, v)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if !bytes.Equal(b, want) {
		var wp onnxpb.ModelProto
		if err := proto.Unmarshal(want, &wp); err != nil {
			return nil, fmt.Errorf("onnxfile: check: re-read encoded model: %w", err)
		}
		return nil, invalid("%s; only files as this server's encoder writes them are accepted", difference(mp, &wp))
	}
	return &Checked{Model: m, Version: v, Bytes: b}, nil
}

// sigKnown reports whether sig is the signature of a major this server serves.
func sigKnown(sig model.Signature) bool {
	for _, major := range model.Majors {
		if w, _, err := model.FormatFor(major); err == nil && sig.Equal(model.SignatureFor(w)) {
			return true
		}
	}
	return false
}

func describeKnown() string {
	s := ""
	for i, major := range model.Majors {
		w, _, _ := model.FormatFor(major)
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("%s (major %d)", describe(model.SignatureFor(w)), major)
	}
	return s
}

func headName(h model.Head) string {
	if h == model.HeadNone {
		return "the last layer's activation"
	}
	return "the " + string(h) + " head"
}

// checkHeader requires Encode's IR version and its single standard opset.
func checkHeader(mp *onnxpb.ModelProto) error {
	if got := mp.GetIrVersion(); got != IRVersion {
		return invalid("IR version %d; this server accepts %d, the version it writes", got, IRVersion)
	}
	ops := mp.GetOpsetImport()
	if len(ops) != 1 || ops[0].GetDomain() != "" || ops[0].GetVersion() != Opset {
		var got []string
		for _, o := range ops {
			got = append(got, fmt.Sprintf("(%q, %d)", o.GetDomain(), o.GetVersion()))
		}
		return invalid("opset imports %v; this server accepts only the standard opset %d, the one it writes", got, Opset)
	}
	return nil
}

// knownFields names the ONNX fields the project's schema leaves out, for
// messages: a file that has one is refused in any case.
var knownFields = map[protoreflect.FullName]map[protowire.Number]string{
	"onnx.ModelProto": {20: "training_info", 25: "functions", 26: "configuration"},
	"onnx.GraphProto": {14: "quantization_annotation", 15: "sparse_initializer", 16: "metadata_props"},
	"onnx.NodeProto":  {8: "overload", 9: "metadata_props", 10: "device_configurations"},
	"onnx.AttributeProto": {6: "g (a subgraph)", 10: "tensors", 11: "graphs", 14: "tp",
		15: "type_protos", 22: "sparse_tensor", 23: "sparse_tensors"},
	"onnx.TensorProto": {3: "segment", 6: "string_data", 10: "double_data", 11: "uint64_data",
		13: "external_data", 14: "data_location", 16: "metadata_props"},
	"onnx.ValueInfoProto": {4: "metadata_props"},
	"onnx.TypeProto":      {4: "sequence_type", 5: "map_type", 6: "denotation", 8: "sparse_tensor_type", 9: "optional_type"},
}

// Field numbers of TensorProto's external data (ONNX's onnx.proto).
const (
	fieldExternalData = 13
	fieldDataLocation = 14
)

// checkUnknown refuses any field the project's ONNX schema does not declare,
// in m or any message it holds: Encode writes none, and ONNX Runtime acts on
// some (external data makes it open a file). where names m for messages.
func checkUnknown(m protoreflect.Message, where string) error {
	if u := m.GetUnknown(); len(u) > 0 {
		var nums []protowire.Number
		for len(u) > 0 {
			num, typ, n := protowire.ConsumeTag(u)
			if n < 0 {
				return invalid("%s has a malformed field", where)
			}
			u = u[n:]
			if n = protowire.ConsumeFieldValue(num, typ, u); n < 0 {
				return invalid("%s has a malformed field", where)
			}
			u = u[n:]
			nums = append(nums, num)
		}
		name := m.Descriptor().FullName()
		if name == "onnx.TensorProto" {
			for _, num := range nums {
				if num == fieldExternalData || num == fieldDataLocation {
					return invalid("%s uses external data; only embedded tensors are accepted", where)
				}
			}
		}
		field := fmt.Sprintf("field %d", nums[0])
		if s, ok := knownFields[name][nums[0]]; ok {
			field = fmt.Sprintf("field %d (%s)", nums[0], s)
		}
		return invalid("%s has %s, which this server does not write or accept", where, field)
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkUnknown(l.Get(i).Message(), describeField(where, fd, i, l.Get(i).Message()))
			}
		} else {
			err = checkUnknown(v.Message(), describeField(where, fd, -1, v.Message()))
		}
		return err == nil
	})
	return err
}

// describeField names the message in field fd (element i of a list, or -1)
// of the message at where: initializers, nodes and graph values by name.
func describeField(where string, fd protoreflect.FieldDescriptor, i int, m protoreflect.Message) string {
	named := func(kind string) string {
		if f := m.Descriptor().Fields().ByName("name"); f != nil && m.Has(f) {
			return fmt.Sprintf("%s %q", kind, m.Get(f).String())
		}
		return fmt.Sprintf("%s %d", kind, i)
	}
	switch fd.FullName() {
	case "onnx.ModelProto.graph":
		return "the graph"
	case "onnx.GraphProto.initializer":
		return named("initializer")
	case "onnx.GraphProto.node":
		return named("node")
	case "onnx.GraphProto.input":
		return named("graph input")
	case "onnx.GraphProto.output":
		return named("graph output")
	case "onnx.GraphProto.value_info":
		return named("value_info")
	case "onnx.NodeProto.attribute":
		return named("attribute") + " of " + where
	case "onnx.AttributeProto.t":
		return "the tensor of " + where
	}
	if i >= 0 {
		return fmt.Sprintf("%s of %s (element %d)", fd.Name(), where, i)
	}
	return fmt.Sprintf("%s of %s", fd.Name(), where)
}

// difference says where got, which decodes to a model, first differs from
// want, the file Encode writes for that model.
func difference(got, want *onnxpb.ModelProto) string {
	for _, f := range []struct {
		name string
		same bool
	}{
		{"producer_name", got.GetProducerName() == want.GetProducerName()},
		{"producer_version", got.ProducerVersion == nil},
		{"domain", got.Domain == nil},
		{"doc_string", got.GetDocString() == want.GetDocString()},
		{"metadata_props", len(got.GetMetadataProps()) == len(want.GetMetadataProps())},
	} {
		if !f.same {
			return fmt.Sprintf("the model's %s is not what this server writes", f.name)
		}
	}
	g, w := got.GetGraph(), want.GetGraph()
	if g.GetName() != w.GetName() || g.GetDocString() != w.GetDocString() {
		return "the graph's name or doc_string is not what this server writes"
	}
	if len(g.GetInput()) != len(w.GetInput()) || len(g.GetOutput()) != len(w.GetOutput()) {
		return fmt.Sprintf("the graph lists %d inputs and %d outputs; this server writes %d and %d (initializers are not graph inputs)",
			len(g.GetInput()), len(g.GetOutput()), len(w.GetInput()), len(w.GetOutput()))
	}
	for i := range g.GetInput() {
		if !proto.Equal(g.GetInput()[i], w.GetInput()[i]) {
			return fmt.Sprintf("graph input %q is not declared as this server writes it", g.GetInput()[i].GetName())
		}
	}
	for i := range g.GetOutput() {
		if !proto.Equal(g.GetOutput()[i], w.GetOutput()[i]) {
			return fmt.Sprintf("graph output %q is not declared as this server writes it", g.GetOutput()[i].GetName())
		}
	}
	if len(g.GetValueInfo()) > 0 {
		return "the graph has value_info entries; this server writes none"
	}
	if len(g.GetNode()) != len(w.GetNode()) {
		return fmt.Sprintf("the graph has %d nodes; this server writes %d for these layers", len(g.GetNode()), len(w.GetNode()))
	}
	for i, n := range g.GetNode() {
		if wn := w.GetNode()[i]; !proto.Equal(n, wn) {
			return fmt.Sprintf("node %d (%q) is not what this server writes there: %s(%v) → %v named %q, attributes %s",
				i, n.GetName(), wn.GetOpType(), wn.GetInput(), wn.GetOutput(), wn.GetName(), attrs(wn))
		}
	}
	if len(g.GetInitializer()) != len(w.GetInitializer()) {
		return fmt.Sprintf("the graph has %d initializers; this server writes %d for these layers", len(g.GetInitializer()), len(w.GetInitializer()))
	}
	for i, t := range g.GetInitializer() {
		wt := w.GetInitializer()[i]
		switch {
		case t.GetName() != wt.GetName():
			return fmt.Sprintf("initializer %d is %q; this server writes %q there", i, t.GetName(), wt.GetName())
		case t.RawData == nil:
			return fmt.Sprintf("initializer %q stores its elements outside raw_data; this server writes raw_data only", t.GetName())
		case !proto.Equal(t, wt):
			return fmt.Sprintf("initializer %q is not stored as this server writes it", t.GetName())
		}
	}
	return "the file's encoding (field order, repeated or default-valued fields) is not what this server writes"
}

func attrs(n *onnxpb.NodeProto) string {
	if len(n.GetAttribute()) == 0 {
		return "none"
	}
	s := ""
	for i, a := range n.GetAttribute() {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s=%d", a.GetName(), a.GetI())
	}
	return s
}
