package etcdstore

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"recommendation-api/internal/model"
)

// decodeActives decodes the active pointers of a prefix read.
func decodeActives(resp *clientv3.GetResponse) (map[int]model.Version, error) {
	out := map[int]model.Version{}
	for _, kv := range resp.Kvs {
		v, err := model.ParseVersion(string(kv.Value))
		if err != nil {
			return nil, fmt.Errorf("stored active version %s: %w", kv.Key, err)
		}
		out[v.Major] = v
	}
	return out, nil
}

// Active returns the active version of major, or an error wrapping
// model.ErrNoActiveVersion when none has been set.
func (s *Store) Active(major int) (model.Version, error) {
	resps, _, err := s.read(clientv3.OpGet(s.key("active", majorKey(major))))
	if err != nil {
		return model.Version{}, fmt.Errorf("etcdstore: active: %w", err)
	}
	if len(resps[0].Kvs) == 0 {
		return model.Version{}, fmt.Errorf("etcdstore: active of major %d: %w", major, model.ErrNoActiveVersion)
	}
	v, err := model.ParseVersion(string(resps[0].Kvs[0].Value))
	if err != nil {
		return model.Version{}, fmt.Errorf("etcdstore: active: stored active version of major %d: %w", major, err)
	}
	return v, nil
}

