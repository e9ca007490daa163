package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/console"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/etcdstore"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// runServe runs the server until ctx ends (SIGINT/SIGTERM), then stops
// gracefully: in-flight calls finish, and the process exits 0. A start-up
// failure is one error naming its cause (a port in use, a registry locked by
// another server, no ONNX Runtime, a data directory it cannot write).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parseServeFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.serve(ctx)
}

// newLogger returns a logger writing format ("json" or "text", as
// Config.validate accepts) at level (debug, info, warn or error) to w.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo // unreachable after Config.validate
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// server is the running process: listeners, gRPC server, gateway, models.
type server struct {
	cfg        Config
	log        *slog.Logger
	models     *serving.Manager
	store      model.Registry     // bbolt file or etcd
	etcd       *etcdstore.Store   // the store in etcd mode; nil with bbolt
	elector    *etcdstore.Elector // etcd mode: the leader election
	replica    string             // etcd mode: this replica's name
	repl       *replication       // etcd mode: in-sync state for health and metrics
	releases   *rollback.Controller
	jobs       *jobs.Manager
	health     *transport.Health
	grpc       *grpc.Server
	grpcLis    net.Listener
	httpLis    net.Listener
	http       *http.Server
	stopGate   context.CancelFunc
	sec        *security
	metrics    *transport.Metrics
	inproc     *transport.InProcess // the gateway's connection to s.grpc
	metricsLis net.Listener         // nil without --metrics-addr
	metricsSrv *http.Server
}

// newServer loads ONNX Runtime, listens on both addresses (so a port clash
// fails fast and tests can use ":0"), opens the registry, loads the model to
// serve and wires the handlers. On error everything opened so far is closed
// and the error is one line naming the cause.
func newServer(ctx context.Context, cfg Config, log *slog.Logger) (*server, error) {
	s := &server{cfg: cfg, log: log}
	// First: without authentication this rewrites the addresses to
	// loopback and says so in the first log line.
	sec, err := newSecurity(&s.cfg, log)
	if err != nil {
		return nil, err
	}
	s.sec = sec
	if err := s.open(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *server) open(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	started := time.Now()
	if err := serving.InitRuntime(cfg.ORTLib); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var err error
	if s.grpcLis, err = listen("gRPC", "--grpc-addr", cfg.GRPCAddr); err != nil {
		return err
	}
	if s.httpLis, err = listen("REST", "--http-addr", cfg.HTTPAddr); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		if s.metricsLis, err = listen("metrics", "--metrics-addr", cfg.MetricsAddr); err != nil {
			return err
		}
	}
	if err := s.openStore(); err != nil {
		return err
	}
	s.metrics = s.newMetrics(started)
	s.models = serving.NewManager(serving.Options{Session: serving.SessionOptions{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: 1}})
	s.health = transport.NewHealth()
	s.grpc = transport.NewGRPCServer(log, s.health, s.sec.grpcOptions(s.metrics)...)
	models := transport.ModelsOf(s.models)
	recommendationv1.RegisterRecommendationServiceServer(s.grpc, transport.NewPredictServer(models, transport.PredictOptions{MaxBatch: cfg.MaxBatch}, log))

	relOpts := rollback.Options{Probation: cfg.Probation, FailureThreshold: cfg.FailureThreshold, Log: log}
	jobOpts := jobs.Options{QueueSize: cfg.JobQueue, Workers: cfg.TrainWorkers, TraceDir: cfg.TraceDir, MaxSamples: cfg.MaxJobSamples, EvalSamples: cfg.JobEvalSamples, Log: log}
	if s.etcd != nil {
		s.repl = newReplication(s.metrics.Registry())
		relOpts.OnFollow = s.followed
		jobOpts.Shared = &jobs.Shared{Replica: s.replica, RunnerTTL: cfg.LeaderLeaseTTL}
		if s.elector, err = s.etcd.NewElector(etcdstore.ElectorOptions{Name: s.replica, TTL: cfg.LeaderLeaseTTL}); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	s.releases = rollback.New(s.store, s.models, relOpts)
	recommendationv1.RegisterModelRegistryServiceServer(s.grpc, transport.NewRegistryServer(s.metrics.Releases(s.releases), log))
	if s.jobs, err = jobs.New(s.store, s.releases, jobOpts); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	recommendationv1.RegisterTrainingServiceServer(s.grpc, transport.NewTrainingServer(s.jobs, log))
	if err := transport.CheckAccessTable(s.grpc); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	gwCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopGate = cancel
	s.inproc = transport.NewInProcess()
	gw, err := transport.NewGateway(gwCtx, transport.InProcessTarget, transport.GatewayOptions{Models: models, Log: log, DialOptions: s.inproc.DialOptions()})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The operator console under /console/, beside the REST routes it calls.
	gw = console.Mount(gw, console.Options{Guard: s.sec.authn.RequireHTTP, EvaluationDir: filepath.Join(cfg.DataDir, "evaluations"), Log: log})
	s.newHTTPServers(gw)

	// Serve the registry's active version; on first start (empty registry)
	// register and activate the embedded default model.
	var seeds []rollback.Seed // the embedded default model of every major
	for _, load := range defaultmodel.All() {
		seeds = append(seeds, load)
	}
	if err := s.releases.Start(gwCtx, seeds...); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.health.SetServing(true)
	for _, major := range s.models.Majors() {
		s.health.SetMajorServing(major, true)
	}
	if s.repl != nil {
		s.reportReplication()
		s.log.Info("registry shared in etcd", "registry", cfg.Registry, "prefix", s.etcd.Prefix(), "replica", s.replica)
	}
	return nil
}

// listen listens on addr for what ("gRPC", "REST"), set by flag; a port in
// use says so and how to choose another.
func listen(what, flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("serve: %s listener %s: address already in use; stop what listens there or choose another address with %s", what, addr, flag)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("serve: %s listener %s: permission denied (ports below 1024 need privileges); choose another address with %s", what, addr, flag)
	}
	return nil, fmt.Errorf("serve: %s listener %s: %w; set it with %s", what, addr, unwrapOp(err), flag)
}

