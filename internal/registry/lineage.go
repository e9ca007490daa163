package registry

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// lineage is one major's rollback index (model.Lineage: the rules are the
// domain's, shared with the etcd store). It is kept up to date by every
// activation in the same transaction, so a rollback target is one read
// whatever the history's length, and trimming the history never loses one.
type lineage = model.Lineage

// lineageIn reads major's rollback index in tx (empty when none).
func lineageIn(tx *bbolt.Tx, major int) (*lineage, error) {
	l := &lineage{}
	b := tx.Bucket(bucketLineage).Get(majorKey(major))
	if b == nil {
		return l, nil
	}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("rollback index of major %d does not decode: %w", major, err)
	}
	return l, nil
}

// putLineage stores major's rollback index in tx.
func putLineage(tx *bbolt.Tx, major int, l *lineage) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketLineage).Put(majorKey(major), b)
}

// rollbackTargetIn returns the version a rollback of major goes to, and
// false when there is none.
func rollbackTargetIn(tx *bbolt.Tx, major int) (model.Version, bool, error) {
	cur, ok, err := activeIn(tx, major)
	if err != nil || !ok {
		return model.Version{}, false, err
	}
	l, err := lineageIn(tx, major)
	if err != nil {
		return model.Version{}, false, err
	}
	t := l.Target(cur.String())
	if t == "" {
		return model.Version{}, false, nil
	}
	v, err := model.ParseVersion(t)
	if err != nil {
		return model.Version{}, false, fmt.Errorf("rollback index of major %d: %w", major, err)
	}
	return v, true, nil
}
