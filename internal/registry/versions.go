package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// Entry is one registered version as List reports it (model.Entry).
type Entry = model.Entry

// RegisterOptions are who registers, why, and which versions the caller
// still serves from memory (model.RegisterOptions).
type RegisterOptions = model.RegisterOptions

// Store is the single-replica model.Registry.
var _ model.Registry = (*Store)(nil)

// Register is RegisterWith with only an actor.
func (s *Store) Register(b []byte, m *model.Manifest, actor string) ([]model.Version, error) {
	return s.RegisterWith(b, m, RegisterOptions{Actor: actor})
}

// RegisterWith stores the model bytes b and their manifest m as a new
// version, recorded as registered by opts.Actor for opts.Reason. It first
// checks m.Validate (errors wrap model.ErrInvalidModel) and m.VerifyBytes(b)
// (model.ErrChecksumMismatch). A version already registered is refused with
// model.ErrVersionExists, and one older than every version retention keeps
// for its major with model.ErrVersionTooOld; nothing changes then.
//
// One transaction writes the bytes, the manifest, a "register" event and the
// retention of the version's major: the newest Keep versions of the major
// stay, and so do the protected ones (the active version of every major,
// each major's rollback target, and opts.Protect); each other version of
// the major is deleted with a "prune" event and leaves the rollback index.
// RegisterWith returns the pruned versions, ascending; never m.Version.
// b must not be modified while it runs.
func (s *Store) RegisterWith(b []byte, m *model.Manifest, opts RegisterOptions) (pruned []model.Version, err error) {
	if m == nil {
		return nil, fmt.Errorf("registry: register: %w: nil manifest", model.ErrInvalidModel)
	}
	v := m.Version
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", v, err)
	}
	if err := checkVersion(v); err != nil {
		return nil, fmt.Errorf("registry: register: %w", err)
	}
	if err := m.VerifyBytes(b); err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", v, err)
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("registry: register %s: %w: manifest does not encode: %v", v, model.ErrInvalidModel, err)
	}
	key := versionKey(v)
	now := s.now().UTC().Round(0)

	err = s.db.Update(func(tx *bbolt.Tx) error {
		pruned = nil
		models, manifests := tx.Bucket(bucketModels), tx.Bucket(bucketManifests)
		if models.Get(key) != nil || manifests.Get(key) != nil {
			return model.ErrVersionExists
		}
		same := majorVersions(tx, v.Major)
		if len(same) >= s.keep && v.Compare(same[len(same)-s.keep]) < 0 {
			msg := fmt.Sprintf("register %s: retention keeps the newest %d versions of major %d (the oldest kept is %s), so %s would be deleted at once; register a newer version",
				v, s.keep, v.Major, same[len(same)-s.keep], v)
			return model.Public(fmt.Errorf("%w: %s", model.ErrVersionTooOld, msg), msg)
		}
		if err := models.Put(key, b); err != nil {
			return err
		}
		if err := manifests.Put(key, mj); err != nil {
			return err
		}
		ev := &Event{Time: now, Action: ActionRegister, Major: v.Major, To: v.String(), Actor: opts.Actor, Reason: opts.Reason}
		if err := s.appendEvent(tx, ev); err != nil {
			return err
		}
		var err error
		pruned, err = s.prune(tx, v.Major, now, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", v, storageError(s.path, err))
	}
	return pruned, nil
}

// majorVersions returns the registered versions of major in tx, ascending.
func majorVersions(tx *bbolt.Tx, major int) []model.Version {
	var out []model.Version
	c := tx.Bucket(bucketModels).Cursor()
	prefix := majorKey(major)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if v, err := keyVersion(k); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// protectedIn returns the versions retention must keep: every major's
// active version and rollback target, plus extra.
func protectedIn(tx *bbolt.Tx, extra []model.Version) (map[model.Version]string, error) {
	p := map[model.Version]string{}
	for _, v := range extra {
		p[v] = "loaded"
	}
	err := tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
		major := int(binary.BigEndian.Uint32(k))
		cur, ok, err := activeIn(tx, major)
		if err != nil || !ok {
			return err
		}
		p[cur] = "active"
		t, ok, err := rollbackTargetIn(tx, major)
		if err != nil {
			return err
		}
		if ok {
			p[t] = "rollback target"
		}
		return nil
	})
	return p, err
}

