package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
	"recommendation-api/internal/trainer"
)

// heldOutSalt separates the held-out seed from the training seed: the
// generator seeds each container from (seed, index), so a different seed
// gives different containers.
const heldOutSalt = 0x5851f42d4c957f2d

// HeldOutSeed is the seed of the held-out set of a job with seed seed.
func HeldOutSeed(seed int64) int64 { return seed ^ heldOutSalt }

// evalCost is roughly how much longer trainer.GenerateEval takes per
// container than trainer.Generate (it also sorts the following window and
// computes the VPA baseline); it only feeds the time-left estimate.
const evalCost = 3.5

// execute runs e's phases. It returns nil when the version is registered
// (and activated if the policy said so), ctx's error when ctx ended before
// registration began, and any other failure. Registration and activation
// are not interrupted by ctx.
func (m *Manager) execute(ctx context.Context, e *entry) error {
	// Params, Version and ID never change after Start: no lock needed.
	req, v, id := e.job.Params, e.job.Version, e.job.ID
	var mix [trainer.NumWorkloads]float64
	copy(mix[:], req.Mix)

	// The version may have been registered since the job was queued.
	newest, err := newestOf(m.store, v.Major)
	if err != nil {
		return err
	}
	if !newest.IsZero() && v.Compare(newest) <= 0 {
		return fmt.Errorf("%s is no longer higher than the newest registered version, %s, which was registered after the job was queued; start a new job", v, newest)
	}

	start := time.Now()
	d, err := m.trainingData(ctx, req, mix)
	if err != nil {
		return err
	}
	evalEst := time.Duration(float64(time.Since(start)) * evalCost * float64(m.opts.EvalSamples) / float64(max(d.N, 1)))
	m.update(e, true, func(j *Job) { j.Progress.Phase = PhaseTraining })

	cfg := trainer.DefaultTrainConfigFor(v.Major) // the recipe train uses for this major
	cfg.Epochs, cfg.BatchSize, cfg.LearningRate = req.Epochs, req.BatchSize, req.LearningRate
	cfg.Seed, cfg.Workers = req.Seed, m.opts.Workers
	res, err := trainer.Train(ctx, d, cfg, func(p trainer.Progress) {
		m.update(e, false, func(j *Job) {
			pr := &j.Progress
			if p.Phase == "training" {
				pr.Epoch, pr.Loss, pr.ValLoss = p.Epoch, p.TrainLoss, p.ValLoss
			}
			pr.Epochs, pr.BestEpoch = p.Epochs, p.BestEpoch
			pr.Remaining = p.Remaining + evalEst
		})
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	d = nil // the training rows can go before the held-out ones arrive

	m.update(e, true, func(j *Job) { j.Progress.Phase, j.Progress.Remaining = PhaseEvaluating, evalEst })
	seed := HeldOutSeed(req.Seed)
	ev, err := trainer.GenerateEval(ctx, trainer.GenConfig{Samples: m.opts.EvalSamples, Seed: seed, Mix: mix, Workers: m.opts.Workers, Major: v.Major})
	if err != nil {
		return fmt.Errorf("generate held-out data: %w", err)
	}
	metrics, err := trainer.Evaluate(forward(res.Quant), res.Float, ev, model.DefaultOutputs(), seed)
	if err != nil {
		return fmt.Errorf("evaluate %s: %w", v, err)
	}
	eval := &Evaluation{
		HeldOutSamples: ev.N, HeldOutSeed: seed,
		Candidate: scoresOf(v, metrics), Baseline: metrics.Baseline,
	}
	parent, active, activeErr := m.evaluateActive(ev, seed, v.Major)
	eval.Active, eval.ActiveError = active, activeErr
	better, why := compare(eval, parent)
	m.update(e, true, func(j *Job) {
		j.Evaluation = eval
		if !parent.IsZero() {
			j.ParentVersion = parent.String()
		}
	})

	b, err := onnxfile.Encode(res.Quant, v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", v, err)
	}
	man := trainer.NewManifest(v, b, res, metrics, m.now())
	if !parent.IsZero() {
		man.Training.ParentVersion = parent.String()
	}
	man.Training.DataFile = fmt.Sprintf("synthetic: %d samples, seed %d, workload mix %s (training job %s); held out: %d samples, seed %d",
		req.Samples, req.Seed, mixString(req.Mix), id, ev.N, seed)

	// The last point where the job may stop: from here it registers.
	m.mu.Lock()
	if err := context.Cause(ctx); err != nil {
		m.mu.Unlock()
		return err
	}
	e.committed = true
	m.change(e, true, func(j *Job) { j.Progress.Phase, j.Progress.Remaining = PhaseRegistering, 0 })
	m.mu.Unlock()

	ctx = context.WithoutCancel(ctx)
	reason := fmt.Sprintf("%s %s: %s", DefaultReason, id, req.Reason)
	pruned, err := m.releases.Register(ctx, b, man, req.Actor, reason)
	if err != nil {
		return fmt.Errorf("register %s: %w", v, err)
	}
	act := &Activation{Policy: req.Policy, Better: better}
	switch {
	case req.Policy == PolicyNever:
		act.Reason = "policy never: registered, not activated; " + why
	case req.Policy == PolicyAlways:
		act.Activated, act.Reason = true, "policy always: activated; "+why
	case better:
		act.Activated, act.Reason = true, "policy if_better: activated: "+why
	default:
		act.Reason = "policy if_better: not activated: " + why
	}
	m.update(e, true, func(j *Job) {
		j.Registered = true
		for _, p := range pruned {
			j.Pruned = append(j.Pruned, p.String())
		}
		if act.Activated {
			j.Progress.Phase = PhaseActivating
		} else {
			j.Activation = act
		}
	})
	if !act.Activated {
		return nil
	}
	if _, err := m.releases.Activate(ctx, v, model.Change{Reason: reason + "; " + act.Reason, Actor: req.Actor}); err != nil {
		act.Activated, act.Reason = false, act.Reason+"; activation failed: "+model.PublicOr(err, "see the server log")
		m.update(e, true, func(j *Job) { j.Activation = act })
		return fmt.Errorf("%s is registered, but activating it failed: %w", v, err)
	}
	m.update(e, true, func(j *Job) { j.Activation = act })
	return nil
}

// forward adapts the pure-Go forward pass to trainer.PredictFunc.
func forward(q *model.QuantizedMLP) trainer.PredictFunc {
	return func(x []float32, n int) ([]float32, error) { return q.Forward(x, n), nil }
}

func scoresOf(v model.Version, m *model.Metrics) ModelScores {
	return ModelScores{Version: v, MAE: m.MAE, Scores: m.Model, MeanLimitSlack: meanLimitSlack(m.Model)}
}

func meanLimitSlack(s model.Scores) float64 { return (s.CPULimitSlack + s.MemLimitSlack) / 2 }

// evaluateActive scores the active version of major on ev, held-out rows
// with major's features. It returns the active version (zero when none),
// its scores, or why it could not be scored.
func (m *Manager) evaluateActive(ev *trainer.EvalSet, seed int64, major int) (model.Version, *ModelScores, string) {
	av, err := m.releases.Active(major)
	if errors.Is(err, model.ErrNoActiveVersion) {
		return model.Version{}, nil, ""
	}
	if err != nil {
		return model.Version{}, nil, "reading the active version failed: " + model.PublicOr(err, "see the server log")
	}
	b, man, err := m.store.Load(av)
	if err != nil {
		return av, nil, "loading it failed: " + model.PublicOr(err, "see the server log")
	}
	// ev holds major's features, as the trainer computes them: the active
	// version is comparable only if its manifest reads the same ones.
	want, err := model.FeaturesFor(major)
	if err != nil {
		return av, nil, fmt.Sprintf("major %d has no known features: %s", major, model.PublicOr(err, "see the server log"))
	}
	if !sameFeatures(man.Features, want) {
		return av, nil, "its manifest normalizes the features differently, so its scores on this data would not be comparable"
	}
	if win, err := model.HistoryWindowFor(major); err == nil && man.HistoryWindow() != win {
		return av, nil, fmt.Sprintf("its manifest computes the features over a %s history window, not major %d's %s, so its scores on this data would not be comparable",
			man.HistoryWindow(), major, win)
	}
	q, _, err := onnxfile.Decode(b)
	if err != nil {
		return av, nil, "its model file does not decode: " + model.PublicOr(err, "see the server log")
	}
	metrics, err := trainer.Evaluate(forward(q), nil, ev, man.Outputs, seed)
	if err != nil {
		return av, nil, "evaluating it failed: " + model.PublicOr(err, "see the server log")
	}
	s := scoresOf(av, metrics)
	return av, &s, ""
}

// sameFeatures reports whether two feature lists normalize alike.
func sameFeatures(a, b []model.Spec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.Transform != y.Transform || x.Min != y.Min || x.Max != y.Max || x.Scale != y.Scale {
			return false
		}
	}
	return true
}

// compare applies PolicyIfBetter's rule to ev and explains it with the
// numbers.
func compare(ev *Evaluation, active model.Version) (bool, string) {
	c, base := ev.Candidate, ev.Baseline
	baseline := fmt.Sprintf("(VPA baseline: OOM rate %.4f, mean limit slack %.4f)", base.OOMRate, meanLimitSlack(base))
	on := fmt.Sprintf("on %d held-out containers", ev.HeldOutSamples)
	switch {
	case active.IsZero():
		return true, fmt.Sprintf("no version was active; %s: OOM rate %.4f, mean limit slack %.4f %s %s",
			c.Version, c.Scores.OOMRate, c.MeanLimitSlack, on, baseline)
	case ev.Active == nil:
		return false, fmt.Sprintf("the active version %s could not be evaluated: %s", active, ev.ActiveError)
	}
	a := ev.Active
	oomOK, slackOK := c.Scores.OOMRate <= a.Scores.OOMRate, c.MeanLimitSlack < a.MeanLimitSlack
	rel := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	verdict := "beats"
	if !oomOK || !slackOK {
		verdict = "does not beat"
	}
	return oomOK && slackOK, fmt.Sprintf("%s %s %s %s: OOM rate %.4f %s %.4f, mean limit slack %.4f %s %.4f %s",
		c.Version, verdict, active, on,
		c.Scores.OOMRate, rel(oomOK, "<=", ">"), a.Scores.OOMRate,
		c.MeanLimitSlack, rel(slackOK, "<", ">="), a.MeanLimitSlack, baseline)
}

func mixString(mix []float64) string {
	s := ""
	for i, w := range mix {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%g", trainer.WorkloadNames[i], w)
	}
	return s
}
