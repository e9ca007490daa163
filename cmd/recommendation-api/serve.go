package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/rollback"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// runServe runs the server until ctx ends (SIGINT/SIGTERM), then stops
// gracefully: in-flight calls finish, and the process exits 0.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parseServeFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.serve(ctx)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// server is the running process: listeners, gRPC server, gateway, models.
type server struct {
	cfg      Config
	log      *slog.Logger
	models   *serving.Manager
	store    *registry.Store
	releases *rollback.Controller
	jobs     *jobs.Manager
	stopJobs context.CancelFunc
	jobsDone chan struct{} // closed when the training worker has returned
	health   *transport.Health
	grpc     *grpc.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	http     *http.Server
	stopGate context.CancelFunc
}

// newServer listens on both addresses first (so a port clash fails fast and
// tests can use ":0"), loads the model to serve, and wires the handlers.
func newServer(ctx context.Context, cfg Config, log *slog.Logger) (s *server, err error) {
	s = &server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := serving.InitRuntime(cfg.ORTLib); err != nil {
		return nil, err
	}
	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("serve: gRPC listener: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("serve: REST listener: %w", err)
	}
	s.models = serving.NewManager(serving.Options{Session: serving.SessionOptions{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: 1}})
	s.health = transport.NewHealth()
	s.grpc = transport.NewGRPCServer(log, s.health)
	models := transport.ModelsOf(s.models.Acquire, s.models.Ready)
	recommendationv1.RegisterRecommendationServiceServer(s.grpc, transport.NewPredictServer(models, transport.PredictOptions{MaxBatch: cfg.MaxBatch}, log))

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("serve: data directory: %w", err)
	}
	if s.store, err = registry.Open(filepath.Join(cfg.DataDir, "registry.db"), registry.Options{}); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.releases = rollback.New(s.store, s.models, rollback.Options{
		Probation: cfg.Probation, FailureThreshold: cfg.FailureThreshold, Log: log})
	recommendationv1.RegisterModelRegistryServiceServer(s.grpc, transport.NewRegistryServer(s.releases, log))
	if s.jobs, err = jobs.New(s.store, s.releases, jobs.Options{QueueSize: cfg.JobQueue, Workers: cfg.TrainWorkers, TraceDir: cfg.TraceDir, Log: log}); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	recommendationv1.RegisterTrainingServiceServer(s.grpc, transport.NewTrainingServer(s.jobs, log))

	gwCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopGate = cancel
	gw, err := transport.NewGateway(gwCtx, loopback(s.grpcLis.Addr()), transport.GatewayOptions{Models: models, Log: log})
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}

	// Serve the registry's active version; on first start (empty registry)
	// register and activate the embedded default model.
	if err := s.releases.Start(gwCtx, defaultmodel.Load); err != nil {
		return nil, err
	}
	s.health.SetServing(true)
	return s, nil
}

// serve runs until ctx ends, then shuts down gracefully within
// cfg.ShutdownTimeout, forcing the stop after that.
func (s *server) serve(ctx context.Context) error {
	s.log.Info("listening", "grpc", s.grpcLis.Addr().String(), "http", s.httpLis.Addr().String())
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	s.stopJobs, s.jobsDone = stopJobs, make(chan struct{})
	go func() { defer close(s.jobsDone); s.jobs.Run(jobsCtx) }()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.releases.Run(gctx) }) // probation watcher
	g.Go(func() error {
		// ErrServerStopped: the context ended before Serve started, and
		// shutdown already stopped the server; that is a clean stop too.
		if err := s.grpc.Serve(s.grpcLis); !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		if err := s.http.Serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	err := g.Wait()
	if ctx.Err() != nil && err == nil {
		s.log.Info("stopped")
	}
	return err
}

func (s *server) shutdown() {
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	s.health.Shutdown()
	if s.stopJobs != nil {
		s.stopJobs() // running and queued jobs end FAILED "interrupted"; WatchJob streams close
		<-s.jobsDone // the worker writes to the store that close() closes
	}
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	_ = s.http.Shutdown(deadline) // REST first: its calls go through gRPC
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		s.log.Warn("graceful stop timed out; forcing")
		s.grpc.Stop()
	}
	s.close()
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
	if s.models != nil {
		s.models.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// loopback turns a listener address such as [::]:50051 into one the gateway
// can dial (127.0.0.1:50051).
func loopback(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return net.JoinHostPort("127.0.0.1", port)
}
