package reliability

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/transport"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Duration   time.Duration // <= 0: 10 minutes
	Rate       int           // Predict calls per second, split over gRPC and REST; <= 0: 100
	SwapEvery  time.Duration // an activation or rollback; <= 0: 2 s
	TrainEvery time.Duration // a training job; < 0: none; 0: 2 minutes
	Kills      int           // SIGKILL + restart, evenly spread over the first half; < 0: none; 0: 3
	Versions   int           // versions registered before the load starts; <= 0: 4
	Grace      time.Duration // after ready, still part of a restart window; <= 0: 2 s
	Bin        string        // "" builds the server
	WorkDir    string        // "" a temporary directory, removed at the end
	Seed       uint64
	Progress   io.Writer
}

func (o *SoakOptions) defaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.SwapEvery <= 0 {
		o.SwapEvery = 2 * time.Second
	}
	if o.TrainEvery == 0 {
		o.TrainEvery = 2 * time.Minute
	}
	if o.Kills == 0 {
		o.Kills = 3
	}
	if o.Kills < 0 {
		o.Kills = 0
	}
	if o.Versions <= 0 {
		o.Versions = 4
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
}

// callKind is one shape of Predict call: over which transport, and which
// input (normalized features of a major's width, or raw metrics).
type callKind struct {
	rest  bool
	major int // 0: raw metrics
	width int
}

func (k callKind) String() string {
	t := "gRPC"
	if k.rest {
		t = "REST"
	}
	if k.major == 0 {
		return t + " raw"
	}
	return fmt.Sprintf("%s major %d (%d features)", t, k.major, k.width)
}

type callStat struct {
	sent, ok, failedIn, failedOut atomic.Int64
	mu                            sync.Mutex
	lat                           []time.Duration
	firstErrs                     []string
}

// Sample is one reading of the server process.
type Sample struct {
	At         time.Duration
	PID        int
	RSSKiB     int64
	Goroutines int64 // -1 when /metrics did not answer
	Swaps      int
}

// RSSPoint is one reading of the server's resident set size, taken every
// rssEvery.
type RSSPoint struct {
	At    time.Duration // since the load started
	PID   int
	KiB   int64 // VmRSS
	Anon  int64 // RssAnon: heap (Go's and ONNX Runtime's), stacks
	File  int64 // RssFile: mapped files (the binary, libraries, the registry file) resident
	DB    int64 // the registry file's size on disk (-1 unread)
	Swaps int   // swaps done so far in the run
}

// Lifetime is one server process from the moment it was ready.
type Lifetime struct {
	PID   int
	At    time.Duration // since the load started; 0 for the first
	Swaps int           // swaps done in the run by then
}

// SoakResult is what Soak measured.
type SoakResult struct {
	Options      SoakOptions
	Kinds        []callKind
	stats        map[callKind]*callStat
	Swaps        int
	SwapFailures []string
	Jobs         int
	JobFailures  []string
	Restarts     []time.Duration // kill to ready
	Consistency  []string        // per restart: "ok" or the violations
	Samples      []Sample        // every 5 s, with goroutines
	RSS          []RSSPoint      // every rssEvery
	Lifetimes    []Lifetime
	JobSpans     [][2]time.Duration // each training job, from its start to its end as the soak saw it
	Elapsed      time.Duration
	Windows      [][2]time.Duration
}

// FailedOutside is the number of calls that failed outside every restart window.
func (r *SoakResult) FailedOutside() int64 {
	var n int64
	for _, s := range r.stats {
		n += s.failedOut.Load()
	}
	return n
}

type soak struct {
	opts   SoakOptions
	rng    *rand.Rand
	tokens Tokens
	tls    *TLSFiles
	cfg    ServerConfig
	start  time.Time
	res    *SoakResult

	mu      sync.Mutex // guards p, windows
	p       *Process
	windows [][2]time.Time // [kill, ready+grace]; an open one has a zero end
	conn    *grpc.ClientConn
	rest    *http.Client
	restURL string
	swaps   atomic.Int64
}