// prune deletes, inside tx, the versions of major beyond the newest s.keep
// that are not protected, appending a "prune" event for each and removing
// them from the rollback index, and returns them ascending.
func (s *Store) prune(tx *bbolt.Tx, major int, now time.Time, opts RegisterOptions) ([]model.Version, error) {
	same := majorVersions(tx, major)
	if len(same) <= s.keep {
		return nil, nil
	}
	protected, err := protectedIn(tx, opts.Protect)
	if err != nil {
		return nil, err
	}
	models, manifests := tx.Bucket(bucketModels), tx.Bucket(bucketManifests)
	var pruned []model.Version
	for _, v := range same[:len(same)-s.keep] {
		if _, ok := protected[v]; ok {
			continue
		}
		k := versionKey(v)
		if err := models.Delete(k); err != nil {
			return nil, err
		}
		if err := manifests.Delete(k); err != nil {
			return nil, err
		}
		ev := &Event{Time: now, Action: ActionPrune, Major: major, From: v.String(), Actor: opts.Actor,
			Reason: fmt.Sprintf("retention keeps the newest %d versions of each major, their active versions, rollback targets and loaded versions", s.keep)}
		if err := s.appendEvent(tx, ev); err != nil {
			return nil, err
		}
		pruned = append(pruned, v)
	}
	if len(pruned) > 0 {
		l, err := lineageIn(tx, major)
		if err != nil {
			return nil, err
		}
		l.Drop(func(v string) bool { return !registeredIn(tx, v) })
		if err := putLineage(tx, major, l); err != nil {
			return nil, err
		}
	}
	return pruned, nil
}

// Manifest returns the manifest of version v, or an error wrapping
// model.ErrVersionNotFound naming v.
func (s *Store) Manifest(v model.Version) (*model.Manifest, error) {
	if err := checkVersion(v); err != nil {
		return nil, fmt.Errorf("registry: manifest: %w", err)
	}
	var m *model.Manifest
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		m, err = manifestIn(tx, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registry: manifest %s: %w", v, err)
	}
	return m, nil
}

// manifestIn reads v's manifest inside tx.
func manifestIn(tx *bbolt.Tx, v model.Version) (*model.Manifest, error) {
	k := versionKey(v)
	mj := tx.Bucket(bucketManifests).Get(k)
	if mj == nil {
		return nil, model.ErrVersionNotFound
	}
	return decodeManifest(k, mj)
}

// Load returns a copy of the bytes of version v and its manifest. It hashes
// the bytes on every call: when they do not match the manifest's sha256 and
// size it returns an error wrapping model.ErrChecksumMismatch naming v (and
// no bytes). An unknown version gives model.ErrVersionNotFound.
func (s *Store) Load(v model.Version) ([]byte, *model.Manifest, error) {
	if err := checkVersion(v); err != nil {
		return nil, nil, fmt.Errorf("registry: load: %w", err)
	}
	var (
		b []byte
		m *model.Manifest
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if m, err = manifestIn(tx, v); err != nil {
			return err
		}
		raw := tx.Bucket(bucketModels).Get(versionKey(v))
		if raw == nil {
			return fmt.Errorf("%w: a manifest but no bytes", model.ErrVersionNotFound)
		}
		b = bytes.Clone(raw) // raw points into the mmap, valid only in tx
		return nil
	})
	if err == nil {
		err = m.VerifyBytes(b)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("registry: load %s: %w", v, err)
	}
	return b, m, nil
}

// List returns every registered version, ascending by semver, marking the
// active one of each major.
func (s *Store) List() ([]Entry, error) {
	var list []Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			m, err := decodeManifest(k, v)
			if err != nil {
				return err
			}
			av, hasActive, err := activeIn(tx, m.Version.Major)
			if err != nil {
				return err
			}
			list = append(list, Entry{Manifest: m, Active: hasActive && m.Version == av})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	return list, nil
}

// Newest returns the highest registered version, or an error wrapping
// model.ErrVersionNotFound when there is none.
func (s *Store) Newest() (model.Version, error) {
	var v model.Version
	err := s.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketManifests).Cursor().Last()
		if k == nil {
			return fmt.Errorf("%w: the registry is empty", model.ErrVersionNotFound)
		}
		var err error
		v, err = keyVersion(k)
		return err
	})
	if err != nil {
		return model.Version{}, fmt.Errorf("registry: newest: %w", err)
	}
	return v, nil
}
