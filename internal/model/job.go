package model

import (
	"maps"
	"slices"
	"time"
)

// Training jobs: the records the job manager keeps and the training API
// returns. They live here, with the other domain types, so the API edge
// depends on the domain only.

// JobState is where a job is in its life.
type JobState string

// Job states. QUEUED and RUNNING are pending; the others are final.
const (
	JobQueued    JobState = "QUEUED"
	JobRunning   JobState = "RUNNING"
	JobSucceeded JobState = "SUCCEEDED"
	JobFailed    JobState = "FAILED"
	JobCancelled JobState = "CANCELLED"
)

// Final reports whether s is a state a job never leaves.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// JobPhase is the step a job is at.
type JobPhase string

// Job phases, in order.
const (
	PhaseQueued      JobPhase = "queued"
	PhaseGenerating  JobPhase = "generating"
	PhaseTraining    JobPhase = "training"
	PhaseEvaluating  JobPhase = "evaluating"
	PhaseRegistering JobPhase = "registering"
	PhaseActivating  JobPhase = "activating"
	PhaseDone        JobPhase = "done"
)

// ActivationPolicy says whether a job activates the version it registers.
type ActivationPolicy string

// Activation policies; see the package documentation for PolicyIfBetter's rule.
const (
	PolicyNever    ActivationPolicy = "never"
	PolicyIfBetter ActivationPolicy = "if_better"
	PolicyAlways   ActivationPolicy = "always"
)

// JobRequest is what StartTraining asks for. Zero LearningRate, BatchSize,
// Policy and Mix take their defaults; Start documents the bounds.
type JobRequest struct {
	// Major is the major version (I/O format) the job trains; 0 means the
	// newest major the server serves.
	Major        int              `json:"major,omitempty"`
	Samples      int              `json:"samples"`
	Epochs       int              `json:"epochs"`
	Seed         int64            `json:"seed"`
	Mix          []float64        `json:"workload_mix"` // none or 5 weights, trainer.WorkloadNames order
	LearningRate float64          `json:"learning_rate"`
	BatchSize    int              `json:"batch_size"`
	Version      string           `json:"version,omitempty"` // explicit "v1.2.3"
	Bump         string           `json:"bump,omitempty"`    // "patch" or "minor"
	Policy       ActivationPolicy `json:"activation_policy"`
	Actor        string           `json:"actor"`
	Reason       string           `json:"reason"`
	// Traces are real usage files, directories or globs relative to
	// Options.TraceDir; Samples simulated containers are mixed in.
	Traces      []string `json:"traces,omitempty"`
	TraceFormat string   `json:"trace_format,omitempty"` // "generic", "bitbrains", "" = detect
}

// Job is a training job's record: what was asked, where it is, and what it
// found out. Manager methods return copies; changing one changes nothing.
type Job struct {
	ID         string     `json:"id"`
	State      JobState   `json:"state"`
	Params     JobRequest `json:"params"` // defaults filled in
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  time.Time  `json:"started_at,omitzero"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
	// Version is the version the job produces, fixed when it is queued;
	// it exists in the registry only when Registered.
	Version       Version        `json:"version"`
	Registered    bool           `json:"registered"`
	ParentVersion string         `json:"parent_version,omitempty"` // the active version evaluated; "" for none
	Error         string         `json:"error,omitempty"`
	Progress      Progress       `json:"progress"`
	Evaluation    *JobEvaluation `json:"evaluation,omitempty"`
	Activation    *JobActivation `json:"activation,omitempty"`
	Pruned        []string       `json:"pruned_versions,omitempty"` // versions retention deleted at registration
	// Runner is the replica running the job (several replicas sharing a
	// registry), and Heartbeat the last time it renewed the record while
	// the job was RUNNING; a leader that sees the heartbeat unchanged for a
	// lease's length marks the job FAILED "interrupted: runner lost".
	Runner    string    `json:"runner,omitempty"`
	Heartbeat time.Time `json:"heartbeat,omitzero"`
}

// Progress is how far a training job has got.
type Progress struct {
	Phase     JobPhase      `json:"phase"`
	Epoch     int           `json:"epoch"`  // last finished epoch, 1-based; 0 before training
	Epochs    int           `json:"epochs"` // maximum
	Loss      float64       `json:"loss"`   // mean training loss of the last epoch
	ValLoss   float64       `json:"val_loss"`
	BestEpoch int           `json:"best_epoch"`
	Elapsed   time.Duration `json:"elapsed"`   // since the job started running
	Remaining time.Duration `json:"remaining"` // estimate; 0 when unknown or done
}

// JobEvaluation holds the scores of the new model, the active model and the
// VPA-style baseline on one held-out set.
type JobEvaluation struct {
	HeldOutSamples int          `json:"held_out_samples"`
	HeldOutSeed    int64        `json:"held_out_seed"`
	Candidate      ModelScores  `json:"candidate"`
	Active         *ModelScores `json:"active,omitempty"`       // nil when none was active or it could not be evaluated
	ActiveError    string       `json:"active_error,omitempty"` // why the active version was not evaluated
	Baseline       Scores       `json:"vpa_baseline"`
}

// ModelScores is one model's evaluation.
type ModelScores struct {
	Version        Version            `json:"version"`
	MAE            map[string]float64 `json:"mae"` // per output, normalized units
	Scores         Scores             `json:"scores"`
	MeanLimitSlack float64            `json:"mean_limit_slack"` // (CPULimitSlack + MemLimitSlack) / 2
}

// JobActivation records the activation decision.
type JobActivation struct {
	Policy    ActivationPolicy `json:"policy"`
	Better    bool             `json:"better"` // PolicyIfBetter's rule, computed whatever the policy
	Activated bool             `json:"activated"`
	Reason    string           `json:"reason"`
}

// JobEvent is a job's state at one moment, as Watch sends it.
type JobEvent struct {
	JobID string
	Time  time.Time // when the job reached this state
	State JobState
	Progress
	Job *Job // the whole job, on the final event only (State.Final())
}

// Clone returns a deep copy of j.
func (j *Job) Clone() *Job {
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
