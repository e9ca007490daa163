// Package serving runs model versions in ONNX Runtime and publishes the one
// that answers Predict. It is the only package that imports onnxruntime_go.
//
// A Manager holds the loaded versions. Load verifies a version before it can
// serve: sha256 against the manifest, an ONNX Runtime session, the I/O
// signature, and the manifest's golden rows; each failure is a *StepError
// naming the step. Activate publishes a loaded version with an atomic
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
