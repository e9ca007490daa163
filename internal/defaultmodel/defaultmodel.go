//go:build !nodefaultmodel

// Package defaultmodel embeds the models the server serves on first start,
// when its registry is empty: one per major, v1.1.0 (major 1, 12 features,
// 48 h history) and v2.0.0 (major 2, 16 features, 7-day history), both
// trained on the training half of the Bitbrains GWA-T-12 Rnd traces mixed
// with simulated containers. They are made by the project's own pipeline
// with fixed seeds (scripts/make-default-model.sh, `make default-model`):
// the ONNX bytes are reproducible bit for bit. Building with the tag
// nodefaultmodel leaves them out (the script that makes them builds that
// way).
package defaultmodel

import (
	_ "embed"
	"fmt"

	"recommendation-api/internal/model"
)

var (
	//go:embed v1/predictor.onnx
	onnxV1 []byte
	//go:embed v1/manifest.json
	manifestV1 []byte
	//go:embed v2/predictor.onnx
	onnxV2 []byte
	//go:embed v2/manifest.json
	manifestV2 []byte
)

// embedded is every embedded model, in ascending major order.
var embedded = []struct {
	major          int
	onnx, manifest []byte
}{
	{1, onnxV1, manifestV1},
	{2, onnxV2, manifestV2},
}

// Load returns the embedded major-1 default model's bytes and manifest,
// verified against each other (sha256 and size).
func Load() ([]byte, *model.Manifest, error) { return LoadMajor(1) }

// LoadMajor returns the embedded default model of a major, its bytes
// verified against its manifest (sha256 and size) and the manifest's major
// checked.
func LoadMajor(major int) ([]byte, *model.Manifest, error) {
	for _, e := range embedded {
		if e.major != major {
			continue
		}
		m, err := model.ParseManifest(e.manifest)
		if err != nil {
			return nil, nil, fmt.Errorf("embedded default model of major %d: %w", major, err)
		}
		if err := m.VerifyBytes(e.onnx); err != nil {
			return nil, nil, fmt.Errorf("embedded default model of major %d: %w", major, err)
		}
		if m.Version.Major != major {
			return nil, nil, fmt.Errorf("embedded default model of major %d: manifest says %s", major, m.Version)
		}
		return append([]byte(nil), e.onnx...), m, nil
	}
	return nil, nil, fmt.Errorf("no embedded default model of major %d; embedded: majors %v", major, Majors())
}

// Majors returns the majors with an embedded default model, ascending.
func Majors() []int {
	out := make([]int, len(embedded))
	for i, e := range embedded {
		out[i] = e.major
	}
	return out
}

// All returns a loader for the embedded default model of every major, in
// ascending major order: what the server registers and activates on an
// empty registry (one active version per major).
func All() []func() ([]byte, *model.Manifest, error) {
	out := make([]func() ([]byte, *model.Manifest, error), 0, len(embedded))
	for _, e := range embedded {
		major := e.major
		out = append(out, func() ([]byte, *model.Manifest, error) { return LoadMajor(major) })
	}
	return out
}
