package rollback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/serving"
)

// ServedMajor is the default major: what a rollback without a major, and a
// training job without a target, concern. Other majors are served side by
// side, each with its own active version.
const ServedMajor = 1

// Options configure a Controller. Zero fields take the defaults.
type Options struct {
	Probation        time.Duration // how long a new version is watched (default 2m)
	FailureThreshold float64       // failure share that triggers a rollback (default 0.05)
	MinCalls         int64         // calls needed before judging (default 20)
	CheckInterval    time.Duration // how often the watcher looks (default 1s)
	Log              *slog.Logger
	Now              func() time.Time // the clock of probations; nil means time.Now
	// OnFollow, when set, is told the outcome of every attempt Follow
	// makes to serve a major's active version (in sync, or why not and
	// when it tries again). It is called without the controller's lock.
	OnFollow func(FollowStatus)
	// Load, when set, loads a version into the serving manager in place
	// of its Load (a seam for tests of failed loads); it must load into
	// the manager the controller was given.
	Load func(b []byte, m *model.Manifest) error
	// FollowBackoff is the first wait before Follow retries a failed load
	// (doubling up to FollowMaxBackoff); defaults 500ms and 30s.
	FollowBackoff, FollowMaxBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.Probation <= 0 {
		o.Probation = 2 * time.Minute
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = 0.05
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 20
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FollowBackoff <= 0 {
		o.FollowBackoff = 500 * time.Millisecond
	}
	if o.FollowMaxBackoff <= 0 {
		o.FollowMaxBackoff = 30 * time.Second
	}
	return o
}

// StepError says which step of a release failed.
type StepError struct {
	Step    string // "read", "check major version", "load", "swap", "record"
	Version model.Version
	Err     error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("release %s: %s failed: %v", e.Version, e.Step, e.Err)
}

// PublicMessage is the client's view: the version, the step and the public
// message of the cause (never the internal chain), or its class alone.
func (e *StepError) PublicMessage() string {
	return fmt.Sprintf("release %s: %s failed: %s", e.Version, e.Step, model.PublicOr(e.Err, classOf(e.Err)))
}

// classOf names the sentinel err wraps, for a cause without a public
// message.
func classOf(err error) string {
	for _, s := range []error{model.ErrVersionNotFound, model.ErrChecksumMismatch, model.ErrInvalidModel,
		model.ErrSignatureMismatch, model.ErrGoldenMismatch, model.ErrActiveMismatch, model.ErrStorageFull,
		model.ErrStorageReadOnly, model.ErrNoActiveVersion} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "internal error; see the server log"
}
func (e *StepError) Unwrap() error { return e.Err }

// Controller changes what is served, through one flow, and watches new
// versions during probation.
type Controller struct {
	store  model.Registry
	models *serving.Manager
	opts   Options

	// mu serializes Start, Register, Activate, Rollback and the watcher's
	// automatic rollback: each reads the active version and changes the
	// registry and the serving manager together. It also guards probation.
	mu sync.Mutex
	// probations holds, per major, the watch over its newly activated
	// version; warm, per major, the previous version kept loaded for an
	// instant rollback.
	probations map[int]*probation
	warm       map[int]model.Version

	leading atomic.Bool // Lead runs: versions Follow swaps in go on probation

	followMu sync.Mutex // guards follow
	follow   map[int]FollowStatus
}

// probation is the watch over a newly activated version.
type probation struct {
	version, previous model.Version
	until             time.Time
	start             serving.StatsSnapshot
	retryAt           time.Time     // a failed automatic rollback is retried from then
	backoff           time.Duration // the last wait before a retry
}

// New returns a Controller over a registry and a serving manager.
func New(store model.Registry, models *serving.Manager, opts Options) *Controller {
	return &Controller{store: store, models: models, opts: opts.withDefaults(),
		probations: map[int]*probation{}, warm: map[int]model.Version{}, follow: map[int]FollowStatus{}}
}

// Seed returns an embedded default model: its bytes and manifest.
type Seed func() ([]byte, *model.Manifest, error)

// Start serves the active version of every major the registry records.
// Each seed (an embedded default model) whose major has no active version
// is first registered (when absent) and activated, so an empty registry
// starts serving every major the binary embeds. It starts no goroutine:
// the caller runs Run for the probation watcher.
func (c *Controller) Start(ctx context.Context, seeds ...Seed) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	actives, err := c.store.Actives()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for _, seed := range seeds {
		b, m, err := seed()
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		if _, ok := actives[m.Version.Major]; ok {
			continue
		}
		// Replicas sharing a registry may all start on an empty one at
		// once: of several registering the seed one stores it, and the
		// activation is made only if the major still has none; whoever
		// loses a race serves what the winner recorded.
		const why = "first start: embedded default model"
		if _, err := c.store.Manifest(m.Version); errors.Is(err, model.ErrVersionNotFound) {
			if _, err := c.store.RegisterWith(b, m, model.RegisterOptions{Actor: "system", Reason: why}); err != nil && !errors.Is(err, model.ErrVersionExists) {
				return fmt.Errorf("start: register default model %s: %w", m.Version, err)
			}
		}
		none := model.Version{}
		_, err = c.store.SetActiveIf(m.Version, model.Event{Action: model.ActionActivate, Reason: why, Actor: "system"}, &none)
		switch {
		case err == nil:
			actives[m.Version.Major] = m.Version
		case errors.Is(err, model.ErrActiveMismatch), errors.Is(err, model.ErrAlreadyActive):
			cur, aerr := c.store.Active(m.Version.Major)
			if aerr != nil {
				return fmt.Errorf("start: %w", aerr)
			}
			actives[m.Version.Major] = cur
		default:
			return fmt.Errorf("start: %w", err)
		}
	}
	majors := make([]int, 0, len(actives))
	for major := range actives {
		majors = append(majors, major)
	}
	slices.Sort(majors)
	for _, major := range majors {
		if err := c.loadAndSwap(actives[major]); err != nil {
			return fmt.Errorf("start: serve recorded active version of major %d: %w", major, err)
		}
		c.opts.Log.Info("serving", "major", major, "version", actives[major])
	}
	return nil
}

