// Package trainer makes models: it simulates container usage for five
// workload types, computes features from a history window and labels from
// the following window, trains the 12→32→16→5 network in float64 with Adam,
// quantizes its weights to int8 per output channel, calibrates the limits so
// few rows fall below the usage they promise, evaluates against a VPA-style
// baseline on held-out data, and reads and writes the pipeline's model
// directory (predictor_v*.onnx, predictor.onnx, manifest.json).
//
// Training is deterministic for a seed: batches are split into a fixed
// number of shards whose gradients are summed in order, whatever the number
// of CPUs. The ONNX encoding lives in package onnxfile; ONNX Runtime lives
// in package serving and is never imported here.
package trainer
