// Package onnxfile writes a model.QuantizedMLP as an ONNX file and reads it
// back, with no dependency on ONNX Runtime: the bytes are built and parsed with
// the project-owned subset of ONNX's schema in api/onnx (package onnxpb).
//
// # File layout
//
// Encode writes IR version 8 with the standard operator set 13 (Debian's
// python3-onnx 1.12 checks IR ≤ 8, opset ≤ 17; per-axis DequantizeLinear needs
// opset ≥ 13), producer_name "recommendation-api", the model's semantic
// version in metadata_props["version"] ("v1.2.3") and, as a number, in
// model_version (major·1e6 + minor·1e3 + patch).
//
// The graph has one input and one output, both float32 with a symbolic batch
// dimension "N":
//
//	features        [N, 12]  (model.InputName)
//	recommendations [N, 5]   (model.OutputName)
//
// Each dense layer i (counted from 0) is four initializers
//
//	layer{i}.weight_q          INT8  [In, Out]  raw_data, row-major: Q[i*Out+o]
//	layer{i}.weight_scale      FLOAT [Out]      one scale per output channel
//	layer{i}.weight_zero_point INT8  [Out]      all zero (symmetric)
//	layer{i}.bias              FLOAT [Out]
//
// and three or four nodes
//
//	DequantizeLinear(weight_q, weight_scale, weight_zero_point; axis=1) → layer{i}.weight
//	MatMul(x, layer{i}.weight)                                         → layer{i}.matmul
//	Add(layer{i}.matmul, layer{i}.bias)                                → layer{i}.add
//	Relu or Sigmoid(layer{i}.add)                                      → layer{i}.output
//
// The activation node is left out for model.ActNone. The last layer's last
// node writes model.OutputName. For the 12-32-16-5 network (1,029 parameters)
// the file is about 2 KB.
//
// # Why weight-only int8
//
// Only the weights are int8 (see model.DefaultQuantization): DequantizeLinear
// turns them back into float32 and MatMul, Add and the activations run in
// float32. Quantizing the activations too (QLinearMatMul, or
// DynamicQuantizeLinear + MatMulInteger) would pick an activation scale either
// from a calibration set or from each batch; the dynamic kind makes a row's
// answer depend on which other rows share its batch, which a recommendation
// API must not do. With weight-only int8 every row's answer is a function of
// that row alone, and model.QuantizedMLP.Forward, which computes the same
// float32 arithmetic, agrees with ONNX Runtime up to summation order.
//
// # Reading
//
// Decode reads this layout (the node pattern, the initializers' types and
// shapes, a zero zero point) and returns errors wrapping
// model.ErrInvalidModel that say what was wrong; it never panics on arbitrary
// bytes (FuzzDecode). It ignores what it does not need. Signature reads only
// the graph's inputs and outputs and works on any ONNX file whose I/O are
// tensors.
//
// # Checking before ONNX Runtime
//
// Nothing uploaded is trusted. Check is the gate every model passes before
// ONNX Runtime sees it (serving.NewSession calls it): it accepts a file only
// if it is byte for byte what Encode writes for the model it decodes to, at
// most MaxLayers layers of at most MaxWidth outputs. So a checked file has no
// external data (ONNX Runtime opens the file an initializer's
// external_data names, relative to its working directory, "../" included),
// no field the project's schema leaves out (functions, subgraphs, sparse
// initializers, training info), no operator, node, initializer, opset or IR
// version Encode does not write, and computes exactly what the pure-Go
// forward pass of its decoded weights computes. Refusals are
// model.Publicer errors: "model graph: <reason>", naming the part of the
// file and what is accepted, never anything computed from it.
// FuzzCheck runs Check on mutated copies of the default model (seed corpus
// in testdata/fuzz/FuzzCheck, written by TestTestdata -update) in a
// directory watched with inotify: it never panics and never opens a file.
//
// # Tests
//
// TestONNXChecker checks an encoded file with the onnx package's own checker
// (full_check, i.e. with strict shape inference), run by /usr/bin/python3
// from Debian's python3-onnx, which `make deps` installs. Without it the test
// fails, saying so; set RECO_SKIP_ONNX_CHECKER=1 to skip it instead. Fuzz
// with a short minimization time, since minimizing a 3 KB input otherwise
// looks like a hang:
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 60s -fuzzminimizetime 2s ./internal/onnxfile/
//	go test -run '^$' -fuzz FuzzCheck -fuzztime 60s -fuzzminimizetime 2s ./internal/onnxfile/
package onnxfile