// Soak runs the real server with tokens and TLS for opts.Duration under a
// fixed rate of Predict calls over gRPC and REST, for every major it
// serves, while versions are swapped every few seconds, training jobs run
// every few minutes and the process is killed (SIGKILL) and restarted a few
// times. It returns the measurements; Report writes them as markdown.
func Soak(ctx context.Context, opts SoakOptions) (*SoakResult, error) {
	opts.defaults()
	if opts.WorkDir == "" {
		d, err := os.MkdirTemp("", "reco-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		opts.WorkDir = d
	}
	if opts.Bin == "" {
		bin, err := BuildServer(ctx, opts.WorkDir)
		if err != nil {
			return nil, err
		}
		opts.Bin = bin
	}
	s := &soak{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x50a)), res: &SoakResult{Options: opts, stats: map[callKind]*callStat{}}}
	var err error
	if s.tokens, err = WriteTokens(opts.WorkDir); err != nil {
		return nil, err
	}
	if s.tls, err = WriteTLS(opts.WorkDir); err != nil {
		return nil, err
	}
	grpcAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	s.cfg = ServerConfig{Bin: opts.Bin, DataDir: opts.WorkDir + "/data", TokenFile: s.tokens.Path, TLS: s.tls,
		Extra: []string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--probation", "24h", "--job-eval-samples", strconv.Itoa(soakJobEvalSamples)}}
	s.restURL = "https://" + httpAddr
	s.rest = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tls.ClientConfig(), MaxIdleConnsPerHost: 64}}
	defer s.rest.CloseIdleConnections()
	// Reconnect quickly after a restart: the default backoff grows to 2 minutes.
	bo := backoff.DefaultConfig
	bo.MaxDelay = 200 * time.Millisecond
	if s.conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentialsTLS(s.tls)), grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second})); err != nil {
		return nil, err
	}
	defer s.conn.Close()
	if err := s.startServer(ctx); err != nil {
		return nil, err
	}
	defer func() { s.mu.Lock(); p := s.p; s.mu.Unlock(); _ = p.Stop(30 * time.Second) }()
	if err := s.registerVersions(ctx); err != nil {
		return nil, err
	}
	if err := s.discover(ctx); err != nil {
		return nil, err
	}

	s.start = time.Now()
	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); s.load(runCtx) }()
	go func() { defer wg.Done(); s.swapper(runCtx) }()
	go func() { defer wg.Done(); s.trainer(runCtx) }()
	go func() { defer wg.Done(); s.sampler(runCtx) }()
	s.killer(runCtx)
	wg.Wait()
	s.sample(ctx) // the end
	s.res.Elapsed = time.Since(s.start)
	s.res.Swaps = int(s.swaps.Load())
	for _, w := range s.windows {
		s.res.Windows = append(s.res.Windows, [2]time.Duration{w[0].Sub(s.start), w[1].Sub(s.start)})
	}
	return s.res, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *soak) startServer(ctx context.Context) error {
	p, err := Start(s.cfg, time.Minute)
	if err != nil {
		return err
	}
	if err := WaitReady(ctx, s.conn, p, time.Minute); err != nil {
		p.Kill()
		return err
	}
	s.mu.Lock()
	s.p = p
	at := time.Duration(0)
	if !s.start.IsZero() {
		at = time.Since(s.start)
	}
	s.res.Lifetimes = append(s.res.Lifetimes, Lifetime{PID: p.PID(), At: at, Swaps: int(s.swaps.Load())})
	s.mu.Unlock()
	return nil
}

func (s *soak) registry() recommendationv1.ModelRegistryServiceClient {
	return recommendationv1.NewModelRegistryServiceClient(s.conn)
}

func (s *soak) as(ctx context.Context, token string) context.Context {
	return (&crashLoop{}).as(ctx, token)
}

// registerVersions uploads opts.Versions random versions of each of majors
// 1 and 2 after the newest registered one of that major, and activates the
// first major-2 one when the server serves no major 2 yet, so the soak
// always drives two majors side by side.
func (s *soak) registerVersions(ctx context.Context) error {
	octx := s.as(ctx, s.tokens.Operator)
	list, err := s.registry().ListVersions(octx, &recommendationv1.ListVersionsRequest{})
	if err != nil {
		return err
	}
	for _, major := range []int{1, 2} {
		newest := model.Version{Major: major}
		for _, v := range list.GetVersions() {
			if pv, err := model.ParseVersion(v.GetVersion()); err == nil && pv.Major == major && pv.Compare(newest) > 0 {
				newest = pv
			}
		}
		first := model.Version{}
		for i := range s.opts.Versions {
			newest, _ = newest.Bump("patch")
			if first.IsZero() {
				first = newest
			}
			b, mj, err := NewVersion(int64(s.opts.Seed%1e6)*100+int64(major*50+i), newest)
			if err != nil {
				return err
			}
			if _, err := s.registry().RegisterVersion(octx, &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: mj, Reason: "soak"}); err != nil {
				return fmt.Errorf("register %s: %w", newest, err)
			}
		}
		if _, ok := list.GetActiveByMajor()[int32(major)]; !ok && !first.IsZero() {
			if _, err := s.registry().ActivateVersion(octx, &recommendationv1.ActivateVersionRequest{Version: first.String(), Reason: "soak: serve a second major"}); err != nil {
				return fmt.Errorf("activate %s: %w", first, err)
			}
		}
	}
	return nil
}