// Actives returns the active version of every major that has one.
func (s *Store) Actives() (map[int]model.Version, error) {
	resps, _, err := s.read(clientv3.OpGet(s.key("active")+"/", clientv3.WithPrefix()))
	if err == nil {
		var out map[int]model.Version
		if out, err = decodeActives(resps[0]); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("etcdstore: actives: %w", err)
}

// SetActive is SetActiveIf without an expectation.
func (s *Store) SetActive(to model.Version, ev model.Event) (model.Event, error) {
	return s.SetActiveIf(to, ev, nil)
}

// SetActiveIf makes version to the active one of its major (see
// model.Registry). One transaction writes the pointer, the major's
// rollback index and the event, guarded by the revisions of the version,
// the pointer, the index and the history sequence as read: when replicas
// race, each change is applied once and recorded once, in the order etcd
// committed them, and an expectation (expected) is checked against the
// pointer the change replaces.
func (s *Store) SetActiveIf(to model.Version, ev model.Event, expected *model.Version) (model.Event, error) {
	if ev.Action == "" {
		ev.Action = model.ActionActivate
	}
	if !model.IsActivation(ev.Action) {
		return model.Event{}, fmt.Errorf("etcdstore: set active %s: action %q; want %s, %s or %s",
			to, ev.Action, model.ActionActivate, model.ActionRollback, model.ActionAutoRollback)
	}
	if err := checkVersion(to); err != nil {
		return model.Event{}, fmt.Errorf("etcdstore: set active: %w", err)
	}
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Time = ev.Time.UTC().Round(0)
	ev.To, ev.Major = to.String(), to.Major
	modelK := s.key("models", versionKey(to))
	activeK, lineageK := s.key("active", majorKey(to.Major)), s.key("lineage", majorKey(to.Major))

	err := s.change([]string{modelK, activeK, lineageK, s.key("meta", "history_seq")}, nil, func(sn *snapshot) ([]clientv3.Op, error) {
		if sn.keys[modelK] == nil {
			return nil, model.ErrVersionNotFound
		}
		var (
			cur model.Version
			has bool
		)
		if b := sn.value(activeK); b != nil {
			v, err := model.ParseVersion(string(b))
			if err != nil {
				return nil, fmt.Errorf("stored active version of major %d: %w", to.Major, err)
			}
			cur, has = v, true
		}
		if expected != nil && (cur != *expected || has == expected.IsZero()) {
			return nil, model.ActiveMismatch(to.Major, *expected, cur)
		}
		if has && cur == to {
			return nil, fmt.Errorf("%w: %s is already the active version of major %d", model.ErrAlreadyActive, to, to.Major)
		}
		ev.From = ""
		if has {
			ev.From = cur.String()
		}
		l := &model.Lineage{}
		if b := sn.value(lineageK); b != nil {
			if err := json.Unmarshal(b, l); err != nil {
				return nil, fmt.Errorf("rollback index of major %d does not decode: %w", to.Major, err)
			}
		}
		l.Record(ev.Action, ev.From, ev.To)
		lb, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		evOps, err := s.appendEvents(sn, &ev)
		if err != nil {
			return nil, err
		}
		return append([]clientv3.Op{clientv3.OpPut(activeK, ev.To), clientv3.OpPut(lineageK, string(lb))}, evOps...), nil
	})
	if err != nil {
		return model.Event{}, fmt.Errorf("etcdstore: set active %s: %w", to, err)
	}
	return ev, nil
}

// historyBatch is how many events one read of the history fetches.
const historyBatch = 1000

// History returns every kept event, oldest first, read at one revision in
// batches of historyBatch.
func (s *Store) History() ([]model.Event, error) {
	var (
		evs []model.Event
		rev int64
	)
	from, end := s.key("history")+"/", clientv3.GetPrefixRangeEnd(s.key("history")+"/")
	for {
		ctx, cancel := s.ctx()
		resp, err := s.client.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(historyBatch), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("etcdstore: history: %w", s.storageError(err))
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			var ev model.Event
			if err := json.Unmarshal(kv.Value, &ev); err != nil {
				return nil, fmt.Errorf("etcdstore: history: event %s does not decode: %w", kv.Key, err)
			}
			evs = append(evs, ev)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return evs, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// HistoryPage returns one page of the history, newest first, and the token
// of the next page ("" after the last). A page token is an event sequence
// number; a malformed one is refused with model.ErrInvalidInput. It reads
// newest first in batches, at one revision, and stops once the page is
// full: at most its size of matching events plus those its filters skip
// (and one batch more).
func (s *Store) HistoryPage(q model.HistoryQuery) ([]model.Event, string, error) {
	size := q.PageSize
	if size <= 0 {
		size = model.DefaultHistoryPage
	}
	if size > model.MaxHistoryPage {
		return nil, "", fmt.Errorf("etcdstore: history: %w: page_size %d; want 1..%d", model.ErrInvalidInput, size, model.MaxHistoryPage)
	}
	before := uint64(math.MaxUint64)
	if q.PageToken != "" {
		n, err := strconv.ParseUint(q.PageToken, 10, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("etcdstore: history: %w: page_token %q is not one this server gave; pass the next_page_token of the previous page, or none", model.ErrInvalidInput, q.PageToken)
		}
		before = n
	}
	start := s.key("history") + "/"
	end := clientv3.GetPrefixRangeEnd(start)
	if before != math.MaxUint64 {
		end = s.key("history", seqKey(before))
	}
	var (
		evs []model.Event
		rev int64
	)
	batch := int64(min(size+1, historyBatch))
	for {
		ctx, cancel := s.ctx()
		resp, err := s.client.Get(ctx, start, clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
			clientv3.WithLimit(batch), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return nil, "", fmt.Errorf("etcdstore: history: %w", s.storageError(err))
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			var ev model.Event
			if err := json.Unmarshal(kv.Value, &ev); err != nil {
				return nil, "", fmt.Errorf("etcdstore: history: event %s does not decode: %w", kv.Key, err)
			}
			if (q.Major != 0 && ev.Major != q.Major) || (q.Action != "" && ev.Action != q.Action) {
				continue
			}
			if len(evs) == size {
				return evs, strconv.FormatUint(ev.Seq+1, 10), nil
			}
			evs = append(evs, ev)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return evs, "", nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
		batch = historyBatch
	}
}

// PreviousActive returns the version a rollback of major goes to, from the
// rollback index: one read, whatever the history's length. It returns an
// error wrapping model.ErrVersionNotFound when there is no such version,
// also wrapping model.ErrNoActiveVersion when nothing of the major is
// active.
func (s *Store) PreviousActive(major int) (model.Version, error) {
	resps, _, err := s.read(clientv3.OpGet(s.key("active", majorKey(major))), clientv3.OpGet(s.key("lineage", majorKey(major))))
	if err != nil {
		return model.Version{}, fmt.Errorf("etcdstore: previous active: %w", err)
	}
	if len(resps[0].Kvs) == 0 {
		return model.Version{}, fmt.Errorf("etcdstore: previous active: %w: %w of major %d", model.ErrVersionNotFound, model.ErrNoActiveVersion, major)
	}
	cur := string(resps[0].Kvs[0].Value)
	l := &model.Lineage{}
	if len(resps[1].Kvs) > 0 {
		if err := json.Unmarshal(resps[1].Kvs[0].Value, l); err != nil {
			return model.Version{}, fmt.Errorf("etcdstore: previous active: rollback index of major %d does not decode: %w", major, err)
		}
	}
	t := l.Target(cur)
	if t == "" {
		return model.Version{}, fmt.Errorf("etcdstore: previous active: %w: no earlier active version of major %d is still registered (active %s)", model.ErrVersionNotFound, major, cur)
	}
	v, err := model.ParseVersion(t)
	if err != nil {
		return model.Version{}, fmt.Errorf("etcdstore: previous active: rollback index of major %d: %w", major, err)
	}
	return v, nil
}
