package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"recommendation-api/internal/etcdstore"
	"recommendation-api/internal/etcdstore/etcdtest"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry/registrytest"
)

// shared is one single-member etcd for the package's tests; each test
// works under a prefix of its own. nil when etcd is not installed.
var shared *etcdtest.Cluster

func TestMain(m *testing.M) {
	code := func() int {
		if _, ok := etcdtest.Binary(); ok {
			dir, err := os.MkdirTemp("", "etcdstore-test")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			if shared, err = etcdtest.StartIn(dir, 1); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer shared.Stop()
		}
		return m.Run()
	}()
	os.Exit(code)
}

// sharedEndpoints returns the shared cluster's endpoints, skipping t when
// etcd is not installed.
func sharedEndpoints(t *testing.T) []string {
	t.Helper()
	if shared == nil {
		t.Skip(etcdtest.SkipMessage)
	}
	return shared.Endpoints()
}

var prefixes atomic.Int64

// newPrefix returns a key prefix no other test uses.
func newPrefix(t *testing.T) string {
	return fmt.Sprintf("/test/%s/%d", strings.ReplaceAll(t.Name(), "/", "_"), prefixes.Add(1))
}

// open opens a store on endpoints under prefix, closed when t ends.
func open(t *testing.T, endpoints []string, prefix string, o registrytest.Options) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(etcdstore.Options{Endpoints: endpoints, Prefix: prefix, Keep: o.Keep, HistoryKeep: o.HistoryKeep, Now: o.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawClient returns a plain etcd client, closed when t ends, to look at
// and damage the keys behind a store's back.
func rawClient(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// modelKey is the documented key of v's bytes.
func modelKey(prefix string, v model.Version) string {
	return fmt.Sprintf("%s/models/%010d.%010d.%010d", prefix, v.Major, v.Minor, v.Patch)
}

func TestContract(t *testing.T) {
	eps := sharedEndpoints(t)
	raw := rawClient(t, eps)
	registrytest.Run(t, registrytest.Subject{
		Open: func(t *testing.T, o registrytest.Options) model.Registry {
			return open(t, eps, newPrefix(t), o)
		},
		Corrupt: func(t *testing.T, r model.Registry, v model.Version) model.Registry {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			k := modelKey(r.(*etcdstore.Store).Prefix(), v)
			resp, err := raw.Get(ctx, k)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("read %s to damage it: %v, %d keys", k, err, len(resp.Kvs))
			}
			b := resp.Kvs[0].Value
			b[len(b)/2] ^= 0x01
			if _, err := raw.Put(ctx, k, string(b)); err != nil {
				t.Fatal(err)
			}
			return r
		},
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	eps := sharedEndpoints(t)
	t.Run("ErrNoEndpoints", func(t *testing.T) {
		t.Parallel()
		if _, err := etcdstore.Open(etcdstore.Options{}); err == nil || !strings.Contains(err.Error(), "endpoints") {
			t.Errorf("Open without endpoints: err = %v; want it to ask for endpoints", err)
		}
	})
	t.Run("ErrRelativePrefix", func(t *testing.T) {
		t.Parallel()
		if _, err := etcdstore.Open(etcdstore.Options{Endpoints: eps, Prefix: "registry"}); err == nil || !strings.Contains(err.Error(), "must start with /") {
			t.Errorf("Open with a relative prefix: err = %v", err)
		}
	})
	t.Run("ErrUnreachable", func(t *testing.T) {
		t.Parallel()
		// A port nothing listens on: the error names it, within the timeout.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ep := "http://" + l.Addr().String()
		l.Close()
		start := time.Now()
		_, err = etcdstore.Open(etcdstore.Options{Endpoints: []string{ep}, DialTimeout: 500 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), ep) {
			t.Errorf("Open of a dead member: err = %v; want it to name %s", err, ep)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open of a dead member took %s; want about its 500ms timeout", d)
		}
	})
	t.Run("ErrLayout", func(t *testing.T) {
		t.Parallel()
		prefix := newPrefix(t)
		raw := rawClient(t, eps)
		if _, err := raw.Put(context.Background(), prefix+"/meta/layout", "99"); err != nil {
			t.Fatal(err)
		}
		if _, err := etcdstore.Open(etcdstore.Options{Endpoints: eps, Prefix: prefix}); err == nil || !strings.Contains(err.Error(), `"99"`) {
			t.Errorf("Open of an unknown layout: err = %v; want it refused naming it", err)
		}
	})
	t.Run("OKPrefixesApart", func(t *testing.T) {
		t.Parallel()
		a, b := open(t, eps, newPrefix(t), registrytest.Options{}), open(t, eps, newPrefix(t), registrytest.Options{})
		registrytest.Register(t, a, "v1.0.0")
		if got := registrytest.Listed(t, b); len(got) != 0 {
			t.Errorf("a registry under another prefix lists %v; want none", got)
		}
	})
}

func TestModelLimit(t *testing.T) {
	t.Parallel()
	s := open(t, sharedEndpoints(t), newPrefix(t), registrytest.Options{})
	b := registrytest.ModelBytes(1, etcdstore.MaxModelBytes+1)
	_, err := s.Register(b, registrytest.NewManifest(model.MustParseVersion("v1.0.0"), b), "t")
	if !errors.Is(err, model.ErrInvalidModel) || !strings.Contains(err.Error(), "524288 bytes") {
		t.Errorf("Register of %d bytes: err = %v; want ErrInvalidModel naming the limit", len(b), err)
	}
	if got := registrytest.Listed(t, s); len(got) != 0 {
		t.Errorf("List after a refused registration = %v", got)
	}
	b = b[:etcdstore.MaxModelBytes]
	if _, err := s.Register(b, registrytest.NewManifest(model.MustParseVersion("v1.0.0"), b), "t"); err != nil {
		t.Errorf("Register of exactly the limit: %v", err)
	}
	if got, _, err := s.Load(model.MustParseVersion("v1.0.0")); err != nil || len(got) != etcdstore.MaxModelBytes {
		t.Errorf("Load = %d bytes, %v", len(got), err)
	}
}

// TestRace has two Store clients (two replicas) register the same version
// at once, then activate at once, many rounds: exactly one registration
// wins each round, every applied activation is in the history once, and
// the rollback index agrees with the history.
func TestRace(t *testing.T) {
	t.Parallel()
	eps := sharedEndpoints(t)
	prefix := newPrefix(t)
	replicas := []*etcdstore.Store{open(t, eps, prefix, registrytest.Options{}), open(t, eps, prefix, registrytest.Options{})}
	const rounds = 12
	var applied atomic.Int64
	for i := range rounds {
		v := model.Version{Major: 1, Patch: i}
		b := registrytest.ModelBytes(uint64(i), 2000)
		errs := make([]error, len(replicas))
		var wg sync.WaitGroup
		for r, s := range replicas {
			wg.Go(func() { _, errs[r] = s.Register(b, registrytest.NewManifest(v, b), fmt.Sprintf("replica-%d", r)) })
		}
		wg.Wait()
		var won, exists int
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, model.ErrVersionExists):
				exists++
			default:
				t.Fatalf("round %d: Register: %v", i, err)
			}
		}
		if won != 1 || exists != 1 {
			t.Fatalf("round %d: %d registrations won and %d got ErrVersionExists; want one each", i, won, exists)
		}
		// Both activate: this round's version and, racing, the previous one.
		targets := []model.Version{v, {Major: 1, Patch: max(0, i-1)}}
		for r, s := range replicas {
			wg.Go(func() {
				_, err := s.SetActive(targets[r], model.Event{Actor: fmt.Sprintf("replica-%d", r)})
				switch {
				case err == nil:
					applied.Add(1)
				case !errors.Is(err, model.ErrAlreadyActive):
					t.Errorf("round %d: SetActive(%s): %v", i, targets[r], err)
				}
			})
		}
		wg.Wait()
	}
	h := registrytest.History(t, replicas[0])
	var (
		registers int
		lineage   model.Lineage
		last      string
	)
	for i, ev := range h {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: %+v", i, ev.Seq, h)
		}
		switch ev.Action {
		case model.ActionRegister:
			registers++
		case model.ActionActivate:
			if ev.From != last {
				t.Errorf("event %d activates from %q; the active version was %q", ev.Seq, ev.From, last)
			}
			last = ev.To
			lineage.Record(ev.Action, ev.From, ev.To)
		}
	}
	if registers != rounds {
		t.Errorf("history has %d registrations; want %d", registers, rounds)
	}
	acts := 0
	for _, ev := range h {
		if model.IsActivation(ev.Action) {
			acts++
		}
	}
	if n := int(applied.Load()); acts != n {
		t.Errorf("history has %d activations; %d were applied", acts, n)
	}
	active, err := replicas[1].Active(1)
	if err != nil || active.String() != last {
		t.Errorf("Active = %v, %v; the history's last activation is %s", active, err, last)
	}
	// The rollback index replayed from the history (pruned versions
	// dropped) gives the store's rollback target.
	lineage.Drop(func(v string) bool {
		_, err := replicas[0].Manifest(model.MustParseVersion(v))
		return err != nil
	})
	want := lineage.Target(last)
	got, err := replicas[1].PreviousActive(1)
	if want == "" {
		if !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("PreviousActive = %v, %v; want none", got, err)
		}
	} else if err != nil || got.String() != want {
		t.Errorf("PreviousActive = %v, %v; the history says %s", got, err, want)
	}
	if err := replicas[0].Check(); err != nil {
		t.Error(err)
	}
}

