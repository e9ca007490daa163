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
