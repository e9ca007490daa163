package main

// The registry's two modes: one bbolt file (one replica, the default) or
// etcd shared by several replicas, and in etcd mode the actors that keep a
// replica in step with the others: the follower of the active pointers,
// the registry probe, and the leader election that gates probation and the
// training job queue.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"recommendation-api/internal/etcdstore"
	"recommendation-api/internal/model"
	"recommendation-api/internal/rollback"
)

// EtcdConfig is the configuration of etcd mode (--registry etcd://...).
type EtcdConfig struct {
	EtcdPrefix       string        // key prefix of the registry in etcd
	EtcdCA           string        // CA bundle verifying the members' certificates ("" = plain http)
	EtcdCert         string        // client certificate (etcd --client-cert-auth), with EtcdKey
	EtcdKey          string        // its private key
	EtcdUser         string        // etcd user (auth enabled), with EtcdPasswordFile
	EtcdPasswordFile string        // file holding that user's password
	LeaderLeaseTTL   time.Duration // lease of the elected leader and of a running job's runner
	ReplicaName      string        // this replica's name in the election and in job records ("" = host name)
}

// DefaultEtcdConfig returns etcd mode's defaults.
func DefaultEtcdConfig() EtcdConfig {
	return EtcdConfig{EtcdPrefix: etcdstore.DefaultPrefix, LeaderLeaseTTL: etcdstore.DefaultLeaderTTL}
}

func addEtcdFlags(fs *flag.FlagSet, c *EtcdConfig, str func(*string, string, string, string), duration func(*time.Duration, string, string, string)) {
	str(&c.EtcdPrefix, "etcd-prefix", "RECO_ETCD_PREFIX", "etcd mode: key prefix the registry lives under (replicas of one service share it)")
	str(&c.EtcdCA, "etcd-ca", "RECO_ETCD_CA", "etcd mode: PEM CA bundle verifying the etcd members (then https); empty speaks plain http")
	str(&c.EtcdCert, "etcd-cert", "RECO_ETCD_CERT", "etcd mode: PEM client certificate for etcd's --client-cert-auth (with --etcd-key)")
	str(&c.EtcdKey, "etcd-key", "RECO_ETCD_KEY", "etcd mode: PEM private key of --etcd-cert")
	str(&c.EtcdUser, "etcd-user", "RECO_ETCD_USER", "etcd mode: user name when etcd has auth enabled (with --etcd-password-file)")
	str(&c.EtcdPasswordFile, "etcd-password-file", "RECO_ETCD_PASSWORD_FILE", "etcd mode: file holding --etcd-user's password (trailing newline ignored)")
	duration(&c.LeaderLeaseTTL, "leader-lease-ttl", "RECO_LEADER_LEASE_TTL", "etcd mode: lease of the elected leader (probation, automatic rollback, training jobs) and of a running job's runner; whole seconds")
	str(&c.ReplicaName, "replica-name", "RECO_REPLICA_NAME", "etcd mode: this replica's name in the leader election and job records; empty uses the host name (the pod name)")
}

// registrySpec is --registry parsed.
type registrySpec struct {
	etcd      bool
	path      string   // bbolt file
	endpoints []string // etcd host:port
}

const registryWant = "bbolt://PATH or etcd://HOST:PORT[,HOST:PORT...]"

// parseRegistry parses --registry; "" is the bbolt file in dataDir.
func parseRegistry(v, dataDir string) (registrySpec, error) {
	bad := func(why string) (registrySpec, error) {
		return registrySpec{}, usageError{fmt.Errorf("serve: --registry (RECO_REGISTRY) %q: %s; want %s", v, why, registryWant)}
	}
	switch {
	case v == "":
		return registrySpec{path: filepath.Join(dataDir, "registry.db")}, nil
	case strings.HasPrefix(v, "bbolt://"):
		p := strings.TrimPrefix(v, "bbolt://")
		if p == "" {
			return bad("no file path")
		}
		return registrySpec{path: p}, nil
	case strings.HasPrefix(v, "etcd://"):
		list := strings.TrimPrefix(v, "etcd://")
		if list == "" {
			return bad("no endpoint")
		}
		spec := registrySpec{etcd: true}
		for _, ep := range strings.Split(list, ",") {
			host, port, err := net.SplitHostPort(ep)
			if err != nil || host == "" || strings.ContainsAny(ep, "/?#@ ") {
				return bad(fmt.Sprintf("endpoint %q is not HOST:PORT", ep))
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return bad(fmt.Sprintf("endpoint %q has port %q; want 1..65535", ep, port))
			}
			spec.endpoints = append(spec.endpoints, ep)
		}
		return spec, nil
	}
	scheme, _, ok := strings.Cut(v, "://")
	if !ok {
		return bad("no scheme")
	}
	return bad(fmt.Sprintf("unknown scheme %q", scheme))
}