// loadAndSwap runs read → check major → load → swap for v. Callers hold mu.
func (c *Controller) loadAndSwap(v model.Version) error {
	fail := func(step string, err error) error { return &StepError{Step: step, Version: v, Err: err} }
	b, m, err := c.store.Load(v)
	if err != nil {
		return fail("read", err)
	}
	if err := checkServable(m); err != nil {
		return fail("check format", err)
	}
	load := c.models.Load
	if c.opts.Load != nil {
		load = c.opts.Load
	}
	if err := load(b, m); err != nil {
		return fail("load", err)
	}
	if _, err := c.models.Activate(v); err != nil {
		return fail("swap", err)
	}
	return nil
}

// checkServable refuses a version this server cannot feed: its declared
// signature must be the one its declared features make ([N, features] in,
// [N, 5] out). Manifest.Validate has already refused feature names the
// server cannot compute. Errors wrap model.ErrSignatureMismatch.
func checkServable(m *model.Manifest) error {
	if m.Version.Major < 1 {
		return fmt.Errorf("%w: %s is major 0; majors start at 1", model.ErrSignatureMismatch, m.Version)
	}
	if want := model.SignatureFor(len(m.Features)); !m.Signature.Equal(want) {
		err := fmt.Errorf("%w: %s declares %d features but a signature of width %d; want [N,%d] -> [N,%d]",
			model.ErrSignatureMismatch, m.Version, len(m.Features), m.Signature.InputWidth(), len(m.Features), model.NumOutputs)
		return model.Public(err, err.Error())
	}
	return nil
}

// sameFormat refuses a version whose declared features or outputs differ
// from its major's: a major is one I/O format, so agents sending it are
// answered by any of its versions. The reference is the major's active
// version; a major with none takes its first version's format. Callers
// hold mu. Errors wrap model.ErrSignatureMismatch.
func (c *Controller) sameFormat(m *model.Manifest) error {
	major := m.Version.Major
	av, err := c.store.Active(major)
	if errors.Is(err, model.ErrNoActiveVersion) {
		return nil
	}
	if err != nil {
		return err
	}
	ref, err := c.store.Manifest(av)
	if err != nil {
		return err
	}
	if got, want := specNames(m.Features), specNames(ref.Features); !slices.Equal(got, want) {
		err := fmt.Errorf("%w: %s declares the features %v, but major %d's format (active %s) is %v; a new input format is a new major version",
			model.ErrSignatureMismatch, m.Version, got, major, av, want)
		return model.Public(err, err.Error())
	}
	if got, want := specNames(m.Outputs), specNames(ref.Outputs); !slices.Equal(got, want) {
		err := fmt.Errorf("%w: %s declares the outputs %v, but major %d's format (active %s) is %v; a new output format is a new major version",
			model.ErrSignatureMismatch, m.Version, got, major, av, want)
		return model.Public(err, err.Error())
	}
	return nil
}