// discover asks which majors the server serves and the width each active
// manifest declares, and makes the call kinds: per transport, normalized
// features for every major, and raw metrics.
func (s *soak) discover(ctx context.Context) error {
	list, err := s.registry().ListVersions(s.as(ctx, s.tokens.Viewer), &recommendationv1.ListVersionsRequest{})
	if err != nil {
		return err
	}
	widths := map[int]int{}
	for _, v := range list.GetVersions() {
		if !v.GetActive() {
			continue
		}
		got, err := s.registry().GetVersion(s.as(ctx, s.tokens.Viewer), &recommendationv1.GetVersionRequest{Version: v.GetVersion()})
		if err != nil {
			return err
		}
		m, err := model.ParseManifest([]byte(got.GetModel().GetManifestJson()))
		if err != nil {
			return fmt.Errorf("manifest of %s: %w", v.GetVersion(), err)
		}
		widths[m.Version.Major] = len(m.Features)
	}
	if len(widths) == 0 {
		return fmt.Errorf("the server lists no active version")
	}
	majors := make([]int, 0, len(widths))
	for m := range widths {
		majors = append(majors, m)
	}
	slices.Sort(majors)
	for _, rest := range []bool{false, true} {
		for _, m := range majors {
			s.res.Kinds = append(s.res.Kinds, callKind{rest: rest, major: m, width: widths[m]})
		}
		s.res.Kinds = append(s.res.Kinds, callKind{rest: rest})
	}
	for _, k := range s.res.Kinds {
		s.res.stats[k] = &callStat{}
	}
	return nil
}

// request builds a Predict request of kind k with 2 instances, varied by i.
func request(k callKind, i int) *recommendationv1.PredictRequest {
	req := &recommendationv1.PredictRequest{}
	for j := range 2 {
		id := fmt.Sprintf("c%d-%d", i, j)
		if k.major == 0 {
			f := float64((i+j)%7) / 7
			r := features.Raw{
				CPUP50: 0.2 + f, CPUP95: 0.45 + f, CPUP99: 0.6 + f, MemP50: 300 << 20, MemP95: 380 << 20, MemP99: 400 << 20,
				CPUVariance: 0.4, MemTrend: -0.01, ThrottleRatio: 0.02, HourOfDay: float64(i % 24), DayOfWeek: float64(i % 7), WorkloadAgeDays: 42}
			// The history maxima (and what else the catalogue holds beyond
			// major 1's features), above the p99s: these rows go to major 2.
			for _, ft := range model.Catalog()[model.NumFeatures:] {
				_, k, _ := model.LookupFeature(ft.Spec.Name)
				if strings.HasPrefix(ft.Spec.Name, "cpu") {
					r.Set(k, 0.8+f)
				} else {
					r.Set(k, 450<<20)
				}
			}
			if i%2 == 1 { // and half without them: these go to major 1
				raw := transport.RawMetricsOf(r)
				raw.CpuMaxCores, raw.MemMaxBytes = nil, nil
				req.Instances = append(req.Instances, &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Raw{Raw: raw}})
				continue
			}
			req.Instances = append(req.Instances, &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Raw{Raw: transport.RawMetricsOf(r)}})
			continue
		}
		v := make([]float32, k.width)
		for n := range v {
			v[n] = float32((i+j*7+n*3)%11) / 10
		}
		req.Instances = append(req.Instances, &recommendationv1.Instance{ContainerId: id, Input: &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: v}}})
	}
	return req
}

// load sends Rate calls a second, round robin over the kinds, until ctx ends.
func (s *soak) load(ctx context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(s.opts.Rate))
	defer tick.Stop()
	sem := make(chan struct{}, 128) // calls in flight; a tick finding none free is counted as failed
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k := s.res.Kinds[i%len(s.res.Kinds)]
		st := s.res.stats[k]
		st.sent.Add(1)
		select {
		case sem <- struct{}{}:
		default:
			s.record(st, time.Now(), time.Now(), fmt.Errorf("client: 128 calls already in flight"))
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			begin := time.Now()
			err := s.call(context.WithoutCancel(ctx), k, i)
			s.record(st, begin, time.Now(), err)
		}(i)
	}
}