// unwrapOp drops net.OpError's "listen tcp <addr>:" prefix, which the
// caller's message already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// openRegistry opens the registry file in dir, creating both if needed. A
// failure says which of the usual causes it is: another process holds the
// file's lock, the directory or the file is not writable by this process.
func openRegistry(dir, path string) (*registry.Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("serve: data directory %s cannot be created: %v; choose another with --data-dir", dir, unwrapPath(err))
	}
	store, err := registry.Open(path, registry.Options{})
	if err == nil {
		return store, nil
	}
	if pid, locked := lockHolder(path); locked {
		return nil, fmt.Errorf("serve: registry %s is locked by another process (pid %s); is another server running on this data directory?", path, pid)
	}
	if errors.Is(err, fs.ErrPermission) {
		if fi, serr := os.Stat(path); serr == nil {
			return nil, fmt.Errorf("serve: registry %s cannot be opened for reading and writing by this process (%s): the file is %s; fix its owner or mode, or choose another --data-dir",
				path, whoAmI(), describeFile(fi))
		}
		return nil, fmt.Errorf("serve: data directory %s is not writable by this process (%s), so the registry file cannot be created there; fix its permissions or choose another --data-dir",
			dir, whoAmI())
	}
	return nil, fmt.Errorf("serve: %w", err)
}

