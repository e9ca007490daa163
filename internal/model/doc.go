// Package model holds the domain types every other package shares: the
// semantic Version of a model, its Manifest, the feature and output
// specifications with their normalization, the int8 quantized MLP with its
// pure-Go forward pass, and the sentinel errors callers branch on.
//
// It imports nothing beyond the standard library, so the technology adapters
// (bbolt in registry, ONNX Runtime in serving, gRPC in transport) can all
// depend on it without depending on each other.
package model
