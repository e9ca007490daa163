//go:build nodefaultmodel

package defaultmodel

import (
	"errors"
	"fmt"

	"recommendation-api/internal/model"
)

var errNone = errors.New("built with -tags nodefaultmodel: no embedded default model; run make default-model")

// Load reports that this binary was built without the default models.
func Load() ([]byte, *model.Manifest, error) { return LoadMajor(1) }

// LoadMajor reports that this binary was built without the default models.
func LoadMajor(major int) ([]byte, *model.Manifest, error) {
	return nil, nil, fmt.Errorf("default model of major %d: %w", major, errNone)
}

// Majors returns no majors: this binary embeds no default model.
func Majors() []int { return nil }

// All reports, through its one loader, that this binary was built without
// the default models.
func All() []func() ([]byte, *model.Manifest, error) {
	return []func() ([]byte, *model.Manifest, error){Load}
}
