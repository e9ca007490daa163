package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"recommendation-api/internal/jobs"
	"recommendation-api/internal/transport"
)

// Config is the server's whole configuration: flags, each with an
// environment variable (RECO_*) that sets its default. Tests build it directly.
type Config struct {
	GRPCAddr         string        // gRPC listen address
	HTTPAddr         string        // REST gateway listen address
	DataDir          string        // where the registry's bbolt file lives (bbolt mode)
	Registry         string        // "" (bbolt in DataDir), bbolt://PATH or etcd://HOST:PORT[,HOST:PORT...]
	EtcdConfig                     // prefix, TLS, auth and leader lease of etcd mode
	MaxBatch         int           // largest Predict batch
	ORTLib           string        // libonnxruntime path ("" = $ONNXRUNTIME_LIB, .tools/lib, system)
	IntraOpThreads   int           // ONNX Runtime threads per session
	ShutdownTimeout  time.Duration // graceful stop budget before forcing
	Probation        time.Duration // how long a newly activated version is watched
	FailureThreshold float64       // failure share during probation that rolls back
	JobQueue         int           // training jobs waiting beyond the running one
	TrainWorkers     int           // goroutines a training job uses (1 leaves a core to Predict)
	MaxJobSamples    int           // largest training job (simulated containers) operators may start
	JobEvalSamples   int           // held-out simulated containers a job is scored on
	TraceDir         string        // directory training jobs may read usage traces from ("" = none)
	LogLevel         string        // debug, info, warn, error
	LogFormat        string        // json, text
	SecurityConfig                 // tokens, TLS, metrics listener, call limits
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		GRPCAddr:         ":50051",
		HTTPAddr:         ":8080",
		DataDir:          "data",
		MaxBatch:         transport.DefaultMaxBatch,
		IntraOpThreads:   1,
		ShutdownTimeout:  15 * time.Second,
		Probation:        2 * time.Minute,
		FailureThreshold: 0.05,
		JobQueue:         4,
		TrainWorkers:     1,
		MaxJobSamples:    jobs.MaxSamples,
		JobEvalSamples:   jobs.DefaultEvalSamples,
		LogLevel:         "info",
		LogFormat:        "json",
		SecurityConfig:   DefaultSecurityConfig(),
		EtcdConfig:       DefaultEtcdConfig(),
	}
}

// parseServeFlags fills a Config from args over environment over defaults.
func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, *flag.FlagSet, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// A malformed environment value is an error, not a silent default.
	var envErr error
	bad := func(env, v, want string) {
		if envErr == nil {
			envErr = usageError{fmt.Errorf("serve: %s=%q; want %s", env, v, want)}
		}
	}
	str := func(p *string, name, env, usage string) {
		if v := getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (env "+env+")")
	}
	integer := func(p *int, name, env, usage string) {
		if v := getenv(env); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				*p = n
			} else {
				bad(env, v, "an integer")
			}
		}
		fs.IntVar(p, name, *p, usage+" (env "+env+")")
	}
	duration := func(p *time.Duration, name, env, usage string) {
		if v := getenv(env); v != "" {
			if d, err := time.ParseDuration(v); err == nil {
				*p = d
			} else {
				bad(env, v, "a duration such as 15s or 2m")
			}
		}
		fs.DurationVar(p, name, *p, usage+" (env "+env+")")
	}
	number := func(p *float64, name, env, usage string) {
		if v := getenv(env); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				*p = f
			} else {
				bad(env, v, "a number")
			}
		}
		fs.Float64Var(p, name, *p, usage+" (env "+env+")")
	}
	str(&c.GRPCAddr, "grpc-addr", "RECO_GRPC_ADDR", "gRPC listen address; the default listens on every interface, 127.0.0.1:50051 on loopback only")
	str(&c.HTTPAddr, "http-addr", "RECO_HTTP_ADDR", "REST listen address; the default listens on every interface, 127.0.0.1:8080 on loopback only")
	str(&c.DataDir, "data-dir", "RECO_DATA_DIR", "directory of the model registry (bbolt file)")
	integer(&c.MaxBatch, "max-batch", "RECO_MAX_BATCH", "largest number of instances in one Predict call")
	str(&c.Registry, "registry", "RECO_REGISTRY", "where the model registry lives: bbolt://PATH (one replica) or etcd://HOST:PORT[,HOST:PORT...] (several replicas sharing it); empty means bbolt://DATA-DIR/registry.db")
	addEtcdFlags(fs, &c.EtcdConfig, str, duration)
	str(&c.ORTLib, "onnxruntime-lib", "ONNXRUNTIME_LIB", "path to libonnxruntime.so.1; empty looks for .tools/lib/libonnxruntime.so.1 in the working directory and its parents, then the system library path")
	integer(&c.IntraOpThreads, "intra-op-threads", "RECO_INTRA_OP_THREADS", "ONNX Runtime intra-op threads per session")
	integer(&c.JobQueue, "job-queue", "RECO_JOB_QUEUE", "training jobs that may wait behind the running one")
	integer(&c.TrainWorkers, "train-workers", "RECO_TRAIN_WORKERS", "goroutines one training job uses (1 leaves a core to Predict on 2 cores)")
	integer(&c.MaxJobSamples, "max-job-samples", "RECO_MAX_JOB_SAMPLES", "largest training job an operator may start, in simulated containers; larger ones are refused with INVALID_ARGUMENT / 400")
	integer(&c.JobEvalSamples, "job-eval-samples", "RECO_JOB_EVAL_SAMPLES", "held-out simulated containers each training job is scored on (its manifest's metrics and the if_better decision); fewer score faster and less precisely")
	str(&c.TraceDir, "trace-dir", "RECO_TRACE_DIR", "directory training jobs may read usage traces from; empty refuses trace sources")
	duration(&c.ShutdownTimeout, "shutdown-timeout", "RECO_SHUTDOWN_TIMEOUT", "shutdown budget: stopping the training job and draining REST and gRPC calls; past it calls are cut and the process exits")
	str(&c.LogLevel, "log-level", "RECO_LOG_LEVEL", "log level: "+strings.Join(logLevels, ", "))
	str(&c.LogFormat, "log-format", "RECO_LOG_FORMAT", "log format: "+strings.Join(logFormats, ", ")+" (slog JSON or key=value lines)")
	duration(&c.Probation, "probation", "RECO_PROBATION", "how long a newly activated version is watched for automatic rollback")
	number(&c.FailureThreshold, "failure-threshold", "RECO_FAILURE_THRESHOLD", "share of failed calls during probation that triggers an automatic rollback")
	addSecurityFlags(fs, &c.SecurityConfig, getenv, bad, str, duration, integer)
	if err := parseFlags(fs, args); err != nil {
		return c, fs, err
	}
	if envErr != nil {
		return c, fs, envErr
	}
	return c, fs, c.validate()
}