// TestWatchActives: a replica sees the active pointers another replica
// moves, in every major, first the current ones.
func TestWatchActives(t *testing.T) {
	t.Parallel()
	eps := sharedEndpoints(t)
	prefix := newPrefix(t)
	writer, watcher := open(t, eps, prefix, registrytest.Options{}), open(t, eps, prefix, registrytest.Options{})
	for _, v := range []string{"v1.0.0", "v1.0.1", "v2.0.0"} {
		registrytest.Register(t, writer, v)
	}
	if _, err := writer.SetActive(model.MustParseVersion("v1.0.0"), model.Event{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watcher.WatchActives(ctx)
	// await receives until the map says want, or fails after a while.
	await := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		var got map[int]model.Version
		for {
			select {
			case got = <-ch:
				if fmt.Sprint(got) == want {
					return
				}
			case <-timeout:
				t.Fatalf("WatchActives: last map %v; want %s", got, want)
			}
		}
	}
	await("map[1:v1.0.0]")
	if _, err := writer.SetActive(model.MustParseVersion("v2.0.0"), model.Event{}); err != nil {
		t.Fatal(err)
	}
	await("map[1:v1.0.0 2:v2.0.0]")
	if _, err := writer.SetActive(model.MustParseVersion("v1.0.1"), model.Event{}); err != nil {
		t.Fatal(err)
	}
	await("map[1:v1.0.1 2:v2.0.0]")
	cancel()
	for range ch { // closed once ctx ends
	}
}
