//go:build nodefaultmodel

package defaultmodel

import (
	"errors"

	"recommendation-api/internal/model"
)

// Load reports that this binary was built without the default model.
func Load() ([]byte, *model.Manifest, error) {
	return nil, nil, errors.New("built with -tags nodefaultmodel: no embedded default model; run make default-model")
}

// All reports, through its one loader, that this binary was built without
// the default models.
func All() []func() ([]byte, *model.Manifest, error) {
	return []func() ([]byte, *model.Manifest, error){Load}
}
