package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// runJobs is the client of the server's training jobs (TrainingService over gRPC):
//
//	recommendation-api jobs start [--samples N] [--epochs N] [--seed N] [--policy never|if_better|always]
//	                              [--major N] [--bump patch|minor | --version V] [--reason R] [--watch]
//	recommendation-api jobs list
//	recommendation-api jobs show ID
//	recommendation-api jobs watch ID
//	recommendation-api jobs cancel ID
func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return newCLI(stdout, stderr).jobs(ctx, args)
}

func (c *cli) jobs(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "jobs", []subcommand{
		{"start", "", "queue a training job (--watch: then follow it)", (*cli).jobsStart},
		{"list", "", "every job the server remembers, newest first", (*cli).jobsList},
		{"show", "ID", "one job: parameters, progress, evaluation, activation decision", (*cli).jobsShow},
		{"watch", "ID", "follow a job's progress until it ends; exit 1 if it FAILED or was CANCELLED", (*cli).jobsWatch},
		{"cancel", "ID", "cancel a queued or training job", (*cli).jobsCancel},
	}, args)
}

func trainingClient(conn *grpc.ClientConn) recommendationv1.TrainingServiceClient {
	return recommendationv1.NewTrainingServiceClient(conn)
}

var policies = map[string]recommendationv1.ActivationPolicy{
	"never":     recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER,
	"if_better": recommendationv1.ActivationPolicy_ACTIVATION_POLICY_IF_BETTER,
	"always":    recommendationv1.ActivationPolicy_ACTIVATION_POLICY_ALWAYS,
}

func (c *cli) jobsStart(ctx context.Context, args []string) error {
	fs, o := c.newFlags("jobs start", "", "Queue a training job in the server; it prints the job at once (QUEUED).", true)
	samples := fs.Int64("samples", 100000, "simulated training containers, 1000..1000000 (0..1000000 with --trace)")
	epochs := fs.Int("epochs", 30, "maximum epochs, 1..500 (early stopping may end sooner)")
	seed := fs.Int64("seed", trainer.DefaultTrainConfig().Seed, "seed of the simulation and of training")
	policy := fs.String("policy", "if_better", "activate the new version: never, if_better (beats the active one) or always")
	bump := fs.String("bump", "", "the new version is the newest one bumped: patch or minor (default patch)")
	version := fs.String("version", "", "the new version, vX.Y.Z (instead of --bump); its major is the one trained unless --major says otherwise")
	major := fs.Int("major", 0, "the major version (I/O format) to train, e.g. 1 or 2 (default: --version's major, else the newest major the server serves)")
	reason := fs.String("reason", "", "why, recorded in the job and the history")
	lr := fs.Float64("learning-rate", 0, "Adam learning rate in (0, 1] (default: the major's, 0.003)")
	batch := fs.Int("batch-size", 0, "rows per Adam step, 1..65536 (default: the server's, 256)")
	mix := fs.String("mix", "", "workload weights web,batch,compute,database,cron, e.g. 2,1,1,1,0 (default uniform)")
	var traces stringList
	fs.Var(&traces, "trace", "real usage traces to train on, relative to the server's --trace-dir (repeatable)")
	traceFormat := fs.String("trace-format", "", "generic or bitbrains (default: detected per file)")
	watch := fs.Bool("watch", false, "follow the job until it ends, as jobs watch does")
	if _, err := o.parse(fs, args, 0, 0); err != nil {
		return err
	}
	pol, ok := policies[*policy]
	if !ok {
		return o.usage("--policy %q; want never, if_better or always", *policy)
	}
	if *bump != "" && *bump != "patch" && *bump != "minor" {
		return o.usage("--bump %q; want patch or minor (a new major changes the I/O format, which training does not)", *bump)
	}
	if *epochs < math.MinInt32 || *epochs > math.MaxInt32 {
		return o.usage("--epochs %d; want 1..500", *epochs)
	}
	if *batch < math.MinInt32 || *batch > math.MaxInt32 {
		return o.usage("--batch-size %d; want 1..65536", *batch)
	}
	if o.set["major"] && (*major < 1 || *major > math.MaxInt32) {
		return o.usage("--major %d; want a major version such as 1 or 2 (omit it for the newest major the server serves)", *major)
	}
	req := &recommendationv1.StartTrainingRequest{
		Samples: *samples, Epochs: int32(*epochs), Seed: *seed, ActivationPolicy: pol,
		Bump: *bump, Reason: *reason, LearningRate: *lr, BatchSize: int32(*batch),
		Traces: traces, TraceFormat: *traceFormat, Major: int32(*major),
	}
	if *version != "" {
		if *bump != "" {
			return o.usage("--version and --bump both given; want one")
		}
		v, err := model.ParseVersion(*version)
		if err != nil {
			return o.usage("--version: %v", err)
		}
		// A version names its major: train that one, not the server's
		// newest, unless --major asks for another (which cannot be).
		switch {
		case !o.set["major"]:
			req.Major = int32(v.Major)
		case v.Major != *major:
			return o.usage("--version %s is major %d, --major %d; want a v%d.y.z version, or omit --major", v, v.Major, *major, *major)
		}
		req.Version = v.String()
	}
	if *mix != "" {
		for i, f := range strings.Split(*mix, ",") {
			w, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return o.usage("--mix: weight %d %q is not a number; want 5 comma-separated weights ≥ 0", i+1, f)
			}
			req.WorkloadMix = append(req.WorkloadMix, w)
		}
	}
	var id string
	err := o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := trainingClient(conn).StartTraining(ctx, req)
		if err != nil {
			return err
		}
		id = resp.GetJob().GetId()
		if o.json() {
			if *watch {
				return printJSONLine(c.stdout, resp)
			}
			return printJSON(c.stdout, resp)
		}
		j := resp.GetJob()
		_, err = fmt.Fprintf(c.stdout, "queued %s: %s, %d samples, %d epochs, seed %d, policy %s\n", j.GetId(), j.GetVersion(),
			j.GetParams().GetSamples(), j.GetParams().GetEpochs(), j.GetParams().GetSeed(), policyName(j.GetParams().GetActivationPolicy()))
		if err == nil && !*watch {
			_, err = fmt.Fprintf(c.stdout, "follow it with: recommendation-api jobs watch %s\n", j.GetId())
		}
		return err
	})
	if err != nil || !*watch {
		return err
	}
	o.timeout, o.name = 0, "jobs watch"
	return c.watchJob(ctx, o, id)
}

