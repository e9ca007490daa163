package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"recommendation-api/internal/model"
)

// CancelBucket is the registry record bucket of cancellation requests made
// on a replica that does not run the job: key the job id, value a JSON
// cancelRequest. The leader applies them.
const CancelBucket = "job-cancels"

// InterruptedRunnerLost (a format taking the runner and the lease) is the
// error of a job whose runner stopped renewing its record: the replica
// died or lost the registry, and the leader gave up on it.
const InterruptedRunnerLost = "interrupted: runner lost (replica %s stopped renewing the job for %s)"

// Defaults of Shared.
const (
	DefaultRunnerTTL = 10 * time.Second
	DefaultPoll      = 250 * time.Millisecond
)

// Shared configures a manager that is one of several replicas sharing a
// registry (etcd): every replica reads, lists, watches, starts and cancels
// jobs, and only the one running Lead (the elected leader) runs them.
type Shared struct {
	// Replica names this replica in the records of the jobs it runs
	// (Job.Runner). Required.
	Replica string
	// RunnerTTL is how long a RUNNING job's heartbeat may stay unchanged,
	// as the leader sees it, before the job is FAILED with
	// InterruptedRunnerLost; its runner renews the record every third of
	// it. Default DefaultRunnerTTL; use the leader lease's TTL.
	RunnerTTL time.Duration
	// Poll is how often the records are read again (Follow), which bounds
	// how stale a non-leader's view of a job is and how soon the leader
	// picks up a job queued elsewhere. Default DefaultPoll.
	Poll time.Duration
}

// sharedState is a shared manager's state; fields guarded by Manager.mu
// unless said otherwise.
type sharedState struct {
	Shared
	tag     string // makes this process's job ids unique among replicas
	leading bool   // Lead runs
	closed  bool   // Follow has returned
	closing chan struct{}
	// beats holds, for RUNNING jobs this replica does not run, the last
	// heartbeat read and when (this replica's clock) it was first read.
	beats       map[string]beat
	cancelsDone map[string]bool // cancellation requests already applied
	syncMu      sync.Mutex      // one read-and-merge at a time, so a view never goes back
}

type beat struct {
	runner    string
	heartbeat time.Time
	seen      time.Time
}

// cancelRequest is a CancelBucket record.
type cancelRequest struct {
	ID          string    `json:"id"`
	RequestedAt time.Time `json:"requested_at"`
	By          string    `json:"by"` // the replica asked
}

func (m *Manager) initShared(sh Shared) error {
	if sh.Replica == "" {
		return errors.New("jobs: a shared manager needs its replica's name")
	}
	if sh.RunnerTTL <= 0 {
		sh.RunnerTTL = DefaultRunnerTTL
	}
	if sh.Poll <= 0 {
		sh.Poll = DefaultPoll
	}
	m.shared = &sharedState{Shared: sh, tag: newTag(), closing: make(chan struct{}),
		beats: map[string]beat{}, cancelsDone: map[string]bool{}}
	return nil
}

// newTag returns 6 random base-32 characters: ids of two replicas that
// take the same sequence number at once differ by it.
func newTag() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b[:])
}

// waiting counts the jobs waiting to run: the local queue, or, shared,
// every replica's QUEUED jobs. Callers hold mu.
func (m *Manager) waiting() int {
	if m.shared == nil {
		return len(m.queue)
	}
	n := 0
	for _, e := range m.jobs {
		if e.job.State == StateQueued {
			n++
		}
	}
	return n
}

