package main

// Helpers for the tests of several replicas sharing a registry in a real
// etcd (internal/etcdstore/etcdtest): in-process servers started through
// newServer and serve, Predict load on each, and a TCP proxy that can cut
// a replica off from etcd.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/etcdstore/etcdtest"
	"recommendation-api/internal/model"
	"recommendation-api/internal/transport"
)

// hostPorts strips the scheme of etcd client URLs.
func hostPorts(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = strings.TrimPrefix(u, "http://")
	}
	return out
}

// replicaPrefix is a registry prefix of its own for each test.
func replicaPrefix(t testing.TB) string {
	return "/test/" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + fmt.Sprintf("-%d", time.Now().UnixNano())
}

// startReplica starts an in-process server on the registry in etcd at
// endpoints (host:port) under prefix.
func startReplica(t testing.TB, endpoints []string, prefix, name string, configure func(*Config)) *testServer {
	t.Helper()
	return startServerWith(t, func(c *Config) {
		c.Registry = "etcd://" + strings.Join(endpoints, ",")
		c.EtcdPrefix = prefix
		c.ReplicaName = name
		c.LeaderLeaseTTL = 2 * time.Second
		c.Probation = time.Hour // no automatic rollback under the tests' load
		if configure != nil {
			configure(c)
		}
	}, nil)
}

func (ts *testServer) registry() recommendationv1.ModelRegistryServiceClient {
	return recommendationv1.NewModelRegistryServiceClient(ts.conn)
}

// serving returns the version of major 1 a Predict on ts answers with.
func (ts *testServer) servingVersion(ctx context.Context) (string, error) {
	resp, err := ts.client.Predict(ctx, mixedRequest(1, 1))
	if err != nil {
		return "", err
	}
	return resp.GetModelVersion(), nil
}

// majorHealth returns ts's gRPC health status of major 1.
func (ts *testServer) majorHealth(ctx context.Context) healthpb.HealthCheckResponse_ServingStatus {
	resp, err := healthpb.NewHealthClient(ts.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: transport.MajorService(1)})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

// registerVersion registers b, man through ts over gRPC.
func registerVersion(ctx context.Context, ts *testServer, b []byte, man *model.Manifest) error {
	mj, err := json.Marshal(man)
	if err != nil {
		return err
	}
	_, err = ts.registry().RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: string(mj), Actor: "test"})
	return err
}

// load is Predict traffic on every replica, counting failed calls.
// callTally counts a load's calls and failures and keeps the first five
// errors.
type callTally struct {
	calls, failed atomic.Int64
	mu            sync.Mutex
	errs          []string
}

func (c *callTally) record(err error) {
	c.calls.Add(1)
	if err == nil {
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	if len(c.errs) < 5 {
		c.errs = append(c.errs, err.Error())
	}
	c.mu.Unlock()
}

type load struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	callTally
}

// startLoad runs perReplica callers on each replica until stopped.
func startLoad(ctx context.Context, replicas []*testServer, perReplica int) *load {
	l := &load{}
	for _, r := range replicas {
		for c := range perReplica {
			l.wg.Go(func() {
				for i := 0; !l.stop.Load(); i++ {
					req := mixedRequest(c*1_000_000+i, 1+i%3)
					resp, err := r.client.Predict(ctx, req)
					if err == nil {
						err = checkResponse(req, resp)
					}
					if ctx.Err() != nil {
						err = nil // the load is stopping: not a failure
					}
					l.record(err)
				}
			})
		}
	}
	return l
}

// end stops the load and returns the calls made and failed, with a few errors.
func (l *load) end() (calls, failed int64, errs []string) {
	l.stop.Store(true)
	l.wg.Wait()
	return l.calls.Load(), l.failed.Load(), l.errs
}

// awaitAll waits until every replica's Predict answers with version,
// returning how long that took.
func awaitAll(ctx context.Context, replicas []*testServer, version string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	pending := map[int]bool{}
	for i := range replicas {
		pending[i] = true
	}
	for len(pending) > 0 {
		for i := range pending {
			if v, err := replicas[i].servingVersion(ctx); err == nil && v == version {
				delete(pending, i)
			}
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("replicas %v do not serve %s after %v", keys(pending), version, limit)
		}
		if len(pending) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return time.Since(start), nil
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

func eventuallyTrue(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
	}
}

// startEtcd starts an n-member etcd, skipping the test without etcd.
func startEtcd(t testing.TB, n int) *etcdtest.Cluster { return etcdtest.Start(t, n) }

// tcpProxy forwards connections from a loopback port to target; Cut closes
// every connection and refuses new ones (they are accepted and closed at
// once) until Heal.
type tcpProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

func (p *tcpProxy) Addr() string { return p.l.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut drops every connection and refuses new ones.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal forwards new connections again.
func (p *tcpProxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// dialHealth is a health client of addr.
func dialHealth(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}