// stateName is "SUCCEEDED" for JOB_STATE_SUCCEEDED.
func stateName(s recommendationv1.JobState) string {
	return strings.TrimPrefix(s.String(), "JOB_STATE_")
}

// phaseName is "training" for JOB_PHASE_TRAINING.
func phaseName(p recommendationv1.JobPhase) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "JOB_PHASE_"))
}

// policyName is "IF_BETTER" for ACTIVATION_POLICY_IF_BETTER.
func policyName(p recommendationv1.ActivationPolicy) string {
	return strings.TrimPrefix(p.String(), "ACTIVATION_POLICY_")
}

func finalState(s recommendationv1.JobState) bool {
	switch s {
	case recommendationv1.JobState_JOB_STATE_SUCCEEDED, recommendationv1.JobState_JOB_STATE_FAILED, recommendationv1.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}

// outcome says in a few words what a job came to.
func outcome(j *recommendationv1.Job) string {
	switch {
	case j.GetError() != "":
		return oneLine(j.GetError())
	case j.GetActivation().GetActivated():
		return "activated"
	case j.GetRegistered():
		return "registered"
	}
	return "-"
}

func (c *cli) jobsList(ctx context.Context, args []string) error {
	fs, o := c.newFlags("jobs list", "", "List every training job the server remembers, newest first.", true)
	if _, err := o.parse(fs, args, 0, 0); err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := trainingClient(conn).ListJobs(ctx, &recommendationv1.ListJobsRequest{})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, "ID\tSTATE\tPHASE\tVERSION\tEPOCH\tCREATED\tFINISHED\tOUTCOME")
		for _, j := range resp.GetJobs() {
			p := j.GetProgress()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.GetId(), stateName(j.GetState()), phaseName(p.GetPhase()), j.GetVersion(),
				p.GetEpoch(), p.GetEpochs(), fmtTime(j.GetCreatedAt()), fmtTime(j.GetFinishedAt()), outcome(j))
		}
		return tw.Flush()
	})
}

// jobArg checks a job id argument.
func (o *clientOptions) jobArg(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", o.usage("ID is empty; want a job id such as job-00000012")
	}
	return id, nil
}

func (c *cli) jobsShow(ctx context.Context, args []string) error {
	fs, o := c.newFlags("jobs show", "ID", "Show one job: parameters, progress, evaluation and the activation decision.", true)
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := o.jobArg(pos[0])
	if err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := trainingClient(conn).GetJob(ctx, &recommendationv1.GetJobRequest{Id: id})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		return printJob(c.stdout, resp.GetJob())
	})
}

