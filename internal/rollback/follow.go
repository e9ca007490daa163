package rollback

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"recommendation-api/internal/model"
)

// FollowStatus is one replica's view of one major after an attempt of
// Follow to serve the registry's active version.
type FollowStatus struct {
	Major   int
	Want    model.Version // the active version the registry records
	Serving model.Version // what this replica serves (zero: nothing yet)
	// Err says why Want is not served; nil when the replica is in sync.
	// The replica goes on serving Serving meanwhile.
	Err      error
	Failures int       // consecutive failed attempts for Want
	RetryAt  time.Time // when the next attempt is made (Err != nil)
}

// InSync reports whether the replica serves the registry's active version.
func (f FollowStatus) InSync() bool { return f.Err == nil }

// followTarget is Follow's state for one major.
type followTarget struct {
	want     model.Version
	failures int
	retryAt  time.Time
	backoff  time.Duration
	lastErr  error
}

// Follow makes this replica serve what the shared registry says is active,
// until ctx ends or actives is closed (then it returns nil). Each map on
// actives is every major's active version (as etcdstore.Store.WatchActives
// delivers them); for each major whose served version differs, Follow runs
// the release flow without a registry write: read the version's bytes
// (checksum verified), load and verify a session (signature, golden rows),
// swap it in, keep the previous one warm for an instant rollback. The
// target is re-read from the registry under the controller's lock, so a
// stale map never undoes a newer release made meanwhile through this
// replica.
//
// A load that fails leaves the current version serving; the failure is
// reported (Options.OnFollow, FollowStatuses) and retried after
// Options.FollowBackoff, doubling up to Options.FollowMaxBackoff, or at
// once when the registry's active version of that major changes again.
//
// While the controller leads (Lead), a version another replica activated is
// put on probation here, as if activated through this replica.
func (c *Controller) Follow(ctx context.Context, actives <-chan map[int]model.Version) error {
	targets := map[int]*followTarget{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-actives:
			if !ok {
				return nil
			}
			for major, v := range m {
				t := targets[major]
				if t == nil || t.want != v {
					targets[major] = &followTarget{want: v}
				}
			}
		case <-timer.C:
		}
		next := c.converge(targets)
		timer.Reset(time.Hour)
		if !next.IsZero() {
			timer.Reset(max(0, next.Sub(c.now())))
		}
	}
}

// converge makes one attempt for each major not in sync whose retry time
// has come, and returns the earliest retry time left (zero: none).
func (c *Controller) converge(targets map[int]*followTarget) time.Time {
	var next time.Time
	for _, major := range slices.Sorted(maps.Keys(targets)) {
		t := targets[major]
		if t.lastErr != nil && c.now().Before(t.retryAt) {
			if next.IsZero() || t.retryAt.Before(next) {
				next = t.retryAt
			}
			continue
		}
		st := c.followMajor(major, t.want)
		if st.Err == nil {
			wasFailing := t.lastErr != nil
			t.failures, t.backoff, t.lastErr = 0, 0, nil
			t.want = st.Want
			if wasFailing || st.Serving != st.Want || c.opts.OnFollow != nil {
				c.report(st)
			}
			continue
		}
		t.failures++
		t.backoff = min(max(2*t.backoff, c.opts.FollowBackoff), c.opts.FollowMaxBackoff)
		t.retryAt, t.lastErr = c.now().Add(t.backoff), st.Err
		st.Failures, st.RetryAt = t.failures, t.retryAt
		c.opts.Log.Error("cannot serve the registry's active version; serving the current one, will retry",
			"major", major, "want", st.Want, "serving", st.Serving, "attempt", t.failures, "retry_in", t.backoff, "err", st.Err)
		c.report(st)
		if next.IsZero() || t.retryAt.Before(next) {
			next = t.retryAt
		}
	}
	return next
}

func (c *Controller) report(st FollowStatus) {
	c.followMu.Lock()
	c.follow[st.Major] = st
	c.followMu.Unlock()
	if c.opts.OnFollow != nil {
		c.opts.OnFollow(st)
	}
}

// FollowStatuses returns Follow's last status of every major it has seen,
// ordered by major.
func (c *Controller) FollowStatuses() []FollowStatus {
	c.followMu.Lock()
	defer c.followMu.Unlock()
	out := make([]FollowStatus, 0, len(c.follow))
	for _, major := range slices.Sorted(maps.Keys(c.follow)) {
		out = append(out, c.follow[major])
	}
	return out
}

