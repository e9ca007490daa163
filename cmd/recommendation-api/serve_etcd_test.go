package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/etcdstore/etcdtest"
)

// TestRegistryFlags: --registry and the etcd options parse what they
// document, and refuse the rest with a usage error naming what is accepted.
func TestRegistryFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (Config, error) {
		c, _, err := parseServeFlags(args, func(string) string { return "" }, io.Discard)
		return c, err
	}
	for _, tc := range []struct {
		name string
		args []string
		want registrySpec
	}{
		{"Default", nil, registrySpec{path: "data/registry.db"}},
		{"Bbolt", []string{"--registry", "bbolt:///var/lib/reco/reg.db"}, registrySpec{path: "/var/lib/reco/reg.db"}},
		{"Etcd", []string{"--registry", "etcd://etcd-0:2379,10.0.0.2:2379,[::1]:2379"}, registrySpec{etcd: true, endpoints: []string{"etcd-0:2379", "10.0.0.2:2379", "[::1]:2379"}}},
		{"EtcdOptions", []string{"--registry", "etcd://e:2379", "--etcd-ca", "ca.pem", "--etcd-cert", "c.pem", "--etcd-key", "k.pem",
			"--etcd-user", "reco", "--etcd-password-file", "pw", "--leader-lease-ttl", "5s", "--etcd-prefix", "/x"}, registrySpec{etcd: true, endpoints: []string{"e:2379"}}},
	} {
		t.Run("OK"+tc.name, func(t *testing.T) {
			c, err := parse(tc.args...)
			if err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
			}
			got, err := parseRegistry(c.Registry, c.DataDir)
			if err != nil || got.etcd != tc.want.etcd || got.path != tc.want.path || !slices.Equal(got.endpoints, tc.want.endpoints) {
				t.Errorf("registry %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"Scheme", []string{"--registry", "consul://x:1"}, []string{`unknown scheme "consul"`, registryWant}},
		{"NoScheme", []string{"--registry", "/data/reg.db"}, []string{"no scheme", registryWant}},
		{"EmptyBbolt", []string{"--registry", "bbolt://"}, []string{"no file path", registryWant}},
		{"EmptyEtcd", []string{"--registry", "etcd://"}, []string{"no endpoint", registryWant}},
		{"NoPort", []string{"--registry", "etcd://etcd-0"}, []string{`endpoint "etcd-0" is not HOST:PORT`}},
		{"BadPort", []string{"--registry", "etcd://a:2379,b:99999"}, []string{`endpoint "b:99999" has port "99999"; want 1..65535`}},
		{"URLPath", []string{"--registry", "etcd://a:2379/x"}, []string{`endpoint "a:2379/x" is not HOST:PORT`}},
		{"EtcdOptionWithBbolt", []string{"--etcd-ca", "ca.pem"}, []string{"--etcd-ca is set, but the registry is a bbolt file", "--registry etcd://"}},
		{"PrefixWithBbolt", []string{"--etcd-prefix", "/x"}, []string{"--etcd-prefix is set"}},
		{"CertWithoutKey", []string{"--registry", "etcd://e:1", "--etcd-ca", "ca", "--etcd-cert", "c"}, []string{"--etcd-cert and --etcd-key go together"}},
		{"CertWithoutCA", []string{"--registry", "etcd://e:1", "--etcd-cert", "c", "--etcd-key", "k"}, []string{"--etcd-cert needs --etcd-ca"}},
		{"UserWithoutPassword", []string{"--registry", "etcd://e:1", "--etcd-user", "u"}, []string{"--etcd-user and --etcd-password-file go together"}},
		{"Prefix", []string{"--registry", "etcd://e:1", "--etcd-prefix", "reco"}, []string{`--etcd-prefix (RECO_ETCD_PREFIX) "reco"; want a key prefix starting with /`}},
		{"LeaseShort", []string{"--registry", "etcd://e:1", "--leader-lease-ttl", "500ms"}, []string{"--leader-lease-ttl (RECO_LEADER_LEASE_TTL) 500ms; want whole seconds from 1s to 5m"}},
		{"LeaseFraction", []string{"--registry", "etcd://e:1", "--leader-lease-ttl", "2500ms"}, []string{"want whole seconds"}},
		{"ReplicaName", []string{"--registry", "etcd://e:1", "--replica-name", "a/b"}, []string{`--replica-name (RECO_REPLICA_NAME) "a/b"`}},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			_, err := parse(tc.args...)
			var u usageError
			if !errors.As(err, &u) {
				t.Fatalf("parse %v = %v; want a usage error", tc.args, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("ErrEnv", func(t *testing.T) {
		_, _, err := parseServeFlags(nil, func(k string) string {
			if k == "RECO_REGISTRY" {
				return "etcd://nope"
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "RECO_REGISTRY") {
			t.Errorf("RECO_REGISTRY=etcd://nope: %v; want a usage error naming it", err)
		}
	})
}

// TestReplicasFollowRollback: three replicas on one etcd under Predict
// load; a version registered through one, activated through another and
// rolled back through the third is served by all of them, without one
// failed call, and every replica reports each major SERVING.
func TestReplicasFollowRollback(t *testing.T) {
	needORT(t)
	t.Parallel()
	eps := hostPorts(startEtcd(t, 1).Endpoints())
	prefix := replicaPrefix(t)
	var rs []*testServer
	for i := range 3 {
		rs = append(rs, startReplica(t, eps, prefix, fmt.Sprintf("r%d", i), nil))
	}
	ctx := t.Context()
	def := defaultVersion(t).Version.String()
	if _, err := awaitAll(ctx, rs, def, waitFor); err != nil {
		t.Fatal(err)
	}
	l := startLoad(ctx, rs, 2)
	b, man := testModelVersion(t, 11, "v1.2.0")
	if err := registerVersion(ctx, rs[0], b, man); err != nil {
		t.Fatalf("register through r0: %v", err)
	}
	if _, err := rs[1].registry().ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "test"}); err != nil {
		t.Fatalf("activate through r1: %v", err)
	}
	if _, err := awaitAll(ctx, rs, "v1.2.0", waitFor); err != nil {
		t.Fatal(err)
	}
	if _, err := rs[2].registry().Rollback(ctx, &recommendationv1.RollbackRequest{Actor: "test", Reason: "test"}); err != nil {
		t.Fatalf("rollback through r2: %v", err)
	}
	if _, err := awaitAll(ctx, rs, def, waitFor); err != nil {
		t.Fatal(err)
	}
	calls, failed, errs := l.end()
	if failed != 0 || calls == 0 {
		t.Errorf("%d of %d Predict calls failed: %v", failed, calls, errs)
	}
	for i, r := range rs {
		if st := r.majorHealth(ctx); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("r%d: health of %s = %v; want SERVING", i, "major 1", st)
		}
		if g := gaugeValue(t, r.srv.repl.follow.WithLabelValues("1")); g != 1 {
			t.Errorf("r%d: recommendation_replica_in_sync{major=1} = %v; want 1", i, g)
		}
	}
	leaders := 0
	for _, r := range rs {
		if r.srv.elector.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d replicas lead; want 1", leaders)
	}
}

// TestReplicasRegisterSameVersion: two replicas registering the same
// version at once: one stores it, the other gets ALREADY_EXISTS.
func TestReplicasRegisterSameVersion(t *testing.T) {
	needORT(t)
	t.Parallel()
	eps := hostPorts(startEtcd(t, 1).Endpoints())
	prefix := replicaPrefix(t)
	rs := []*testServer{startReplica(t, eps, prefix, "a", nil), startReplica(t, eps, prefix, "b", nil)}
	ctx := t.Context()
	for k, v := range []string{"v1.2.0", "v1.3.0", "v1.4.0"} {
		b, man := testModelVersion(t, int64(20+k), v)
		errs := make([]error, len(rs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, r := range rs {
			wg.Go(func() { <-start; errs[i] = registerVersion(ctx, r, b, man) })
		}
		close(start)
		wg.Wait()
		ok, exists := 0, 0
		for _, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				ok++
			case codes.AlreadyExists:
				exists++
			default:
				t.Errorf("register %s: %v; want OK or ALREADY_EXISTS", v, err)
			}
		}
		if ok != 1 || exists != 1 {
			t.Errorf("register %s at once through two replicas: %d OK, %d ALREADY_EXISTS (%v); want one each", v, ok, exists, errs)
		}
	}
	if err := rs[0].srv.store.Check(); err != nil {
		t.Errorf("registry check: %v", err)
	}
}

// TestReplicaPartitioned: a replica cut off from etcd (a TCP proxy between
// them is cut) keeps serving its version, reports major 1 NOT_SERVING and
// the registry unreachable, and once the proxy heals serves what was
// activated meanwhile and reports SERVING again.
func TestReplicaPartitioned(t *testing.T) {
	needORT(t)
	t.Parallel()
	cluster := startEtcd(t, 1)
	eps := hostPorts(cluster.Endpoints())
	proxy := newTCPProxy(t, eps[0])
	prefix := replicaPrefix(t)
	ok := startReplica(t, eps, prefix, "direct", nil)
	cut := startReplica(t, []string{proxy.Addr()}, prefix, "proxied", nil)
	ctx := t.Context()
	def := defaultVersion(t).Version.String()
	if _, err := awaitAll(ctx, []*testServer{ok, cut}, def, waitFor); err != nil {
		t.Fatal(err)
	}
	l := startLoad(ctx, []*testServer{cut}, 2)

	proxy.Cut()
	eventuallyTrue(t, waitFor, "the cut replica reports major 1 NOT_SERVING", func() bool {
		return cut.majorHealth(ctx) == healthpb.HealthCheckResponse_NOT_SERVING
	})
	eventuallyTrue(t, waitFor, "the cut replica reports recommendation_registry_reachable 0", func() bool {
		return gaugeValue(t, cut.srv.repl.reach) == 0
	})
	if g := gaugeValue(t, cut.srv.repl.follow.WithLabelValues("1")); g != 0 {
		t.Errorf("recommendation_replica_in_sync{major=1} = %v on the cut replica; want 0", g)
	}
	b, man := testModelVersion(t, 31, "v1.2.0")
	if err := registerVersion(ctx, ok, b, man); err != nil {
		t.Fatal(err)
	}
	if _, err := ok.registry().ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if v, err := cut.servingVersion(ctx); err != nil || v != def {
		t.Fatalf("the cut replica answers %q, %v; want %s, its last version", v, err, def)
	}
	if st, err := dialHealth(t, cut.grpcAddr).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("the cut replica's overall health = %v, %v; want SERVING (it still answers)", st.GetStatus(), err)
	}

	proxy.Heal()
	if _, err := awaitAll(ctx, []*testServer{cut}, "v1.2.0", waitFor); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, waitFor, "the healed replica reports major 1 SERVING", func() bool {
		return cut.majorHealth(ctx) == healthpb.HealthCheckResponse_SERVING
	})
	calls, failed, errs := l.end()
	if failed != 0 || calls == 0 {
		t.Errorf("%d of %d Predict calls on the cut replica failed: %v", failed, calls, errs)
	}
}

// TestReplicasEtcdMemberKilled: with one member of a 3-member etcd killed,
// the replicas go on serving without a failed call, and an activation made
// afterwards reaches both.
func TestReplicasEtcdMemberKilled(t *testing.T) {
	needORT(t)
	t.Parallel()
	cluster := startEtcd(t, 3)
	eps := hostPorts(cluster.Endpoints())
	prefix := replicaPrefix(t)
	rs := []*testServer{startReplica(t, eps, prefix, "a", nil), startReplica(t, eps, prefix, "b", nil)}
	ctx := t.Context()
	l := startLoad(ctx, rs, 2)
	b, man := testModelVersion(t, 41, "v1.2.0")
	if err := registerVersion(ctx, rs[0], b, man); err != nil {
		t.Fatal(err)
	}
	cluster.Kill(0)
	// The call may fail in transit while the cluster settles; a retry
	// learns whether it was applied (a no-op note when it was).
	var err error
	for range 10 {
		if _, err = rs[1].registry().ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "test"}); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("activate with a member down: %v", err)
	}
	if _, err := awaitAll(ctx, rs, "v1.2.0", waitFor); err != nil {
		t.Fatal(err)
	}
	calls, failed, errs := l.end()
	if failed != 0 || calls == 0 {
		t.Errorf("%d of %d Predict calls failed with a member down: %v", failed, calls, errs)
	}
}