// printJob writes a job's record.
func printJob(w io.Writer, j *recommendationv1.Job) error {
	p, pr := j.GetParams(), j.GetProgress()
	target := p.GetVersion()
	if target == "" {
		target = dash(p.GetBump()) + " bump"
	}
	tw := newTable(w)
	for _, kv := range [][2]string{
		{"id", j.GetId()},
		{"state", stateName(j.GetState())},
		{"phase", phaseName(pr.GetPhase())},
		{"version", fmt.Sprintf("%s (asked: %s)", j.GetVersion(), target)},
		{"registered", strconv.FormatBool(j.GetRegistered())},
		{"parent", dash(j.GetParentVersion())},
		{"created", fmtTime(j.GetCreatedAt())},
		{"started", fmtTime(j.GetStartedAt())},
		{"finished", fmtTime(j.GetFinishedAt())},
		{"samples", fmt.Sprintf("%d (traces: %s)", p.GetSamples(), dash(strings.Join(p.GetTraces(), ", ")))},
		{"epochs", fmt.Sprintf("%d/%d (best %d)", pr.GetEpoch(), pr.GetEpochs(), pr.GetBestEpoch())},
		{"loss", fmt.Sprintf("%.5f (validation %.5f)", pr.GetLoss(), pr.GetValLoss())},
		{"elapsed", fmtDuration(pr.GetElapsed())},
		{"seed", fmt.Sprint(p.GetSeed())},
		{"learning rate", fmt.Sprintf("%g, batch size %d", p.GetLearningRate(), p.GetBatchSize())},
		{"policy", policyName(p.GetActivationPolicy())},
		{"actor", dash(oneLine(p.GetActor()))},
		{"reason", dash(oneLine(p.GetReason()))},
		{"error", dash(oneLine(j.GetError()))},
		{"pruned", dash(strings.Join(j.GetPrunedVersions(), ", "))},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ev := j.GetEvaluation(); ev != nil {
		fmt.Fprintf(w, "\nheld-out evaluation (%d samples, seed %d; lower is better)\n", ev.GetHeldOutSamples(), ev.GetHeldOutSeed())
		tw = newTable(w)
		fmt.Fprintln(tw, "MODEL\tOOM RATE\tTHROTTLING\tCPU LIMIT SLACK\tMEM LIMIT SLACK\tMEAN LIMIT SLACK")
		row := func(name string, s *recommendationv1.Scores, mean float64) {
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n", name, s.GetOomRate(), s.GetThrottleRate(),
				s.GetCpuLimitSlack(), s.GetMemLimitSlack(), mean)
		}
		row(ev.GetCandidate().GetVersion()+" (new)", ev.GetCandidate().GetScores(), ev.GetCandidate().GetMeanLimitSlack())
		if a := ev.GetActive(); a != nil {
			row(a.GetVersion()+" (active)", a.GetScores(), a.GetMeanLimitSlack())
		} else if ev.GetActiveError() != "" {
			fmt.Fprintf(tw, "active\t%s\n", oneLine(ev.GetActiveError()))
		}
		vpa := ev.GetVpaBaseline()
		row("VPA p90", vpa, (vpa.GetCpuLimitSlack()+vpa.GetMemLimitSlack())/2)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if a := j.GetActivation(); a != nil {
		fmt.Fprintf(w, "\nactivation: %s\n", oneLine(a.GetReason()))
	}
	return nil
}

func (c *cli) jobsCancel(ctx context.Context, args []string) error {
	fs, o := c.newFlags("jobs cancel", "ID", "Cancel a queued job, or stop a training one within an epoch; it registers nothing.\n"+
		"A job that has finished, or is registering or activating, is left as it is (and said so).", true)
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := o.jobArg(pos[0])
	if err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := trainingClient(conn).CancelJob(ctx, &recommendationv1.CancelJobRequest{Id: id})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		j := resp.GetJob()
		if j.GetState() == recommendationv1.JobState_JOB_STATE_CANCELLED {
			_, err = fmt.Fprintf(c.stdout, "%s CANCELLED\n", j.GetId())
		} else {
			_, err = fmt.Fprintf(c.stdout, "unchanged: %s is %s (%s), which can no longer be cancelled\n",
				j.GetId(), stateName(j.GetState()), phaseName(j.GetProgress().GetPhase()))
		}
		return err
	})
}

func (c *cli) jobsWatch(ctx context.Context, args []string) error {
	fs, o := c.newFlags("jobs watch", "ID", "Follow a job until it ends: a progress bar on a terminal, one line per event otherwise\n"+
		"(-o json: one JSON event per line). Exit 1 when the job FAILED or was CANCELLED.", false)
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := o.jobArg(pos[0])
	if err != nil {
		return err
	}
	return c.watchJob(ctx, o, id)
}

