package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/trainer"
)

func TestStartRefusesBadRequests(t *testing.T) {
	f := open(t, "")
	f.register(t, "v1.3.0") // the newest registered version
	m := f.manager(t, jobs.Options{}, false)
	pending, err := m.Start(jobs.Request{Samples: 1000, Epochs: 1, Version: "v1.5.0"})
	if err != nil {
		t.Fatal(err)
	}

	ok := jobs.Request{Samples: 1000, Epochs: 1}
	with := func(f func(*jobs.Request)) jobs.Request { r := ok; f(&r); return r }
	for _, tc := range []struct {
		name string
		req  jobs.Request
		want error
		msg  string // the message must contain it (the field, or what is accepted)
	}{
		{"ZeroSamples", with(func(r *jobs.Request) { r.Samples = 0 }), model.ErrInvalidInput, "samples: 0; want 1000 to 1000000"},
		{"TooFewSamples", with(func(r *jobs.Request) { r.Samples = 999 }), model.ErrInvalidInput, "samples: 999"},
		{"TooManySamples", with(func(r *jobs.Request) { r.Samples = 1_000_001 }), model.ErrInvalidInput, "samples: 1000001"},
		{"ZeroEpochs", with(func(r *jobs.Request) { r.Epochs = 0 }), model.ErrInvalidInput, "epochs: 0; want 1 to 500"},
		{"TooManyEpochs", with(func(r *jobs.Request) { r.Epochs = 501 }), model.ErrInvalidInput, "epochs: 501"},
		{"NegativeLearningRate", with(func(r *jobs.Request) { r.LearningRate = -0.1 }), model.ErrInvalidInput, "learning_rate: -0.1; want a number in (0, 1]"},
		{"HugeLearningRate", with(func(r *jobs.Request) { r.LearningRate = 1.5 }), model.ErrInvalidInput, "learning_rate: 1.5"},
		{"NaNLearningRate", with(func(r *jobs.Request) { r.LearningRate = math.NaN() }), model.ErrInvalidInput, "learning_rate: NaN"},
		{"NegativeBatch", with(func(r *jobs.Request) { r.BatchSize = -1 }), model.ErrInvalidInput, "batch_size: -1; want 1 to 65536"},
		{"HugeBatch", with(func(r *jobs.Request) { r.BatchSize = 65537 }), model.ErrInvalidInput, "batch_size: 65537"},
		{"MixLength", with(func(r *jobs.Request) { r.Mix = []float64{1, 2, 3} }), model.ErrInvalidInput, "workload_mix: 3 weights; want none (uniform) or 5"},
		{"MixNegative", with(func(r *jobs.Request) { r.Mix = []float64{1, -1, 1, 1, 1} }), model.ErrInvalidInput, "workload_mix[1] (batch): -1; want a finite weight ≥ 0"},
		{"MixNaN", with(func(r *jobs.Request) { r.Mix = []float64{1, 1, math.NaN(), 1, 1} }), model.ErrInvalidInput, "workload_mix[2] (compute): NaN"},
		{"MixInf", with(func(r *jobs.Request) { r.Mix = []float64{1, 1, 1, math.Inf(1), 1} }), model.ErrInvalidInput, "workload_mix[3] (database): +Inf"},
		{"Policy", with(func(r *jobs.Request) { r.Policy = "sometimes" }), model.ErrInvalidInput, `activation_policy: "sometimes"; want never, if_better or always`},
		{"SystemActor", with(func(r *jobs.Request) { r.Actor = "System" }), model.ErrInvalidInput, "actor: \"System\" is reserved"},
		{"LongActor", with(func(r *jobs.Request) { r.Actor = strings.Repeat("a", 129) }), model.ErrInvalidInput, "actor: 129 bytes; want at most 128"},
		{"ControlActor", with(func(r *jobs.Request) { r.Actor = "a\nb" }), model.ErrInvalidInput, "actor: contains control characters"},
		{"LongReason", with(func(r *jobs.Request) { r.Reason = strings.Repeat("r", 1025) }), model.ErrInvalidInput, "reason: 1025 bytes; want at most 1024"},
		{"VersionAndBump", with(func(r *jobs.Request) { r.Version, r.Bump = "v1.6.0", "patch" }), model.ErrInvalidInput, "both set"},
		{"MalformedVersion", with(func(r *jobs.Request) { r.Version = "1.5.0" }), model.ErrInvalidVersion, "version: invalid version \"1.5.0\""},
		{"UnknownBump", with(func(r *jobs.Request) { r.Bump = "huge" }), model.ErrInvalidVersion, "bump: invalid version: bump \"huge\"; want major, minor or patch"},
		{"MajorBump", with(func(r *jobs.Request) { r.Bump = "major" }), model.ErrInvalidInput, "bump: major would produce v2.0.0, but the job trains major version 1"},
		{"OtherMajor", with(func(r *jobs.Request) { r.Version = "v2.0.0" }), model.ErrInvalidInput, "version: v2.0.0 is major version 2; the job trains major 1 (set major)"},
		{"ZeroVersion", with(func(r *jobs.Request) { r.Version = "v0.0.0" }), model.ErrInvalidInput, "version: v0.0.0 is major version 0"},
		{"Registered", with(func(r *jobs.Request) { r.Version = "v1.1.0" }), model.ErrVersionExists, "version: v1.1.0 is already registered"},
		{"Pending", with(func(r *jobs.Request) { r.Version = "v1.5.0" }), model.ErrVersionExists, "version: v1.5.0 is the version " + pending.ID + " will produce"},
		{"BelowNewest", with(func(r *jobs.Request) { r.Version = "v1.2.0" }), model.ErrInvalidInput,
			"version: v1.2.0 is not higher than the version " + pending.ID + " will produce, v1.5.0; want a higher version, e.g. v1.5.1"},
		{"BelowPending", with(func(r *jobs.Request) { r.Version = "v1.4.0" }), model.ErrInvalidInput, "is not higher than the version " + pending.ID + " will produce, v1.5.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := m.Start(tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start = %v, %v; want an error wrapping %q", j, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
	list, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("List has %d jobs after refused starts; want only the pending one", len(list))
	}
	if got := f.versions(t); !slices.Equal(got, []string{"v1.1.0", "v1.3.0"}) {
		t.Errorf("registry holds %v", got)
	}

	t.Run("Defaults", func(t *testing.T) {
		j, err := m.Start(jobs.Request{Samples: 1000, Epochs: 2, Mix: []float64{0, 0, 0, 0, 0}})
		if err != nil {
			t.Fatal(err)
		}
		p := j.Params
		if j.State != jobs.StateQueued || j.Progress.Phase != jobs.PhaseQueued {
			t.Errorf("new job is %s/%s; want QUEUED/queued", j.State, j.Progress.Phase)
		}
		if j.Version.String() != "v1.5.1" || p.Bump != "patch" {
			t.Errorf("no version nor bump gives %s (bump %q); want a patch bump of the pending v1.5.0: v1.5.1", j.Version, p.Bump)
		}
		if !slices.Equal(p.Mix, []float64{1, 1, 1, 1, 1}) || p.LearningRate != 0.003 || p.BatchSize != 256 ||
			p.Policy != jobs.PolicyIfBetter || p.Actor != jobs.DefaultActor || p.Reason != jobs.DefaultReason {
			t.Errorf("defaults not filled in: %+v", p)
		}
		j, err = m.Start(jobs.Request{Samples: 1000, Epochs: 2, Bump: "minor"})
		if err != nil {
			t.Fatal(err)
		}
		if j.Version.String() != "v1.6.0" {
			t.Errorf("minor bump gives %s; want v1.6.0", j.Version)
		}
	})
}

func TestQueueFull(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{QueueSize: 2}, false) // no worker: jobs stay queued
	var ids []string
	for range 2 {
		j, err := m.Start(small(jobs.PolicyNever))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if ids[0] >= ids[1] {
		t.Errorf("ids %v do not sort in start order", ids)
	}
	_, err := m.Start(small(jobs.PolicyNever))
	if !errors.Is(err, model.ErrQueueFull) {
		t.Fatalf("third Start = %v; want ErrQueueFull", err)
	}
	if !strings.Contains(err.Error(), "2 jobs are waiting") {
		t.Errorf("error %q does not say how many wait", err)
	}

	// Cancelling a queued job frees its place at once.
	j, err := m.Cancel(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateCancelled || j.FinishedAt.IsZero() || j.Error == "" {
		t.Errorf("cancelled queued job: %+v", j)
	}
	if _, err := m.Start(small(jobs.PolicyNever)); err != nil {
		t.Errorf("Start after a cancel: %v", err)
	}
	if _, err := m.Cancel("job-99"); !errors.Is(err, model.ErrJobNotFound) {
		t.Errorf("Cancel(unknown) = %v; want ErrJobNotFound", err)
	}
	if _, err := m.Get("nope"); !errors.Is(err, model.ErrJobNotFound) {
		t.Errorf("Get(unknown) = %v; want ErrJobNotFound", err)
	}
	// A finished job is left as it is.
	again, err := m.Cancel(ids[0])
	if err != nil || again.State != jobs.StateCancelled {
		t.Errorf("second Cancel = %+v, %v", again, err)
	}
}

func TestJobRegistersWithFullManifest(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{}, true)
	req := small(jobs.PolicyIfBetter)
	req.Mix = []float64{2, 1, 1, 1, 0}
	start, err := m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	events := wait(t, m, start.ID)

	last := events[len(events)-1]
	if last.State != jobs.StateSucceeded || last.Job == nil {
		t.Fatalf("final event %+v; want SUCCEEDED with the job", last)
	}
	j := last.Job
	if j.Error != "" || !j.Registered || j.Version.String() != "v1.1.1" || j.ParentVersion != "v1.1.0" {
		t.Errorf("job: error %q registered %v version %s parent %s; want v1.1.1 registered from v1.1.0", j.Error, j.Registered, j.Version, j.ParentVersion)
	}
	if j.StartedAt.Before(j.CreatedAt) || j.FinishedAt.Before(j.StartedAt) || j.Progress.Phase != jobs.PhaseDone || j.Progress.Elapsed <= 0 {
		t.Errorf("times or progress wrong: created %v started %v finished %v progress %+v", j.CreatedAt, j.StartedAt, j.FinishedAt, j.Progress)
	}
	// The stream saw the phases in order, and every epoch's losses.
	var phases []jobs.Phase
	epochs := 0
	for _, ev := range events {
		if len(phases) == 0 || phases[len(phases)-1] != ev.Phase {
			phases = append(phases, ev.Phase)
		}
		if ev.Phase == jobs.PhaseTraining && ev.Epoch > 0 {
			epochs = max(epochs, ev.Epoch)
			if !(ev.Loss > 0) || !(ev.ValLoss > 0) || ev.Epochs != 3 {
				t.Errorf("training event without losses: %+v", ev)
			}
		}
	}
	order := []jobs.Phase{jobs.PhaseQueued, jobs.PhaseGenerating, jobs.PhaseTraining, jobs.PhaseEvaluating, jobs.PhaseRegistering, jobs.PhaseActivating, jobs.PhaseDone}
	for i := 1; i < len(phases); i++ {
		if slices.Index(order, phases[i]) <= slices.Index(order, phases[i-1]) {
			t.Errorf("phases out of order: %v", phases)
		}
	}
	if phases[len(phases)-1] != jobs.PhaseDone || epochs == 0 {
		t.Errorf("phases %v, last epoch %d", phases, epochs)
	}

	// The manifest says where the version came from.
	man, err := f.store.Manifest(j.Version)
	if err != nil {
		t.Fatal(err)
	}
	tr := man.Training
	if tr.ParentVersion != "v1.1.0" || tr.Samples != 3000 || tr.Seed != 7 || tr.Epochs != 3 || tr.EpochsRun < 1 ||
		tr.Hyper["learning_rate"] != "0.003" || tr.Hyper["batch_size"] != "256" ||
		!strings.Contains(tr.DataFile, "synthetic: 3000 samples, seed 7, workload mix web=2 batch=1 compute=1 database=1 cron=0") {
		t.Errorf("manifest training record: %+v", tr)
	}
	if man.Metrics == nil || man.Metrics.HeldOutSamples != 1000 || man.Metrics.HeldOutSeed != jobs.HeldOutSeed(7) || len(man.Metrics.MAE) != model.NumOutputs {
		t.Errorf("manifest metrics: %+v", man.Metrics)
	}
	if man.Architecture.Parameters != 1029 || len(man.Golden.Inputs) == 0 {
		t.Errorf("manifest architecture %+v, %d golden rows", man.Architecture, len(man.Golden.Inputs))
	}

	// IF_BETTER: the decision follows the rule on the recorded numbers.
	ev, act := j.Evaluation, j.Activation
	if ev == nil || ev.Active == nil || act == nil {
		t.Fatalf("evaluation %+v activation %+v", ev, act)
	}
	if ev.Active.Version != defaultVersion || ev.Candidate.Version != j.Version || ev.HeldOutSamples != 1000 {
		t.Errorf("evaluation compares %s with %s on %d samples", ev.Candidate.Version, ev.Active.Version, ev.HeldOutSamples)
	}
	c, a := ev.Candidate, ev.Active
	better := c.Scores.OOMRate <= a.Scores.OOMRate && c.MeanLimitSlack < a.MeanLimitSlack
	if act.Policy != jobs.PolicyIfBetter || act.Better != better || act.Activated != better || !strings.HasPrefix(act.Reason, "policy if_better: ") ||
		!strings.Contains(act.Reason, "VPA baseline") {
		t.Errorf("decision %+v; the numbers say better=%v (candidate OOM %v slack %v, active OOM %v slack %v)",
			act, better, c.Scores.OOMRate, c.MeanLimitSlack, a.Scores.OOMRate, a.MeanLimitSlack)
	}
	wantActive := defaultVersion
	if better {
		wantActive = j.Version
	}
	if got, _ := f.ctl.Active(0); got != wantActive {
		t.Errorf("active version %s; want %s", got, wantActive)
	}
	t.Logf("decision: %s", act.Reason)

	// What is stored is what Get says.
	rec, err := f.store.GetRecord(jobs.Bucket, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored jobs.Job
	if err := json.Unmarshal(rec, &stored); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != jobs.StateSucceeded || stored.Activation == nil || stored.Evaluation == nil || !stored.FinishedAt.Equal(got.FinishedAt) {
		t.Errorf("stored record %+v differs from Get %+v", stored, got)
	}
	// A finished job's Watch replays its final event alone.
	if evs := wait(t, m, j.ID); len(evs) != 1 || evs[0].Job == nil || evs[0].State != jobs.StateSucceeded {
		t.Errorf("Watch of a finished job sent %d events: %+v", len(evs), evs)
	}
}

func TestAlwaysActivates(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{}, true)
	req := small(jobs.PolicyAlways)
	req.Version = "v1.4.0"
	j, err := m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, m, j.ID)
	j, err = m.Get(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobs.StateSucceeded || j.Activation == nil || !j.Activation.Activated {
		t.Fatalf("job %s %q activation %+v", j.State, j.Error, j.Activation)
	}
	if got, _ := f.ctl.Active(0); got.String() != "v1.4.0" {
		t.Errorf("active version %s; want v1.4.0", got)
	}
	if l, err := f.models.Acquire(""); err != nil || l.Manifest().Version.String() != "v1.4.0" {
		t.Errorf("serving %v (%v); want v1.4.0", l, err)
	} else {
		l.Release()
	}
	if p, ok := f.ctl.OnProbation(); !ok || p.String() != "v1.4.0" {
		t.Errorf("probation %v %v; want v1.4.0 on probation like any activation", p, ok)
	}
	h, err := f.store.History()
	if err != nil {
		t.Fatal(err)
	}
	ev := h[len(h)-1]
	if ev.Action != registry.ActionActivate || ev.From != "v1.1.0" || ev.To != "v1.4.0" || ev.Actor != "tester" || !strings.Contains(ev.Reason, j.ID) {
		t.Errorf("last history event %+v", ev)
	}
}

// watchUntil follows job id until cond holds for an event and returns it.
func watchUntil(t *testing.T, m *jobs.Manager, id string, cond func(jobs.Event) bool) jobs.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := errors.New("found")
	var found jobs.Event
	err := m.Watch(ctx, id, func(ev jobs.Event) error {
		if cond(ev) {
			found = ev
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("watching %s: %v (the awaited event never came)", id, err)
	}
	return found
}

func TestCancelRunningJob(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{}, true)
	req := small(jobs.PolicyAlways)
	req.Samples, req.Epochs = 5000, 500
	j, err := m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	tiny := jobs.Request{Samples: 1000, Epochs: 1, Policy: jobs.PolicyNever}
	next, err := m.Start(tiny) // runs after the cancelled one
	if err != nil {
		t.Fatal(err)
	}
	seen := watchUntil(t, m, j.ID, func(ev jobs.Event) bool { return ev.Phase == jobs.PhaseTraining && ev.Epoch >= 1 })
	if seen.State != jobs.StateRunning {
		t.Fatalf("job %s while training", seen.State)
	}
	got, err := m.Cancel(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.StateCancelled || got.Registered || got.Error != "cancelled by request" || got.Progress.Phase != jobs.PhaseDone {
		t.Fatalf("cancelled job: state %s registered %v error %q phase %s", got.State, got.Registered, got.Error, got.Progress.Phase)
	}
	// It stopped within an epoch of the one we saw (plus the one that may
	// have ended while the event was on its way).
	if got.Progress.Epoch > seen.Epoch+2 {
		t.Errorf("job went on to epoch %d after the cancel at epoch %d", got.Progress.Epoch, seen.Epoch)
	}
	if got := f.versions(t); !slices.Equal(got, []string{"v1.1.0"}) {
		t.Errorf("registry after a cancelled job: %v; want only v1.1.0", got)
	}
	// The worker goes on with the next job (its version was fixed when it
	// was queued, after the cancelled job's).
	wait(t, m, next.ID)
	if n, _ := m.Get(next.ID); n.State != jobs.StateSucceeded || n.Version.String() != "v1.1.2" {
		t.Errorf("next job %s %s %q", n.State, n.Version, n.Error)
	}
}

func TestStopAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db") // both subtests use it
	t.Run("ShutdownMidJob", func(t *testing.T) {
		f := open(t, path)
		m := f.manager(t, jobs.Options{}, false)
		req := small(jobs.PolicyAlways)
		req.Samples, req.Epochs = 5000, 500
		j, err := m.Start(req)
		if err != nil {
			t.Fatal(err)
		}
		queued, err := m.Start(small(jobs.PolicyAlways))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { m.Run(ctx) })
		watchUntil(t, m, j.ID, func(ev jobs.Event) bool { return ev.Phase == jobs.PhaseTraining })
		cancel() // the server stops
		wg.Wait()
		got, _ := m.Get(j.ID)
		if got.State != jobs.StateFailed || got.Error != jobs.InterruptedRunning || got.Registered {
			t.Errorf("job stopped by shutdown: %s %q registered %v", got.State, got.Error, got.Registered)
		}
		if q, _ := m.Get(queued.ID); q.State != jobs.StateFailed || q.Error != jobs.InterruptedQueued {
			t.Errorf("job queued at shutdown: %s %q; want FAILED %q", q.State, q.Error, jobs.InterruptedQueued)
		}
		if _, err := m.Start(small(jobs.PolicyNever)); !errors.Is(err, model.ErrQueueFull) || !strings.Contains(err.Error(), "shutting down") {
			t.Errorf("Start after Run returned = %v; want ErrQueueFull saying the server is shutting down", err)
		}
		if got := f.versions(t); !slices.Equal(got, []string{"v1.1.0"}) {
			t.Errorf("registry %v", got)
		}
		f.close(t)
	})

	t.Run("CrashedRunningJob", func(t *testing.T) {
		// As a crash leaves them: jobs recorded RUNNING and QUEUED in the file.
		f := open(t, path)
		crashed := jobs.Job{ID: "job-00000007", State: jobs.StateRunning, Params: small(jobs.PolicyAlways),
			Version: model.MustParseVersion("v1.1.5"), Progress: jobs.Progress{Phase: jobs.PhaseTraining, Epoch: 2, Epochs: 3}}
		waiting := jobs.Job{ID: "job-00000006", State: jobs.StateQueued, Params: small(jobs.PolicyAlways),
			Version: model.MustParseVersion("v1.1.6"), Progress: jobs.Progress{Phase: jobs.PhaseQueued}}
		for _, j := range []jobs.Job{crashed, waiting} {
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.store.PutRecord(jobs.Bucket, j.ID, b); err != nil {
				t.Fatal(err)
			}
		}
		before := f.versions(t)

		m := f.manager(t, jobs.Options{}, false)
		list, err := m.List()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 4 || list[0].ID != crashed.ID || list[1].ID != waiting.ID {
			t.Fatalf("List after restart: %d jobs, first %s; want 4, newest first", len(list), list[0].ID)
		}
		for _, j := range list {
			if j.State != jobs.StateFailed || !strings.HasPrefix(j.Error, "interrupted: ") || j.FinishedAt.IsZero() || j.Progress.Phase != jobs.PhaseDone {
				t.Errorf("%s after restart: %s %q", j.ID, j.State, j.Error)
			}
		}
		for i, want := range []string{jobs.InterruptedRunning, jobs.InterruptedQueued, jobs.InterruptedQueued, jobs.InterruptedRunning} {
			if list[i].Error != want {
				t.Errorf("%s: error %q; want %q", list[i].ID, list[i].Error, want)
			}
		}
		rec, err := f.store.GetRecord(jobs.Bucket, crashed.ID)
		if err != nil {
			t.Fatal(err)
		}
		var stored jobs.Job
		if err := json.Unmarshal(rec, &stored); err != nil || stored.State != jobs.StateFailed {
			t.Errorf("stored record still %s (%v)", stored.State, err)
		}
		if got := f.versions(t); !slices.Equal(got, before) {
			t.Errorf("registry changed by the restart: %v, was %v", got, before)
		}
		// New jobs continue the sequence and may take the interrupted
		// jobs' versions: they were never registered.
		j, err := m.Start(small(jobs.PolicyNever))
		if err != nil {
			t.Fatal(err)
		}
		if j.ID != "job-00000008" || j.Version.String() != "v1.1.1" {
			t.Errorf("new job %s version %s; want job-00000008 and v1.1.1", j.ID, j.Version)
		}
		if _, err := m.Cancel(j.ID); err != nil {
			t.Error(err)
		}
	})
}