var electedLine = regexp.MustCompile(`elected leader`)

// TestReplicaLeaderKilledMidJob: two replica processes; a training job
// started through the follower runs on the leader; the leader is killed
// (SIGKILL) mid-job; the other replica takes over and the job reads FAILED
// "interrupted: runner lost", its version not registered.
func TestReplicaLeaderKilledMidJob(t *testing.T) {
	needORT(t)
	t.Parallel()
	if _, ok := etcdtest.Binary(); !ok {
		t.Skip(etcdtest.SkipMessage)
	}
	eps := hostPorts(startEtcd(t, 1).Endpoints())
	args := []string{"--registry", "etcd://" + strings.Join(eps, ","), "--etcd-prefix", replicaPrefix(t), "--leader-lease-ttl", "2s"}
	a := startServe(t, t.TempDir(), append(args, "--replica-name", "a")...)
	eventuallyTrue(t, waitFor, "a leads", func() bool { return electedLine.MatchString(a.stderr.String()) })
	bp := startServe(t, t.TempDir(), append(args, "--replica-name", "b")...)
	leader, follower := a, bp
	c := &http.Client{Timeout: 10 * time.Second}

	var started recommendationv1.StartTrainingResponse
	if code := restJSON(t, c, http.MethodPost, "http://"+follower.http+"/v1/training-jobs",
		`{"samples":60000,"epochs":200,"bump":"minor","activation_policy":"ACTIVATION_POLICY_ALWAYS"}`, &started); code != http.StatusOK {
		t.Fatalf("start through the follower = %d", code)
	}
	id := started.GetJob().GetId()
	version := started.GetJob().GetVersion()
	get := func(p *serveProcess) *recommendationv1.Job {
		var got recommendationv1.GetJobResponse
		restJSON(t, c, http.MethodGet, "http://"+p.http+"/v1/training-jobs/"+id, "", &got)
		return got.GetJob()
	}
	eventuallyTrue(t, waitFor, "the leader runs the job queued through the follower", func() bool {
		return get(follower).GetState() == recommendationv1.JobState_JOB_STATE_RUNNING
	})
	eventuallyTrue(t, waitFor, "the leader logs that it started "+id, func() bool { return strings.Contains(leader.stderr.String(), id) })
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.exited

	eventuallyTrue(t, waitFor, "the follower takes over", func() bool { return electedLine.MatchString(follower.stderr.String()) })
	var j *recommendationv1.Job
	eventuallyTrue(t, waitFor, "the job reads FAILED", func() bool {
		j = get(follower)
		return j.GetState() == recommendationv1.JobState_JOB_STATE_FAILED
	})
	if !strings.HasPrefix(j.GetError(), "interrupted: runner lost") || j.GetRegistered() {
		t.Errorf("job after the leader died = error %q, registered %v; want \"interrupted: runner lost\", nothing registered", j.GetError(), j.GetRegistered())
	}
	var list recommendationv1.ListVersionsResponse
	restJSON(t, c, http.MethodGet, "http://"+follower.http+"/v1/models", "", &list)
	for _, m := range list.GetVersions() {
		if m.GetVersion() == version {
			t.Errorf("%s is registered, by a job whose runner died mid-training", version)
		}
	}
}

