package transport

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
)

// Jobs is what the training API needs; the job manager (internal/jobs) implements it.
type Jobs interface {
	// Start validates and queues a job. Errors wrap model.ErrInvalidInput,
	// model.ErrInvalidVersion, model.ErrVersionExists or model.ErrQueueFull.
	Start(req model.JobRequest) (*model.Job, error)
	// Get, Cancel and Watch return model.ErrJobNotFound for unknown ids.
	Get(id string) (*model.Job, error)
	List() ([]*model.Job, error)
	Cancel(id string) (*model.Job, error)
	Watch(ctx context.Context, id string, send func(model.JobEvent) error) error
}

// TrainingServer implements recommendation.v1.TrainingService on top of
// Jobs, which validates every parameter: its errors become InvalidArgument
// (a bound, a malformed version or bump; the message names the field),
// AlreadyExists (the version is registered or pending), ResourceExhausted
// (the queue is full), NotFound (an unknown job id) through the error table.
type TrainingServer struct {
	recommendationv1.UnimplementedTrainingServiceServer

	jobs Jobs
	log  *slog.Logger
}

var _ recommendationv1.TrainingServiceServer = (*TrainingServer)(nil)

// NewTrainingServer returns a TrainingServer over j. A nil log discards logs.
func NewTrainingServer(j Jobs, log *slog.Logger) *TrainingServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TrainingServer{jobs: j, log: log}
}

// StartTraining queues a job and returns it (QUEUED), recording the
// caller's token name as its actor (see recordedActor).
func (s *TrainingServer) StartTraining(ctx context.Context, req *recommendationv1.StartTrainingRequest) (*recommendationv1.StartTrainingResponse, error) {
	const method = recommendationv1.TrainingService_StartTraining_FullMethodName
	policy, ok := policyOf[req.GetActivationPolicy()]
	if !ok {
		return nil, invalid(fmt.Sprintf("activation_policy: %d; want ACTIVATION_POLICY_NEVER, ACTIVATION_POLICY_IF_BETTER or ACTIVATION_POLICY_ALWAYS", req.GetActivationPolicy()))
	}
	actor, err := recordedActor(ctx, req.GetActor())
	if err != nil {
		return nil, err
	}
	j, err := s.jobs.Start(model.JobRequest{
		Samples:      clampInt(req.GetSamples()),
		Epochs:       int(req.GetEpochs()),
		Seed:         req.GetSeed(),
		Mix:          req.GetWorkloadMix(),
		LearningRate: req.GetLearningRate(),
		BatchSize:    int(req.GetBatchSize()),
		Version:      req.GetVersion(),
		Bump:         req.GetBump(),
		Policy:       policy,
		Actor:        actor,
		Reason:       req.GetReason(),
		Traces:       req.GetTraces(),
		TraceFormat:  req.GetTraceFormat(),
		Major:        int(req.GetMajor()),
	})
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.StartTrainingResponse{Job: jobProto(j)}, nil
}

// clampInt converts an int64 request field to int without wrapping on
// 32-bit platforms (a huge value stays huge, and is refused as such).
func clampInt(v int64) int { return int(max(min(v, math.MaxInt32), math.MinInt32)) }

// GetJob returns one job. Errors: InvalidArgument for an empty id, NotFound
// for an unknown one.
func (s *TrainingServer) GetJob(ctx context.Context, req *recommendationv1.GetJobRequest) (*recommendationv1.GetJobResponse, error) {
	const method = recommendationv1.TrainingService_GetJob_FullMethodName
	if err := checkJobID(req.GetId()); err != nil {
		return nil, err
	}
	j, err := s.jobs.Get(req.GetId())
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.GetJobResponse{Job: jobProto(j)}, nil
}

// ListJobs returns every job, newest first.
func (s *TrainingServer) ListJobs(ctx context.Context, _ *recommendationv1.ListJobsRequest) (*recommendationv1.ListJobsResponse, error) {
	const method = recommendationv1.TrainingService_ListJobs_FullMethodName
	list, err := s.jobs.List()
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	resp := &recommendationv1.ListJobsResponse{Jobs: make([]*recommendationv1.Job, len(list))}
	for i, j := range list {
		resp.Jobs[i] = jobProto(j)
	}
	return resp, nil
}

// CancelJob cancels a job and returns it as it then is. Errors:
// InvalidArgument for an empty id, NotFound for an unknown one.
func (s *TrainingServer) CancelJob(ctx context.Context, req *recommendationv1.CancelJobRequest) (*recommendationv1.CancelJobResponse, error) {
	const method = recommendationv1.TrainingService_CancelJob_FullMethodName
	if err := checkJobID(req.GetId()); err != nil {
		return nil, err
	}
	j, err := s.jobs.Cancel(req.GetId())
	if err != nil {
		return nil, StatusError(ctx, s.log, method, err)
	}
	return &recommendationv1.CancelJobResponse{Job: jobProto(j)}, nil
}

// WatchJob streams the job's events until it ends or the client goes.
// Errors: InvalidArgument for an empty id, NotFound for an unknown one,
// Canceled when the client cancels.
func (s *TrainingServer) WatchJob(req *recommendationv1.WatchJobRequest, stream grpc.ServerStreamingServer[recommendationv1.WatchJobResponse]) error {
	const method = recommendationv1.TrainingService_WatchJob_FullMethodName
	if err := checkJobID(req.GetId()); err != nil {
		return err
	}
	ctx := stream.Context()
	err := s.jobs.Watch(ctx, req.GetId(), func(ev model.JobEvent) error {
		return stream.Send(&recommendationv1.WatchJobResponse{Event: eventProto(ev)})
	})
	return StatusError(ctx, s.log, method, err)
}

