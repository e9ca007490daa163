package rollback

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/serving"
)

// follower is a second replica on a fixture's registry: its own serving
// manager and controller, following what the test sends it.
type follower struct {
	models *serving.Manager
	ctl    *Controller
	feed   chan map[int]model.Version

	mu       sync.Mutex
	statuses []FollowStatus
}

func newFollower(t *testing.T, store model.Registry, load func(*serving.Manager) func([]byte, *model.Manifest) error) *follower {
	t.Helper()
	f := &follower{models: serving.NewManager(serving.Options{}), feed: make(chan map[int]model.Version, 1)}
	opts := Options{FollowBackoff: 20 * time.Millisecond, FollowMaxBackoff: 80 * time.Millisecond,
		OnFollow: func(st FollowStatus) { f.mu.Lock(); f.statuses = append(f.statuses, st); f.mu.Unlock() }}
	if load != nil {
		opts.Load = load(f.models)
	}
	f.ctl = New(store, f.models, opts)
	if err := f.ctl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.ctl.Follow(ctx, f.feed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
		f.models.Close()
	})
	return f
}

func (f *follower) send(t *testing.T, store model.Registry) {
	t.Helper()
	m, err := store.Actives()
	if err != nil {
		t.Fatal(err)
	}
	f.feed <- m
}

func (f *follower) serving() string {
	if m := f.models.ActiveOf(1); m != nil {
		return m.Version.String()
	}
	return ""
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestFollow: a replica follows activations made through another one,
// keeping the previous version warm; a stale map never undoes a newer
// release; a version it fails to load leaves the current one serving, is
// reported out of sync with a growing wait, and is retried until it loads.
func TestFollow(t *testing.T) {
	leader := newFixture(t, Options{})
	var failLeft int
	var mu sync.Mutex
	r := newFollower(t, leader.store, func(models *serving.Manager) func([]byte, *model.Manifest) error {
		return func(b []byte, m *model.Manifest) error {
			mu.Lock()
			defer mu.Unlock()
			if m.Version.String() == "v1.2.0" && failLeft > 0 {
				failLeft--
				return errors.New("out of memory (test)")
			}
			return models.Load(b, m)
		}
	})
	if got := r.serving(); got != "v1.0.0" {
		t.Fatalf("follower starts serving %q; want v1.0.0", got)
	}

	b, m := version(t, "v1.1.0", 2, false)
	if _, err := leader.ctl.Register(leader.ctx, b, m, "test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.ctl.Activate(leader.ctx, m.Version, model.Change{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	r.send(t, leader.store)
	eventually(t, "the follower serves v1.1.0", func() bool { return r.serving() == "v1.1.0" })
	if l, err := r.models.Acquire("v1.0.0"); err != nil {
		t.Errorf("the previous version is not kept warm: %v", err)
	} else {
		l.Release()
	}

	// A stale map (what the registry said before) changes nothing: the
	// target is read again.
	r.feed <- map[int]model.Version{1: model.MustParseVersion("v1.0.0")}
	time.Sleep(100 * time.Millisecond)
	if got := r.serving(); got != "v1.1.0" {
		t.Fatalf("after a stale map the follower serves %s; want v1.1.0, the registry's active", got)
	}

	mu.Lock()
	failLeft = 2
	mu.Unlock()
	b, m = version(t, "v1.2.0", 3, false)
	if _, err := leader.ctl.Register(leader.ctx, b, m, "test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.ctl.Activate(leader.ctx, m.Version, model.Change{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	r.send(t, leader.store)
	// The swap is visible before the follower reports it: wait for both.
	eventually(t, "the follower serves v1.2.0 after its retries and says so", func() bool {
		if r.serving() != "v1.2.0" {
			return false
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		n := len(r.statuses)
		return n > 0 && r.statuses[n-1].InSync() && r.statuses[n-1].Serving.String() == "v1.2.0"
	})

	r.mu.Lock()
	defer r.mu.Unlock()
	var failed []FollowStatus
	for _, st := range r.statuses {
		if !st.InSync() {
			failed = append(failed, st)
		}
	}
	if len(failed) != 2 {
		t.Fatalf("%d failed attempts reported; want 2: %+v", len(failed), r.statuses)
	}
	for i, st := range failed {
		if st.Want.String() != "v1.2.0" || st.Serving.String() != "v1.1.0" || st.Failures != i+1 || !st.RetryAt.After(time.Time{}) {
			t.Errorf("failed attempt %d = %+v; want v1.2.0 wanted, v1.1.0 serving, failure %d with a retry time", i, st, i+1)
		}
		var se *StepError
		if !errors.As(st.Err, &se) || se.Step != "load" {
			t.Errorf("failed attempt %d error %v; want the load step's", i, st.Err)
		}
	}
	if last := r.statuses[len(r.statuses)-1]; !last.InSync() || last.Serving.String() != "v1.2.0" {
		t.Errorf("last status %+v; want in sync serving v1.2.0", last)
	}
	if sts := r.ctl.FollowStatuses(); len(sts) != 1 || !sts[0].InSync() {
		t.Errorf("FollowStatuses() = %+v; want major 1 in sync", sts)
	}
}

// TestStartRacingReplicas: replicas starting at once on an empty registry
// all serve the seed, registered and activated once.
func TestStartRacingReplicas(t *testing.T) {
	store, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seed := func() ([]byte, *model.Manifest, error) { b, m := version(t, "v1.0.0", 1, false); return b, m, nil }
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			models := serving.NewManager(serving.Options{})
			defer models.Close()
			errs[i] = New(store, models, Options{}).Start(context.Background(), seed)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Start: %v", i, err)
		}
	}
	hist, err := store.History()
	if err != nil {
		t.Fatal(err)
	}
	acts := 0
	for _, ev := range hist {
		if ev.Action == model.ActionActivate {
			acts++
		}
	}
	if acts != 1 {
		t.Errorf("%d activations recorded; want 1: %+v", acts, hist)
	}
}