func (s *soak) call(ctx context.Context, k callKind, i int) error {
	req := request(k, i)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var resp *recommendationv1.PredictResponse
	if k.rest {
		body, _ := protojson.Marshal(req)
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.restURL+"/v1/predict", bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+s.tokens.Agent)
		hr.Header.Set("Content-Type", "application/json")
		r, err := s.rest.Do(hr)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", r.StatusCode, truncate(string(b), 200))
		}
		resp = &recommendationv1.PredictResponse{}
		if err := protojson.Unmarshal(b, resp); err != nil {
			return err
		}
	} else {
		var err error
		if resp, err = recommendationv1.NewRecommendationServiceClient(s.conn).Predict(s.as(ctx, s.tokens.Agent), req); err != nil {
			return err
		}
	}
	if len(resp.GetPredictions()) != len(req.GetInstances()) {
		return fmt.Errorf("%d predictions for %d instances", len(resp.GetPredictions()), len(req.GetInstances()))
	}
	if v, err := model.ParseVersion(resp.GetModelVersion()); err != nil || k.major != 0 && v.Major != k.major {
		return fmt.Errorf("answered by %q for major %d", resp.GetModelVersion(), k.major)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// record counts a call that ran from begin to end; a failure counts as
// inside a restart window when the call overlapped one.
func (s *soak) record(st *callStat, begin, end time.Time, err error) {
	if err == nil {
		st.ok.Add(1)
		st.mu.Lock()
		st.lat = append(st.lat, end.Sub(begin))
		st.mu.Unlock()
		return
	}
	if s.inWindow(begin, end) {
		st.failedIn.Add(1)
		return
	}
	st.failedOut.Add(1)
	st.mu.Lock()
	if len(st.firstErrs) < 5 {
		st.firstErrs = append(st.firstErrs, fmt.Sprintf("%.1fs: %s", begin.Sub(s.start).Seconds(), truncate(err.Error(), 200)))
	}
	st.mu.Unlock()
}

func (s *soak) inWindow(begin, end time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.windows {
		if !end.Before(w[0]) && (w[1].IsZero() || !begin.After(w[1])) {
			return true
		}
	}
	return false
}

// swapper activates a random other version or rolls back, in turn, every
// SwapEvery. A swap that fails outside a restart window is recorded.
func (s *soak) swapper(ctx context.Context) {
	tick := time.NewTicker(s.opts.SwapEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		begin := time.Now()
		err := s.swap(ctx, i)
		if err == nil {
			s.swaps.Add(1)
		} else if !s.inWindow(begin, time.Now()) && !ended(ctx) {
			s.res.SwapFailures = append(s.res.SwapFailures, fmt.Sprintf("%.1fs: %v", begin.Sub(s.start).Seconds(), err))
		}
	}
}

func (s *soak) swap(ctx context.Context, i int) error {
	octx, cancel := context.WithTimeout(s.as(ctx, s.tokens.Operator), 10*time.Second)
	defer cancel()
	major := 1 + (i/2)%2 // each major in turn: activate, then roll back
	if i%2 == 1 {
		_, err := s.registry().Rollback(octx, &recommendationv1.RollbackRequest{Major: int32(major), Reason: "soak"})
		if status.Code(err) != codes.NotFound { // NotFound: the rollback index is used up; activate instead
			return err
		}
	}
	list, err := s.registry().ListVersions(octx, &recommendationv1.ListVersionsRequest{})
	if err != nil {
		return err
	}
	var others []string
	for _, v := range list.GetVersions() {
		if !v.GetActive() && v.GetMajor() == int32(major) {
			others = append(others, v.GetVersion())
		}
	}
	if len(others) == 0 {
		return fmt.Errorf("no other version of major %d to activate", major)
	}
	_, err = s.registry().ActivateVersion(octx, &recommendationv1.ActivateVersionRequest{Version: others[s.rngIntN(len(others))], Reason: "soak"})
	return err
}

// ended reports whether the run is over: a call cut by the run's own
// deadline is not a failure (gRPC may see the deadline before ctx.Err does).
func ended(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

var rngMu sync.Mutex

func (s *soak) rngIntN(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return s.rng.IntN(n) }

// trainer starts a small training job every TrainEvery (the first at once)
// and waits for it to end.
func (s *soak) trainer(ctx context.Context) {
	if s.opts.TrainEvery < 0 {
		return
	}
	for {
		begin := time.Now()
		err := s.train(ctx)
		s.mu.Lock()
		s.res.JobSpans = append(s.res.JobSpans, [2]time.Duration{begin.Sub(s.start), time.Since(s.start)})
		s.mu.Unlock()
		s.res.Jobs++
		if err != nil && !ended(ctx) && !s.inWindow(begin, time.Now()) {
			s.res.JobFailures = append(s.res.JobFailures, fmt.Sprintf("%.1fs: %v", begin.Sub(s.start).Seconds(), err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(begin.Add(s.opts.TrainEvery))):
		}
	}
}

// soakJobEvalSamples is the held-out set of the soak's training jobs
// (serve --job-eval-samples): the default 20,000 would keep a major-2 job
// running for a minute, and the RSS fit leaves job windows out.
const soakJobEvalSamples = 2000

func (s *soak) train(ctx context.Context) error {
	octx := s.as(ctx, s.tokens.Operator)
	tc := recommendationv1.NewTrainingServiceClient(s.conn)
	resp, err := tc.StartTraining(octx, &recommendationv1.StartTrainingRequest{Samples: 3000, Epochs: 3, Seed: int64(s.rngIntN(1000)), Bump: "patch",
		ActivationPolicy: recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER, Reason: "soak"})
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
		j, err := tc.GetJob(octx, &recommendationv1.GetJobRequest{Id: resp.GetJob().GetId()})
		if err != nil {
			continue // restarting
		}
		switch j.GetJob().GetState() {
		case recommendationv1.JobState_JOB_STATE_SUCCEEDED:
			return nil
		case recommendationv1.JobState_JOB_STATE_FAILED, recommendationv1.JobState_JOB_STATE_CANCELLED:
			if strings.HasPrefix(j.GetJob().GetError(), "interrupted") {
				return nil // a kill; counted with the restarts
			}
			return fmt.Errorf("job %s: %s", j.GetJob().GetId(), j.GetJob().GetError())
		}
	}
}

// killer kills and restarts the server Kills times, evenly spread over the
// first half of the run (a 10-minute run: at 75 s, 150 s and 225 s), checking
// the registry file while it is down. The last process then lives for most
// of the run, long enough for the RSS fit to see growth across a few hundred
// swaps.
func (s *soak) killer(ctx context.Context) {
	for k := 1; k <= s.opts.Kills; k++ {
		at := s.start.Add(s.opts.Duration / 2 * time.Duration(k) / time.Duration(s.opts.Kills+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		s.mu.Lock()
		p := s.p
		s.windows = append(s.windows, [2]time.Time{time.Now(), {}})
		w := len(s.windows) - 1
		s.mu.Unlock()
		killed := time.Now()
		p.Kill()
		_, bad, err := Inspect(s.cfg.DataDir)
		switch {
		case err != nil:
			s.res.Consistency = append(s.res.Consistency, "does not open: "+err.Error())
		case len(bad) > 0:
			s.res.Consistency = append(s.res.Consistency, strings.Join(bad, "; "))
		default:
			s.res.Consistency = append(s.res.Consistency, "ok")
		}
		if err := s.startServer(context.WithoutCancel(ctx)); err != nil {
			s.res.Consistency = append(s.res.Consistency, "restart failed: "+err.Error())
			return
		}
		s.res.Restarts = append(s.res.Restarts, time.Since(killed))
		s.mu.Lock()
		s.windows[w][1] = time.Now().Add(s.opts.Grace)
		s.mu.Unlock()
	}
}

// rssEvery is how often the sampler reads the server's RSS; every
// sampleEvery it also reads its goroutines.
const (
	rssEvery    = 500 * time.Millisecond
	sampleEvery = 5 * time.Second
)

// sampler reads the RSS every rssEvery, and RSS and goroutines every
// sampleEvery.
func (s *soak) sampler(ctx context.Context) {
	s.sample(ctx)
	tick := time.NewTicker(rssEvery)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if i%int(sampleEvery/rssEvery) == 0 {
			s.sample(ctx)
		} else {
			s.readRSS()
		}
	}
}

// readRSS records one RSS reading of the running server, none while it is
// down.
func (s *soak) readRSS() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pid := s.p.PID()
	m := readProcMem(pid)
	if m.rss >= 0 {
		db := int64(-1)
		if fi, err := os.Stat(filepath.Join(s.cfg.DataDir, "registry.db")); err == nil {
			db = fi.Size() / 1024
		}
		s.res.RSS = append(s.res.RSS, RSSPoint{At: time.Since(s.start), PID: pid, KiB: m.rss, Anon: m.anon, File: m.file, DB: db, Swaps: int(s.swaps.Load())})
	}
	return m.rss
}

func (s *soak) sample(ctx context.Context) {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	if s.readRSS() < 0 {
		return // the process is gone (a kill)
	}
	smp := Sample{At: time.Since(s.start), PID: p.PID(), RSSKiB: readProcMem(p.PID()).rss, Goroutines: s.goroutines(context.WithoutCancel(ctx)), Swaps: int(s.swaps.Load())}
	if smp.RSSKiB < 0 {
		return
	}
	s.mu.Lock()
	s.res.Samples = append(s.res.Samples, smp)
	s.mu.Unlock()
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, "%6.0fs pid %d rss %d KiB goroutines %d swaps %d failed-outside %d\n",
			smp.At.Seconds(), smp.PID, smp.RSSKiB, smp.Goroutines, smp.Swaps, s.res.FailedOutside())
	}
}

