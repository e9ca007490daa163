// Package model holds the domain types every other package shares: the
// semantic Version of a model, its Manifest, the feature and output
// specifications with their normalization, the int8 quantized MLP with its
// pure-Go forward pass, the sentinel errors callers branch on, and Public,
// which gives an error a client-facing message apart from its internal
// chain (the transport answers with the one and logs the other).
//
// It imports nothing beyond the standard library, so the technology adapters
// (bbolt in registry, ONNX Runtime in serving, gRPC in transport) can all
// depend on it without depending on each other.
package model
