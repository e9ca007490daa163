package reliability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
)

// CrashOptions configure CrashLoop.
type CrashOptions struct {
	Iterations int       // kills to make; <= 0 means 300
	Seed       uint64    // random choices; 0 means the clock
	Bin        string    // the server binary; "" builds it into WorkDir
	WorkDir    string    // data directory, token file; "" means a new temporary directory, removed at the end
	Progress   io.Writer // one line per iteration when not nil
}

// CrashResult counts what CrashLoop did and found.
type CrashResult struct {
	Seed         uint64 // the seed used; the same seed repeats the same choices
	Iterations   int
	Kills        int            // SIGKILLs sent
	MidOpKills   int            // kills while the step's call had not returned
	Acknowledged int            // changes the client got OK for, each checked present after the kill
	Steps        map[string]int // steps by kind
	Refused      int            // steps the server refused (nothing to roll back to, ...)
	Violations   []string       // every broken invariant, prefixed with its iteration
	Duration     time.Duration
}

// Summary is the result as a few lines of text.
func (r *CrashResult) Summary() string {
	var b strings.Builder
	kinds := make([]string, 0, len(r.Steps))
	for k := range r.Steps {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Fprintf(&b, "iterations %d in %s\n", r.Iterations, r.Duration.Round(time.Second))
	fmt.Fprintf(&b, "kills %d, mid-op kills %d\n", r.Kills, r.MidOpKills)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %s steps %d\n", k, r.Steps[k])
	}
	fmt.Fprintf(&b, "acknowledged changes checked %d, refused steps %d\n", r.Acknowledged, r.Refused)
	fmt.Fprintf(&b, "violations %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

// Step kinds of the crash loop.
const (
	StepRegister = "register"
	StepActivate = "activate"
	StepRollback = "rollback"
	StepTrain    = "train"
)

// step is one change the loop makes, and what the client saw.
type step struct {
	kind     string
	version  string // register: the version; activate: the target; train: the job's version
	expected string // the active version the step was made against
	jobID    string
	policy   recommendationv1.ActivationPolicy
	ok       bool   // the call returned OK
	changed  bool   // activate/rollback: the response said it changed something
	to       string // rollback: the version the response says is active
	err      error
}

// crashLoop is CrashLoop's state.
type crashLoop struct {
	opts   CrashOptions
	rng    *rand.Rand
	tokens Tokens
	cfg    ServerConfig
	res    *CrashResult
	snap   *Snapshot // after the last kill
	seed   int64
}

// CrashLoop runs the real server on a temporary data directory and, each
// iteration, makes one random change over gRPC with an operator token
// (register a new version, activate a listed one, roll back, start a
// training job), kills the process with SIGKILL after a random delay, checks
// the registry file offline (Inspect) and that every change the client was
// told succeeded is there and nothing else changed, restarts the server and
// checks it becomes ready, serving what the file says. It returns an error
// only when it could not run; broken invariants are CrashResult.Violations.
func CrashLoop(ctx context.Context, opts CrashOptions) (*CrashResult, error) {
	if opts.Iterations <= 0 {
		opts.Iterations = 300
	}
	if opts.Seed == 0 {
		opts.Seed = uint64(time.Now().UnixNano())
	}
	if opts.WorkDir == "" {
		d, err := os.MkdirTemp("", "reco-crash-")
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
	tokens, err := WriteTokens(opts.WorkDir)
	if err != nil {
		return nil, err
	}
	dataDir := opts.WorkDir + "/data"
	l := &crashLoop{
		opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0xc7a5)), tokens: tokens,
		// A long probation: no automatic rollback moves the active version
		// behind the loop's back.
		cfg: ServerConfig{Bin: opts.Bin, DataDir: dataDir, TokenFile: tokens.Path, Extra: []string{"--probation", "24h"}},
		res: &CrashResult{Seed: opts.Seed, Steps: map[string]int{}},
	}
	start := time.Now()
	defer func() { l.res.Duration = time.Since(start) }()

	p, conn, err := l.start(ctx)
	if err != nil {
		return nil, err
	}
	// The first start registers and activates the embedded model; stop
	// cleanly and take the file as the reference.
	_ = p.Stop(30 * time.Second)
	conn.Close()
	snap, bad, err := Inspect(dataDir)
	if err != nil {
		return nil, err
	}
	l.violate(0, bad)
	l.snap = snap
	if p, conn, err = l.restart(ctx, 0); err != nil {
		return l.res, err
	}
	for i := 1; i <= opts.Iterations; i++ {
		if err := ctx.Err(); err != nil {
			conn.Close()
			p.Kill()
			return l.res, err
		}
		st, mid := l.stepAndKill(ctx, conn, p)
		conn.Close()
		l.res.Iterations++
		l.res.Kills++
		if mid {
			l.res.MidOpKills++
		}
		l.res.Steps[st.kind]++
		snap, bad, err := Inspect(dataDir)
		if err != nil {
			l.violate(i, []string{fmt.Sprintf("registry does not open after the kill: %v", err)})
			return l.res, nil
		}
		l.violate(i, bad)
		l.violate(i, l.checkStep(st, snap))
		l.snap = snap
		if p, conn, err = l.restart(ctx, i); err != nil {
			l.violate(i, []string{err.Error()})
			return l.res, nil
		}
		if st.kind == StepTrain && st.ok {
			l.violate(i, l.checkJob(ctx, conn, st))
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "%d/%d %s %s ok=%v mid=%v active=%s versions=%d violations=%d\n", i, opts.Iterations,
				st.kind, st.version, st.ok, mid, l.snap.Active[1], len(l.snap.Versions), len(l.res.Violations))
		}
	}
	_ = p.Stop(30 * time.Second)
	conn.Close()
	return l.res, nil
}

