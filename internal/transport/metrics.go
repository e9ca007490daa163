package transport

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
)

// MetricSources are the read-only accessors the metrics read at scrape
// time; nil fields leave their series out. They are plain functions so the
// serving manager, the registry and the job manager need not know about
// Prometheus.
type MetricSources struct {
	// Active lists the versions being served (one per major).
	Active func() []model.Version
	// LiveSessions counts ONNX Runtime sessions not yet destroyed.
	LiveSessions func() int
	// Versions lists the registered versions.
	Versions func() ([]model.Entry, error)
	// History returns a page of the registry's events, newest first;
	// activations, rollbacks and automatic rollbacks recorded at or after
	// Since are counted as swaps, whoever made them (the API, a training
	// job, the probation watcher). Each scrape reads the pages back to Since.
	History func(model.HistoryQuery) ([]model.Event, string, error)
	Since   time.Time
	// Jobs lists the training jobs.
	Jobs func() ([]*model.Job, error)
	// Log receives scrape errors; nil discards them.
	Log *slog.Logger
}

// Metrics are the server's Prometheus metrics, on a registry of their own
// (Go runtime and process metrics included):
//
//	recommendation_grpc_requests_total{service,method,code}            counter
//	recommendation_grpc_request_duration_seconds{service,method,code}  histogram
//	recommendation_predictions_total{version}                          counter, rows answered
//	recommendation_active_model_info{version,major}                    gauge, 1 per served version
//	recommendation_model_swaps_total{action}                           counter: activate, rollback, auto_rollback
//	recommendation_model_load_duration_seconds{action}                 histogram: register, activate, rollback
//	recommendation_serving_sessions                                    gauge, live ONNX Runtime sessions
//	recommendation_training_jobs{state}                                gauge, jobs known per state
//	recommendation_training_job_duration_seconds{state}                histogram of finished jobs
//	recommendation_registry_versions{major}                            gauge
//	recommendation_registry_model_bytes{major}                         gauge, bytes of the stored models
//
// REST calls are counted as the gRPC methods the gateway calls.
type Metrics struct {
	reg         *prometheus.Registry
	calls       *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	predictions *prometheus.CounterVec
	loads       *prometheus.HistogramVec
}

const metricPrefix = "recommendation_"

// NewMetrics returns the metrics reading src.
func NewMetrics(src MetricSources) *Metrics {
	if src.Log == nil {
		src.Log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "grpc_requests_total",
			Help: "gRPC calls handled (REST calls included, as the methods the gateway calls), by method and status code.",
		}, []string{"service", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "grpc_request_duration_seconds",
			Help:    "Time from a gRPC call's arrival to its answer (a stream's whole life), by method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"service", "method", "code"}),
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "predictions_total",
			Help: "Rows (instances) answered by Predict, by the model version that answered them.",
		}, []string{"version"}),
		loads: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricPrefix + "model_load_duration_seconds",
			Help: "Time a successful register, activate or rollback request took to verify and load its version " +
				"(checksum, ONNX Runtime session, signature, golden rows) and, for activate and rollback, swap it in.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"action"}),
	}
	m.reg.MustRegister(m.calls, m.latency, m.predictions, m.loads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sourceCollector{src: src})
	if src.LiveSessions != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "serving_sessions",
			Help: "ONNX Runtime sessions alive: the served versions, versions kept warm for rollback, and retired ones still finishing calls.",
		}, func() float64 { return float64(src.LiveSessions()) }))
	}
	return m
}

// Registry returns the Prometheus registry, to register more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format. A failing
// source drops its series from the scrape rather than failing it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ServerOptions returns the interceptors that count and time calls, for
// NewGRPCServer's opts; put them first so refused calls are counted too.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := handler(ctx, req)
			m.observe(info.FullMethod, start, err)
			if p, ok := resp.(*recommendationv1.PredictResponse); ok && err == nil {
				m.predictions.WithLabelValues(p.GetModelVersion()).Add(float64(len(p.GetPredictions())))
			}
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			start := time.Now()
			err := handler(srv, ss)
			m.observe(info.FullMethod, start, err)
			return err
		}),
	}
}

func (m *Metrics) observe(fullMethod string, start time.Time, err error) {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	code := status.Code(err).String()
	m.calls.WithLabelValues(service, method, code).Inc()
	m.latency.WithLabelValues(service, method, code).Observe(time.Since(start).Seconds())
}

// Releases returns r with its successful Register, Activate and Rollback
// timed into recommendation_model_load_duration_seconds. Wrap what the
// RegistryServer is given; releases made elsewhere (training jobs, the
// probation watcher) are not timed, though their swaps are counted.
func (m *Metrics) Releases(r Releases) Releases { return timedReleases{r, m.loads} }

type timedReleases struct {
	Releases
	loads *prometheus.HistogramVec
}

func (t timedReleases) Register(ctx context.Context, b []byte, man *model.Manifest, actor, reason string) ([]model.Version, error) {
	start := time.Now()
	pruned, err := t.Releases.Register(ctx, b, man, actor, reason)
	if err == nil {
		t.loads.WithLabelValues("register").Observe(time.Since(start).Seconds())
	}
	return pruned, err
}

func (t timedReleases) Activate(ctx context.Context, v model.Version, ch model.Change) (model.Release, error) {
	start := time.Now()
	rel, err := t.Releases.Activate(ctx, v, ch)
	if err == nil && rel.Changed {
		t.loads.WithLabelValues("activate").Observe(time.Since(start).Seconds())
	}
	return rel, err
}