// procMem is a process's resident set from /proc/PID/status, in KiB; -1
// for a field it could not read.
type procMem struct{ rss, anon, file int64 }

// readProcMem reads VmRSS, RssAnon and RssFile (+ RssShmem, counted with
// the files) of pid.
func readProcMem(pid int) procMem {
	m := procMem{-1, -1, -1}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	defer f.Close()
	var shmem int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			m.rss = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		case "RssShmem":
			shmem = n
		}
	}
	if m.file >= 0 {
		m.file += shmem
	}
	return m
}

// goroutines reads go_goroutines from the server's /metrics (viewer token).
func (s *soak) goroutines(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.restURL+"/metrics", nil)
	hr.Header.Set("Authorization", "Bearer "+s.tokens.Viewer)
	r, err := s.rest.Do(hr)
	if err != nil {
		return -1
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(rest, 64); err == nil {
				return int64(f)
			}
		}
	}
	return -1
}

// What the RSS fit leaves out: each process lifetime's first warmUpSwaps
// swaps and first warmUpTime, whichever ends later (the process maps the
// model files, fills its pools, loads a session for every version it is
// swapped to for the first time, and its heap and ONNX Runtime's arenas
// grow to what the load needs: a one-swap-per-50-ms run shows RSS settling
// within about 90 s, then flat over thousands of swaps), and the readings
// from a training job's start until jobSettle after its end (a job holds
// tens of MiB of simulated data while it runs, which the Go runtime returns
// within seconds of its end).
const (
	warmUpSwaps = 15
	warmUpTime  = 90 * time.Second
	jobSettle   = 10 * time.Second
)