func (l *crashLoop) violate(i int, bad []string) {
	for _, b := range bad {
		l.res.Violations = append(l.res.Violations, fmt.Sprintf("iteration %d: %s", i, b))
	}
}

func (l *crashLoop) start(ctx context.Context) (*Process, *grpc.ClientConn, error) {
	p, err := Start(l.cfg, time.Minute)
	if err != nil {
		return nil, nil, err
	}
	conn, err := Dial(p.GRPC, nil)
	if err != nil {
		p.Kill()
		return nil, nil, err
	}
	if err := WaitReady(ctx, conn, p, time.Minute); err != nil {
		conn.Close()
		p.Kill()
		return nil, nil, err
	}
	return p, conn, nil
}

// restart starts the server again and checks it serves what the file
// holds: the same versions, the same active version, and Predict answers
// with it.
func (l *crashLoop) restart(ctx context.Context, i int) (*Process, *grpc.ClientConn, error) {
	p, conn, err := l.start(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("restart after kill %d: %w", i, err)
	}
	octx := l.as(ctx, l.tokens.Viewer)
	list, err := recommendationv1.NewModelRegistryServiceClient(conn).ListVersions(octx, &recommendationv1.ListVersionsRequest{})
	if err != nil {
		l.violate(i, []string{fmt.Sprintf("ListVersions after restart: %v", err)})
		return p, conn, nil
	}
	var got []string
	for _, v := range list.GetVersions() {
		got = append(got, v.GetVersion())
	}
	want := keys(l.snap.Versions)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		l.violate(i, []string{fmt.Sprintf("after restart the server lists %v; the file holds %v", got, want)})
	}
	resp, err := recommendationv1.NewRecommendationServiceClient(conn).Predict(l.as(ctx, l.tokens.Agent), &recommendationv1.PredictRequest{
		Instances: []*recommendationv1.Instance{{ContainerId: "c", Input: &recommendationv1.Instance_Features{
			Features: &recommendationv1.NormalizedFeatures{Values: make([]float32, model.NumFeatures)}}}}})
	switch {
	case err != nil:
		l.violate(i, []string{fmt.Sprintf("Predict after restart: %v", err)})
	case resp.GetModelVersion() != l.snap.Active[1]:
		l.violate(i, []string{fmt.Sprintf("Predict after restart answered with %s; the file's active version is %s", resp.GetModelVersion(), l.snap.Active[1])})
	}
	return p, conn, nil
}