func specNames(specs []model.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// Register verifies a version — manifest, checksum, major version, and a
// real ONNX Runtime load with its signature and golden rows — and stores it
// with reason in its history event. Nothing is stored when a check fails.
// Retention keeps every version a loaded session serves. Returns the
// versions retention pruned.
func (c *Controller) Register(ctx context.Context, b []byte, m *model.Manifest, actor, reason string) ([]model.Version, error) {
	if err := m.Validate(); err != nil {
		return nil, &StepError{Step: "check manifest", Version: m.Version, Err: err}
	}
	if err := m.VerifyBytes(b); err != nil {
		return nil, &StepError{Step: "verify checksum", Version: m.Version, Err: err}
	}
	if err := checkServable(m); err != nil {
		return nil, &StepError{Step: "check format", Version: m.Version, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.store.Manifest(m.Version); err == nil {
		return nil, fmt.Errorf("register %s: %w", m.Version, model.ErrVersionExists)
	}
	if err := c.sameFormat(m); err != nil {
		return nil, &StepError{Step: "check format", Version: m.Version, Err: err}
	}
	if err := c.models.Load(b, m); err != nil {
		return nil, err
	}
	// Loaded only to verify it; activation loads it again from the registry.
	_ = c.models.Unload(m.Version)
	pruned, err := c.store.RegisterWith(b, m, model.RegisterOptions{Actor: actor, Reason: reason, Protect: c.loaded()})
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", m.Version, err)
	}
	c.opts.Log.Info("registered", "version", m.Version, "actor", actor, "reason", reason, "pruned", pruned)
	return pruned, nil
}

// loaded returns the versions the serving manager holds sessions for.
// Callers hold mu, so none is loaded or unloaded meanwhile.
func (c *Controller) loaded() []model.Version {
	var vs []model.Version
	for _, s := range c.models.LoadedVersions() {
		if v, err := model.ParseVersion(s); err == nil {
			vs = append(vs, v)
		}
	}
	return vs
}

// Activate makes v the served version through the release flow and puts it
// on probation, keeping the previous version warm. Activating the active
// version is a no-op (Result.Changed false).
func (c *Controller) Activate(ctx context.Context, v model.Version, ch model.Change) (model.Release, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.release(v, model.ActionActivate, orDefault(ch.Reason, "operator request"), ch.Actor, ch.Expected)
}

// Rollback goes back to `to`, or when to is zero to the rollback target of
// major (the version active before the current one, from the registry's
// rollback index). Errors wrap model.ErrVersionNotFound when there is
// nothing to roll back to. Rolling back to the active version is a no-op.
func (c *Controller) Rollback(ctx context.Context, to model.Version, major int, ch model.Change) (model.Release, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if major == 0 {
		major = ServedMajor
	}
	if to.IsZero() {
		if err := c.expect(major, ch.Expected); err != nil {
			return model.Release{}, err
		}
		prev, err := c.store.PreviousActive(major)
		if err != nil {
			return model.Release{}, fmt.Errorf("rollback: no earlier version to go back to: %w", err)
		}
		to = prev
	}
	return c.release(to, model.ActionRollback, orDefault(ch.Reason, "operator request"), ch.Actor, ch.Expected)
}

// expect checks the compare-and-swap expectation against the registry.
// Callers hold mu.
func (c *Controller) expect(major int, expected *model.Version) error {
	if expected == nil {
		return nil
	}
	cur, err := c.store.Active(major)
	if err != nil && !errors.Is(err, model.ErrNoActiveVersion) {
		return &StepError{Step: "read", Version: *expected, Err: err}
	}
	if cur != *expected {
		return model.ActiveMismatch(major, *expected, cur)
	}
	return nil
}

// release runs the flow and records it. Callers hold mu. Releasing the
// active version changes nothing (no load, no swap, no event, the
// probation goes on) and says so.
func (c *Controller) release(v model.Version, action, reason, actor string, expected *model.Version) (model.Release, error) {
	if err := c.expect(v.Major, expected); err != nil {
		return model.Release{}, err
	}
	prev, err := c.store.Active(v.Major)
	if err != nil && !errors.Is(err, model.ErrNoActiveVersion) {
		return model.Release{}, &StepError{Step: "read", Version: v, Err: err}
	}
	if prev == v {
		if _, err := c.store.Manifest(v); err != nil {
			return model.Release{}, &StepError{Step: "read", Version: v, Err: err}
		}
		return model.Release{Active: v, Note: fmt.Sprintf("%s is already the active version; nothing changed", v)}, nil
	}
	if err := c.loadAndSwap(v); err != nil {
		return model.Release{}, err
	}
	ev, err := c.store.SetActiveIf(v, model.Event{Action: action, Reason: reason, Actor: actor}, expected)
	if err != nil {
		if !prev.IsZero() { // put back what was serving: the registry did not change
			if _, serr := c.models.Activate(prev); serr != nil {
				c.opts.Log.Error("restore previous version after failed record", "version", prev, "err", serr)
			}
		}
		return model.Release{}, &StepError{Step: "record", Version: v, Err: err}
	}
	// Keep the previous version of this major warm for an instant
	// rollback, and the other majors' ones; free the rest.
	if prev.IsZero() {
		delete(c.warm, v.Major)
	} else {
		c.warm[v.Major] = prev
	}
	c.models.KeepOnly(slices.Collect(maps.Values(c.warm))...)
	delete(c.probations, v.Major)
	if action == model.ActionActivate && !prev.IsZero() {
		start, _ := c.models.StatsOf(v)
		c.probations[v.Major] = &probation{version: v, previous: prev, until: c.now().Add(c.opts.Probation), start: start}
	}
	c.opts.Log.Info("released", "action", action, "from", ev.From, "to", ev.To, "reason", reason, "actor", actor)
	return model.Release{Event: ev, Changed: true, Active: v}, nil
}

func (c *Controller) now() time.Time { return c.opts.Now() }

// OnProbation returns the version on probation in the default major, if
// any; OnProbationIn names the major.
func (c *Controller) OnProbation() (model.Version, bool) { return c.OnProbationIn(ServedMajor) }

// OnProbationIn returns major's version on probation, if any.
func (c *Controller) OnProbationIn(major int) (model.Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.probations[major]
	if p == nil {
		return model.Version{}, false
	}
	return p.version, true
}

// Run is the probation watcher: it checks the version on probation every
// CheckInterval, rolling it back automatically when it fails, until ctx
// ends. It returns nil then; the caller owns its goroutine.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.checkProbations()
		}
	}
}

