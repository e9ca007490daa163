//go:build !nodefaultmodel

// Package defaultmodel embeds the model the server serves on first start,
// when its registry is empty. It is made by the project's own pipeline with
// fixed seeds (scripts/make-default-model.sh, `make default-model`): the
// ONNX bytes are reproducible bit for bit. Building with the tag
// nodefaultmodel leaves it out (the script that makes it builds that way).
package defaultmodel

import (
	_ "embed"
	"fmt"

	"recommendation-api/internal/model"
)

var (
	//go:embed predictor.onnx
	onnxBytes []byte
	//go:embed manifest.json
	manifestJSON []byte
)

// Load returns the embedded model bytes and their manifest, verified against
// each other (sha256 and size).
func Load() ([]byte, *model.Manifest, error) {
	m, err := model.ParseManifest(manifestJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded default model: %w", err)
	}
	if err := m.VerifyBytes(onnxBytes); err != nil {
		return nil, nil, fmt.Errorf("embedded default model: %w", err)
	}
	return append([]byte(nil), onnxBytes...), m, nil
}

// All returns a loader for the embedded default model of every major, in
// ascending major order: what the server registers and activates on an
// empty registry (one active version per major).
func All() []func() ([]byte, *model.Manifest, error) {
	return []func() ([]byte, *model.Manifest, error){Load}
}