// The values the enum-like flags accept.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "text"}
)

func (c Config) validate() error {
	switch {
	case !slices.Contains(logLevels, c.LogLevel):
		return usageError{fmt.Errorf("serve: --log-level (RECO_LOG_LEVEL) %q; want one of %s", c.LogLevel, strings.Join(logLevels, ", "))}
	case !slices.Contains(logFormats, c.LogFormat):
		return usageError{fmt.Errorf("serve: --log-format (RECO_LOG_FORMAT) %q; want one of %s", c.LogFormat, strings.Join(logFormats, ", "))}
	case c.MaxBatch < 1 || c.MaxBatch > 100000:
		return usageError{fmt.Errorf("serve: --max-batch %d; want 1..100000", c.MaxBatch)}
	case c.IntraOpThreads < 1 || c.IntraOpThreads > 64:
		return usageError{fmt.Errorf("serve: --intra-op-threads %d; want 1..64", c.IntraOpThreads)}
	case c.JobQueue < 1 || c.JobQueue > 100:
		return usageError{fmt.Errorf("serve: --job-queue %d; want 1..100", c.JobQueue)}
	case c.MaxJobSamples < jobs.MinSamples || c.MaxJobSamples > jobs.MaxSamples:
		return usageError{fmt.Errorf("serve: --max-job-samples %d; want %d..%d", c.MaxJobSamples, jobs.MinSamples, jobs.MaxSamples)}
	case c.JobEvalSamples < jobs.MinSamples || c.JobEvalSamples > jobs.MaxSamples:
		return usageError{fmt.Errorf("serve: --job-eval-samples %d; want %d..%d", c.JobEvalSamples, jobs.MinSamples, jobs.MaxSamples)}
	case c.TrainWorkers < 1 || c.TrainWorkers > 64:
		return usageError{fmt.Errorf("serve: --train-workers %d; want 1..64", c.TrainWorkers)}
	case c.Probation <= 0:
		return usageError{fmt.Errorf("serve: --probation must be positive")}
	case !(c.FailureThreshold > 0 && c.FailureThreshold <= 1):
		return usageError{fmt.Errorf("serve: --failure-threshold %v; want (0, 1]", c.FailureThreshold)}
	case c.ShutdownTimeout <= 0:
		return usageError{fmt.Errorf("serve: --shutdown-timeout must be positive")}
	}
	if err := c.validateRegistry(); err != nil {
		return err
	}
	return c.SecurityConfig.validate()
}