// RSSFit is the growth of the server's resident set with swaps.
type RSSFit struct {
	Slope, StdErr float64 // KiB per 1,000 swaps; NaN without enough data
	Rho           float64 // lag-1 autocorrelation of the residuals (StdErr is widened for it when positive)
	Points        int     // swaps fitted (one point each: the mean RSS until the next swap)
	Swaps         int     // swaps spanned by the points, summed over the lifetimes
	Lifetimes     int     // process lifetimes with at least two points
}

// RSSGrowth fits RSS against the number of swaps done, with one intercept
// per process lifetime (a restart resets RSS) and a slope common to all:
// the pooled within-lifetime least-squares slope. Each point is one swap
// count and the mean of the RSS readings taken at it, after the warm-up and
// outside training jobs (see warmUpSwaps). Successive points are
// correlated (RSS drifts with the garbage collector's cycles), so the
// ordinary standard error is widened by sqrt((1+ρ)/(1-ρ)) for the
// residuals' lag-1 autocorrelation ρ > 0, the variance inflation of a
// trend's slope under AR(1) errors.
func (r *SoakResult) RSSGrowth() RSSFit {
	return r.growth(func(p RSSPoint) int64 { return p.KiB })
}

// AnonGrowth and FileGrowth fit the anonymous and the file-backed parts of
// the resident set the same way: growth of the first is memory allocated
// and kept (a leak, or an allocator holding freed memory); of the second,
// more of a mapped file read (the registry file grows with its history).
func (r *SoakResult) AnonGrowth() RSSFit {
	return r.growth(func(p RSSPoint) int64 { return p.Anon })
}

func (r *SoakResult) FileGrowth() RSSFit {
	return r.growth(func(p RSSPoint) int64 { return p.File })
}

// DBGrowth fits the registry file's size the same way: what the mapped
// part can grow by as the history lengthens (up to its kept events).
func (r *SoakResult) DBGrowth() RSSFit {
	return r.growth(func(p RSSPoint) int64 { return p.DB })
}

