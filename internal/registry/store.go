package registry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"recommendation-api/internal/model"
)

// Defaults for Options.
const (
	DefaultKeep    = 5
	DefaultTimeout = 2 * time.Second
)

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// Keep is how many versions retention keeps, newest by semver; the
	// active version is kept in addition when it is older. <= 0 means
	// DefaultKeep.
	Keep int
	// Timeout is how long Open waits for the file lock held by another
	// process. <= 0 means DefaultTimeout.
	Timeout time.Duration
	// Now stamps events; nil means time.Now.
	Now func() time.Time
}

// Store is a registry of model versions kept in one bbolt file. Create it
// with Open and release the file with Close.
type Store struct {
	db   *bbolt.DB
	path string
	keep int
	now  func() time.Time
}

// Bucket and key names; see doc.go for the layout.
var (
	bucketModels    = []byte("models")
	bucketManifests = []byte("manifests")
	bucketMeta      = []byte("meta")
	bucketHistory   = []byte("history")
	bucketRecords   = []byte("records")

	keyActive = []byte("active")
)

// versionKeyLen is the length of a version key: three big-endian uint32.
const versionKeyLen = 12

// Open opens the registry file at path, creating it and its buckets if
// needed. It waits at most opts.Timeout for the exclusive file lock; the
// error then names the path and wraps bbolt's ErrTimeout. Every error names
// the path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("registry: open %s: file is locked by another process (waited %s): %w", path, opts.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketModels, bucketManifests, bucketMeta, bucketHistory, bucketRecords} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("registry: open %s: %w", path, err)
	}
	return &Store{db: db, path: path, keep: opts.Keep, now: opts.Now}, nil
}

// Close waits for running transactions to finish and releases the file and
// its lock. Closing twice is harmless; any other method fails after Close.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("registry: close %s: %w", s.path, err)
	}
	return nil
}

// Check runs bbolt's consistency check of the whole file (page structure,
// free list, key order) and the registry's own invariants: every version has
// both bytes and a decodable manifest of the same version, the active
// version is registered, and every event decodes. It does not hash model
// bytes (Load does). It returns nil when the file is clean, otherwise all
// problems joined. Check holds the write lock while it runs.
func (s *Store) Check() error {
	// A writable transaction, rolled back: bbolt's check reads the free
	// list, which only a writer may do safely while others write.
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("registry: check %s: %w", s.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	var errs []error
	const maxErrs = 20
	for err := range tx.Check() {
		if len(errs) < maxErrs {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = checkInvariants(tx)
	}
	if len(errs) > 0 {
		return fmt.Errorf("registry: check %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// checkInvariants verifies the registry's own structure inside tx.
func checkInvariants(tx *bbolt.Tx) []error {
	var errs []error
	for _, name := range [][]byte{bucketModels, bucketManifests, bucketMeta, bucketHistory, bucketRecords} {
		if tx.Bucket(name) == nil {
			errs = append(errs, fmt.Errorf("bucket %s missing", name))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	models, manifests := tx.Bucket(bucketModels), tx.Bucket(bucketManifests)
	_ = models.ForEach(func(k, _ []byte) error {
		if manifests.Get(k) == nil {
			errs = append(errs, fmt.Errorf("model key %x has no manifest", k))
		}
		return nil
	})
	_ = manifests.ForEach(func(k, v []byte) error {
		if models.Get(k) == nil {
			errs = append(errs, fmt.Errorf("manifest key %x has no model bytes", k))
		}
		if _, err := decodeManifest(k, v); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if av := tx.Bucket(bucketMeta).Get(keyActive); av != nil {
		v, err := model.ParseVersion(string(av))
		if err != nil {
			errs = append(errs, fmt.Errorf("active version: %w", err))
		} else if models.Get(versionKey(v)) == nil {
			errs = append(errs, fmt.Errorf("active version %s is not registered", v))
		}
	}
	_ = tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil || len(k) != 8 || ev.Seq != binary.BigEndian.Uint64(k) {
			errs = append(errs, fmt.Errorf("history key %x: undecodable or mismatched event", k))
		}
		return nil
	})
	return errs
}

// checkVersion refuses versions that have no key (negative numbers, or
// beyond uint32) with an error wrapping model.ErrInvalidVersion.
func checkVersion(v model.Version) error {
	for _, n := range [3]int{v.Major, v.Minor, v.Patch} {
		if n < 0 || int64(n) > math.MaxUint32 {
			return fmt.Errorf("%w %s: numbers must be in [0, %d]", model.ErrInvalidVersion, v, uint32(math.MaxUint32))
		}
	}
	return nil
}

// versionKey returns v's 12-byte sortable key; v must pass checkVersion.
func versionKey(v model.Version) []byte {
	k := make([]byte, versionKeyLen)
	binary.BigEndian.PutUint32(k[0:], uint32(v.Major))
	binary.BigEndian.PutUint32(k[4:], uint32(v.Minor))
	binary.BigEndian.PutUint32(k[8:], uint32(v.Patch))
	return k
}

// keyVersion decodes a version key.
func keyVersion(k []byte) (model.Version, error) {
	if len(k) != versionKeyLen {
		return model.Version{}, fmt.Errorf("%w: version key %x has %d bytes; want %d", model.ErrInvalidModel, k, len(k), versionKeyLen)
	}
	return model.Version{
		Major: int(binary.BigEndian.Uint32(k[0:])),
		Minor: int(binary.BigEndian.Uint32(k[4:])),
		Patch: int(binary.BigEndian.Uint32(k[8:])),
	}, nil
}

// decodeManifest decodes a stored manifest and checks it is the version its
// key says. The result does not alias v.
func decodeManifest(k, v []byte) (*model.Manifest, error) {
	kv, err := keyVersion(k)
	if err != nil {
		return nil, err
	}
	var m model.Manifest
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("%w: stored manifest of %s does not decode: %v", model.ErrInvalidModel, kv, err)
	}
	if m.Version != kv {
		return nil, fmt.Errorf("%w: stored manifest under key %s says version %s", model.ErrInvalidModel, kv, m.Version)
	}
	return &m, nil
}

// activeIn returns the active version recorded in tx, and false if none.
func activeIn(tx *bbolt.Tx) (model.Version, bool, error) {
	b := tx.Bucket(bucketMeta).Get(keyActive)
	if b == nil {
		return model.Version{}, false, nil
	}
	v, err := model.ParseVersion(string(b))
	if err != nil {
		return model.Version{}, false, fmt.Errorf("stored active version: %w", err)
	}
	return v, true, nil
}