// BenchmarkReplicaConvergence measures how long after a release call
// returns every one of three replicas under Predict load answers with the
// new version: RECO_BENCH_ROLLBACKS (default 50) rollbacks, each after an
// activation, each through a different replica than the last. It reports
// the distribution (ms) and the failed Predict calls, which must be 0.
func BenchmarkReplicaConvergence(b *testing.B) {
	n := 50
	if v := os.Getenv("RECO_BENCH_ROLLBACKS"); v != "" {
		fmt.Sscan(v, &n)
	}
	for b.Loop() {
		runConvergence(b, n)
	}
}

func runConvergence(b *testing.B, n int) {
	if os.Getenv("ONNXRUNTIME_LIB") == "" {
		b.Skip("ONNXRUNTIME_LIB unset")
	}
	cluster := etcdtest.Start(b, 1)
	eps := hostPorts(cluster.Endpoints())
	prefix := replicaPrefix(b)
	var rs []*testServer
	for i := range 3 {
		rs = append(rs, startReplica(b, eps, prefix, fmt.Sprintf("r%d", i), nil))
	}
	ctx := context.Background()
	def := "v1.1.0"
	if _, err := awaitAll(ctx, rs, def, waitFor); err != nil {
		b.Fatal(err)
	}
	bb, man := testModelVersion(b, 51, "v1.2.0")
	if err := registerVersion(ctx, rs[0], bb, man); err != nil {
		b.Fatal(err)
	}
	l := startLoad(ctx, rs, 2)
	var rollbacks, activations []time.Duration
	for i := range n {
		via := rs[(2*i)%3]
		if _, err := via.registry().ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		d, err := awaitAll(ctx, rs, "v1.2.0", 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		activations = append(activations, d)
		via = rs[(2*i+1)%3]
		if _, err := via.registry().Rollback(ctx, &recommendationv1.RollbackRequest{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		if d, err = awaitAll(ctx, rs, def, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		rollbacks = append(rollbacks, d)
	}
	calls, failed, errs := l.end()
	q := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(rollbacks, 0.5), "p50-ms")
	b.ReportMetric(q(rollbacks, 0.99), "p99-ms")
	b.ReportMetric(q(rollbacks, 1), "max-ms")
	b.ReportMetric(float64(failed), "failed-calls")
	fmt.Printf("replica convergence (3 replicas, 1 etcd member, 2 Predict callers each; ms from the call's return until all three answer with the new version)\n")
	fmt.Printf("| release | n | p50 | p90 | p99 | max | within 1 s |\n|---|---|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{{"rollback", rollbacks}, {"activate", activations}} {
		w := 0
		for _, d := range r.ds {
			if d <= time.Second {
				w++
			}
		}
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %.1f | %d/%d |\n", r.name, len(r.ds), q(r.ds, 0.5), q(r.ds, 0.9), q(r.ds, 0.99), q(r.ds, 1), w, len(r.ds))
	}
	fmt.Printf("Predict calls: %d, failed: %d %v\n", calls, failed, errs)
}

// gaugeValue reads a gauge.
func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
