package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/trainer"
)

// Defaults of Options.
const (
	DefaultQueueSize   = 4
	DefaultWorkers     = 1
	DefaultEvalSamples = 20000
)

// Bucket is the registry record bucket holding the jobs, one JSON Job per
// key (the job id).
const Bucket = "jobs"

// Error messages of jobs the server stopped.
const (
	// InterruptedRunning is the error of a job that was running when the
	// server stopped or died.
	InterruptedRunning = "interrupted: the server stopped while the job was running"
	// InterruptedQueued is the error of a job that was still queued then.
	InterruptedQueued = "interrupted: the server stopped before the job started"
	// InterruptedAfterRegistering (a format taking the version) is the
	// error of a job whose server stopped after the job registered its
	// version and before it activated it: Registered is true and
	// Activation.Activated false.
	InterruptedAfterRegistering = "interrupted after registering %s; not activated"
	// InterruptedAfterActivating (a format taking the version) is the
	// error of a job whose server stopped after the version was registered
	// and activated, before the job's record was finished: Registered and
	// Activation.Activated are true.
	InterruptedAfterActivating = "interrupted after registering and activating %s; the job's record was not finished"
)

// cancelWait bounds how long Cancel waits for a running job to stop.
const cancelWait = 10 * time.Second

// Options configure a Manager. Zero fields take the defaults.
type Options struct {
	// QueueSize is how many jobs may wait, not counting the running one
	// (default 4). Start refuses more with model.ErrQueueFull.
	QueueSize int
	// Workers is how many goroutines the generator and the trainer use
	// (default 1, so Predict keeps the other cores). It does not change the
	// model a job produces.
	Workers int
	// EvalSamples is the size of the held-out set (default 20000).
	EvalSamples int
	// Log receives job life-cycle logs; nil discards them.
	Log *slog.Logger
	// Now stamps jobs; nil means time.Now.
	Now func() time.Time
	// Nice is the OS scheduling niceness of the thread a job runs on when
	// Workers is 1 (Linux; 0 = default 19, the lowest priority; negative
	// keeps the server's priority). Predict then takes the CPU whenever it
	// needs it, and the job uses what is left.
	Nice int
	// TraceDir is the directory trace sources are read from; a job's
	// Traces are relative to it. Empty refuses jobs with traces.
	TraceDir string
	// MaxSamples caps a job's simulated containers below MaxSamples, the
	// package's own bound: the size of job this server's operators may
	// start (0 means MaxSamples).
	MaxSamples int
	// Shared, when set, makes this manager one of several replicas sharing
	// the registry's job records; see the package documentation. Nil is
	// the single-process manager.
	Shared *Shared
}