func (l *crashLoop) as(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// stepAndKill makes one random change, kills the server after a random
// delay and returns the step with what the client saw, and whether the
// kill came before the call returned.
func (l *crashLoop) stepAndKill(ctx context.Context, conn *grpc.ClientConn, p *Process) (*step, bool) {
	st := l.choose()
	octx, cancel := context.WithTimeout(l.as(ctx, l.tokens.Operator), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); l.run(octx, conn, st) }()
	var delay time.Duration
	if st.kind == StepTrain { // a tiny job runs for about a second: kill it in any phase
		delay = time.Duration(l.rng.IntN(2500)) * time.Millisecond
	} else {
		delay = time.Duration(l.rng.IntN(60)) * time.Millisecond
	}
	mid := false
	select {
	case <-done:
		time.Sleep(time.Duration(l.rng.IntN(20)) * time.Millisecond)
	case <-time.After(delay):
		mid = true
	}
	p.Kill()
	<-done
	if mid && st.ok {
		// The answer was already on its way: the call had returned on the
		// server's side; count it as acknowledged, not as a mid-op kill.
		mid = false
	}
	return st, mid
}

// choose picks the next step against the last snapshot.
func (l *crashLoop) choose() *step {
	active := l.snap.Active[1]
	var others []string
	for v := range l.snap.Versions {
		if v != active {
			others = append(others, v)
		}
	}
	slices.Sort(others)
	r := l.rng.IntN(100)
	switch {
	case r < 25 && len(others) > 0:
		return &step{kind: StepActivate, version: others[l.rng.IntN(len(others))], expected: active}
	case r < 45:
		s := &step{kind: StepRollback, expected: active}
		if l.rng.IntN(2) == 0 && len(others) > 0 {
			s.version = others[l.rng.IntN(len(others))]
		}
		return s
	case r < 60:
		policy := recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER
		if l.rng.IntN(2) == 0 {
			policy = recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS
		}
		return &step{kind: StepTrain, expected: active, policy: policy}
	}
	newest := model.MustParseVersion("v1.0.0")
	for v := range l.snap.Register {
		if pv, err := model.ParseVersion(v); err == nil && pv.Major == 1 && pv.Compare(newest) > 0 {
			newest = pv
		}
	}
	kind := "patch"
	if l.rng.IntN(5) == 0 {
		kind = "minor"
	}
	next, _ := newest.Bump(kind)
	return &step{kind: StepRegister, version: next.String(), expected: active}
}

// run makes the step's call and records the answer in st.
func (l *crashLoop) run(ctx context.Context, conn *grpc.ClientConn, st *step) {
	reg := recommendationv1.NewModelRegistryServiceClient(conn)
	switch st.kind {
	case StepRegister:
		l.seed++
		b, mj, err := NewVersion(int64(l.opts.Seed%1e9)*1000+l.seed, model.MustParseVersion(st.version))
		if err != nil {
			st.err = err
			return
		}
		_, st.err = reg.RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{Onnx: b, ManifestJson: mj, Reason: "crash loop"})
	case StepActivate:
		var resp *recommendationv1.ActivateVersionResponse
		resp, st.err = reg.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: st.version, ExpectedActive: st.expected, Reason: "crash loop"})
		st.changed = resp.GetChanged()
		st.to = resp.GetModel().GetVersion()
	case StepRollback:
		var resp *recommendationv1.RollbackResponse
		resp, st.err = reg.Rollback(ctx, &recommendationv1.RollbackRequest{ToVersion: st.version, ExpectedActive: st.expected, Reason: "crash loop"})
		st.changed = resp.GetChanged()
		st.to = resp.GetModel().GetVersion()
	case StepTrain:
		var resp *recommendationv1.StartTrainingResponse
		resp, st.err = recommendationv1.NewTrainingServiceClient(conn).StartTraining(ctx, &recommendationv1.StartTrainingRequest{
			Samples: 1000, Epochs: 2, Seed: int64(l.rng.IntN(1000)), Bump: "patch", ActivationPolicy: st.policy, Reason: "crash loop"})
		st.jobID, st.version = resp.GetJob().GetId(), resp.GetJob().GetVersion()
	}
	st.ok = st.err == nil
}