func TestModelIndependentOfWorkers(t *testing.T) {
	train := func(t *testing.T, workers int) (string, []byte) {
		f := open(t, "")
		m := f.manager(t, jobs.Options{Workers: workers}, true)
		req := small(jobs.PolicyNever)
		req.Version = "v1.2.0"
		j, err := m.Start(req)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, m, j.ID)
		// Policy never: registered, not activated.
		if j, _ = m.Get(j.ID); j.State != jobs.StateSucceeded || j.Activation == nil || j.Activation.Activated ||
			!strings.HasPrefix(j.Activation.Reason, "policy never: registered, not activated") {
			t.Fatalf("job %s %q activation %+v", j.State, j.Error, j.Activation)
		}
		if got, _ := f.ctl.Active(0); got != defaultVersion {
			t.Errorf("active %s; want v1.1.0", got)
		}
		if got := f.versions(t); !slices.Equal(got, []string{"v1.1.0", "v1.2.0"}) {
			t.Errorf("registry %v", got)
		}
		b, man, err := f.store.Load(j.Version)
		if err != nil {
			t.Fatal(err)
		}
		return man.Model.SHA256, b
	}
	var sums [2]string
	var onnx [2][]byte
	t.Run("Train", func(t *testing.T) {
		for i, w := range []int{1, 4} {
			t.Run(fmt.Sprintf("Workers%d", w), func(t *testing.T) {
				t.Parallel()
				sums[i], onnx[i] = train(t, w)
			})
		}
	})
	if t.Failed() {
		return
	}
	if sums[0] != sums[1] || !bytes.Equal(onnx[0], onnx[1]) {
		t.Errorf("Workers=1 gives sha256 %s, Workers=4 gives %s; want the same bytes", sums[0], sums[1])
	}
}

