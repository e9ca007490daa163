package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/etcdstore"
	"recommendation-api/internal/etcdstore/etcdtest"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
)

// replica is one replica's job manager over a registry in etcd shared with
// the others.
type replica struct {
	store *etcdstore.Store
	m     *jobs.Manager
	lead  func() // starts Lead; the returned manager leads until the test ends
}

func newReplica(t *testing.T, eps []string, prefix, name string) *replica {
	t.Helper()
	store, err := etcdstore.Open(etcdstore.Options{Endpoints: eps, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	models := serving.NewManager(serving.Options{})
	ctl := rollback.New(store, models, rollback.Options{})
	if err := ctl.Start(context.Background(), defaultmodel.Load); err != nil {
		t.Fatal(err)
	}
	m, err := jobs.New(store, ctl, jobs.Options{EvalSamples: 1000,
		Shared: &jobs.Shared{Replica: name, RunnerTTL: time.Second, Poll: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.Follow(ctx) })
	r := &replica{store: store, m: m, lead: func() { wg.Go(func() { m.Lead(ctx) }) }}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		models.Close()
		store.Close()
	})
	return r
}

// TestSharedJobs: a job started on a replica that does not lead runs on
// the leader; the other replica's Get, List and Watch follow it to its end;
// a queued job cancelled through the non-leader is cancelled by the leader.
// Ids made by the two replicas never collide.
func TestSharedJobs(t *testing.T) {
	t.Parallel()
	eps := etcdtest.Start(t, 1).Endpoints()
	prefix := fmt.Sprintf("/test/shared-jobs-%d", time.Now().UnixNano())
	leader := newReplica(t, eps, prefix, "leader")
	other := newReplica(t, eps, prefix, "other")
	leader.lead()

	first, err := other.m.Start(small(jobs.PolicyNever))
	if err != nil {
		t.Fatal(err)
	}
	req := small(jobs.PolicyNever)
	req.Bump = "minor"
	second, err := other.m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == second.ID || !strings.HasPrefix(first.ID, "job-") {
		t.Fatalf("ids %q and %q; want distinct job-... ids", first.ID, second.ID)
	}
	if first.Version == second.Version {
		t.Fatalf("both jobs produce %s; the second should see the first's version reserved", first.Version)
	}
	// The second waits behind the first; cancel it from the non-leader.
	got, err := other.m.Cancel(second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.StateCancelled {
		t.Errorf("cancel through the non-leader: state %s; want CANCELLED", got.State)
	}

	events := wait(t, other.m, first.ID)
	last := events[len(events)-1]
	if last.State != jobs.StateSucceeded || last.Job == nil || !last.Job.Registered {
		t.Fatalf("the non-leader's watch ended with %+v; want SUCCEEDED with the job", last)
	}
	if last.Job.Runner != "leader" {
		t.Errorf("runner %q; want the leader", last.Job.Runner)
	}
	phases := map[jobs.Phase]bool{}
	for _, ev := range events {
		phases[ev.Progress.Phase] = true
	}
	if len(phases) < 3 {
		t.Errorf("the non-leader's watch saw phases %v; want it to follow the job through its phases", phases)
	}
	list, err := other.m.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List on the non-leader = %d jobs, %v; want 2", len(list), err)
	}
	if j, err := leader.m.Get(second.ID); err != nil || j.State != jobs.StateCancelled {
		t.Errorf("the leader's Get(%s) = %+v, %v; want CANCELLED", second.ID, j, err)
	}
	if _, err := leader.store.Manifest(first.Version); err != nil {
		t.Errorf("%s not registered: %v", first.Version, err)
	}
}

// TestSharedJobRunnerLost: a RUNNING job whose heartbeat stops changing
// (its runner died) is FAILED "interrupted: runner lost" by the leader once
// the runner's TTL has passed, saying what the registry holds; the queue
// is not failed when a leader stops, so a job queued meanwhile is the next
// leader's.
func TestSharedJobRunnerLost(t *testing.T) {
	t.Parallel()
	eps := etcdtest.Start(t, 1).Endpoints()
	prefix := fmt.Sprintf("/test/runner-lost-%d", time.Now().UnixNano())
	a := newReplica(t, eps, prefix, "a")
	dead := jobs.Job{ID: "job-00000001-zzzzzz", State: jobs.StateRunning, Params: small(jobs.PolicyNever),
		CreatedAt: time.Now().UTC(), StartedAt: time.Now().UTC(), Version: model.MustParseVersion("v1.1.1"),
		Progress: jobs.Progress{Phase: jobs.PhaseTraining, Epochs: 3}, Runner: "gone", Heartbeat: time.Now().UTC()}
	b, _ := json.Marshal(dead)
	if err := a.store.PutRecord(jobs.Bucket, dead.ID, b); err != nil {
		t.Fatal(err)
	}
	// Not leading: nobody fails it.
	time.Sleep(1500 * time.Millisecond)
	if j, err := a.m.Get(dead.ID); err != nil || j.State != jobs.StateRunning {
		t.Fatalf("before any replica leads: %+v, %v; want still RUNNING", j, err)
	}
	a.lead()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var final *jobs.Job
	if err := a.m.Watch(ctx, dead.ID, func(ev jobs.Event) error { final = ev.Job; return nil }); err != nil {
		t.Fatal(err)
	}
	if final == nil || final.State != jobs.StateFailed || !strings.HasPrefix(final.Error, "interrupted: runner lost (replica gone") || final.Registered {
		t.Fatalf("dead runner's job = %+v; want FAILED interrupted: runner lost, not registered", final)
	}
	rec, err := a.store.GetRecord(jobs.Bucket, dead.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored jobs.Job
	if err := json.Unmarshal(rec, &stored); err != nil || stored.State != jobs.StateFailed {
		t.Errorf("stored record %s; want FAILED written back", rec)
	}
}

// TestSharedWatchEndsAtShutdown: when a replica stops following, its open
// watches of jobs another replica runs end with model.ErrShuttingDown
// rather than holding a graceful stop.
func TestSharedWatchEndsAtShutdown(t *testing.T) {
	t.Parallel()
	eps := etcdtest.Start(t, 1).Endpoints()
	prefix := fmt.Sprintf("/test/watch-shutdown-%d", time.Now().UnixNano())
	store, err := etcdstore.Open(etcdstore.Options{Endpoints: eps, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	models := serving.NewManager(serving.Options{})
	defer models.Close()
	ctl := rollback.New(store, models, rollback.Options{})
	if err := ctl.Start(context.Background(), defaultmodel.Load); err != nil {
		t.Fatal(err)
	}
	m, err := jobs.New(store, ctl, jobs.Options{Shared: &jobs.Shared{Replica: "x", Poll: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { m.Follow(ctx); close(followed) }()
	j, err := m.Start(small(jobs.PolicyNever)) // no leader: it stays queued
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Watch(context.Background(), j.ID, func(jobs.Event) error { return nil }) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-followed
	select {
	case err := <-done:
		if !errors.Is(err, model.ErrShuttingDown) {
			t.Errorf("Watch after Follow ended: %v; want ErrShuttingDown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch still open after the replica stopped following")
	}
	if rec, err := store.GetRecord(jobs.Bucket, j.ID); err != nil || !strings.Contains(string(rec), `"QUEUED"`) {
		t.Errorf("record after the replica stopped: %s, %v; want still QUEUED for another replica", rec, err)
	}
}
