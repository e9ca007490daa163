package etcdstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"recommendation-api/internal/etcdstore"
	"recommendation-api/internal/registry/registrytest"
)

// waitFor polls cond until it holds or 15s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 15*time.Second, what, cond)
}

// waitWithin polls cond until it holds or d passes.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestElector: of two candidates exactly one leads; when the leader's
// session dies (its lease revoked, as when the process stops renewing it)
// the other leads, and the first campaigns again as a follower; when the
// leader's context ends it resigns and the other takes over at once.
func TestElector(t *testing.T) {
	t.Parallel()
	eps := sharedEndpoints(t)
	prefix := newPrefix(t)
	var (
		electors []*etcdstore.Elector
		cancels  []context.CancelFunc
		wg       sync.WaitGroup
	)
	for _, name := range []string{"a", "b"} {
		s := open(t, eps, prefix, registrytest.Options{})
		e, err := s.NewElector(etcdstore.ElectorOptions{Name: name, TTL: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		electors, cancels = append(electors, e), append(cancels, cancel)
		wg.Go(func() {
			if err := e.Run(ctx); err != nil {
				t.Errorf("Run(%s): %v", name, err)
			}
		})
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	leaders := func() (n, idx int) {
		for i, e := range electors {
			if e.IsLeader() {
				n, idx = n+1, i
			}
		}
		return n, idx
	}
	waitFor(t, "one candidate leads", func() bool { n, _ := leaders(); return n == 1 })
	_, first := leaders()
	other := 1 - first
	name, err := electors[other].Leader(context.Background())
	if want := []string{"a", "b"}[first]; err != nil || name != want {
		t.Errorf("Leader() seen by the follower = %q, %v; want %q", name, err, want)
	}
	select {
	case v := <-electors[first].Changes():
		if !v {
			t.Errorf("the leader's first change says %v; want true", v)
		}
	default:
		t.Error("the leader's Changes has nothing")
	}

	// Kill the leader's session: revoke the lease of its election key,
	// long before its 30s TTL would run out.
	raw := rawClient(t, eps)
	resp, err := raw.Get(context.Background(), prefix+"/leader/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != []string{"a", "b"}[first] {
		t.Fatalf("leader key: %v, %v", resp, err)
	}
	if _, err := raw.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other candidate leads", func() bool { return electors[other].IsLeader() })
	// At once, not at its next lease renewal (TTL/3 = 10s away).
	waitWithin(t, 5*time.Second, "the old leader stops leading", func() bool { return !electors[first].IsLeader() })
	if v := <-electors[first].Changes(); v {
		t.Errorf("the old leader's last change says %v; want false", v)
	}
	// The old leader campaigns again and waits as a follower.
	waitFor(t, "the old leader campaigns again", func() bool {
		r, err := raw.Get(context.Background(), prefix+"/leader/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && r.Count == 2
	})
	if n, _ := leaders(); n != 1 {
		t.Errorf("%d leaders after the takeover; want 1", n)
	}

	// The new leader's context ends: it resigns and the first leads again
	// without waiting for the TTL.
	start := time.Now()
	cancels[other]()
	waitFor(t, "the first candidate leads again", func() bool { return electors[first].IsLeader() })
	if electors[other].IsLeader() {
		t.Error("a stopped candidate still says it leads")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("takeover after resigning took %s; want well under the 30s TTL", d)
	}
}