// checkStep compares the file after the kill with the one before: the
// step's change is there when it was acknowledged, and nothing but the
// step's change (entirely, or not at all) differs.
func (l *crashLoop) checkStep(st *step, snap *Snapshot) []string {
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	prev := l.snap
	// Versions registered since the last kill: only the step's own.
	var added []string
	for v := range snap.Register {
		if _, ok := prev.Register[v]; !ok {
			added = append(added, v)
		}
	}
	switch {
	case len(added) > 1:
		fail("%d versions registered by one %s step: %v", len(added), st.kind, added)
	case len(added) == 1 && (st.kind != StepRegister && st.kind != StepTrain || added[0] != st.version && st.version != ""):
		fail("%s registered by a %s step of %q", added[0], st.kind, st.version)
	}
	if st.kind == StepRegister && st.ok {
		l.res.Acknowledged++
		if _, ok := snap.Register[st.version]; !ok {
			fail("register of %s was acknowledged but the history has no register event", st.version)
		}
		if !snap.Versions[st.version] && !snap.Pruned[st.version] {
			fail("register of %s was acknowledged but it is neither listed nor pruned", st.version)
		}
	}
	if st.kind == StepRegister && !st.ok && !isUnavailable(st.err) {
		l.res.Refused++
		if len(added) > 0 {
			fail("register of %s was refused (%v) yet registered", st.version, st.err)
		}
	}

	// The active version moves only as the step says.
	before, after := prev.Active[1], snap.Active[1]
	allowed := []string{before}
	switch st.kind {
	case StepActivate, StepRollback:
		switch {
		case st.ok && st.changed:
			l.res.Acknowledged++
			allowed = []string{st.to}
			if st.kind == StepActivate && st.to != st.version {
				fail("activate %s answered OK with %s active", st.version, st.to)
			}
		case st.ok:
			// a no-op: nothing changed
		case isUnavailable(st.err):
			if st.version != "" {
				allowed = append(allowed, st.version)
			} else { // to the rollback target, which the loop does not know
				allowed = append(allowed, keys(snap.Versions)...)
			}
		default:
			l.res.Refused++
		}
	case StepTrain:
		if st.policy == recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS && st.version != "" {
			allowed = append(allowed, st.version)
		}
	}
	if !slices.Contains(allowed, after) {
		fail("after a %s step (%s, ok=%v, err=%v) the active version is %s; before it was %s; allowed %v", st.kind, st.version, st.ok, st.err, after, before, allowed)
	}
	if st.kind == StepTrain && st.ok {
		l.res.Acknowledged++ // the job's record; checked after the restart
	} else if st.kind == StepTrain && !isUnavailable(st.err) {
		l.res.Refused++
	}
	return bad
}

// checkJob checks an acknowledged training job after the restart: its
// record exists, it has ended, and what it says it registered matches the
// registry.
func (l *crashLoop) checkJob(ctx context.Context, conn *grpc.ClientConn, st *step) []string {
	resp, err := recommendationv1.NewTrainingServiceClient(conn).GetJob(l.as(ctx, l.tokens.Viewer), &recommendationv1.GetJobRequest{Id: st.jobID})
	if err != nil {
		return []string{fmt.Sprintf("job %s was acknowledged but GetJob after the restart says %v", st.jobID, err)}
	}
	j := resp.GetJob()
	var bad []string
	if s := j.GetState(); s != recommendationv1.JobState_JOB_STATE_SUCCEEDED && s != recommendationv1.JobState_JOB_STATE_FAILED {
		bad = append(bad, fmt.Sprintf("job %s after the restart is %s; want SUCCEEDED or FAILED", st.jobID, s))
	}
	if strings.HasPrefix(j.GetError(), "interrupted") {
		l.res.MidOpKills++ // the kill came while the job ran
	}
	_, registered := l.snap.Register[j.GetVersion()]
	if j.GetRegistered() != registered {
		bad = append(bad, fmt.Sprintf("job %s says registered=%v, but the registry %s %s", st.jobID, j.GetRegistered(),
			map[bool]string{true: "has", false: "does not have"}[registered], j.GetVersion()))
	}
	return bad
}

// isUnavailable reports whether err is the server's death cutting the call.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "code = Unavailable") || strings.Contains(s, "code = Canceled") || errors.Is(err, errKilled)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
