package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// Entry is one registered version as List reports it (model.Entry).
type Entry = model.Entry

// Register stores the model bytes b and their manifest m as a new version,
// recorded as registered by actor. It first checks m.Validate (errors wrap
// model.ErrInvalidModel) and m.VerifyBytes(b) (model.ErrChecksumMismatch).
// A version already registered is refused with model.ErrVersionExists and
// nothing changes; any other version, older or newer, is accepted.
//
// One transaction writes the bytes, the manifest, a "register" event and the
// retention: the newest Keep versions by semver stay, and so does the active
// version when it is older than those; each other version is deleted with a
// "prune" event. Register returns the pruned versions, ascending; they may
// include m.Version itself when it is older than the Keep newest (see the
// package documentation). b must not be modified while Register runs.
func (s *Store) Register(b []byte, m *model.Manifest, actor string) (pruned []model.Version, err error) {
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
		if err := models.Put(key, b); err != nil {
			return err
		}
		if err := manifests.Put(key, mj); err != nil {
			return err
		}
		if err := appendEvent(tx, &Event{Time: now, Action: ActionRegister, To: v.String(), Actor: actor}); err != nil {
			return err
		}
		var err error
		pruned, err = s.prune(tx, now, actor)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", v, err)
	}
	return pruned, nil
}

// prune deletes, inside tx, the versions beyond the newest s.keep except
// the active one, appending a "prune" event for each, and returns them
// ascending.
func (s *Store) prune(tx *bbolt.Tx, now time.Time, actor string) ([]model.Version, error) {
	models, manifests := tx.Bucket(bucketModels), tx.Bucket(bucketManifests)
	var keys [][]byte
	c := models.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k)) // the deletes below may move k
	}
	if len(keys) <= s.keep {
		return nil, nil
	}
	var activeKey []byte
	if av, ok, err := activeIn(tx); err != nil {
		return nil, err
	} else if ok {
		activeKey = versionKey(av)
	}
	var pruned []model.Version
	for _, k := range keys[:len(keys)-s.keep] {
		if bytes.Equal(k, activeKey) {
			continue
		}
		v, err := keyVersion(k)
		if err != nil {
			return nil, err
		}
		if err := models.Delete(k); err != nil {
			return nil, err
		}
		if err := manifests.Delete(k); err != nil {
			return nil, err
		}
		ev := &Event{Time: now, Action: ActionPrune, From: v.String(), Actor: actor,
			Reason: fmt.Sprintf("retention keeps the newest %d versions and the active one", s.keep)}
		if err := appendEvent(tx, ev); err != nil {
			return nil, err
		}
		pruned = append(pruned, v)
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
// active one.
func (s *Store) List() ([]Entry, error) {
	var list []Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		av, hasActive, err := activeIn(tx)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			m, err := decodeManifest(k, v)
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