// checkProbations rolls back each major's version on probation whose
// failure share is above the threshold, and ends probations that ran their
// course.
func (c *Controller) checkProbations() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for major, p := range c.probations {
		c.checkProbation(major, p)
	}
}

// checkProbation judges one major's probation. Callers hold mu.
func (c *Controller) checkProbation(major int, p *probation) {
	now, _ := c.models.StatsOf(p.version)
	calls, failures := now.Calls-p.start.Calls, now.Failures-p.start.Failures
	if calls >= c.opts.MinCalls && float64(failures)/float64(calls) > c.opts.FailureThreshold {
		reason := fmt.Sprintf("automatic: %d of %d calls failed (%.1f%%) during probation; threshold %.1f%%",
			failures, calls, 100*float64(failures)/float64(calls), 100*c.opts.FailureThreshold)
		if c.now().Before(p.retryAt) {
			return
		}
		// Guarded by the version judged: when another replica changed the
		// major meanwhile, this probation is over.
		if _, err := c.release(p.previous, model.ActionAutoRollback, reason, "system", &p.version); err != nil {
			if errors.Is(err, model.ErrActiveMismatch) {
				c.opts.Log.Info("probation ended: the active version changed elsewhere", "major", major, "version", p.version)
				delete(c.probations, major)
				return
			}
			// Back off (1 s, 2 s, ... up to a minute) instead of failing
			// and logging at every check.
			p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
			p.retryAt = c.now().Add(p.backoff)
			c.opts.Log.Error("automatic rollback failed; will retry", "from", p.version, "to", p.previous, "retry_in", p.backoff, "err", err)
			return
		}
		c.opts.Log.Warn("rolled back automatically", "from", p.version, "to", p.previous, "reason", reason)
		return
	}
	if c.now().After(p.until) {
		c.opts.Log.Info("probation passed", "major", major, "version", p.version, "calls", calls, "failures", failures)
		delete(c.probations, major)
	}
}

// Reads, for the registry API.

// List returns the registered versions in semver order.
func (c *Controller) List() ([]model.Entry, error) { return c.store.List() }

// Manifest returns a version's manifest.
func (c *Controller) Manifest(v model.Version) (*model.Manifest, error) { return c.store.Manifest(v) }

// Load returns a version's bytes (checksum verified) and manifest.
func (c *Controller) Load(v model.Version) ([]byte, *model.Manifest, error) { return c.store.Load(v) }

// Active returns the active version of major (0: the served major).
func (c *Controller) Active(major int) (model.Version, error) {
	if major == 0 {
		major = ServedMajor
	}
	return c.store.Active(major)
}

// History returns one page of the recorded moves, newest first.
func (c *Controller) History(q model.HistoryQuery) ([]model.Event, string, error) {
	return c.store.HistoryPage(q)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