// unwrapPath drops fs.PathError's operation and path, which the caller's
// message already says.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// serve runs until ctx ends, then shuts down within cfg.ShutdownTimeout.
//
// Every long-lived actor is an execute/interrupt pair in one errgroup: the
// gRPC server (Serve / GracefulStop), the REST server (Serve / Shutdown),
// the training-job worker (jobs.Run / cancelling its context) and the
// probation watcher (rollback.Run / the group's context). When ctx ends, or
// any actor fails, the interrupts run in this order, all within one
// deadline of cfg.ShutdownTimeout:
//
//  1. health reports NOT_SERVING, so load balancers stop sending calls;
//  2. the job worker stops: Start refuses new jobs ("shutting down"), the
//     running job stops within an epoch (or finishes the registration it
//     has begun), queued jobs end FAILED "interrupted". This comes before
//     the drains because a WatchJob stream (gRPC) or a :watch response
//     (REST) stays open until its job ends, and would hold either drain
//     until the deadline;
//  3. REST drains: its calls go through gRPC, which still serves them;
//  4. gRPC drains (GracefulStop), forced with Stop at the deadline;
//  5. the worker is awaited, since it writes to the registry that close
//     then closes.
//
// With --registry etcd://... the job worker is jobs.Follow on every replica
// plus, while this replica holds the leader lease, jobs.Lead and the
// probation watcher (rollback.Lead), started and stopped as leadership
// comes and goes; queued jobs then stay queued for the next leader. The
// election (etcdstore.Elector.Run) and the follower of the active pointers
// (rollback.Follow fed by WatchActives and a probe every second) stop
// after step 5, so a leader resigns only once its job is recorded.
//
// A worker still busy at the deadline (a job blocked in a read that does not
// heed its context, such as a trace on a hung mount) is not waited for:
// serve returns an error without closing the registry, and the process
// exits; bbolt needs no close to stay consistent, and the job reads FAILED
// "interrupted" after a restart.
func (s *server) serve(ctx context.Context) error {
	hup, stopHup := notifyHangup() // before any listener serves, so a SIGHUP never finds no handler
	defer stopHup()
	s.sec.logStart(s.log)
	s.log.Info("listening", "grpc", s.grpcLis.Addr().String(), "http", s.httpLis.Addr().String(), "metrics", s.cfg.MetricsAddr, "tls", s.sec.tls != nil)
	g, gctx := errgroup.WithContext(ctx)
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	jobsDone := make(chan struct{})
	// Etcd mode's replication: the election and the follower of the
	// active pointers run until the job actor has returned (a leader
	// resigns only once its running job is recorded), then stop.
	replCtx, stopRepl := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRepl()
	if s.etcd == nil {
		g.Go(func() error { defer close(jobsDone); s.jobs.Run(jobsCtx); return nil })
		g.Go(func() error { return s.releases.Run(gctx) }) // probation watcher
	} else {
		// Probation and the job queue only while this replica leads.
		g.Go(func() error { defer close(jobsDone); s.runShared(jobsCtx); return nil })
		g.Go(func() error { return s.elector.Run(replCtx) })
		g.Go(func() error { return s.followRegistry(replCtx) })
	}
	g.Go(func() error {
		// ErrServerStopped: the context ended before Serve started, and
		// shutdown already stopped the server; that is a clean stop too.
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error { // the gateway's in-process connection
		if err := s.grpc.Serve(s.inproc.Listener()); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve: gRPC in process: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := s.serveHTTP(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: REST: %w", err)
		}
		return nil
	})
	if s.metricsSrv != nil {
		g.Go(func() error {
			if err := s.metricsSrv.Serve(s.metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: metrics: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error { return s.sec.reloadOnHangup(gctx, hup, s.log) }) // token file and certificate
	abandoned := make(chan error, 1)                                     // the worker outlived the deadline
	g.Go(func() error {
		<-gctx.Done()
		err := s.shutdown(stopJobs, jobsDone)
		stopRepl()
		if err != nil {
			abandoned <- err
		}
		return nil
	})
	all := make(chan error, 1)
	go func() { all <- g.Wait() }() // returns once every actor has; see above for the exception
	var err error
	select {
	case err = <-all:
	case err = <-abandoned:
		s.log.Error("shutdown incomplete", "err", err)
		return err
	}
	s.close()
	if ctx.Err() != nil && err == nil {
		s.log.Info("stopped")
	}
	return err
}

// shutdown runs the interrupts in serve's order within cfg.ShutdownTimeout.
// It returns an error only when the job worker has not returned by then.
func (s *server) shutdown(stopJobs context.CancelFunc, jobsDone <-chan struct{}) error {
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.health.Shutdown()
	stopJobs() // running and queued jobs end FAILED "interrupted"; WatchJob streams close
	if err := s.http.Shutdown(deadline); err != nil {
		s.log.Warn("REST drain timed out; closing its connections", "err", err)
		_ = s.http.Close()
	}
	if s.metricsSrv != nil {
		_ = s.metricsSrv.Close() // scrapes are short; nothing to drain
	}
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		s.log.Warn("graceful stop timed out; forcing")
		s.grpc.Stop()
		<-done
	}
	select {
	case <-jobsDone:
		return nil
	case <-deadline.Done():
		return fmt.Errorf("serve: shutdown: the training job worker did not stop within --shutdown-timeout %s; exiting without waiting for it (its job reads FAILED \"interrupted\" after a restart)", s.cfg.ShutdownTimeout)
	}
}

func (s *server) close() {
	if s.stopGate != nil {
		s.stopGate()
	}
	if s.grpcLis != nil {
		s.grpcLis.Close()
	}
	if s.httpLis != nil {
		s.httpLis.Close()
	}
	if s.metricsLis != nil {
		s.metricsLis.Close()
	}
	if s.models != nil {
		s.models.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
