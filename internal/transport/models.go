package transport

import "recommendation-api/internal/model"

// Models hands out leases on loaded model versions.
type Models interface {
	// Acquire leases the active version ("" ) or a pinned loaded version ("v1.2.3").
	// Errors: model.ErrNoActiveVersion, model.ErrVersionNotFound, model.ErrInvalidVersion.
	Acquire(version string) (Lease, error)
	// Ready reports whether a version is being served.
	Ready() bool
}

// Lease is one in-flight use of a loaded version; Release exactly once.
type Lease interface {
	Manifest() *model.Manifest
	Run(x []float32, n int) ([]float32, error) // x is n×12 normalized; returns n×5
	Release()
}

// ModelsOf adapts a model manager whose Acquire returns a concrete lease
// type (such as *serving.Manager) to Models.
func ModelsOf[L Lease](acquire func(version string) (L, error), ready func() bool) Models {
	return adapted[L]{acquire, ready}
}

type adapted[L Lease] struct {
	acquire func(string) (L, error)
	ready   func() bool
}

func (a adapted[L]) Acquire(version string) (Lease, error) {
	l, err := a.acquire(version)
	if err != nil {
		return nil, err // not a typed nil inside a non-nil interface
	}
	return l, nil
}

func (a adapted[L]) Ready() bool { return a.ready() }