func checkJobID(id string) error {
	if id == "" {
		return invalid("id: empty; want a job id such as job-00000001 (ListJobs lists them)")
	}
	return nil
}

var policyOf = map[recommendationv1.ActivationPolicy]model.ActivationPolicy{
	recommendationv1.ActivationPolicy_ACTIVATION_POLICY_UNSPECIFIED: "",
	recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER:       model.PolicyNever,
	recommendationv1.ActivationPolicy_ACTIVATION_POLICY_IF_BETTER:   model.PolicyIfBetter,
	recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS:      model.PolicyAlways,
}

var policyProto = map[model.ActivationPolicy]recommendationv1.ActivationPolicy{
	model.PolicyNever:    recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER,
	model.PolicyIfBetter: recommendationv1.ActivationPolicy_ACTIVATION_POLICY_IF_BETTER,
	model.PolicyAlways:   recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS,
}

var stateProto = map[model.JobState]recommendationv1.JobState{
	model.JobQueued:    recommendationv1.JobState_JOB_STATE_QUEUED,
	model.JobRunning:   recommendationv1.JobState_JOB_STATE_RUNNING,
	model.JobSucceeded: recommendationv1.JobState_JOB_STATE_SUCCEEDED,
	model.JobFailed:    recommendationv1.JobState_JOB_STATE_FAILED,
	model.JobCancelled: recommendationv1.JobState_JOB_STATE_CANCELLED,
}

var phaseProto = map[model.JobPhase]recommendationv1.JobPhase{
	model.PhaseQueued:      recommendationv1.JobPhase_JOB_PHASE_QUEUED,
	model.PhaseGenerating:  recommendationv1.JobPhase_JOB_PHASE_GENERATING,
	model.PhaseTraining:    recommendationv1.JobPhase_JOB_PHASE_TRAINING,
	model.PhaseEvaluating:  recommendationv1.JobPhase_JOB_PHASE_EVALUATING,
	model.PhaseRegistering: recommendationv1.JobPhase_JOB_PHASE_REGISTERING,
	model.PhaseActivating:  recommendationv1.JobPhase_JOB_PHASE_ACTIVATING,
	model.PhaseDone:        recommendationv1.JobPhase_JOB_PHASE_DONE,
}

// timestamp converts t, nil for the zero time (not yet).
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func jobProto(j *model.Job) *recommendationv1.Job {
	p := j.Params
	out := &recommendationv1.Job{
		Id:    j.ID,
		State: stateProto[j.State],
		Params: &recommendationv1.TrainingParams{
			Samples: int64(p.Samples), Epochs: int32(p.Epochs), Seed: p.Seed, WorkloadMix: p.Mix,
			LearningRate: p.LearningRate, BatchSize: int32(p.BatchSize), Version: p.Version, Bump: p.Bump,
			ActivationPolicy: policyProto[p.Policy], Actor: p.Actor, Reason: p.Reason,
			Traces: p.Traces, TraceFormat: p.TraceFormat, Major: int32(p.Major),
		},
		CreatedAt:      timestamp(j.CreatedAt),
		StartedAt:      timestamp(j.StartedAt),
		FinishedAt:     timestamp(j.FinishedAt),
		Version:        j.Version.String(),
		Registered:     j.Registered,
		ParentVersion:  j.ParentVersion,
		Error:          j.Error,
		Progress:       progressProto(j.Progress),
		PrunedVersions: j.Pruned,
	}
	if ev := j.Evaluation; ev != nil {
		out.Evaluation = &recommendationv1.JobEvaluation{
			HeldOutSamples: int64(ev.HeldOutSamples),
			HeldOutSeed:    ev.HeldOutSeed,
			Candidate:      modelEvaluationProto(&ev.Candidate),
			Active:         modelEvaluationProto(ev.Active),
			ActiveError:    ev.ActiveError,
			VpaBaseline:    scores(ev.Baseline),
		}
	}
	if a := j.Activation; a != nil {
		out.Activation = &recommendationv1.ActivationDecision{
			Policy: policyProto[a.Policy], Better: a.Better, Activated: a.Activated, Reason: a.Reason,
		}
	}
	return out
}

func progressProto(p model.Progress) *recommendationv1.JobProgress {
	return &recommendationv1.JobProgress{
		Phase: phaseProto[p.Phase], Epoch: int32(p.Epoch), Epochs: int32(p.Epochs),
		Loss: p.Loss, ValLoss: p.ValLoss, BestEpoch: int32(p.BestEpoch),
		Elapsed: durationpb.New(p.Elapsed), EstimatedRemaining: durationpb.New(p.Remaining),
	}
}

func modelEvaluationProto(m *model.ModelScores) *recommendationv1.ModelEvaluation {
	if m == nil {
		return nil
	}
	return &recommendationv1.ModelEvaluation{
		Version: m.Version.String(), Mae: m.MAE, Scores: scores(m.Scores), MeanLimitSlack: m.MeanLimitSlack,
	}
}

func eventProto(ev model.JobEvent) *recommendationv1.JobEvent {
	out := &recommendationv1.JobEvent{
		JobId: ev.JobID, Time: timestamp(ev.Time), State: stateProto[ev.State],
		Phase: phaseProto[ev.Phase], Epoch: int32(ev.Epoch), Epochs: int32(ev.Epochs),
		Loss: ev.Loss, ValLoss: ev.ValLoss,
		Elapsed: durationpb.New(ev.Elapsed), EstimatedRemaining: durationpb.New(ev.Remaining),
	}
	if ev.Job != nil {
		out.Job = jobProto(ev.Job)
	}
	return out
}
