package jobs

import "recommendation-api/internal/model"

// The job records are domain types (package model), so the API edge needs
// only the domain; these names keep this package's code and callers short.
type (
	State       = model.JobState
	Phase       = model.JobPhase
	Policy      = model.ActivationPolicy
	Request     = model.JobRequest
	Job         = model.Job
	Progress    = model.Progress
	Evaluation  = model.JobEvaluation
	ModelScores = model.ModelScores
	Activation  = model.JobActivation
	Event       = model.JobEvent
)

// Job states, phases and activation policies; see package model.
const (
	StateQueued    = model.JobQueued
	StateRunning   = model.JobRunning
	StateSucceeded = model.JobSucceeded
	StateFailed    = model.JobFailed
	StateCancelled = model.JobCancelled

	PhaseQueued      = model.PhaseQueued
	PhaseGenerating  = model.PhaseGenerating
	PhaseTraining    = model.PhaseTraining
	PhaseEvaluating  = model.PhaseEvaluating
	PhaseRegistering = model.PhaseRegistering
	PhaseActivating  = model.PhaseActivating
	PhaseDone        = model.PhaseDone

	PolicyNever    = model.PolicyNever
	PolicyIfBetter = model.PolicyIfBetter
	PolicyAlways   = model.PolicyAlways
)