// TestRestartAfterRegistering: a server killed while a job was registering
// or activating leaves a version in the registry that the job's record may
// not mention yet. After a restart the job says what was done.
func TestRestartAfterRegistering(t *testing.T) {
	t.Parallel()
	f := open(t, "")
	ctx := context.Background()
	// activating: registered and recorded so, killed before Activate.
	f.register(t, "v1.1.5")
	// registering: the registry committed, the process died before the
	// job's record said Registered.
	f.register(t, "v1.1.6")
	// activating: Activate committed, the record was not finished.
	f.register(t, "v1.1.7")
	if _, err := f.ctl.Activate(ctx, model.MustParseVersion("v1.1.7"), model.Change{Reason: "test", Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	records := []jobs.Job{
		{ID: "job-00000001", Version: model.MustParseVersion("v1.1.5"), Registered: true, Progress: jobs.Progress{Phase: jobs.PhaseActivating}},
		{ID: "job-00000002", Version: model.MustParseVersion("v1.1.6"), Progress: jobs.Progress{Phase: jobs.PhaseRegistering}},
		{ID: "job-00000003", Version: model.MustParseVersion("v1.1.7"), Registered: true, Progress: jobs.Progress{Phase: jobs.PhaseActivating}},
		// registering, killed before the registry committed.
		{ID: "job-00000004", Version: model.MustParseVersion("v1.1.8"), Progress: jobs.Progress{Phase: jobs.PhaseRegistering}},
	}
	for _, j := range records {
		j.State, j.Params = jobs.StateRunning, small(jobs.PolicyAlways)
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.PutRecord(jobs.Bucket, j.ID, b); err != nil {
			t.Fatal(err)
		}
	}

	m := f.manager(t, jobs.Options{}, false)
	for _, tt := range []struct {
		id                    string
		registered, activated bool
		err                   string
	}{
		{"job-00000001", true, false, "interrupted after registering v1.1.5; not activated"},
		{"job-00000002", true, false, "interrupted after registering v1.1.6; not activated"},
		{"job-00000003", true, true, "interrupted after registering and activating v1.1.7; the job's record was not finished"},
		{"job-00000004", false, false, jobs.InterruptedRunning},
	} {
		j, err := m.Get(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		activated := j.Activation != nil && j.Activation.Activated
		if j.State != jobs.StateFailed || j.Error != tt.err || j.Registered != tt.registered || activated != tt.activated {
			t.Errorf("%s after restart: %s %q registered %v activated %v; want FAILED %q registered %v activated %v",
				tt.id, j.State, j.Error, j.Registered, activated, tt.err, tt.registered, tt.activated)
		}
		if tt.registered && (j.Activation == nil || j.Activation.Policy != jobs.PolicyAlways || j.Activation.Reason == "") {
			t.Errorf("%s: activation %+v; want the policy and a reason", tt.id, j.Activation)
		}
		// What the restart concluded is written back.
		rec, err := f.store.GetRecord(jobs.Bucket, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		var stored jobs.Job
		if err := json.Unmarshal(rec, &stored); err != nil || stored.Error != tt.err || stored.Registered != tt.registered {
			t.Errorf("%s stored as %s %q registered %v (%v)", tt.id, stored.State, stored.Error, stored.Registered, err)
		}
	}
}

// TestMaxSamples: a job larger than the server's cap is refused naming the
// cap, and nothing is queued.
func TestMaxSamples(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{MaxSamples: 5000}, false)
	req := small(jobs.PolicyNever)
	req.Samples = 6000
	if _, err := m.Start(req); !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), "at most 5000") {
		t.Fatalf("Start(6000 samples) with a 5000 cap: %v; want ErrInvalidInput naming the cap", err)
	}
	if list, err := m.List(); err != nil || len(list) != 0 {
		t.Errorf("jobs after the refusal: %v, %v; want none", list, err)
	}
	req.Samples = 5000
	if _, err := m.Start(req); err != nil {
		t.Errorf("Start(5000 samples) with a 5000 cap: %v", err)
	}
}

// TestJobTrainsMajor2: a job for major 2 trains major 2's features,
// registers v2.0.1 and activates it beside major 1's active version; an
// unknown major is refused.
func TestJobTrainsMajor2(t *testing.T) {
	f := open(t, "")
	m := f.manager(t, jobs.Options{}, true)
	req := small(jobs.PolicyAlways)
	req.Major, req.Bump = 2, "patch"
	j, err := m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	if j.Version.String() != "v2.0.1" {
		t.Fatalf("job version %s; want v2.0.1", j.Version)
	}
	wait(t, m, j.ID)
	got, err := m.Get(j.ID)
	if err != nil || got.State != jobs.StateSucceeded {
		t.Fatalf("job = %+v, %v; want SUCCEEDED", got, err)
	}
	man, err := f.store.Manifest(j.Version)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := model.FeaturesFor(2); len(man.Features) != len(want) {
		t.Errorf("v2.0.1 declares %d features; want major 2's %d", len(man.Features), len(want))
	}
	actives, _ := f.store.Actives()
	if actives[2] != j.Version || actives[1].Major != 1 {
		t.Errorf("actives %v; want major 2 at %s and major 1 untouched", actives, j.Version)
	}
	req.Major = 7
	if _, err := m.Start(req); !errors.Is(err, model.ErrInvalidInput) {
		t.Errorf("Start(major 7): %v; want ErrInvalidInput", err)
	}
}

// TestIfBetterComparesMajor2: on a registry seeded like the server's (v1.1.0
// and v2.0.0 active), a job with no major trains major 2, and if_better
// compares it with v2.0.0, both scored on the same held-out rows, and
// decides on the numbers.
func TestIfBetterComparesMajor2(t *testing.T) {
	f := openAll(t)
	m := f.manager(t, jobs.Options{}, true)
	start, err := m.Start(small(jobs.PolicyIfBetter))
	if err != nil {
		t.Fatal(err)
	}
	if start.Version.String() != "v2.0.1" {
		t.Fatalf("job version %s; want v2.0.1 (major 2, the newest served)", start.Version)
	}
	wait(t, m, start.ID)
	j, err := m.Get(start.ID)
	if err != nil || j.State != jobs.StateSucceeded {
		t.Fatalf("job = %+v, %v; want SUCCEEDED", j, err)
	}
	ev, act := j.Evaluation, j.Activation
	if ev == nil || act == nil {
		t.Fatalf("evaluation %+v activation %+v", ev, act)
	}
	v2 := model.MustParseVersion("v2.0.0")
	if ev.Active == nil || ev.ActiveError != "" || ev.Active.Version != v2 || j.ParentVersion != "v2.0.0" {
		t.Fatalf("active %+v (error %q), parent %q; want v2.0.0 evaluated", ev.Active, ev.ActiveError, j.ParentVersion)
	}

	// The active scores are v2.0.0's on the job's held-out rows: scoring it
	// on them here gives the same numbers.
	b, man, err := defaultmodel.LoadMajor(2)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := onnxfile.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	mix := [trainer.NumWorkloads]float64{1, 1, 1, 1, 1}
	held, err := trainer.GenerateEval(context.Background(), trainer.GenConfig{Samples: 1000, Seed: ev.HeldOutSeed, Mix: mix, Workers: 1, Major: 2})
	if err != nil {
		t.Fatal(err)
	}
	want, err := trainer.Evaluate(func(x []float32, n int) ([]float32, error) { return q.Forward(x, n), nil }, nil, held, man.Outputs, ev.HeldOutSeed)
	if err != nil {
		t.Fatal(err)
	}
	if ev.HeldOutSamples != held.N || ev.HeldOutSeed != jobs.HeldOutSeed(7) || !maps.Equal(ev.Active.MAE, want.MAE) || ev.Active.Scores != want.Model {
		t.Errorf("v2.0.0 scored MAE %v scores %+v on %d rows; on the held-out rows it scores MAE %v scores %+v on %d",
			ev.Active.MAE, ev.Active.Scores, ev.HeldOutSamples, want.MAE, want.Model, held.N)
	}

	c, a := ev.Candidate, ev.Active
	better := c.Scores.OOMRate <= a.Scores.OOMRate && c.MeanLimitSlack < a.MeanLimitSlack
	if act.Better != better || act.Activated != better || !strings.Contains(act.Reason, "v2.0.0 on 1000 held-out containers") {
		t.Errorf("decision %+v; the numbers say better=%v (candidate OOM %v slack %v, active OOM %v slack %v)",
			act, better, c.Scores.OOMRate, c.MeanLimitSlack, a.Scores.OOMRate, a.MeanLimitSlack)
	}
	wantActive := v2
	if better {
		wantActive = j.Version
	}
	if got, _ := f.ctl.Active(2); got != wantActive {
		t.Errorf("major 2 active %s; want %s", got, wantActive)
	}
	if got, _ := f.ctl.Active(1); got != defaultVersion {
		t.Errorf("major 1 active %s; want %s untouched", got, defaultVersion)
	}
	t.Logf("decision: %s", act.Reason)
}

// TestIfBetterRefusesIncomparableActive: an active version whose manifest
// computes the job's features otherwise (another normalization, another
// history window) is not scored on the job's held-out rows, and if_better
// does not replace it.
func TestIfBetterRefusesIncomparableActive(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*model.Manifest)
		says string
	}{
		{"Normalization", func(m *model.Manifest) { m.Features[1].Max *= 2 }, "its manifest normalizes the features differently"},
		{"HistoryWindow", func(m *model.Manifest) { m.HistoryWindowHours = 168 }, "over a 168h0m0s history window, not major 1's 48h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := open(t, "")
			f.registerWith(t, "v1.2.0", tc.edit)
			odd := model.MustParseVersion("v1.2.0")
			if _, err := f.ctl.Activate(context.Background(), odd, model.Change{Reason: "test", Actor: "tester"}); err != nil {
				t.Fatal(err)
			}
			m := f.manager(t, jobs.Options{}, true)
			start, err := m.Start(small(jobs.PolicyIfBetter))
			if err != nil {
				t.Fatal(err)
			}
			wait(t, m, start.ID)
			j, err := m.Get(start.ID)
			if err != nil || j.State != jobs.StateSucceeded || j.Evaluation == nil || j.Activation == nil {
				t.Fatalf("job = %+v, %v; want SUCCEEDED with an evaluation", j, err)
			}
			if ev := j.Evaluation; ev.Active != nil || !strings.Contains(ev.ActiveError, tc.says) {
				t.Errorf("active scores %+v, error %q; want none, because %q", ev.Active, ev.ActiveError, tc.says)
			}
			if act := j.Activation; act.Activated || !strings.Contains(act.Reason, "the active version v1.2.0 could not be evaluated") {
				t.Errorf("activation %+v; want not activated, the active version not evaluated", act)
			}
			if got, _ := f.ctl.Active(1); got != odd {
				t.Errorf("active %s; want %s kept", got, odd)
			}
		})
	}
}