func (r *SoakResult) growth(kib func(RSSPoint) int64) RSSFit {
	fit := RSSFit{Slope: math.NaN(), StdErr: math.NaN(), Rho: math.NaN()}
	type point struct{ x, y float64 }
	var groups [][]point
	for i, lt := range r.Lifetimes {
		end := time.Duration(math.MaxInt64)
		if i+1 < len(r.Lifetimes) {
			end = r.Lifetimes[i+1].At
		}
		sum, n := map[int]float64{}, map[int]int{}
		for _, p := range r.RSS {
			if p.PID != lt.PID || p.At < lt.At || p.At >= end || p.Swaps-lt.Swaps < warmUpSwaps || p.At-lt.At < warmUpTime || r.inJob(p.At) || kib(p) < 0 {
				continue
			}
			sum[p.Swaps] += float64(kib(p))
			n[p.Swaps]++
		}
		var g []point
		for x, c := range n {
			g = append(g, point{float64(x), sum[x] / float64(c)})
		}
		if len(g) < 2 {
			continue
		}
		slices.SortFunc(g, func(a, b point) int { return cmp.Compare(a.x, b.x) })
		groups = append(groups, g)
		fit.Points += len(g)
		fit.Swaps += int(g[len(g)-1].x - g[0].x)
	}
	fit.Lifetimes = len(groups)
	var sxy, sxx float64
	for _, g := range groups { // centre each lifetime: its own intercept
		var mx, my float64
		for _, p := range g {
			mx += p.x
			my += p.y
		}
		mx /= float64(len(g))
		my /= float64(len(g))
		for k := range g {
			g[k].x -= mx
			g[k].y -= my
			sxy += g[k].x * g[k].y
			sxx += g[k].x * g[k].x
		}
	}
	if sxx == 0 {
		return fit
	}
	b := sxy / sxx
	fit.Slope = b * 1000
	var sse, lag float64
	for _, g := range groups {
		for k, p := range g {
			e := p.y - b*p.x
			sse += e * e
			if k > 0 {
				lag += e * (g[k-1].y - b*g[k-1].x)
			}
		}
	}
	dof := fit.Points - fit.Lifetimes - 1
	if dof <= 0 {
		return fit
	}
	se := math.Sqrt(sse / float64(dof) / sxx)
	if sse > 0 {
		fit.Rho = lag / sse
		if fit.Rho > 0 {
			se *= math.Sqrt((1 + fit.Rho) / (1 - math.Min(fit.Rho, 0.99)))
		}
	}
	fit.StdErr = se * 1000
	return fit
}

// inJob reports whether at falls in a training job or less than jobSettle
// after one.
func (r *SoakResult) inJob(at time.Duration) bool {
	for _, j := range r.JobSpans {
		if at >= j[0] && at < j[1]+jobSettle {
			return true
		}
	}
	return false
}

