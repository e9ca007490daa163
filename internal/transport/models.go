package transport

import "recommendation-api/internal/model"

// Models hands out leases on loaded model versions: one active version per
// major (I/O format), and any loaded version by pin.
type Models interface {
	// Acquire leases a pinned loaded version ("v1.2.3"), or with "" the
	// active version of the lowest major that has one.
	// Errors: model.ErrNoActiveVersion, model.ErrVersionNotFound, model.ErrInvalidVersion.
	Acquire(version string) (Lease, error)
	// AcquireMajor leases the active version of major.
	// Errors: model.ErrNoActiveVersion.
	AcquireMajor(major int) (Lease, error)
	// ActiveManifests returns the active version of every major, ascending
	// by major: what Predict routes among.
	ActiveManifests() []*model.Manifest
	// Ready reports whether a version is being served.
	Ready() bool
}

// Lease is one in-flight use of a loaded version; Release exactly once.
type Lease interface {
	Manifest() *model.Manifest
	// Run runs n normalized rows (n × the manifest's feature count) and
	// returns n×5.
	Run(x []float32, n int) ([]float32, error)
	Release()
}

// Manager is a model manager whose leases have a concrete type L (such as
// *serving.Manager with *serving.Lease).
type Manager[L Lease] interface {
	Acquire(version string) (L, error)
	AcquireMajor(major int) (L, error)
	ActiveManifests() []*model.Manifest
	Ready() bool
}

// ModelsOf adapts a Manager with a concrete lease type to Models.
func ModelsOf[L Lease](m Manager[L]) Models { return adapted[L]{m} }

type adapted[L Lease] struct{ m Manager[L] }

func (a adapted[L]) Acquire(version string) (Lease, error) {
	l, err := a.m.Acquire(version)
	if err != nil {
		return nil, err // not a typed nil inside a non-nil interface
	}
	return l, nil
}

func (a adapted[L]) AcquireMajor(major int) (Lease, error) {
	l, err := a.m.AcquireMajor(major)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (a adapted[L]) ActiveManifests() []*model.Manifest { return a.m.ActiveManifests() }

func (a adapted[L]) Ready() bool { return a.m.Ready() }
