package registry

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// The history's types are domain types (package model); these names keep
// this package's code and callers short.
type Event = model.Event

// Event actions; see package model.
const (
	ActionRegister     = model.ActionRegister
	ActionPrune        = model.ActionPrune
	ActionActivate     = model.ActionActivate
	ActionRollback     = model.ActionRollback
	ActionAutoRollback = model.ActionAutoRollback
)

func isActivation(action string) bool { return model.IsActivation(action) }

// appendEvent gives ev the next sequence number and stores it in tx.
func appendEvent(tx *bbolt.Tx, ev *Event) error {
	h := tx.Bucket(bucketHistory)
	seq, err := h.NextSequence()
	if err != nil {
		return err
	}
	ev.Seq = seq
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return h.Put(binary.BigEndian.AppendUint64(nil, seq), b)
}

// Active returns the active version, or an error wrapping
// model.ErrNoActiveVersion when none has been set.
func (s *Store) Active() (model.Version, error) {
	var (
		v  model.Version
		ok bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		v, ok, err = activeIn(tx)
		return err
	})
	if err != nil {
		return model.Version{}, fmt.Errorf("registry: active: %w", err)
	}
	if !ok {
		return model.Version{}, fmt.Errorf("registry: active: %w", model.ErrNoActiveVersion)
	}
	return v, nil
}

// SetActive makes version to the active one and appends ev to the history,
// in one transaction. ev.Action must be "activate" (the default when empty),
// "rollback" or "auto_rollback"; Reason and Actor are the caller's. The store
// fills ev.From with the previously active version ("" for none), ev.To with
// to, ev.Seq, and ev.Time with Options.Now when it is zero; it returns the
// event as stored. An unregistered version is refused with an error wrapping
// model.ErrVersionNotFound and nothing changes. Activating the version that
// is already active is allowed and recorded.
func (s *Store) SetActive(to model.Version, ev Event) (Event, error) {
	if ev.Action == "" {
		ev.Action = ActionActivate
	}
	if !isActivation(ev.Action) {
		return Event{}, fmt.Errorf("registry: set active %s: action %q; want %s, %s or %s",
			to, ev.Action, ActionActivate, ActionRollback, ActionAutoRollback)
	}
	if err := checkVersion(to); err != nil {
		return Event{}, fmt.Errorf("registry: set active: %w", err)
	}
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Time = ev.Time.UTC().Round(0) // as the history will give it back
	ev.To = to.String()
	key := versionKey(to)

	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketModels).Get(key) == nil {
			return model.ErrVersionNotFound
		}
		meta := tx.Bucket(bucketMeta)
		ev.From = string(meta.Get(keyActive)) // string() copies out of the mmap
		if err := meta.Put(keyActive, []byte(ev.To)); err != nil {
			return err
		}
		return appendEvent(tx, &ev)
	})
	if err != nil {
		return Event{}, fmt.Errorf("registry: set active %s: %w", to, err)
	}
	return ev, nil
}

// History returns every event, oldest first.
func (s *Store) History() ([]Event, error) {
	var evs []Event
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		evs, err = historyIn(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registry: history: %w", err)
	}
	return evs, nil
}

func historyIn(tx *bbolt.Tx) ([]Event, error) {
	var evs []Event
	err := tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("event %x does not decode: %w", k, err)
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

// PreviousActive returns the version to roll back to: the one that was
// active before the current one, still registered. It replays the
// activations as a stack: "activate" pushes its version; "rollback" and
// "auto_rollback" drop the version rolled back from, then drop down to their
// target when it is on the stack (or push it when it is not). The answer is
// the highest stack entry below the current version that is still
// registered and differs from it. So after activating v1, v2, v3 and rolling
// back to v2, PreviousActive is v1, not v3: successive rollbacks walk back
// instead of bouncing between two versions.
//
// It returns an error wrapping model.ErrVersionNotFound when there is no
// such version, also wrapping model.ErrNoActiveVersion when nothing is
// active.
func (s *Store) PreviousActive() (model.Version, error) {
	var prev model.Version
	err := s.db.View(func(tx *bbolt.Tx) error {
		cur, ok, err := activeIn(tx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %w", model.ErrVersionNotFound, model.ErrNoActiveVersion)
		}
		evs, err := historyIn(tx)
		if err != nil {
			return err
		}
		var stack []string
		for _, ev := range evs {
			switch ev.Action {
			case ActionActivate:
				if len(stack) == 0 || stack[len(stack)-1] != ev.To {
					stack = append(stack, ev.To)
				}
			case ActionRollback, ActionAutoRollback:
				if len(stack) > 0 && stack[len(stack)-1] == ev.From {
					stack = stack[:len(stack)-1]
				}
				if i := lastIndex(stack, ev.To); i >= 0 {
					stack = stack[:i+1]
				} else {
					stack = append(stack, ev.To)
				}
			}
		}
		models := tx.Bucket(bucketModels)
		for i := len(stack) - 1; i >= 0; i-- {
			v, err := model.ParseVersion(stack[i])
			if err != nil || v == cur || models.Get(versionKey(v)) == nil {
				continue // pruned since, or the current one again
			}
			prev = v
			return nil
		}
		return fmt.Errorf("%w: no earlier active version is still registered (active %s)", model.ErrVersionNotFound, cur)
	})
	if err != nil {
		return model.Version{}, fmt.Errorf("registry: previous active: %w", err)
	}
	return prev, nil
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
