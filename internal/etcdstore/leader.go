package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultLeaderTTL is the lease of a leader that ElectorOptions.TTL leaves
// unset: a leader that stops renewing it loses leadership this long after
// its last renewal.
const DefaultLeaderTTL = 10 * time.Second

// ElectorOptions configure an Elector.
type ElectorOptions struct {
	// Name identifies this candidate (a host name, a pod name); the
	// leader's is what Leader reports. Required.
	Name string
	// TTL is the lease of the candidate's session, in whole seconds
	// (rounded up, at least 1s). <= 0 means DefaultLeaderTTL.
	TTL time.Duration
}

// Elector campaigns for leadership of the replicas sharing a registry:
// one concurrency.Election under <prefix>/leader, on a lease renewed while
// the process lives. Leadership is advisory: it says which replica runs the
// singletons (probation, automatic rollback, the job queue); the registry's
// own changes stay safe without it, guarded by revisions.
type Elector struct {
	client *clientv3.Client
	pfx    string
	name   string
	ttl    int
	// timeout bounds the calls Run makes outside Campaign.
	timeout time.Duration

	leader  atomic.Bool
	mu      sync.Mutex // guards sending on changes, so the latest state is what stays there
	changes chan bool
}

// NewElector returns an Elector for the replicas of s's registry (same
// prefix). It does nothing until Run.
func (s *Store) NewElector(opts ElectorOptions) (*Elector, error) {
	if opts.Name == "" {
		return nil, errors.New("etcdstore: elector: a candidate name is required (e.g. the host name)")
	}
	ttl := DefaultLeaderTTL
	if opts.TTL > 0 {
		ttl = opts.TTL
	}
	return &Elector{client: s.client, pfx: s.key("leader"), name: opts.Name,
		ttl: max(1, int(math.Ceil(ttl.Seconds()))), timeout: s.timeout, changes: make(chan bool, 1)}, nil
}

// IsLeader reports whether this candidate leads now.
func (e *Elector) IsLeader() bool { return e.leader.Load() }

// Changes delivers the new state each time leadership is won or lost; a
// receiver that falls behind gets the newest state.
func (e *Elector) Changes() <-chan bool { return e.changes }

func (e *Elector) set(v bool) {
	if e.leader.Swap(v) == v {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.changes:
	default:
	}
	e.changes <- v
}

// Leader returns the name of the current leader, or an error wrapping
// concurrency.ErrElectionNoLeader when there is none.
func (e *Elector) Leader(ctx context.Context) (string, error) {
	resp, err := e.client.Get(ctx, e.pfx+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcdstore: leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("etcdstore: leader: %w", concurrency.ErrElectionNoLeader)
	}
	return string(resp.Kvs[0].Value), nil
}

// Run campaigns until ctx ends: it waits to become leader, stays leader
// while its lease is renewed, and campaigns again when the lease is lost
// (IsLeader is false from the moment the loss is seen). When ctx ends it
// stops leading first, then resigns so another candidate takes over at
// once rather than after the TTL, and returns nil.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := e.term(ctx)
		e.set(false)
		if err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// term is one session: campaign, lead until the session or ctx ends,
// resign.
func (e *Elector) term(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, e.timeout)
	lease, err := e.client.Grant(gctx, int64(e.ttl))
	cancel()
	if err != nil {
		return err
	}
	sess, err := concurrency.NewSession(e.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(e.ttl))
	if err != nil {
		return err
	}
	defer sess.Close() // revokes the lease
	el := concurrency.NewElection(sess, e.pfx)

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-sess.Done():
			stop()
		case <-cctx.Done():
		}
	}()
	if err := el.Campaign(cctx, e.name); err != nil {
		return err
	}
	// Campaign can return after the lease expired: lead only if our key is
	// still the oldest candidate's.
	lctx, cancel := context.WithTimeout(cctx, e.timeout)
	resp, err := el.Leader(lctx)
	cancel()
	if err != nil || string(resp.Kvs[0].Key) != el.Key() || resp.Kvs[0].CreateRevision != el.Rev() {
		return fmt.Errorf("etcdstore: elector: leadership lost before it began: %v", err)
	}
	// The session notices a revoked or expired lease only at its next
	// renewal (TTL/3 away); the key's deletion is seen at once.
	wch := e.client.Watch(clientv3.WithRequireLeader(cctx), el.Key(), clientv3.WithRev(el.Rev()), clientv3.WithFilterPut())
	e.set(true)
	select {
	case <-sess.Done():
		return errors.New("etcdstore: elector: lease lost")
	case wr := <-wch:
		if ctx.Err() == nil {
			// Deleted, or the watch broke: stop leading rather than guess.
			return fmt.Errorf("etcdstore: elector: leader key deleted or unwatchable (%v)", wr.Err())
		}
		e.set(false)
		rctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		defer cancel()
		return el.Resign(rctx)
	case <-ctx.Done():
		e.set(false)
		rctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		defer cancel()
		return el.Resign(rctx)
	}
}