// WriteRSS writes every RSS reading to path as CSV: seconds since the load
// started, pid, VmRSS, RssAnon, RssFile and the registry file's size in
// KiB, swaps so far.
func (r *SoakResult) WriteRSS(path string) error {
	var b strings.Builder
	b.WriteString("seconds,pid,rss_kib,anon_kib,file_kib,registry_kib,swaps\n")
	for _, p := range r.RSS {
		fmt.Fprintf(&b, "%.3f,%d,%d,%d,%d,%d,%d\n", p.At.Seconds(), p.PID, p.KiB, p.Anon, p.File, p.DB, p.Swaps)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// percentile returns the q-quantile (0..1) of sorted d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// Report writes the result as markdown: command is the command line that
// ran it, commit what it ran at.
func (r *SoakResult) Report(w io.Writer, command, commit string) {
	o := r.Options
	fmt.Fprintf(w, "### Soak: %s at %s\n\n", r.Elapsed.Round(time.Second), commit)
	fmt.Fprintf(w, "`%s`\n\n", command)
	jobs := fmt.Sprintf("a training job (3,000 samples, 3 epochs, scored on %d held-out containers) every %s", soakJobEvalSamples, o.TrainEvery)
	if o.TrainEvery < 0 {
		jobs = "no training job"
	}
	fmt.Fprintf(w, "%d Predict calls/s (2 instances each) round robin over %d kinds, TLS and bearer tokens on both transports; a swap (activate or rollback) every %s, %s, %d SIGKILL + restart spread over the first half; a call failing between a kill and %s after the restarted server is ready counts as inside a restart window. Seed %d.\n\n",
		o.Rate, len(r.Kinds), o.SwapEvery, jobs, o.Kills, o.Grace, o.Seed)
	fmt.Fprintln(w, "| calls | sent | ok | failed in restart windows | failed outside | p50 | p99 | p99.9 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	var all []time.Duration
	var sent, ok, in, out int64
	row := func(name string, lat []time.Duration, a, b, c, d int64) {
		slices.Sort(lat)
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s | %s | %s |\n", name, a, b, c, d, ms(percentile(lat, .5)), ms(percentile(lat, .99)), ms(percentile(lat, .999)))
	}
	for _, k := range r.Kinds {
		st := r.stats[k]
		st.mu.Lock()
		lat := slices.Clone(st.lat)
		st.mu.Unlock()
		all = append(all, lat...)
		sent, ok, in, out = sent+st.sent.Load(), ok+st.ok.Load(), in+st.failedIn.Load(), out+st.failedOut.Load()
		row(k.String(), lat, st.sent.Load(), st.ok.Load(), st.failedIn.Load(), st.failedOut.Load())
	}
	row("**all**", all, sent, ok, in, out)
	fmt.Fprintln(w)
	for _, k := range r.Kinds {
		for _, e := range r.stats[k].firstErrs {
			fmt.Fprintf(w, "- failed outside a window, %s: %s\n", k, e)
		}
	}
	fmt.Fprintf(w, "Swaps: %d done, %d failed outside restart windows. Training jobs: %d started, %d failed outside restart windows.\n\n", r.Swaps, len(r.SwapFailures), r.Jobs, len(r.JobFailures))
	for _, f := range append(slices.Clone(r.SwapFailures), r.JobFailures...) {
		fmt.Fprintf(w, "- %s\n", f)
	}
	if len(r.SwapFailures)+len(r.JobFailures) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| restart | kill → ready | registry file while down |")
	fmt.Fprintln(w, "|---:|---:|---|")
	for i, c := range r.Consistency {
		d := "-"
		if i < len(r.Restarts) {
			d = r.Restarts[i].Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %d | %s | %s |\n", i+1, d, c)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| sample | at | pid | RSS | goroutines | swaps so far |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	if n := len(r.Samples); n > 0 {
		for _, x := range []struct {
			name string
			s    Sample
		}{{"start", r.Samples[0]}, {"middle", r.Samples[n/2]}, {"end", r.Samples[n-1]}} {
			fmt.Fprintf(w, "| %s | %.0fs | %d | %.1f MiB | %d | %d |\n", x.name, x.s.At.Seconds(), x.s.PID, float64(x.s.RSSKiB)/1024, x.s.Goroutines, x.s.Swaps)
		}
	}
	g := r.RSSGrowth()
	if math.IsNaN(g.StdErr) {
		fmt.Fprintf(w, "\nRSS growth: not measured: %d swaps in %d process lifetimes after each lifetime's first %d swaps and %s and outside training jobs; the run is too short.\n", g.Points, g.Lifetimes, warmUpSwaps, warmUpTime)
		return
	}
	widened := fmt.Sprintf("widened by √((1+ρ)/(1−ρ)) for the residuals' lag-1 autocorrelation ρ = %.2f", g.Rho)
	if !(g.Rho > 0) {
		widened = fmt.Sprintf("the residuals' lag-1 autocorrelation is %.2f, so not widened", g.Rho)
	}
	fmt.Fprintf(w, "\nRSS growth: %+.0f ± %.0f KiB per 1,000 swaps (slope ± standard error) over %d swaps in %d process lifetime%s. Least squares of RSS against the swap count with one intercept per lifetime; RSS read every %s and averaged per swap; each lifetime's first %d swaps and first %s (warm-up), and the readings from a training job's start to %s after its end, left out; the standard error %s.\n",
		g.Slope, g.StdErr, g.Swaps, g.Lifetimes, plural(g.Lifetimes), rssEvery, warmUpSwaps, warmUpTime, jobSettle, widened)
	a, f, db := r.AnonGrowth(), r.FileGrowth(), r.DBGrowth()
	fmt.Fprintf(w, "Of which anonymous memory (RssAnon: heaps, stacks) %+.0f ± %.0f and mapped files (RssFile + RssShmem: binary, libraries, registry file) %+.0f ± %.0f KiB per 1,000 swaps, fitted the same way; the registry file itself grew by %+.0f ± %.0f KiB per 1,000 swaps (each swap adds a history event; the registry keeps the newest %d).\n",
		a.Slope, a.StdErr, f.Slope, f.StdErr, db.Slope, db.StdErr, registry.DefaultHistoryKeep)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// Commit returns `git describe --always --dirty` of the working directory,
// or "unknown".
func Commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