// followMajor serves major's active version, re-read from the registry
// (hint is what the watch said, used when the read fails).
func (c *Controller) followMajor(major int, hint model.Version) FollowStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := FollowStatus{Major: major, Want: hint}
	if m := c.models.ActiveOf(major); m != nil {
		st.Serving = m.Version
	}
	want, err := c.store.Active(major)
	if err != nil {
		if errors.Is(err, model.ErrNoActiveVersion) {
			// Pointers are never removed; nothing to follow.
			st.Err = nil
			st.Want = st.Serving
			return st
		}
		st.Err = &StepError{Step: "read", Version: hint, Err: err}
		return st
	}
	st.Want = want
	if st.Serving == want {
		return st
	}
	if err := c.loadAndSwap(want); err != nil {
		st.Err = err
		return st
	}
	prev := st.Serving
	st.Serving = want
	if !prev.IsZero() {
		c.warm[major] = prev
	}
	if w, ok := c.warm[major]; ok && w == want {
		delete(c.warm, major)
	}
	c.models.KeepOnly(slices.Collect(maps.Values(c.warm))...)
	if p := c.probations[major]; p != nil && p.version != want {
		delete(c.probations, major)
	}
	if c.leading.Load() {
		c.probateFollowed(major, want)
	}
	c.opts.Log.Info("following the registry", "major", major, "from", prev, "to", want)
	return st
}

// probateFollowed puts want on probation when the registry's newest event
// of its major activated it (not a rollback): the leader watches versions
// activated through any replica. Callers hold mu.
func (c *Controller) probateFollowed(major int, want model.Version) {
	ev, ok := c.lastActivation(major)
	if !ok || ev.Action != model.ActionActivate || ev.To != want.String() || ev.From == "" {
		return
	}
	prev, err := model.ParseVersion(ev.From)
	if err != nil {
		return
	}
	start, _ := c.models.StatsOf(want)
	c.probations[major] = &probation{version: want, previous: prev, until: c.now().Add(c.opts.Probation), start: start}
	c.opts.Log.Info("probation of a version activated through another replica", "major", major, "version", want, "previous", prev)
}

// lastActivation returns the newest activation event of major among its
// newest events (registrations and prunes come between).
func (c *Controller) lastActivation(major int) (model.Event, bool) {
	evs, _, err := c.store.HistoryPage(model.HistoryQuery{PageSize: 32, Major: major})
	if err != nil {
		return model.Event{}, false
	}
	for _, ev := range evs {
		if model.IsActivation(ev.Action) {
			return ev, true
		}
	}
	return model.Event{}, false
}

// Lead runs the probation watcher (as Run does) while this replica leads
// the replicas sharing the registry, until ctx ends; the caller cancels ctx
// when leadership is lost. On taking over it resumes the probation of each
// major whose newest event is an activation still within Options.Probation
// of its time (recorded by the leader before, or by any replica), so a
// change of leader does not end a probation early. Calls are judged on
// this replica's own traffic.
func (c *Controller) Lead(ctx context.Context) error {
	c.leading.Store(true)
	defer func() {
		c.leading.Store(false)
		c.mu.Lock()
		clear(c.probations) // the next leader judges them
		c.mu.Unlock()
	}()
	if err := c.resumeProbations(); err != nil {
		c.opts.Log.Warn("probations not resumed", "err", err)
	}
	return c.Run(ctx)
}

// resumeProbations starts the probations a new leader owes; see Lead.
func (c *Controller) resumeProbations() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	actives, err := c.store.Actives()
	if err != nil {
		return fmt.Errorf("resume probations: %w", err)
	}
	for major, v := range actives {
		if c.probations[major] != nil {
			continue
		}
		ev, ok := c.lastActivation(major)
		if !ok || ev.Action != model.ActionActivate || ev.To != v.String() || ev.From == "" {
			continue
		}
		until := ev.Time.Add(c.opts.Probation)
		if !c.now().Before(until) {
			continue
		}
		prev, err := model.ParseVersion(ev.From)
		if err != nil {
			continue
		}
		if m := c.models.ActiveOf(major); m == nil || m.Version != v {
			continue // Follow has not caught up; it starts the probation when it does
		}
		start, _ := c.models.StatsOf(v)
		c.probations[major] = &probation{version: v, previous: prev, until: until, start: start}
		c.opts.Log.Info("probation resumed by the new leader", "major", major, "version", v, "until", until)
	}
	return nil
}
