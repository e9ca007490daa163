package jobs

import (
	"maps"
	"slices"
	"time"

	"recommendation-api/internal/model"
)

// State is where a job is in its life.
type State string

// Job states. QUEUED and RUNNING are pending; the others are final.
const (
	StateQueued    State = "QUEUED"
	StateRunning   State = "RUNNING"
	StateSucceeded State = "SUCCEEDED"
	StateFailed    State = "FAILED"
	StateCancelled State = "CANCELLED"
)

// Final reports whether s is a state a job never leaves.
func (s State) Final() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Phase is the step a job is at.
type Phase string

// Job phases, in order.
const (
	PhaseQueued      Phase = "queued"
	PhaseGenerating  Phase = "generating"
	PhaseTraining    Phase = "training"
	PhaseEvaluating  Phase = "evaluating"
	PhaseRegistering Phase = "registering"
	PhaseActivating  Phase = "activating"
	PhaseDone        Phase = "done"
)

// Policy says whether a job activates the version it registers.
type Policy string

// Activation policies; see the package documentation for PolicyIfBetter's rule.
const (
	PolicyNever    Policy = "never"
	PolicyIfBetter Policy = "if_better"
	PolicyAlways   Policy = "always"
)

// Request is what StartTraining asks for. Zero LearningRate, BatchSize,
// Policy and Mix take their defaults; Start documents the bounds.
type Request struct {
	Samples      int       `json:"samples"`
	Epochs       int       `json:"epochs"`
	Seed         int64     `json:"seed"`
	Mix          []float64 `json:"workload_mix"` // none or 5 weights, trainer.WorkloadNames order
	LearningRate float64   `json:"learning_rate"`
	BatchSize    int       `json:"batch_size"`
	Version      string    `json:"version,omitempty"` // explicit "v1.2.3"
	Bump         string    `json:"bump,omitempty"`    // "patch" or "minor"
	Policy       Policy    `json:"activation_policy"`
	Actor        string    `json:"actor"`
	Reason       string    `json:"reason"`
	// Traces are real usage files, directories or globs relative to
	// Options.TraceDir; Samples simulated containers are mixed in.
	Traces      []string `json:"traces,omitempty"`
	TraceFormat string   `json:"trace_format,omitempty"` // "generic", "bitbrains", "" = detect
}

// Job is a training job's record: what was asked, where it is, and what it
// found out. Manager methods return copies; changing one changes nothing.
type Job struct {
	ID         string    `json:"id"`
	State      State     `json:"state"`
	Params     Request   `json:"params"` // defaults filled in
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Version is the version the job produces, fixed when it is queued;
	// it exists in the registry only when Registered.
	Version       model.Version `json:"version"`
	Registered    bool          `json:"registered"`
	ParentVersion string        `json:"parent_version,omitempty"` // the active version evaluated; "" for none
	Error         string        `json:"error,omitempty"`
	Progress      Progress      `json:"progress"`
	Evaluation    *Evaluation   `json:"evaluation,omitempty"`
	Activation    *Activation   `json:"activation,omitempty"`
	Pruned        []string      `json:"pruned_versions,omitempty"` // versions retention deleted at registration
}

// Progress is how far a job has got.
type Progress struct {
	Phase     Phase         `json:"phase"`
	Epoch     int           `json:"epoch"`  // last finished epoch, 1-based; 0 before training
	Epochs    int           `json:"epochs"` // maximum
	Loss      float64       `json:"loss"`   // mean training loss of the last epoch
	ValLoss   float64       `json:"val_loss"`
	BestEpoch int           `json:"best_epoch"`
	Elapsed   time.Duration `json:"elapsed"`   // since the job started running
	Remaining time.Duration `json:"remaining"` // estimate; 0 when unknown or done
}

// Evaluation holds the scores of the new model, the active model and the
// VPA-style baseline on one held-out set.
type Evaluation struct {
	HeldOutSamples int          `json:"held_out_samples"`
	HeldOutSeed    int64        `json:"held_out_seed"`
	Candidate      ModelScores  `json:"candidate"`
	Active         *ModelScores `json:"active,omitempty"`       // nil when none was active or it could not be evaluated
	ActiveError    string       `json:"active_error,omitempty"` // why the active version was not evaluated
	Baseline       model.Scores `json:"vpa_baseline"`
}

// ModelScores is one model's evaluation.
type ModelScores struct {
	Version        model.Version      `json:"version"`
	MAE            map[string]float64 `json:"mae"` // per output, normalized units
	Scores         model.Scores       `json:"scores"`
	MeanLimitSlack float64            `json:"mean_limit_slack"` // (CPULimitSlack + MemLimitSlack) / 2
}

// Activation records the activation decision.
type Activation struct {
	Policy    Policy `json:"policy"`
	Better    bool   `json:"better"` // PolicyIfBetter's rule, computed whatever the policy
	Activated bool   `json:"activated"`
	Reason    string `json:"reason"`
}

// Event is a job's state at one moment, as Watch sends it.
type Event struct {
	JobID string
	Time  time.Time // when the job reached this state
	State State
	Progress
	Job *Job // the whole job, on the final event only (State.Final())
}

// clone returns a deep copy of j.
func (j *Job) clone() *Job {
	c := *j
	c.Params.Mix = slices.Clone(j.Params.Mix)
	c.Pruned = slices.Clone(j.Pruned)
	if j.Evaluation != nil {
		ev := *j.Evaluation
		ev.Candidate.MAE = maps.Clone(ev.Candidate.MAE)
		if ev.Active != nil {
			a := *ev.Active
			a.MAE = maps.Clone(a.MAE)
			ev.Active = &a
		}
		c.Evaluation = &ev
	}
	if j.Activation != nil {
		a := *j.Activation
		c.Activation = &a
	}
	return &c
}