// Follow keeps a shared manager's view of every replica's jobs current:
// it reads the records every Shared.Poll until ctx ends, waking watchers of
// jobs that changed, and, while Lead runs, adopts jobs queued elsewhere,
// applies cancellation requests and fails jobs whose runner was lost.
// When ctx ends, watches end with model.ErrShuttingDown and Start refuses
// new jobs. Call it once, on every replica; it does nothing for a manager
// without Options.Shared.
func (m *Manager) Follow(ctx context.Context) {
	if m.shared == nil {
		return
	}
	t := time.NewTicker(m.shared.Poll)
	defer t.Stop()
	failing := false
	for {
		err := m.sync()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.log.Warn("training jobs: cannot read the job records; showing the last ones read", "err", err)
			failing = true
		case err == nil && failing:
			m.log.Info("training jobs: job records readable again")
			failing = false
		}
		select {
		case <-ctx.Done():
			m.mu.Lock()
			m.shared.closed = true
			close(m.shared.closing)
			m.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// Lead runs the jobs queued by any replica, one at a time, until ctx ends
// (leadership lost, or the server stopping). On taking over it fails the
// RUNNING jobs whose runner was lost (InterruptedRunnerLost, resolved
// against the registry like a restart's interrupted jobs); a RUNNING job
// counts as lost when its heartbeat has not changed for Shared.RunnerTTL
// as this replica saw it, so a leader taking over from a dead one waits at
// most that long. When ctx ends during a job, the job stops as in Run;
// queued jobs stay QUEUED for the next leader. Call it only on a shared
// manager, never concurrently with itself, and only while Follow runs.
func (m *Manager) Lead(ctx context.Context) {
	if m.shared == nil {
		m.log.Error("jobs: Lead called on a manager that is not shared; use Run")
		return
	}
	m.mu.Lock()
	if m.shared.leading {
		m.mu.Unlock()
		m.log.Error("jobs: Lead called while it runs; the second call does nothing")
		return
	}
	m.shared.leading = true
	m.mu.Unlock()
	m.log.Info("training jobs: leading; running the job queue", "replica", m.shared.Replica)
	if err := m.sync(); err != nil {
		m.log.Warn("training jobs: cannot read the job records on taking over", "err", err)
	}
	m.work(ctx)
	m.mu.Lock()
	m.shared.leading = false
	for _, e := range m.queue {
		e.local = false // the next leader's
	}
	m.queue = nil
	m.mu.Unlock()
	m.log.Info("training jobs: no longer leading", "replica", m.shared.Replica)
}

// sync reads every job record and merges it into the view.
func (m *Manager) sync() error {
	m.shared.syncMu.Lock()
	defer m.shared.syncMu.Unlock()
	recs, err := m.store.ListRecords(Bucket)
	if err != nil {
		return fmt.Errorf("jobs: read jobs: %w", err)
	}
	m.mu.Lock()
	leading := m.shared.leading
	m.mu.Unlock()
	var cancels [][]byte
	if leading {
		if cancels, err = m.store.ListRecords(CancelBucket); err != nil {
			m.log.Warn("training jobs: cannot read cancellation requests", "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range recs {
		m.merge(rec)
	}
	if leading && m.shared.leading {
		m.adopt()
		m.applyCancels(cancels)
		m.reap()
	}
	return nil
}

// refresh reads one job's record into the view (shared managers only); an
// id the registry does not hold is left to entry to refuse.
func (m *Manager) refresh(id string) error {
	if m.shared == nil || id == "" {
		return nil
	}
	m.shared.syncMu.Lock()
	defer m.shared.syncMu.Unlock()
	rec, err := m.store.GetRecord(Bucket, id)
	if errors.Is(err, model.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jobs: read job %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.merge(rec)
	return nil
}

// merge puts one record into the view, unless this replica's copy is the
// truth (a job it queues or runs). Callers hold mu.
func (m *Manager) merge(rec []byte) {
	var j Job
	if err := json.Unmarshal(rec, &j); err != nil || j.ID == "" {
		return
	}
	if seq, ok := parseID(j.ID); ok {
		m.seq = max(m.seq, seq)
	}
	e := m.jobs[j.ID]
	switch {
	case e == nil:
		e = newEntry(j, m.now())
		m.jobs[j.ID] = e
	case e.local:
		return
	default:
		if cur, err := json.Marshal(&e.job); err == nil && bytes.Equal(cur, rec) {
			break
		}
		m.change(e, false, func(x *Job) { *x = j })
		if j.State.Final() {
			closeDone(e)
		}
	}
	if j.State != StateRunning {
		delete(m.shared.beats, j.ID)
		return
	}
	if b, ok := m.shared.beats[j.ID]; !ok || b.runner != j.Runner || !b.heartbeat.Equal(j.Heartbeat) {
		m.shared.beats[j.ID] = beat{runner: j.Runner, heartbeat: j.Heartbeat, seen: time.Now()}
	}
}

func closeDone(e *entry) {
	select {
	case <-e.done:
	default:
		close(e.done)
	}
}

// adopt queues, in id order, the QUEUED jobs of any replica that this
// leader does not queue yet. Callers hold mu.
func (m *Manager) adopt() {
	added := false
	for _, e := range m.jobs {
		if e.job.State == StateQueued && !e.local {
			e.local = true
			m.queue = append(m.queue, e)
			added = true
		}
	}
	if !added {
		return
	}
	slices.SortFunc(m.queue, func(a, b *entry) int { return strings.Compare(a.job.ID, b.job.ID) })
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// applyCancels applies the cancellation requests for jobs this leader
// queues or runs. Callers hold mu.
func (m *Manager) applyCancels(recs [][]byte) {
	for _, rec := range recs {
		var r cancelRequest
		if json.Unmarshal(rec, &r) != nil || m.shared.cancelsDone[r.ID] {
			continue
		}
		e := m.jobs[r.ID]
		switch {
		case e == nil:
			continue // not read yet
		case e.job.State.Final():
		case e.local && e.job.State == StateQueued:
			m.queue = slices.DeleteFunc(m.queue, func(q *entry) bool { return q == e })
			m.finish(e, StateCancelled, errCancelled.Error())
			m.log.Info("training job cancelled", "job", r.ID, "state", StateQueued, "requested_on", r.By)
		case e.local && e.job.State == StateRunning && !e.committed && e.cancel != nil:
			e.cancel(errCancelled)
			m.log.Info("training job cancellation requested", "job", r.ID, "phase", e.job.Progress.Phase, "requested_on", r.By)
		case e.local && e.committed:
			// Too late, as for a local Cancel.
		default:
			continue // another runner's: not ours to apply
		}
		m.shared.cancelsDone[r.ID] = true
	}
}

// reap fails the RUNNING jobs whose runner was lost; see Lead. Callers
// hold mu.
func (m *Manager) reap() {
	for id, b := range m.shared.beats {
		e := m.jobs[id]
		if e == nil || e.local || e.job.State != StateRunning || time.Since(b.seen) < m.shared.RunnerTTL {
			continue
		}
		j := *e.job.Clone()
		msg := fmt.Sprintf(InterruptedRunnerLost, orNone(j.Runner), m.shared.RunnerTTL)
		if err := m.markInterrupted(&j, m.now(), msg); err != nil {
			m.log.Error("training job: runner lost, but the registry cannot be read to say what it holds", "job", id, "err", err)
			continue
		}
		if err := m.put(&j); err != nil {
			m.log.Error("training job: runner lost, but its record cannot be written", "job", id, "err", err)
			continue
		}
		m.change(e, false, func(x *Job) { *x = j })
		closeDone(e)
		delete(m.shared.beats, id)
		m.log.Warn("training job interrupted: its runner was lost", "job", id, "runner", b.runner,
			"registered", j.Registered, "activated", j.Activation != nil && j.Activation.Activated, "err", j.Error)
	}
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// requestCancel asks the leader to cancel e (recorded in CancelBucket) and
// waits, as Cancel does, for the job to end. A job registering or
// activating is returned unchanged.
func (m *Manager) requestCancel(e *entry) (*Job, error) {
	m.mu.Lock()
	j := e.job.Clone()
	done := e.done
	m.mu.Unlock()
	if j.State == StateRunning && (j.Progress.Phase == PhaseRegistering || j.Progress.Phase == PhaseActivating) {
		return j, nil
	}
	b, err := json.Marshal(cancelRequest{ID: j.ID, RequestedAt: m.now(), By: m.shared.Replica})
	if err != nil {
		return nil, err
	}
	if err := m.store.PutRecord(CancelBucket, j.ID, b); err != nil {
		return nil, fmt.Errorf("jobs: request cancellation of %s: %w", j.ID, err)
	}
	m.log.Info("training job cancellation requested from the leader", "job", j.ID, "state", j.State)
	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	return m.Get(j.ID)
}

// heartbeat renews a shared job's record every third of RunnerTTL while it
// runs (with its latest progress); the returned func stops it.
func (m *Manager) heartbeat(ctx context.Context, e *entry) func() {
	if m.shared == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(m.shared.RunnerTTL/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.update(e, true, func(j *Job) { j.Heartbeat = m.now() })
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
