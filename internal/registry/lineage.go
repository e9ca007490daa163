package registry

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// maxLineage bounds a major's rollback index: successive rollbacks can walk
// back at most this many activations.
const maxLineage = 64

// lineage is one major's rollback index: the versions that were active, in
// the order a rollback walks them back, the current one on top. It is kept
// up to date by every activation (the same transaction), so a rollback
// target is one read, whatever the history's length, and trimming the
// history never loses one.
//
// An activation pushes its version. A rollback drops the version rolled
// back from, then drops down to its target when the target is in the index
// (or pushes it when it is not). So after activating v1, v2, v3 and rolling
// back to v2, the target of the next rollback is v1, not v3: successive
// rollbacks walk back instead of bouncing between two versions. Versions
// retention deletes leave the index with them.
type lineage struct {
	Stack []string `json:"stack"` // oldest first
}

// record applies one activation event.
func (l *lineage) record(action, from, to string) {
	switch action {
	case model.ActionActivate:
		if n := len(l.Stack); n == 0 || l.Stack[n-1] != to {
			l.Stack = append(l.Stack, to)
		}
	case model.ActionRollback, model.ActionAutoRollback:
		if n := len(l.Stack); n > 0 && l.Stack[n-1] == from {
			l.Stack = l.Stack[:n-1]
		}
		if i := lastIndex(l.Stack, to); i >= 0 {
			l.Stack = l.Stack[:i+1]
		} else {
			l.Stack = append(l.Stack, to)
		}
	}
	if len(l.Stack) > maxLineage {
		l.Stack = append([]string(nil), l.Stack[len(l.Stack)-maxLineage:]...)
	}
}

// drop removes the versions gone reports, and the repeats that leaves.
func (l *lineage) drop(gone func(v string) bool) {
	out := l.Stack[:0]
	for _, v := range l.Stack {
		if gone(v) || (len(out) > 0 && out[len(out)-1] == v) {
			continue
		}
		out = append(out, v)
	}
	l.Stack = out
}

// target returns the version a rollback from cur goes to: the highest entry
// that is not cur; "" when there is none.
func (l *lineage) target(cur string) string {
	for i := len(l.Stack) - 1; i >= 0; i-- {
		if l.Stack[i] != cur {
			return l.Stack[i]
		}
	}
	return ""
}

// lastIndex returns the index of the last s in stack, or -1.
func lastIndex(stack []string, s string) int {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] == s {
			return i
		}
	}
	return -1
}

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
	t := l.target(cur.String())
	if t == "" {
		return model.Version{}, false, nil
	}
	v, err := model.ParseVersion(t)
	if err != nil {
		return model.Version{}, false, fmt.Errorf("rollback index of major %d: %w", major, err)
	}
	return v, true, nil
}