func (t timedReleases) Rollback(ctx context.Context, to model.Version, major int, ch model.Change) (model.Release, error) {
	start := time.Now()
	rel, err := t.Releases.Rollback(ctx, to, major, ch)
	if err == nil && rel.Changed {
		t.loads.WithLabelValues("rollback").Observe(time.Since(start).Seconds())
	}
	return rel, err
}

// sourceCollector turns MetricSources into series at scrape time.
type sourceCollector struct {
	src MetricSources
}

var (
	activeDesc = prometheus.NewDesc(metricPrefix+"active_model_info",
		"The model version being served, 1 for each served version, labelled by its version and major.", []string{"version", "major"}, nil)
	swapsDesc = prometheus.NewDesc(metricPrefix+"model_swaps_total",
		"Changes of the served version since the server started, by the action recorded in the registry history: "+
			"activate (API or training job), rollback (API), auto_rollback (the probation watcher).", []string{"action"}, nil)
	jobsDesc = prometheus.NewDesc(metricPrefix+"training_jobs",
		"Training jobs the server keeps, by state.", []string{"state"}, nil)
	jobDurationDesc = prometheus.NewDesc(metricPrefix+"training_job_duration_seconds",
		"Run time (start to finish) of finished training jobs, by final state.", []string{"state"}, nil)
	versionsDesc = prometheus.NewDesc(metricPrefix+"registry_versions",
		"Model versions stored in the registry, by major.", []string{"major"}, nil)
	modelBytesDesc = prometheus.NewDesc(metricPrefix+"registry_model_bytes",
		"Bytes of the ONNX models stored in the registry, by major.", []string{"major"}, nil)
)

var jobDurationBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}

var jobStates = []model.JobState{model.JobQueued, model.JobRunning, model.JobSucceeded, model.JobFailed, model.JobCancelled}

var swapActions = []string{model.ActionActivate, model.ActionRollback, model.ActionAutoRollback}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{activeDesc, swapsDesc, jobsDesc, jobDurationDesc, versionsDesc, modelBytesDesc} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	if s.Active != nil {
		for _, v := range s.Active() {
			ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, 1, v.String(), strconv.Itoa(v.Major))
		}
	}
	if s.History != nil {
		if n, err := c.swaps(); err != nil {
			c.fail(ch, swapsDesc, err)
		} else {
			for _, a := range swapActions {
				ch <- prometheus.MustNewConstMetric(swapsDesc, prometheus.CounterValue, float64(n[a]), a)
			}
		}
	}
	if s.Versions != nil {
		if entries, err := s.Versions(); err != nil {
			c.fail(ch, versionsDesc, err)
		} else {
			count, size := map[int]int{}, map[int]int64{}
			for _, e := range entries {
				major := e.Manifest.Version.Major
				count[major]++
				size[major] += e.Manifest.Model.SizeBytes
			}
			for major, n := range count {
				label := strconv.Itoa(major)
				ch <- prometheus.MustNewConstMetric(versionsDesc, prometheus.GaugeValue, float64(n), label)
				ch <- prometheus.MustNewConstMetric(modelBytesDesc, prometheus.GaugeValue, float64(size[major]), label)
			}
		}
	}
	if s.Jobs != nil {
		if list, err := s.Jobs(); err != nil {
			c.fail(ch, jobsDesc, err)
		} else {
			c.collectJobs(ch, list)
		}
	}
}

// swaps counts the history's events by action back to Since.
func (c *sourceCollector) swaps() (map[string]int, error) {
	n := map[string]int{}
	q := model.HistoryQuery{PageSize: model.MaxHistoryPage}
	for {
		evs, next, err := c.src.History(q)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Time.Before(c.src.Since) {
				return n, nil // newest first: the rest is older
			}
			n[ev.Action]++
		}
		if next == "" {
			return n, nil
		}
		q.PageToken = next
	}
}

func (c *sourceCollector) collectJobs(ch chan<- prometheus.Metric, list []*model.Job) {
	type hist struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}
	newHist := func() *hist {
		h := &hist{buckets: make(map[float64]uint64, len(jobDurationBuckets))}
		for _, b := range jobDurationBuckets {
			h.buckets[b] = 0
		}
		return h
	}
	byState := map[model.JobState]int{}
	durations := map[model.JobState]*hist{}
	for _, j := range list {
		byState[j.State]++
		if !j.State.Final() || j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
			continue
		}
		h := durations[j.State]
		if h == nil {
			h = newHist()
			durations[j.State] = h
		}
		d := j.FinishedAt.Sub(j.StartedAt).Seconds()
		h.count++
		h.sum += d
		for _, b := range jobDurationBuckets {
			if d <= b {
				h.buckets[b]++ // cumulative, as Prometheus buckets are
			}
		}
	}
	for _, st := range jobStates {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(byState[st]), string(st))
		if st.Final() {
			h := durations[st]
			if h == nil {
				h = newHist()
			}
			ch <- prometheus.MustNewConstHistogram(jobDurationDesc, h.count, h.sum, h.buckets, string(st))
		}
	}
}

func (c *sourceCollector) fail(ch chan<- prometheus.Metric, d *prometheus.Desc, err error) {
	c.src.Log.Error("metrics source failed; its series are left out of this scrape", "err", err)
	ch <- prometheus.NewInvalidMetric(d, err)
}
