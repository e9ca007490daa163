package registry

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

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

// appendEvent gives ev the next sequence number, stores it in tx and
// trims the history to the newest s.historyKeep events.
func (s *Store) appendEvent(tx *bbolt.Tx, ev *Event) error {
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
	if err := h.Put(seqKey(seq), b); err != nil {
		return err
	}
	if seq <= s.historyKeep {
		return nil
	}
	// Events are numbered without gaps, so the oldest kept is seq-keep+1;
	// meta remembers where the last trim stopped, so each trim is short.
	meta := tx.Bucket(bucketMeta)
	first := uint64(1)
	if v := meta.Get(keyHistoryHead); len(v) == 8 {
		first = binary.BigEndian.Uint64(v)
	}
	keepFrom := seq - s.historyKeep + 1
	c := h.Cursor()
	for k, _ := c.Seek(seqKey(first)); k != nil && binary.BigEndian.Uint64(k) < keepFrom; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return meta.Put(keyHistoryHead, seqKey(keepFrom))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Active returns the active version of major, or an error wrapping
// model.ErrNoActiveVersion when none has been set.
func (s *Store) Active(major int) (model.Version, error) {
	var (
		v  model.Version
		ok bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		v, ok, err = activeIn(tx, major)
		return err
	})
	if err != nil {
		return model.Version{}, fmt.Errorf("registry: active: %w", err)
	}
	if !ok {
		return model.Version{}, fmt.Errorf("registry: active of major %d: %w", major, model.ErrNoActiveVersion)
	}
	return v, nil
}

// Actives returns the active version of every major that has one.
func (s *Store) Actives() (map[int]model.Version, error) {
	out := map[int]model.Version{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketActive).ForEach(func(_, v []byte) error {
			pv, err := model.ParseVersion(string(v))
			if err != nil {
				return fmt.Errorf("stored active version: %w", err)
			}
			out[pv.Major] = pv
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: actives: %w", err)
	}
	return out, nil
}

// SetActive is SetActiveIf without an expectation.
func (s *Store) SetActive(to model.Version, ev Event) (Event, error) {
	return s.SetActiveIf(to, ev, nil)
}

// SetActiveIf makes version to the active one of its major, updates the
// major's rollback index and appends ev to the history, in one transaction.
// ev.Action must be "activate" (the default when empty), "rollback" or
// "auto_rollback"; Reason and Actor are the caller's. The store fills
// ev.Major, ev.From with the previously active version of the major ("" for
// none), ev.To, ev.Seq, and ev.Time with Options.Now when it is zero; it
// returns the event as stored.
//
// When expected is not nil, the change is made only if the major's active
// version is *expected (the zero Version: none is active); otherwise
// nothing changes and the error wraps model.ErrActiveMismatch, naming the
// actual active version. Activating the version that is already active
// changes nothing and records nothing: the error wraps
// model.ErrAlreadyActive. An unregistered version is refused with
// model.ErrVersionNotFound.
func (s *Store) SetActiveIf(to model.Version, ev Event, expected *model.Version) (Event, error) {
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
	ev.To, ev.Major = to.String(), to.Major
	key := versionKey(to)

	err := s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketModels).Get(key) == nil {
			return model.ErrVersionNotFound
		}
		cur, has, err := activeIn(tx, to.Major)
		if err != nil {
			return err
		}
		if expected != nil && (cur != *expected || has == expected.IsZero()) {
			return model.ActiveMismatch(to.Major, *expected, cur)
		}
		if has && cur == to {
			return fmt.Errorf("%w: %s is already the active version of major %d", model.ErrAlreadyActive, to, to.Major)
		}
		ev.From = ""
		if has {
			ev.From = cur.String()
		}
		if err := tx.Bucket(bucketActive).Put(majorKey(to.Major), []byte(ev.To)); err != nil {
			return err
		}
		l, err := lineageIn(tx, to.Major)
		if err != nil {
			return err
		}
		l.Record(ev.Action, ev.From, ev.To)
		if err := putLineage(tx, to.Major, l); err != nil {
			return err
		}
		return s.appendEvent(tx, &ev)
	})
	if err != nil {
		return Event{}, fmt.Errorf("registry: set active %s: %w", to, storageError(s.path, err))
	}
	return ev, nil
}

// History returns every kept event, oldest first (at most
// Options.HistoryKeep; see HistoryPage for the paged, newest-first view).
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

// HistoryPage returns one page of the history, newest first, and the token
// of the next page ("" after the last). A page token is an event sequence
// number; a malformed one is refused with model.ErrInvalidInput. A page
// reads at most its size of matching events plus the ones its filters skip.
func (s *Store) HistoryPage(q model.HistoryQuery) ([]Event, string, error) {
	size := q.PageSize
	if size <= 0 {
		size = model.DefaultHistoryPage
	}
	if size > model.MaxHistoryPage {
		return nil, "", fmt.Errorf("registry: history: %w: page_size %d; want 1..%d", model.ErrInvalidInput, size, model.MaxHistoryPage)
	}
	before := uint64(math.MaxUint64)
	if q.PageToken != "" {
		n, err := strconv.ParseUint(q.PageToken, 10, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("registry: history: %w: page_token %q is not one this server gave; pass the next_page_token of the previous page, or none", model.ErrInvalidInput, q.PageToken)
		}
		before = n
	}
	var (
		evs  []Event
		next string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		k, v := c.Seek(seqKey(before))
		if k == nil {
			k, v = c.Last()
		} else if binary.BigEndian.Uint64(k) >= before {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %x does not decode: %w", k, err)
			}
			if (q.Major != 0 && ev.Major != q.Major) || (q.Action != "" && ev.Action != q.Action) {
				continue
			}
			if len(evs) == size {
				next = strconv.FormatUint(ev.Seq+1, 10)
				return nil
			}
			evs = append(evs, ev)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("registry: history: %w", err)
	}
	return evs, next, nil
}

// PreviousActive returns the version a rollback of major goes to, from the
// rollback index (see lineage): one read, whatever the history's length.
// It returns an error wrapping model.ErrVersionNotFound when there is no
// such version, also wrapping model.ErrNoActiveVersion when nothing of the
// major is active.
func (s *Store) PreviousActive(major int) (model.Version, error) {
	var prev model.Version
	err := s.db.View(func(tx *bbolt.Tx) error {
		cur, ok, err := activeIn(tx, major)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %w of major %d", model.ErrVersionNotFound, model.ErrNoActiveVersion, major)
		}
		t, ok, err := rollbackTargetIn(tx, major)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no earlier active version of major %d is still registered (active %s)", model.ErrVersionNotFound, major, cur)
		}
		prev = t
		return nil
	})
	if err != nil {
		return model.Version{}, fmt.Errorf("registry: previous active: %w", err)
	}
	return prev, nil
}
