// Package serving runs model versions in ONNX Runtime and publishes the one
// that answers Predict. It is the only package that imports onnxruntime_go.
//
// Nothing uploaded is trusted: NewSession hands ONNX Runtime only bytes
// that onnxfile.Check accepted (exactly what the project's encoder writes, so
// no external data and no path ever opened because of them). A Manager holds
// the loaded versions. Load verifies a version before it can serve: sha256
// against the manifest, the checked graph, the version in the bytes against
// the manifest's, the manifest's golden rows against the server's own pure-Go
// forward pass of the decoded weights within model.GoldenTolerance, an ONNX
// Runtime session with the served I/O signature, and ONNX Runtime's answers
// against the pure-Go pass; each failure is a *StepError naming the step,
// whose public message (model.PublicMessage) carries no computed value and
// none of ONNX Runtime's own text. Activate publishes a loaded version with an atomic
// pointer swap. Acquire hands out a Lease with an atomic load and a
// reference count — no lock on the Predict path — and a session is
// destroyed only when its last lease is released after it was unloaded;
// a freed session is never revived. Lease.Run counts calls and failures
// (run errors, NaN or out-of-range outputs) per version, which release
// control watches during probation.
//
// Caveats: InitRuntime must be called once per process before any session
// is made (it finds libonnxruntime via $ONNXRUNTIME_LIB, .tools/lib or the
// system); sessions use one intra-op thread by default, because gRPC already
// runs calls concurrently on a 2-core box.
package serving
