package model

import "errors"

// Registry is the durable store of model versions as release control, the
// training jobs and the transport use it: model bytes with their
// manifests, one active version per major, a rollback index per major,
// retention per major, a bounded history of every change, and small
// records of later features. Two implementations exist: one bbolt file for
// a single replica (package registry) and etcd for several replicas sharing
// one registry (package etcdstore). Both pass the same contract tests
// (package registry/registrytest), so a caller cannot tell them apart but
// for their caveats.
//
// Every method is safe for concurrent use. Errors wrap the sentinels of
// this package (ErrVersionNotFound, ErrVersionExists, ErrChecksumMismatch,
// ErrInvalidModel, ErrInvalidVersion, ErrVersionTooOld, ErrActiveMismatch,
// ErrAlreadyActive, ErrNoActiveVersion, ErrInvalidInput, ErrRecordNotFound,
// ErrStorageFull, ErrStorageReadOnly, ErrConcurrentChange) and name the
// offending version, bucket or key.
type Registry interface {
	// Register is RegisterWith with only an actor.
	Register(b []byte, m *Manifest, actor string) (pruned []Version, err error)
	// RegisterWith stores bytes b and manifest m as a new version after
	// m.Validate (ErrInvalidModel) and m.VerifyBytes(b)
	// (ErrChecksumMismatch). An existing version is refused with
	// ErrVersionExists, one older than every version its major keeps with
	// ErrVersionTooOld. The same change records a "register" event and
	// applies retention to the version's major: the newest Keep versions
	// stay, and so do the active version and rollback target of every
	// major and opts.Protect; each other version is deleted with a "prune"
	// event. It returns the pruned versions, ascending.
	RegisterWith(b []byte, m *Manifest, opts RegisterOptions) (pruned []Version, err error)
	// Manifest returns v's manifest (ErrVersionNotFound).
	Manifest(v Version) (*Manifest, error)
	// Load returns a copy of v's bytes and its manifest, hashing the bytes
	// on every call: a mismatch gives ErrChecksumMismatch and no bytes.
	Load(v Version) ([]byte, *Manifest, error)
	// List returns every registered version ascending by semver, marking
	// each major's active one.
	List() ([]Entry, error)
	// Newest returns the highest registered version (ErrVersionNotFound
	// when there is none).
	Newest() (Version, error)
	// Active returns major's active version (ErrNoActiveVersion).
	Active(major int) (Version, error)
	// Actives returns the active version of every major that has one.
	Actives() (map[int]Version, error)
	// SetActive is SetActiveIf without an expectation.
	SetActive(to Version, ev Event) (Event, error)
	// SetActiveIf makes to the active version of its major, updates the
	// major's rollback index and appends ev, in one change. ev.Action is
	// "activate" (when empty), "rollback" or "auto_rollback"; the store
	// fills Major, From, To, Seq and a zero Time. With expected not nil the
	// change is made only when *expected is active (the zero Version:
	// none), else ErrActiveMismatch naming the actual one. Activating the
	// active version changes nothing: ErrAlreadyActive. An unregistered
	// version: ErrVersionNotFound.
	SetActiveIf(to Version, ev Event, expected *Version) (Event, error)
	// History returns every kept event, oldest first.
	History() ([]Event, error)
	// HistoryPage returns one page of the history, newest first, and the
	// next page's token ("" after the last); a malformed query gives
	// ErrInvalidInput.
	HistoryPage(q HistoryQuery) ([]Event, string, error)
	// PreviousActive returns where a rollback of major goes, from the
	// rollback index: ErrVersionNotFound when nowhere (also wrapping
	// ErrNoActiveVersion when nothing of the major is active).
	PreviousActive(major int) (Version, error)
	// PutRecord stores value under key in record bucket bucket, replacing
	// any previous value; bucket and key must not be empty.
	PutRecord(bucket, key string, value []byte) error
	// GetRecord returns a copy of a record (ErrRecordNotFound).
	GetRecord(bucket, key string) ([]byte, error)
	// ListRecords returns copies of a bucket's values in key (byte) order;
	// none when the bucket does not exist.
	ListRecords(bucket string) ([][]byte, error)
	// Check verifies the store's structure and the registry's invariants;
	// nil when clean, otherwise all problems joined.
	Check() error
	// Close releases the store; other methods fail afterwards.
	Close() error
}

// RegisterOptions are who registers, why, and which versions the caller
// still serves from memory (retention keeps them).
type RegisterOptions struct {
	Actor, Reason string
	// Protect lists versions retention must not delete in addition to the
	// ones the store protects itself: typically those a loaded session
	// serves.
	Protect []Version
}

// Sentinels of the registry.
var (
	// ErrRecordNotFound: no record has that bucket and key.
	ErrRecordNotFound = errors.New("record not found")
	// ErrConcurrentChange: other replicas changed the registry under a
	// change every time it was tried, so it was given up; nothing changed
	// and the caller may retry.
	ErrConcurrentChange = errors.New("registry changed concurrently")
)

// MaxLineage bounds a major's rollback index: successive rollbacks can
// walk back at most this many activations.
const MaxLineage = 64

// Lineage is one major's rollback index: the versions that were active, in
// the order a rollback walks them back, the current one on top. A registry
// updates it in the same change as every activation, so a rollback target
// is one read whatever the history's length, and trimming the history
// never loses one.
//
// An activation pushes its version. A rollback drops the version rolled
// back from, then drops down to its target when the target is in the index
// (or pushes it when it is not). So after activating v1, v2, v3 and rolling
// back to v2, the next rollback goes to v1, not v3: successive rollbacks
// walk back instead of bouncing between two versions. Versions retention
// deletes leave the index with them (Drop).
type Lineage struct {
	Stack []string `json:"stack"` // version strings, oldest first
}

// Record applies one activation event (action, from, to as in Event).
func (l *Lineage) Record(action, from, to string) {
	switch action {
	case ActionActivate:
		if n := len(l.Stack); n == 0 || l.Stack[n-1] != to {
			l.Stack = append(l.Stack, to)
		}
	case ActionRollback, ActionAutoRollback:
		if n := len(l.Stack); n > 0 && l.Stack[n-1] == from {
			l.Stack = l.Stack[:n-1]
		}
		i := len(l.Stack) - 1
		for ; i >= 0 && l.Stack[i] != to; i-- {
		}
		if i >= 0 {
			l.Stack = l.Stack[:i+1]
		} else {
			l.Stack = append(l.Stack, to)
		}
	}
	if len(l.Stack) > MaxLineage {
		l.Stack = append([]string(nil), l.Stack[len(l.Stack)-MaxLineage:]...)
	}
}

// Drop removes the versions gone reports, and the repeats that leaves.
func (l *Lineage) Drop(gone func(v string) bool) {
	out := l.Stack[:0]
	for _, v := range l.Stack {
		if gone(v) || (len(out) > 0 && out[len(out)-1] == v) {
			continue
		}
		out = append(out, v)
	}
	l.Stack = out
}

// Target returns the version a rollback from cur goes to: the highest
// entry that is not cur; "" when there is none.
func (l *Lineage) Target(cur string) string {
	for i := len(l.Stack) - 1; i >= 0; i-- {
		if l.Stack[i] != cur {
			return l.Stack[i]
		}
	}
	return ""
}