// errStreamEnded is a WatchJob stream that closed before the final event
// (the server stopped): as for an unreachable server, exit 4.
var errStreamEnded = errors.New("the stream ended before the job did (the server stopped?)")

// watchJob follows job id's WatchJob stream to its final event.
func (c *cli) watchJob(ctx context.Context, o *clientOptions, id string) error {
	var final *recommendationv1.Job
	err := o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := trainingClient(conn).WatchJob(ctx, &recommendationv1.WatchJobRequest{Id: id})
		if err != nil {
			return err
		}
		bar := progressBar{w: c.stdout, tty: c.tty}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				bar.end()
				return exitError{exitUnreachable, fmt.Errorf("%s: %s: %w", o.name, id, errStreamEnded)}
			}
			if err != nil {
				bar.end()
				return err
			}
			ev := resp.GetEvent()
			if o.json() {
				if err := printJSONLine(c.stdout, resp); err != nil {
					return err
				}
			} else {
				bar.draw(ev)
			}
			if finalState(ev.GetState()) {
				final = ev.GetJob()
				if final == nil { // the contract says it is there; never print a blank
					final = &recommendationv1.Job{Id: ev.GetJobId(), State: ev.GetState()}
				}
				break
			}
		}
		if !o.json() {
			bar.end()
			fmt.Fprintln(c.stdout, summary(final))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s := final.GetState(); s != recommendationv1.JobState_JOB_STATE_SUCCEEDED {
		msg := stateName(s)
		if e := final.GetError(); e != "" {
			msg += ": " + oneLine(e)
		}
		return exitError{exitOther, fmt.Errorf("%s: %s %s", o.name, final.GetId(), msg)}
	}
	return nil
}

// summary is the last line of jobs watch: the final state and what it did.
func summary(j *recommendationv1.Job) string {
	s := fmt.Sprintf("%s %s", j.GetId(), stateName(j.GetState()))
	switch {
	case j.GetRegistered() && j.GetActivation().GetActivated():
		s += fmt.Sprintf(": %s registered and activated", j.GetVersion())
	case j.GetRegistered():
		s += fmt.Sprintf(": %s registered, not activated", j.GetVersion())
	}
	if a := j.GetActivation(); a != nil && a.GetReason() != "" {
		s += " (" + oneLine(a.GetReason()) + ")"
	}
	if e := j.GetError(); e != "" {
		s += ": " + oneLine(e)
	}
	return s
}

// progressBar draws WatchJob events: on a terminal one line redrawn in
// place (a new line per phase), otherwise a line per event.
type progressBar struct {
	w     io.Writer
	tty   bool
	phase recommendationv1.JobPhase
	open  bool // a line is drawn without its newline
}

const barWidth = 24

func (b *progressBar) draw(ev *recommendationv1.JobEvent) {
	line := progressLine(ev)
	if !b.tty {
		fmt.Fprintln(b.w, line)
		return
	}
	if b.open && ev.GetPhase() != b.phase {
		fmt.Fprintln(b.w)
	}
	// \r returns to the line's start, ESC[K clears what a longer line left.
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	b.phase, b.open = ev.GetPhase(), true
}

// end finishes a line left open on a terminal.
func (b *progressBar) end() {
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}

// progressLine is one event: job, phase, a bar of epochs, losses and time.
func progressLine(ev *recommendationv1.JobEvent) string {
	var sb strings.Builder
	what := phaseName(ev.GetPhase())
	if finalState(ev.GetState()) {
		what = stateName(ev.GetState())
	}
	fmt.Fprintf(&sb, "%s  %-11s", ev.GetJobId(), what)
	if n := ev.GetEpochs(); n > 0 && ev.GetPhase() >= recommendationv1.JobPhase_JOB_PHASE_TRAINING {
		done := min(max(int(ev.GetEpoch())*barWidth/int(n), 0), barWidth)
		fmt.Fprintf(&sb, "  [%s%s] epoch %d/%d", strings.Repeat("#", done), strings.Repeat(".", barWidth-done), ev.GetEpoch(), n)
		if ev.GetEpoch() > 0 {
			fmt.Fprintf(&sb, "  loss %.5f  val loss %.5f", ev.GetLoss(), ev.GetValLoss())
		}
	}
	if ev.GetElapsed().AsDuration() > 0 {
		fmt.Fprintf(&sb, "  elapsed %s", fmtDuration(ev.GetElapsed()))
	}
	if ev.GetEstimatedRemaining().AsDuration() > 0 {
		fmt.Fprintf(&sb, "  left ~%s", fmtDuration(ev.GetEstimatedRemaining()))
	}
	return strings.TrimRight(sb.String(), " ")
}