// validateRegistry checks --registry and the etcd options.
func (c Config) validateRegistry() error {
	spec, err := parseRegistry(c.Registry, c.DataDir)
	if err != nil {
		return err
	}
	e := c.EtcdConfig
	if !spec.etcd {
		def := DefaultEtcdConfig()
		for _, o := range []struct{ name, v, def string }{
			{"--etcd-ca", e.EtcdCA, ""}, {"--etcd-cert", e.EtcdCert, ""}, {"--etcd-key", e.EtcdKey, ""},
			{"--etcd-user", e.EtcdUser, ""}, {"--etcd-password-file", e.EtcdPasswordFile, ""},
			{"--etcd-prefix", e.EtcdPrefix, def.EtcdPrefix},
		} {
			if o.v != o.def {
				return usageError{fmt.Errorf("serve: %s is set, but the registry is a bbolt file; it applies only with --registry etcd://HOST:PORT[,HOST:PORT...]", o.name)}
			}
		}
		return nil
	}
	switch {
	case !strings.HasPrefix(e.EtcdPrefix, "/") || strings.ContainsAny(e.EtcdPrefix, " \t\n"):
		return usageError{fmt.Errorf("serve: --etcd-prefix (RECO_ETCD_PREFIX) %q; want a key prefix starting with / and without spaces, such as %s", e.EtcdPrefix, etcdstore.DefaultPrefix)}
	case (e.EtcdCert == "") != (e.EtcdKey == ""):
		return usageError{fmt.Errorf("serve: --etcd-cert and --etcd-key go together: set both (a client certificate and its key) or neither")}
	case e.EtcdCert != "" && e.EtcdCA == "":
		return usageError{fmt.Errorf("serve: --etcd-cert needs --etcd-ca: a client certificate is sent over TLS, which verifies the members with that CA")}
	case (e.EtcdUser == "") != (e.EtcdPasswordFile == ""):
		return usageError{fmt.Errorf("serve: --etcd-user and --etcd-password-file go together: set both or neither")}
	case e.LeaderLeaseTTL < time.Second || e.LeaderLeaseTTL > 5*time.Minute || e.LeaderLeaseTTL%time.Second != 0:
		return usageError{fmt.Errorf("serve: --leader-lease-ttl (RECO_LEADER_LEASE_TTL) %s; want whole seconds from 1s to 5m (etcd leases count seconds)", e.LeaderLeaseTTL)}
	case len(e.ReplicaName) > 128 || strings.ContainsAny(e.ReplicaName, " \t\n/"):
		return usageError{fmt.Errorf("serve: --replica-name (RECO_REPLICA_NAME) %q; want at most 128 characters without spaces or /", e.ReplicaName)}
	}
	return nil
}

// registryRequestTimeout bounds each etcd call of a replica: a member that
// does not answer is left for another well before a client's deadline.
const registryRequestTimeout = 3 * time.Second

// openStore opens the registry --registry names.
func (s *server) openStore() error {
	spec, err := parseRegistry(s.cfg.Registry, s.cfg.DataDir)
	if err != nil {
		return err
	}
	if !spec.etcd {
		st, err := openRegistry(filepath.Dir(spec.path), spec.path)
		if err != nil {
			return err
		}
		s.store = st
		return nil
	}
	e := s.cfg.EtcdConfig
	opts := etcdstore.Options{Prefix: e.EtcdPrefix, RequestTimeout: registryRequestTimeout}
	scheme := "http://"
	if e.EtcdCA != "" {
		if opts.TLS, err = etcdTLS(e); err != nil {
			return err
		}
		scheme = "https://"
	}
	for _, ep := range spec.endpoints {
		opts.Endpoints = append(opts.Endpoints, scheme+ep)
	}
	if e.EtcdUser != "" {
		b, err := os.ReadFile(e.EtcdPasswordFile)
		if err != nil {
			return fmt.Errorf("serve: --etcd-password-file %s: %v", e.EtcdPasswordFile, unwrapPath(err))
		}
		opts.Username, opts.Password = e.EtcdUser, strings.TrimRight(string(b), "\r\n")
	}
	st, err := etcdstore.Open(opts)
	if err != nil {
		return fmt.Errorf("serve: registry %s: %w; check that etcd runs there and --etcd-ca/--etcd-cert/--etcd-user match it", s.cfg.Registry, err)
	}
	s.store, s.etcd = st, st
	s.replica = e.ReplicaName
	if s.replica == "" {
		if s.replica, err = os.Hostname(); err != nil || s.replica == "" {
			s.replica = "replica-" + strconv.Itoa(os.Getpid())
		}
	}
	return nil
}

