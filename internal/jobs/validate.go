package jobs

import (
	"fmt"
	"math"
	"strings"

	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// Bounds of a Request. Values outside them are refused by Start with an
// error wrapping model.ErrInvalidInput that names the field.
const (
	MinSamples     = 1000
	MaxSamples     = 1_000_000
	MaxEpochs      = 500
	MaxBatchSize   = 65536
	MaxActorBytes  = 128
	MaxReasonBytes = 1024
)

// SystemActor is the actor of automatic actions; a request may not claim it.
const SystemActor = "system"

// DefaultActor and DefaultReason are recorded when a request gives none.
const (
	DefaultActor  = "anonymous"
	DefaultReason = "training job"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{model.ErrInvalidInput}, args...)...)
}

// normalize checks everything about req that needs neither the registry nor
// the queue and returns it with the defaults filled in.
func normalize(req Request) (Request, error) {
	def := trainer.DefaultTrainConfig()
	switch {
	case len(req.Traces) == 0 && (req.Samples < MinSamples || req.Samples > MaxSamples):
		return req, invalid("samples: %d; want %d to %d simulated containers", req.Samples, MinSamples, MaxSamples)
	case len(req.Traces) > 0 && (req.Samples < 0 || req.Samples > MaxSamples):
		return req, invalid("samples: %d; want 0 to %d simulated containers mixed with the traces", req.Samples, MaxSamples)
	case req.Epochs < 1 || req.Epochs > MaxEpochs:
		return req, invalid("epochs: %d; want 1 to %d", req.Epochs, MaxEpochs)
	case math.IsNaN(req.LearningRate) || req.LearningRate < 0 || req.LearningRate > 1:
		return req, invalid("learning_rate: %v; want a number in (0, 1], or 0 for the default of the job's major", req.LearningRate)
	case req.BatchSize < 0 || req.BatchSize > MaxBatchSize:
		return req, invalid("batch_size: %d; want 1 to %d rows, or 0 for the default %d", req.BatchSize, MaxBatchSize, def.BatchSize)
	}
	if req.BatchSize == 0 {
		req.BatchSize = def.BatchSize
	}

	names := strings.Join(trainer.WorkloadNames[:], ", ")
	switch len(req.Mix) {
	case 0:
		req.Mix = make([]float64, trainer.NumWorkloads)
	case trainer.NumWorkloads:
		req.Mix = append([]float64(nil), req.Mix...)
	default:
		return req, invalid("workload_mix: %d weights; want none (uniform) or %d, for %s", len(req.Mix), trainer.NumWorkloads, names)
	}
	total := 0.0
	for i, w := range req.Mix {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return req, invalid("workload_mix[%d] (%s): %v; want a finite weight ≥ 0", i, trainer.WorkloadNames[i], w)
		}
		total += w
	}
	if math.IsInf(total, 0) {
		return req, invalid("workload_mix: the weights sum to infinity; want smaller weights (only their ratios matter)")
	}
	if total == 0 { // all zero means uniform
		for i := range req.Mix {
			req.Mix[i] = 1
		}
	}

	switch req.Policy {
	case "":
		req.Policy = PolicyIfBetter
	case PolicyNever, PolicyIfBetter, PolicyAlways:
	default:
		return req, invalid("activation_policy: %q; want %s, %s or %s", req.Policy, PolicyNever, PolicyIfBetter, PolicyAlways)
	}

	req.Actor, req.Reason = strings.TrimSpace(req.Actor), strings.TrimSpace(req.Reason)
	switch {
	case len(req.Actor) > MaxActorBytes:
		return req, invalid("actor: %d bytes; want at most %d (a name)", len(req.Actor), MaxActorBytes)
	case strings.EqualFold(req.Actor, SystemActor):
		return req, invalid("actor: %q is reserved for automatic actions; give your own name", req.Actor)
	case strings.ContainsFunc(req.Actor, isControl):
		return req, invalid("actor: contains control characters; want a name on one line")
	case len(req.Reason) > MaxReasonBytes:
		return req, invalid("reason: %d bytes; want at most %d", len(req.Reason), MaxReasonBytes)
	}
	if req.Actor == "" {
		req.Actor = DefaultActor
	}
	if req.Reason == "" {
		req.Reason = DefaultReason
	}

	req.Version, req.Bump = strings.TrimSpace(req.Version), strings.TrimSpace(req.Bump)
	switch {
	case req.Version != "" && req.Bump != "":
		return req, invalid("version %q and bump %q: both set; set one (a version such as v1.2.0, or bump patch or minor), or neither for a patch bump", req.Version, req.Bump)
	case req.Version == "" && req.Bump == "":
		req.Bump = "patch"
	}
	return req, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// highest is the version a new one must exceed: the newest registered
// version or the highest version a pending job will produce, with what
// holds it, for messages.
type highest struct {
	v   model.Version
	who string // "the newest registered version" or "the version job-… will produce"
}

// resolveVersion returns the version req produces. newest is the highest
// registered version (zero when none), registered reports whether a
// version is registered, and pending maps the versions of queued and
// running jobs to their ids.
func resolveVersion(req Request, newest model.Version, registered func(model.Version) (bool, error), pending map[model.Version]string) (model.Version, error) {
	top := highest{v: newest, who: "the newest registered version"}
	for v, id := range pending {
		if v.Compare(top.v) > 0 {
			top = highest{v: v, who: "the version " + id + " will produce"}
		}
	}
	if req.Bump != "" {
		base := top.v
		if base.IsZero() {
			base = model.Version{Major: req.Major}
		}
		v, err := base.Bump(req.Bump)
		if err != nil {
			return model.Version{}, fmt.Errorf("bump: %w", err)
		}
		if v.Major != req.Major {
			return model.Version{}, invalid("bump: %s would produce %s, but the job trains major version %d (a new major version changes the input/output format); want patch or minor",
				req.Bump, v, req.Major)
		}
		return v, nil
	}

	v, err := model.ParseVersion(req.Version)
	if err != nil {
		return model.Version{}, fmt.Errorf("version: %w", err)
	}
	if v.Major != req.Major {
		return model.Version{}, invalid("version: %s is major version %d; the job trains major %d (set major), want v%d.x.y",
			v, v.Major, req.Major, req.Major)
	}
	if id, ok := pending[v]; ok {
		return model.Version{}, fmt.Errorf("version: %s is the version %s will produce: %w", v, id, model.ErrVersionExists)
	}
	ok, err := registered(v)
	if err != nil {
		return model.Version{}, err
	}
	if ok {
		next, _ := top.v.Bump("patch")
		return model.Version{}, fmt.Errorf("version: %s is already registered: %w; want a version higher than %s %s, e.g. %s",
			v, model.ErrVersionExists, top.who, top.v, next)
	}
	if v.Compare(top.v) <= 0 {
		next, _ := top.v.Bump("patch")
		return model.Version{}, invalid("version: %s is not higher than %s, %s; want a higher version, e.g. %s (or bump: patch)",
			v, top.who, top.v, next)
	}
	return v, nil
}