func (o Options) withDefaults() Options {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.EvalSamples <= 0 {
		o.EvalSamples = DefaultEvalSamples
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nice == 0 {
		o.Nice = DefaultNice
	}
	return o
}

// Manager queues, runs and records training jobs. Create it with New, run
// its worker with Run; the other methods are safe for concurrent use.
type Manager struct {
	store    model.Registry
	releases *rollback.Controller
	opts     Options
	log      *slog.Logger
	running  atomic.Bool // Run has been called
	wake     chan struct{}

	// mu guards jobs, queue, seq and every entry's fields. It is held while
	// a change is written to the store, so the store sees changes in the
	// order readers do.
	mu      sync.Mutex
	jobs    map[string]*entry
	queue   []*entry // QUEUED jobs, oldest first
	seq     uint64   // the highest job sequence number used
	stopped bool     // Run has returned: nothing will run any more

	shared *sharedState // nil for a single-process manager
}

// entry is one job and what its readers wait on.
type entry struct {
	job       Job
	at        time.Time               // when job last changed
	rev       uint64                  // counts the changes
	changed   chan struct{}           // closed and replaced at every change
	done      chan struct{}           // closed when the job reaches a final state
	cancel    context.CancelCauseFunc // while running
	committed bool                    // registration has begun: too late to cancel
	local     bool                    // shared: queued or running on this replica, whose copy is the truth
}

func newEntry(j Job, at time.Time) *entry {
	e := &entry{job: j, at: at, changed: make(chan struct{}), done: make(chan struct{})}
	if j.State.Final() {
		close(e.done)
	}
	return e
}

// errCancelled is the cause given to a running job's context by Cancel.
var errCancelled = errors.New("cancelled by request")

// New returns a Manager keeping its jobs in store and releasing through
// releases. It reads the jobs store holds; those recorded as QUEUED or
// RUNNING belonged to a process that stopped, and become FAILED with the
// error InterruptedQueued or InterruptedRunning, or, for a job that had
// registered its version, InterruptedAfterRegistering or
// InterruptedAfterActivating (written back before New returns). Records
// that do not decode are logged and skipped.
func New(store model.Registry, releases *rollback.Controller, opts Options) (*Manager, error) {
	if store == nil || releases == nil {
		return nil, errors.New("jobs: New needs a registry store and a release controller")
	}
	opts = opts.withDefaults()
	m := &Manager{
		store: store, releases: releases, opts: opts, log: opts.Log,
		wake: make(chan struct{}, 1), jobs: make(map[string]*entry),
	}
	if opts.Shared != nil {
		if err := m.initShared(*opts.Shared); err != nil {
			return nil, err
		}
	}
	records, err := store.ListRecords(Bucket)
	if err != nil {
		return nil, fmt.Errorf("jobs: read jobs: %w", err)
	}
	now := m.now()
	for _, rec := range records {
		var j Job
		if err := json.Unmarshal(rec, &j); err != nil || j.ID == "" {
			m.log.Error("jobs: skip a job record that does not decode", "err", err, "record", truncate(string(rec), 200))
			continue
		}
		if seq, ok := parseID(j.ID); ok {
			m.seq = max(m.seq, seq)
		}
		// Shared: a pending job may be another replica's; the leader
		// resolves it (see Lead).
		if !j.State.Final() && m.shared == nil {
			if err := m.markInterrupted(&j, now, InterruptedRunning); err != nil {
				return nil, err
			}
			if err := m.put(&j); err != nil {
				return nil, err
			}
			m.log.Warn("training job interrupted by a restart", "job", j.ID, "version", j.Version,
				"registered", j.Registered, "activated", j.Activation != nil && j.Activation.Activated, "err", j.Error)
		}
		m.jobs[j.ID] = newEntry(j, now)
	}
	return m, nil
}

// markInterrupted makes j, recorded as pending by a process that stopped,
// FAILED with an error saying how far it got. A job that had begun
// registering is checked against the registry, which is the truth: the
// process may have died after the registry committed the version (or its
// activation) and before the job's record said so. Such a job gets
// Registered from the registry, an Activation saying whether the version is
// active, and the error InterruptedAfterRegistering or
// InterruptedAfterActivating naming the version.
func (m *Manager) markInterrupted(j *Job, now time.Time, running string) error {
	msg := running
	if j.State == StateQueued {
		msg = InterruptedQueued
	}
	committed := j.Registered || j.Progress.Phase == PhaseRegistering || j.Progress.Phase == PhaseActivating
	if j.State == StateRunning && committed {
		registered, err := m.registered(j.Version)
		if err != nil {
			return err
		}
		j.Registered = registered
		if registered {
			active, err := m.store.Active(j.Version.Major)
			if err != nil && !errors.Is(err, model.ErrNoActiveVersion) {
				return fmt.Errorf("jobs: %w", err)
			}
			act := &Activation{Policy: j.Params.Policy, Activated: err == nil && active == j.Version}
			if j.Activation != nil {
				act.Better = j.Activation.Better
			} else if j.Evaluation != nil {
				parent, _ := model.ParseVersion(j.ParentVersion)
				act.Better, _ = compare(j.Evaluation, parent)
			}
			if act.Activated {
				msg = fmt.Sprintf(InterruptedAfterActivating, j.Version)
				act.Reason = "activated; the server stopped before the job's record was finished"
			} else {
				msg = fmt.Sprintf(InterruptedAfterRegistering, j.Version)
				act.Reason = fmt.Sprintf("not activated: the server stopped after registering %s; activate it by hand if wanted", j.Version)
			}
			j.Activation = act
		}
	}
	j.State, j.Error, j.FinishedAt = StateFailed, msg, now
	j.Progress.Phase, j.Progress.Remaining = PhaseDone, 0
	return nil
}

// idPrefix and idDigits shape job ids: "job-00000012" sorts in start order.
const (
	idPrefix = "job-"
	idDigits = 8
)

func formatID(seq uint64) string { return fmt.Sprintf("%s%0*d", idPrefix, idDigits, seq) }

// parseID returns the sequence number of an id, "job-00000012" or, made by
// a replica sharing the registry, "job-00000012-k3f9qz".
func parseID(id string) (uint64, bool) {
	digits, _, _ := strings.Cut(strings.TrimPrefix(id, idPrefix), "-")
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && strings.HasPrefix(id, idPrefix)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (m *Manager) now() time.Time { return m.opts.Now().UTC().Round(0) }

// put writes j to the store.
func (m *Manager) put(j *Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("jobs: encode %s: %w", j.ID, err)
	}
	if err := m.store.PutRecord(Bucket, j.ID, b); err != nil {
		return fmt.Errorf("jobs: save %s: %w", j.ID, err)
	}
	return nil
}

// change applies f to e's job, wakes its watchers and, when persist, writes
// it to the store (a failure is logged: the job goes on in memory). Callers
// hold mu.
func (m *Manager) change(e *entry, persist bool, f func(*Job)) {
	f(&e.job)
	now := m.now() // after f, which may set StartedAt: elapsed is never negative
	if e.job.State == StateRunning && !e.job.StartedAt.IsZero() {
		e.job.Progress.Elapsed = now.Sub(e.job.StartedAt)
	}
	e.at = now
	e.rev++
	close(e.changed)
	e.changed = make(chan struct{})
	if persist {
		if err := m.put(&e.job); err != nil {
			m.log.Error("training job state not saved", "job", e.job.ID, "state", e.job.State, "phase", e.job.Progress.Phase, "err", err)
		}
	}
}

// update is change under mu.
func (m *Manager) update(e *entry, persist bool, f func(*Job)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.change(e, persist, f)
}

// finish moves e to a final state and writes it. Callers hold mu.
func (m *Manager) finish(e *entry, state State, msg string) {
	m.change(e, true, func(j *Job) {
		j.State, j.Error = state, msg
		j.FinishedAt = m.now()
		j.Progress.Phase, j.Progress.Remaining = PhaseDone, 0
		if !j.StartedAt.IsZero() {
			j.Progress.Elapsed = j.FinishedAt.Sub(j.StartedAt)
		}
	})
	e.cancel = nil
	close(e.done)
}

// Start validates req and queues a job for it, returning the job (QUEUED)
// at once. Nothing is queued when it returns an error:
//
//   - model.ErrInvalidInput: a parameter out of bounds — samples outside
//     MinSamples..MaxSamples, epochs outside 1..MaxEpochs, learning rate
//     outside (0,1], batch size outside 1..MaxBatchSize (0 takes the
//     default for those two), a workload mix that is not none or 5 finite
//     weights ≥ 0 (all zero = uniform), an unknown policy, an over-long or
//     reserved actor, an over-long reason, both version and bump, a version
//     not higher than the newest registered (or pending) one of its major,
//     a major this build cannot train, or a version of another major than
//     the job's (Request.Major; 0 = the newest major with an active version);
//   - model.ErrInvalidVersion: a malformed version or an unknown bump;
//   - model.ErrVersionExists: the version is registered, or a queued or
//     running job will produce it;
//   - model.ErrQueueFull: Options.QueueSize jobs are already waiting, or
//     Run has returned (the server is shutting down).
//
// Every message names the field and says what is accepted.
func (m *Manager) Start(req Request) (*Job, error) {
	req, err := normalize(req)
	if err != nil {
		return nil, err
	}
	if req.Major, err = m.targetMajor(req.Major); err != nil {
		return nil, err
	}
	if req.LearningRate == 0 {
		req.LearningRate = trainer.DefaultTrainConfigFor(req.Major).LearningRate
	}
	if c := m.opts.MaxSamples; c > 0 && req.Samples > c {
		return nil, invalid("samples: %d; this server accepts at most %d simulated containers per job (--max-job-samples)", req.Samples, c)
	}
	if _, _, err := m.traceFiles(req); err != nil {
		return nil, err
	}
	if m.shared != nil {
		// See every replica's jobs: their versions are reserved, their
		// queued ones count against the queue.
		if err := m.sync(); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || (m.shared != nil && m.shared.closed) {
		return nil, fmt.Errorf("%w: the server is shutting down; start the job again once it is back", model.ErrQueueFull)
	}
	v, err := m.versionFor(req)
	if err != nil {
		return nil, err
	}
	if n := m.waiting(); n >= m.opts.QueueSize {
		return nil, fmt.Errorf("%w: %d jobs are waiting, the most the queue holds; retry when one has finished, or cancel one", model.ErrQueueFull, n)
	}
	now := m.now()
	id := formatID(m.seq + 1)
	if m.shared != nil {
		id += "-" + m.shared.tag
	}
	j := Job{
		ID: id, State: StateQueued, Params: req, CreatedAt: now,
		Version: v, Progress: Progress{Phase: PhaseQueued, Epochs: req.Epochs},
	}
	if err := m.put(&j); err != nil {
		return nil, err
	}
	m.seq++
	e := newEntry(j, now)
	m.jobs[j.ID] = e
	if m.shared == nil || m.shared.leading {
		e.local = m.shared != nil
		m.queue = append(m.queue, e)
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	m.log.Info("training job queued", "job", j.ID, "version", v, "samples", req.Samples, "epochs", req.Epochs,
		"policy", req.Policy, "actor", req.Actor)
	return j.Clone(), nil
}

// versionFor resolves the version req produces against the registry and
// the pending jobs. Callers hold mu.
func (m *Manager) versionFor(req Request) (model.Version, error) {
	newest, err := newestOf(m.store, req.Major)
	if err != nil {
		return model.Version{}, fmt.Errorf("jobs: %w", err)
	}
	pending := make(map[model.Version]string)
	for id, e := range m.jobs {
		if !e.job.State.Final() && e.job.Version.Major == req.Major {
			pending[e.job.Version] = id
		}
	}
	return resolveVersion(req, newest, m.registered, pending)
}

// targetMajor resolves a job's major: one this build can train, or with 0
// the newest major that has an active version (rollback.ServedMajor when
// none has). Errors wrap model.ErrInvalidInput.
func (m *Manager) targetMajor(major int) (int, error) {
	if major != 0 {
		if !slices.Contains(model.Majors, major) {
			return 0, invalid("major: %d; this server trains majors %v, or 0 for the newest served", major, model.Majors)
		}
		return major, nil
	}
	actives, err := m.store.Actives()
	if err != nil {
		return 0, fmt.Errorf("jobs: %w", err)
	}
	newest := 0
	for mj := range actives {
		if slices.Contains(model.Majors, mj) && mj > newest {
			newest = mj
		}
	}
	if newest == 0 {
		newest = rollback.ServedMajor
	}
	return newest, nil
}

// newestOf returns the highest registered version of major (zero when
// there is none): another major's versions are another format's.
func newestOf(store model.Registry, major int) (model.Version, error) {
	list, err := store.List()
	if err != nil {
		return model.Version{}, err
	}
	var newest model.Version
	for _, e := range list {
		if v := e.Manifest.Version; v.Major == major && v.Compare(newest) > 0 {
			newest = v
		}
	}
	return newest, nil
}

// registered reports whether v is in the registry.
func (m *Manager) registered(v model.Version) (bool, error) {
	_, err := m.store.Manifest(v)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, model.ErrVersionNotFound):
		return false, nil
	}
	return false, fmt.Errorf("jobs: %w", err)
}

// Get returns the job with that id, or an error wrapping
// model.ErrJobNotFound.
func (m *Manager) Get(id string) (*Job, error) {
	if err := m.refresh(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(id)
	if err != nil {
		return nil, err
	}
	return e.job.Clone(), nil
}

// entry looks a job up. Callers hold mu.
func (m *Manager) entry(id string) (*entry, error) {
	e, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w; ids look like %s", id, model.ErrJobNotFound, formatID(1))
	}
	return e, nil
}

// List returns every job, newest first.
func (m *Manager) List() ([]*Job, error) {
	if m.shared != nil {
		if err := m.sync(); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	list := make([]*Job, 0, len(m.jobs))
	for _, e := range m.jobs {
		list = append(list, e.job.Clone())
	}
	slices.SortFunc(list, func(a, b *Job) int { return strings.Compare(b.ID, a.ID) })
	return list, nil
}

// Cancel cancels a job. A queued job leaves the queue and is CANCELLED at
// once. A running job has its context cancelled, so it stops within one
// epoch, registers nothing and becomes CANCELLED; Cancel waits for that (at
// most 10 s) and returns the job as it then is. A job that is registering
// or activating can no longer be stopped, and a finished one is left as it
// is: Cancel returns them unchanged. Unknown ids give model.ErrJobNotFound.
func (m *Manager) Cancel(id string) (*Job, error) {
	if err := m.refresh(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	e, err := m.entry(id)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	if m.shared != nil && !e.local && !e.job.State.Final() {
		// Another replica runs it, or will: ask the leader.
		m.mu.Unlock()
		return m.requestCancel(e)
	}
	switch {
	case e.job.State == StateQueued:
		m.queue = slices.DeleteFunc(m.queue, func(q *entry) bool { return q == e })
		m.finish(e, StateCancelled, errCancelled.Error())
		m.log.Info("training job cancelled", "job", id, "state", StateQueued)
	case e.job.State == StateRunning && !e.committed && e.cancel != nil:
		e.cancel(errCancelled)
		m.log.Info("training job cancellation requested", "job", id, "phase", e.job.Progress.Phase)
		done := e.done
		m.mu.Unlock()
		t := time.NewTimer(cancelWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		return m.Get(id)
	}
	j := e.job.Clone()
	m.mu.Unlock()
	return j, nil
}

// Watch calls send with the job's current state, then with every later
// change until the job reaches a final state, whose event (carrying the
// whole job) is the last. Changes that happen while send runs are
// coalesced into the latest. It returns nil after the final event, send's
// error, ctx's error when ctx ends first, or model.ErrJobNotFound.
func (m *Manager) Watch(ctx context.Context, id string, send func(Event) error) error {
	if err := m.refresh(id); err != nil {
		return err
	}
	var closing <-chan struct{}
	if m.shared != nil {
		closing = m.shared.closing
	}
	m.mu.Lock()
	e, err := m.entry(id)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	sent, first := uint64(0), true
	for {
		m.mu.Lock()
		ev := Event{JobID: e.job.ID, Time: e.at, State: e.job.State, Progress: e.job.Progress}
		if ev.State.Final() {
			ev.Job = e.job.Clone()
		}
		rev, changed := e.rev, e.changed
		m.mu.Unlock()
		if first || rev != sent {
			if err := send(ev); err != nil {
				return err
			}
			sent, first = rev, false
		}
		if ev.State.Final() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return fmt.Errorf("%w: this replica stopped following job %s; watch it on another replica", model.ErrShuttingDown, id)
		}
	}
}

// Run runs queued jobs one at a time until ctx ends. When ctx ends during
// a job, the job stops (it is FAILED with InterruptedRunning unless it had
// already registered its version, in which case it finishes). Before Run
// returns, the jobs still queued become FAILED with InterruptedQueued, so
// every Watch ends (a gRPC graceful stop waits for open WatchJob streams),
// and later Starts are refused with model.ErrQueueFull. Run must be called
// once; cancel its ctx and wait for it to return before closing the store.
func (m *Manager) Run(ctx context.Context) {
	if !m.running.CompareAndSwap(false, true) {
		m.log.Error("jobs: Run called twice; the second call does nothing")
		return
	}
	m.work(ctx)
	m.stop()
}

// work runs queued jobs one at a time until ctx ends.
func (m *Manager) work(ctx context.Context) {
	for {
		e, jctx, cancel := m.next(ctx)
		if e == nil {
			return
		}
		stopBeat := m.heartbeat(jctx, e)
		err := m.executeNiced(jctx, e)
		stopBeat()
		cause := context.Cause(jctx)
		cancel(nil)
		m.mu.Lock()
		switch {
		case err == nil:
			m.finish(e, StateSucceeded, "")
		case !e.job.Registered && errors.Is(cause, errCancelled):
			m.finish(e, StateCancelled, errCancelled.Error())
		case !e.job.Registered && ctx.Err() != nil:
			m.finish(e, StateFailed, InterruptedRunning)
		default:
			m.finish(e, StateFailed, err.Error())
		}
		e.local = false
		j := e.job
		m.mu.Unlock()
		m.log.Info("training job finished", "job", j.ID, "state", j.State, "version", j.Version,
			"registered", j.Registered, "elapsed", j.Progress.Elapsed, "err", j.Error)
	}
}

// stop fails the queued jobs and refuses new ones.
func (m *Manager) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	for _, e := range m.queue {
		m.finish(e, StateFailed, InterruptedQueued)
		m.log.Warn("training job interrupted before it started: the server is stopping", "job", e.job.ID)
	}
	m.queue = nil
}

// next waits for a queued job and marks it RUNNING, returning it with its
// context; it returns a nil entry when ctx ends.
func (m *Manager) next(ctx context.Context) (*entry, context.Context, context.CancelCauseFunc) {
	for {
		if ctx.Err() != nil {
			return nil, nil, nil
		}
		m.mu.Lock()
		if len(m.queue) > 0 {
			e := m.queue[0]
			m.queue = m.queue[1:]
			jctx, cancel := context.WithCancelCause(ctx)
			e.cancel = cancel
			m.change(e, true, func(j *Job) {
				j.State, j.StartedAt = StateRunning, m.now()
				j.Progress.Phase = PhaseGenerating
				if m.shared != nil {
					j.Runner, j.Heartbeat = m.shared.Replica, j.StartedAt
				}
			})
			m.mu.Unlock()
			m.log.Info("training job started", "job", e.job.ID, "version", e.job.Version)
			return e, jctx, cancel
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-m.wake:
		}
	}
}