// etcdTLS builds the etcd client's TLS configuration from files.
func etcdTLS(e EtcdConfig) (*tls.Config, error) {
	pem, err := os.ReadFile(e.EtcdCA)
	if err != nil {
		return nil, fmt.Errorf("serve: --etcd-ca %s: %v", e.EtcdCA, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("serve: --etcd-ca %s holds no PEM certificate", e.EtcdCA)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if e.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(e.EtcdCert, e.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("serve: --etcd-cert %s / --etcd-key %s: %v", e.EtcdCert, e.EtcdKey, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// replication is a replica's view of how it stands with the others, which
// health and the metrics report. Fields guarded by mu.
type replication struct {
	mu        sync.Mutex
	reachable bool                   // the last registry probe answered
	inSync    map[int]bool           // per major: serves the registry's active version
	seen      map[int]bool           // majors whose status has been set
	follow    *prometheus.GaugeVec   // recommendation_replica_in_sync{major}
	failures  *prometheus.CounterVec // recommendation_replica_follow_failures_total{major}
	reach     prometheus.Gauge       // recommendation_registry_reachable
	leader    prometheus.Gauge       // recommendation_replica_leader
}

func newReplication(reg prometheus.Registerer) *replication {
	r := &replication{
		reachable: true, inSync: map[int]bool{}, seen: map[int]bool{},
		follow: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recommendation_replica_in_sync",
			Help: "1 when this replica serves the shared registry's active version of the major, 0 while it serves an older one (it failed to load the new one, or cannot reach the registry)"}, []string{"major"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recommendation_replica_follow_failures_total",
			Help: "Failed attempts to serve the shared registry's active version of the major"}, []string{"major"}),
		reach: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recommendation_registry_reachable",
			Help: "1 when the last probe of the shared registry (etcd) answered"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "recommendation_replica_leader",
			Help: "1 while this replica leads: it runs probation, automatic rollback and the training jobs"}),
	}
	r.reach.Set(1)
	reg.MustRegister(r.follow, r.failures, r.reach, r.leader)
	return r
}

// followed records Follow's outcome for a major and updates health.
func (s *server) followed(st rollback.FollowStatus) {
	r := s.repl
	r.mu.Lock()
	r.inSync[st.Major] = st.InSync()
	r.seen[st.Major] = true
	if !st.InSync() {
		r.failures.WithLabelValues(strconv.Itoa(st.Major)).Inc()
	}
	r.mu.Unlock()
	s.reportReplication()
}

// reportReplication sets each major's health and in-sync gauge: SERVING
// when the registry answers and the replica serves its active version.
func (s *server) reportReplication() {
	r := s.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, major := range s.models.Majors() {
		if !r.seen[major] {
			r.inSync[major], r.seen[major] = true, true
		}
	}
	for major, ok := range r.inSync {
		serving := ok && r.reachable
		s.health.SetMajorServing(major, serving)
		v := 0.0
		if serving {
			v = 1
		}
		r.follow.WithLabelValues(strconv.Itoa(major)).Set(v)
	}
}

// probeInterval is how often a replica checks that the registry answers
// and what it holds (a watch that broke silently is caught by it too).
const probeInterval = time.Second

// followRegistry feeds Follow with the watch of the active pointers and,
// every probeInterval, with a fresh read of them, which also tells
// whether the registry is reachable. It returns when ctx ends.
func (s *server) followRegistry(ctx context.Context) error {
	feed := make(chan map[int]model.Version, 1)
	put := func(m map[int]model.Version) {
		select { // keep only the newest
		case <-feed:
		default:
		}
		feed <- m
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		for m := range s.etcd.WatchActives(ctx) {
			put(m)
		}
	})
	wg.Go(func() {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			m, err := s.store.Actives()
			s.setReachable(err == nil, err)
			if err == nil {
				put(m)
			}
		}
	})
	return s.releases.Follow(ctx, feed)
}

func (s *server) setReachable(ok bool, err error) {
	r := s.repl
	r.mu.Lock()
	changed := r.reachable != ok
	r.reachable = ok
	r.mu.Unlock()
	if !changed {
		return
	}
	if ok {
		r.reach.Set(1)
		s.log.Info("registry reachable again", "registry", s.cfg.Registry)
	} else {
		r.reach.Set(0)
		s.log.Error("registry unreachable: serving the versions loaded, reporting NOT_SERVING per major until it answers", "registry", s.cfg.Registry, "err", err)
	}
	s.reportReplication()
}

// runShared is the training-job actor of etcd mode: it follows every
// replica's job records (jobs.Follow) until ctx ends and, while this
// replica leads, runs the job queue (jobs.Lead) and the probation watcher
// (rollback.Lead), started when leadership is won and stopped (their
// context cancelled, then awaited) when it is lost or ctx ends.
func (s *server) runShared(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.jobs.Follow(ctx) })
	defer wg.Wait()
	var (
		stop context.CancelFunc
		term sync.WaitGroup
	)
	end := func() {
		if stop != nil {
			stop()
			term.Wait()
			stop = nil
			s.repl.leader.Set(0)
		}
	}
	defer end()
	begin := func() {
		if stop != nil {
			return
		}
		var lctx context.Context
		lctx, stop = context.WithCancel(ctx)
		s.repl.leader.Set(1)
		s.log.Info("elected leader: running probation, automatic rollback and training jobs", "replica", s.replica)
		term.Go(func() { s.jobs.Lead(lctx) })
		term.Go(func() {
			if err := s.releases.Lead(lctx); err != nil {
				s.log.Error("probation watcher", "err", err)
			}
		})
	}
	if s.elector.IsLeader() {
		begin()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-s.elector.Changes():
			if leading && s.elector.IsLeader() {
				begin()
			} else if !leading {
				if stop != nil {
					s.log.Warn("leadership lost: stopping probation and the training job queue here", "replica", s.replica)
				}
				end()
			}
		}
	}
}
