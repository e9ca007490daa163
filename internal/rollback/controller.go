package rollback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/serving"
)

// ServedMajor is the major version whose I/O format this server's API serves.
const ServedMajor = 1

// Options configure a Controller. Zero fields take the defaults.
type Options struct {
	Probation        time.Duration // how long a new version is watched (default 2m)
	FailureThreshold float64       // failure share that triggers a rollback (default 0.05)
	MinCalls         int64         // calls needed before judging (default 20)
	CheckInterval    time.Duration // how often the watcher looks (default 1s)
	Log              *slog.Logger
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
func (e *StepError) Unwrap() error { return e.Err }

// Controller changes what is served, through one flow, and watches new
// versions during probation.
type Controller struct {
	store  *registry.Store
	models *serving.Manager
	opts   Options

	// mu serializes Start, Register, Activate, Rollback and the watcher's
	// automatic rollback: each reads the active version and changes the
	// registry and the serving manager together. It also guards probation.
	mu        sync.Mutex
	probation *probation
}

// probation is the watch over a newly activated version.
type probation struct {
	version, previous model.Version
	until             time.Time
	start             serving.StatsSnapshot
}

// New returns a Controller over a registry and a serving manager.
func New(store *registry.Store, models *serving.Manager, opts Options) *Controller {
	return &Controller{store: store, models: models, opts: opts.withDefaults()}
}

// Start serves the registry's active version. With an empty registry it
// first registers and activates seed (the embedded default model). It
// starts no goroutine: the caller runs Run for the probation watcher.
func (c *Controller) Start(ctx context.Context, seed func() ([]byte, *model.Manifest, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	active, err := c.store.Active()
	if errors.Is(err, model.ErrNoActiveVersion) {
		b, m, serr := seed()
		if serr != nil {
			return fmt.Errorf("start: %w", serr)
		}
		if _, err := c.store.Manifest(m.Version); errors.Is(err, model.ErrVersionNotFound) {
			if _, err := c.store.Register(b, m, "system"); err != nil {
				return fmt.Errorf("start: register default model: %w", err)
			}
		}
		if _, err := c.store.SetActive(m.Version, registry.Event{Action: registry.ActionActivate, Reason: "first start: embedded default model", Actor: "system"}); err != nil {
			return fmt.Errorf("start: %w", err)
		}
		active = m.Version
	} else if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := c.loadAndSwap(active); err != nil {
		return fmt.Errorf("start: serve recorded active version: %w", err)
	}
	c.opts.Log.Info("serving", "version", active)
	return nil
}

// loadAndSwap runs read → check major → load → swap for v. Callers hold mu.
func (c *Controller) loadAndSwap(v model.Version) error {
	fail := func(step string, err error) error { return &StepError{Step: step, Version: v, Err: err} }
	b, m, err := c.store.Load(v)
	if err != nil {
		return fail("read", err)
	}
	if err := checkMajor(m.Version); err != nil {
		return fail("check major version", err)
	}
	if err := c.models.Load(b, m); err != nil {
		return fail("load", err)
	}
	if _, err := c.models.Activate(v); err != nil {
		return fail("swap", err)
	}
	return nil
}

// checkMajor refuses a version whose major (I/O format) this server does
// not serve, wrapping model.ErrSignatureMismatch.
func checkMajor(v model.Version) error {
	if v.Major != ServedMajor {
		return fmt.Errorf("%w: %s is major %d; this server serves major %d", model.ErrSignatureMismatch, v, v.Major, ServedMajor)
	}
	return nil
}

// Register verifies a version — manifest, checksum, major version, and a
// real ONNX Runtime load with its signature and golden rows — and stores it.
// Nothing is stored when a check fails. Returns the versions retention pruned.
func (c *Controller) Register(ctx context.Context, b []byte, m *model.Manifest, actor, reason string) ([]model.Version, error) {
	if err := m.Validate(); err != nil {
		return nil, &StepError{Step: "check manifest", Version: m.Version, Err: err}
	}
	if err := m.VerifyBytes(b); err != nil {
		return nil, &StepError{Step: "verify checksum", Version: m.Version, Err: err}
	}
	if err := checkMajor(m.Version); err != nil {
		return nil, &StepError{Step: "check major version", Version: m.Version, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.store.Manifest(m.Version); err == nil {
		return nil, fmt.Errorf("register %s: %w", m.Version, model.ErrVersionExists)
	}
	if err := c.models.Load(b, m); err != nil {
		return nil, err
	}
	// Loaded only to verify it; activation loads it again from the registry.
	_ = c.models.Unload(m.Version)
	pruned, err := c.store.Register(b, m, actor)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", m.Version, err)
	}
	c.opts.Log.Info("registered", "version", m.Version, "actor", actor, "reason", reason, "pruned", pruned)
	return pruned, nil
}

// Activate makes v the served version through the release flow and puts it
// on probation, keeping the previous version warm.
func (c *Controller) Activate(ctx context.Context, v model.Version, reason, actor string) (registry.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.release(v, registry.ActionActivate, orDefault(reason, "operator request"), actor)
}

// Rollback goes back to `to`, or when to is zero to the version that was
// active before the current one. Errors wrap model.ErrVersionNotFound when
// there is nothing to roll back to.
func (c *Controller) Rollback(ctx context.Context, to model.Version, reason, actor string) (registry.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if to.IsZero() {
		prev, err := c.store.PreviousActive()
		if err != nil {
			return registry.Event{}, fmt.Errorf("rollback: no earlier version to go back to: %w", err)
		}
		to = prev
	}
	return c.release(to, registry.ActionRollback, orDefault(reason, "operator request"), actor)
}

// release runs the flow and records it. Callers hold mu.
func (c *Controller) release(v model.Version, action, reason, actor string) (registry.Event, error) {
	prev, err := c.store.Active()
	if err != nil && !errors.Is(err, model.ErrNoActiveVersion) {
		return registry.Event{}, &StepError{Step: "read", Version: v, Err: err}
	}
	if err := c.loadAndSwap(v); err != nil {
		return registry.Event{}, err
	}
	ev, err := c.store.SetActive(v, registry.Event{Action: action, Reason: reason, Actor: actor})
	if err != nil {
		if !prev.IsZero() { // put back what was serving: the registry did not change
			if _, serr := c.models.Activate(prev); serr != nil {
				c.opts.Log.Error("restore previous version after failed record", "version", prev, "err", serr)
			}
		}
		return registry.Event{}, &StepError{Step: "record", Version: v, Err: err}
	}
	// Keep the previous version warm for an instant rollback; free the rest.
	if prev != v && !prev.IsZero() {
		c.models.KeepOnly(prev)
	} else {
		c.models.KeepOnly()
	}
	c.probation = nil
	if action == registry.ActionActivate && !prev.IsZero() && prev != v {
		start, _ := c.models.StatsOf(v)
		c.probation = &probation{version: v, previous: prev, until: time.Now().Add(c.opts.Probation), start: start}
	}
	c.opts.Log.Info("released", "action", action, "from", ev.From, "to", ev.To, "reason", reason, "actor", actor)
	return ev, nil
}

// OnProbation returns the version on probation, if any.
func (c *Controller) OnProbation() (model.Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probation == nil {
		return model.Version{}, false
	}
	return c.probation.version, true
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
			c.checkProbation()
		}
	}
}

// checkProbation rolls back a version on probation whose failure share is
// above the threshold, and ends probations that ran their course.
func (c *Controller) checkProbation() {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.probation
	if p == nil {
		return
	}
	now, _ := c.models.StatsOf(p.version)
	calls, failures := now.Calls-p.start.Calls, now.Failures-p.start.Failures
	if calls >= c.opts.MinCalls && float64(failures)/float64(calls) > c.opts.FailureThreshold {
		reason := fmt.Sprintf("automatic: %d of %d calls failed (%.1f%%) during probation; threshold %.1f%%",
			failures, calls, 100*float64(failures)/float64(calls), 100*c.opts.FailureThreshold)
		if _, err := c.release(p.previous, registry.ActionAutoRollback, reason, "system"); err != nil {
			c.opts.Log.Error("automatic rollback failed", "from", p.version, "to", p.previous, "err", err)
			return
		}
		c.opts.Log.Warn("rolled back automatically", "from", p.version, "to", p.previous, "reason", reason)
		return
	}
	if time.Now().After(p.until) {
		c.opts.Log.Info("probation passed", "version", p.version, "calls", calls, "failures", failures)
		c.probation = nil
	}
}

// Reads, for the registry API.

// List returns the registered versions in semver order.
func (c *Controller) List() ([]registry.Entry, error) { return c.store.List() }

// Manifest returns a version's manifest.
func (c *Controller) Manifest(v model.Version) (*model.Manifest, error) { return c.store.Manifest(v) }

// Load returns a version's bytes (checksum verified) and manifest.
func (c *Controller) Load(v model.Version) ([]byte, *model.Manifest, error) { return c.store.Load(v) }

// Active returns the active version.
func (c *Controller) Active() (model.Version, error) { return c.store.Active() }

// History returns every recorded move, oldest first.
func (c *Controller) History() ([]registry.Event, error) { return c.store.History() }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
