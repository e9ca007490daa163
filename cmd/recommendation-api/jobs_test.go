package main

// The jobs client against the real server: start, watch (lines and a
// redrawn terminal bar), list, show and cancel, with their refusals.

import (
	"bufio"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// watchResult is what a jobs watch run in the background printed.
type watchResult struct {
	out string
	err error
}

// watchInBackground runs jobs watch with c's terminal setting; out shows
// its output while it runs.
func watchInBackground(t *testing.T, tty bool, args ...string) (*lockedBuffer, <-chan watchResult) {
	t.Helper()
	out := &lockedBuffer{}
	done := make(chan watchResult, 1)
	c := &cli{stdout: out, stderr: out, getenv: func(string) string { return "" }, tty: tty}
	go func() {
		err := c.jobs(context.Background(), append([]string{"watch"}, args...))
		done <- watchResult{out.String(), err}
	}()
	return out, done
}

// waitOutput waits until b's output matches re.
func waitOutput(t *testing.T, b *lockedBuffer, re, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !regexp.MustCompile(re).MatchString(b.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; output so far:\n%q", waitFor, what, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJobsCLI(t *testing.T) {
	needORT(t)
	t.Parallel()
	ts := startServer(t, nil)
	srv := []string{"--server", ts.grpcAddr}
	jobs := func(args ...string) string {
		t.Helper()
		return mustClient(t, nil, append(append([]string{"jobs"}, args...), srv...)...)
	}
	start := func(args ...string) *recommendationv1.Job {
		t.Helper()
		var resp recommendationv1.StartTrainingResponse
		decodeJSON(t, jobs(append([]string{"start", "-o", "json"}, args...)...), &resp)
		if resp.GetJob().GetState() != recommendationv1.JobState_JOB_STATE_QUEUED {
			t.Fatalf("jobs start: %v; want a QUEUED job", &resp)
		}
		return resp.GetJob()
	}

	// A long job holds the worker, so that the small one is queued behind
	// it and its watchers see every event from QUEUED on.
	long := start("--samples", "20000", "--epochs", "500", "--policy", "never", "--reason", "long")
	small := start("--samples", "1000", "--epochs", "2", "--seed", "4", "--policy", "never", "--bump", "minor", "--reason", "cli job")
	if small.GetParams().GetReason() != "cli job" || small.GetParams().GetSeed() != 4 || small.GetParams().GetEpochs() != 2 ||
		small.GetParams().GetActivationPolicy() != recommendationv1.ActivationPolicy_ACTIVATION_POLICY_NEVER {
		t.Errorf("jobs start sent other parameters: %v", small.GetParams())
	}
	lines, linesDone := watchInBackground(t, false, append([]string{small.GetId()}, srv...)...)
	term, termDone := watchInBackground(t, true, append([]string{small.GetId()}, srv...)...)
	longOut, longDone := watchInBackground(t, false, append([]string{long.GetId()}, srv...)...)
	waitOutput(t, lines, small.GetId()+`  queued`, "the small job's first event")
	waitOutput(t, term, small.GetId()+`  queued`, "the small job's first event on the terminal")
	waitOutput(t, longOut, long.GetId(), "the long job's first event")

	t.Run("Cancel", func(t *testing.T) {
		out := jobs("cancel", long.GetId())
		if want := long.GetId() + " CANCELLED\n"; out != want {
			t.Errorf("jobs cancel: %q; want %q", out, want)
		}
		r := recv(t, longDone, "jobs watch of the cancelled job")
		checkFailure(t, r.err, exitOther, "jobs watch: "+long.GetId()+" CANCELLED")
		if !strings.Contains(r.out, long.GetId()+" CANCELLED") {
			t.Errorf("watch of the cancelled job does not end with its state:\n%s", r.out)
		}
	})
	t.Run("WatchLines", func(t *testing.T) {
		r := recv(t, linesDone, "jobs watch of the small job")
		if r.err != nil {
			t.Fatalf("jobs watch: %v\n%s", r.err, r.out)
		}
		if strings.Contains(r.out, "\r") || strings.Contains(r.out, "\x1b") {
			t.Errorf("not a terminal, yet the output redraws:\n%q", r.out)
		}
		// Events may be coalesced for a slow reader (an epoch, even a
		// phase on a busy machine), never the first (the job as it is:
		// queued) nor the final one, which carries the last epoch.
		id := regexp.QuoteMeta(small.GetId())
		if !regexp.MustCompile(`(?m)^` + id + `  training +\[[#.]{24}\] epoch [0-2]/2`).MatchString(r.out) {
			t.Logf("the watcher saw no training event (coalesced):\n%s", r.out)
		}
		for _, re := range []string{
			`(?m)^` + id + `  queued`,
			`(?m)^` + id + `  SUCCEEDED +\[#{24}\] epoch 2/2  loss \d\.\d{5}  val loss \d\.\d{5}`,
			`(?m)^` + id + ` SUCCEEDED: v2\.1\.0 registered, not activated \(policy never`,
		} {
			if !regexp.MustCompile(re).MatchString(r.out) {
				t.Errorf("watch output does not match %s:\n%s", re, r.out)
			}
		}
		if last := strings.TrimSpace(r.out[strings.LastIndex(strings.TrimSuffix(r.out, "\n"), "\n")+1:]); !strings.HasPrefix(last, small.GetId()+" SUCCEEDED") {
			t.Errorf("the last line is %q; want the final state", last)
		}
	})
	t.Run("WatchTerminal", func(t *testing.T) {
		r := recv(t, termDone, "jobs watch of the small job on a terminal")
		if r.err != nil {
			t.Fatalf("jobs watch: %v\n%q", r.err, r.out)
		}
		// Each event is drawn over the last (TestProgressBar checks the
		// exact drawing); the final state gets a line of its own.
		id := regexp.QuoteMeta(small.GetId())
		if !regexp.MustCompile(`^\r` + id + `  queued\x1b\[K\n(\r` + id + `  [^\n]*\x1b\[K\n?)*\r` + id + `  SUCCEEDED [^\n]*epoch 2/2[^\n]*\x1b\[K\n` +
			id + ` SUCCEEDED: [^\n]*\n$`).MatchString(r.out) {
			t.Errorf("terminal output is not redrawn lines ending with the final state:\n%q", r.out)
		}
		if !strings.HasSuffix(r.out, "\n") || !strings.Contains(r.out, "\n"+small.GetId()+" SUCCEEDED: ") {
			t.Errorf("terminal output does not end with the final state on its own line:\n%q", r.out)
		}
	})
	t.Run("WatchJSON", func(t *testing.T) {
		// A finished job: its stream is the final event alone.
		out := jobs("watch", small.GetId(), "-o", "json")
		sc := bufio.NewScanner(strings.NewReader(out))
		n := 0
		var last recommendationv1.WatchJobResponse
		for sc.Scan() {
			n++
			decodeJSON(t, sc.Text(), &last)
		}
		if n == 0 || last.GetEvent().GetState() != recommendationv1.JobState_JOB_STATE_SUCCEEDED || last.GetEvent().GetJob().GetVersion() != "v2.1.0" {
			t.Errorf("watch -o json: %d lines, last %v; want NDJSON ending with SUCCEEDED v2.1.0", n, &last)
		}
	})
	t.Run("List", func(t *testing.T) {
		out := jobs("list")
		for _, re := range []string{
			`(?m)^ID +STATE +PHASE +VERSION +EPOCH`,
			`(?m)^` + regexp.QuoteMeta(small.GetId()) + ` +SUCCEEDED +done +v2\.1\.0 +2/2 .* registered$`,
			`(?m)^` + regexp.QuoteMeta(long.GetId()) + ` +CANCELLED `,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("jobs list does not match %s:\n%s", re, out)
			}
		}
		var resp recommendationv1.ListJobsResponse
		decodeJSON(t, jobs("list", "-o", "json"), &resp)
		if len(resp.GetJobs()) != 2 || resp.GetJobs()[0].GetId() != small.GetId() {
			t.Errorf("jobs list -o json: %v; want the 2 jobs, newest first", &resp)
		}
	})
	t.Run("Show", func(t *testing.T) {
		out := jobs("show", small.GetId())
		for _, want := range []string{"state          SUCCEEDED", "version        v2.1.0 (asked: minor bump)", "reason         cli job",
			"epochs         2/2", "v2.1.0 (new)", "VPA p90", "activation: policy never"} {
			if !strings.Contains(out, want) {
				t.Errorf("jobs show lacks %q:\n%s", want, out)
			}
		}
		var resp recommendationv1.GetJobResponse
		decodeJSON(t, jobs("show", long.GetId(), "-o", "json"), &resp)
		if resp.GetJob().GetState() != recommendationv1.JobState_JOB_STATE_CANCELLED {
			t.Errorf("jobs show -o json of the cancelled job: %v", &resp)
		}
	})
	t.Run("CancelFinished", func(t *testing.T) {
		out := jobs("cancel", small.GetId())
		if !strings.HasPrefix(out, "unchanged: "+small.GetId()+" is SUCCEEDED") {
			t.Errorf("cancelling a finished job: %q; want it left unchanged and said so", out)
		}
	})
	t.Run("StartWatch", func(t *testing.T) {
		out := jobs("start", "--samples", "1000", "--epochs", "1", "--version", "v2.3.0", "--policy", "always", "--watch")
		for _, re := range []string{`(?m)^queued job-\d+: v2\.3\.0, 1000 samples, 1 epochs`, `(?m)^job-\d+  SUCCEEDED +\[#{24}\] epoch 1/1`,
			`(?m)^job-\d+ SUCCEEDED: v2\.3\.0 registered and activated \(policy always`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("jobs start --watch does not match %s:\n%s", re, out)
			}
		}
	})
	t.Run("Major", func(t *testing.T) {
		// The server serves majors 1 and 2; without a major a job trains 2
		// (above). --major 1 trains major 1, and a major-1 --version
		// trains its own major without --major.
		for _, tt := range []struct {
			args    []string
			version string
		}{
			{[]string{"--major", "1"}, "v1.1.1"},
			{[]string{"--version", "v1.5.0"}, "v1.5.0"},
			{[]string{"--version", "v1.6.0", "--major", "1"}, "v1.6.0"},
		} {
			out := jobs(append([]string{"start", "--samples", "1000", "--epochs", "1", "--policy", "never", "--watch"}, tt.args...)...)
			v := regexp.QuoteMeta(tt.version)
			for _, re := range []string{`(?m)^queued job-\d+: ` + v + `, 1000 samples, 1 epochs`, `(?m)^job-\d+ SUCCEEDED: ` + v + ` registered, not activated`} {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("jobs start %v does not match %s:\n%s", tt.args, re, out)
				}
			}
		}
		// The job records the major it trained.
		var resp recommendationv1.ListJobsResponse
		decodeJSON(t, jobs("list", "-o", "json"), &resp)
		if j := resp.GetJobs()[0]; j.GetVersion() != "v1.6.0" || j.GetParams().GetMajor() != 1 {
			t.Errorf("newest job %s, major %d; want v1.6.0 of major 1", j.GetVersion(), j.GetParams().GetMajor())
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want []string
		}{
			{[]string{"show", "job-99999999"}, []string{"jobs show: NotFound: ", "job-99999999"}},
			{[]string{"watch", "job-99999999"}, []string{"jobs watch: NotFound: "}},
			{[]string{"cancel", "job-99999999"}, []string{"jobs cancel: NotFound: "}},
			{[]string{"start", "--samples", "5"}, []string{"jobs start: InvalidArgument: ", "samples: 5; want 1000 to"}},
			{[]string{"start", "--version", "v2.1.0"}, []string{"jobs start: AlreadyExists: "}},
			{[]string{"start", "--version", "v1.1.0"}, []string{"jobs start: AlreadyExists: ", "v1.1.0 is already registered"}},
			{[]string{"start", "--major", "7"}, []string{"jobs start: InvalidArgument: ", "major: 7; this server trains majors [1 2]"}},
		} {
			_, _, err := runClient(t, nil, append(append([]string{"jobs"}, tt.args...), srv...)...)
			checkFailure(t, err, exitRefused, tt.want...)
		}
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"start", "--major", "0"}, "jobs start: --major 0; want a major version such as 1 or 2"},
			{[]string{"start", "--major", "-1"}, "jobs start: --major -1; want"},
			{[]string{"start", "--major", "two"}, "-major"},
			{[]string{"start", "--major", "2", "--version", "v1.7.0"}, "jobs start: --version v1.7.0 is major 1, --major 2; want a v2.y.z version, or omit --major"},
			{[]string{"start", "--version", "1.7.0"}, "jobs start: --version: "},
		} {
			_, _, err := runClient(t, nil, append(append([]string{"jobs"}, tt.args...), srv...)...)
			checkFailure(t, err, exitUsage, tt.want)
		}
	})
}

// TestProgressBar checks the drawing of a job's events, on a terminal (one
// line per phase, redrawn in place with \r and erase-to-end) and not.
func TestProgressBar(t *testing.T) {
	t.Parallel()
	ev := func(state recommendationv1.JobState, phase recommendationv1.JobPhase, epoch int32, loss, val float64, elapsed, left time.Duration) *recommendationv1.JobEvent {
		e := &recommendationv1.JobEvent{JobId: "job-00000007", State: state, Phase: phase, Epoch: epoch, Loss: loss, ValLoss: val,
			Elapsed: durationpb.New(elapsed), EstimatedRemaining: durationpb.New(left)}
		if phase >= recommendationv1.JobPhase_JOB_PHASE_TRAINING {
			e.Epochs = 4
		}
		return e
	}
	const (
		queued    = recommendationv1.JobState_JOB_STATE_QUEUED
		running   = recommendationv1.JobState_JOB_STATE_RUNNING
		succeeded = recommendationv1.JobState_JOB_STATE_SUCCEEDED
	)
	events := []*recommendationv1.JobEvent{
		ev(queued, recommendationv1.JobPhase_JOB_PHASE_QUEUED, 0, 0, 0, 0, 0),
		ev(running, recommendationv1.JobPhase_JOB_PHASE_TRAINING, 0, 0, 0, 1200*time.Millisecond, 0),
		ev(running, recommendationv1.JobPhase_JOB_PHASE_TRAINING, 1, 0.5, 0.25, 2*time.Second, 90*time.Second),
		ev(running, recommendationv1.JobPhase_JOB_PHASE_TRAINING, 3, 0.125, 0.0625, 3*time.Second, 0),
		ev(succeeded, recommendationv1.JobPhase_JOB_PHASE_DONE, 3, 0.125, 0.0625, 4*time.Second, 0),
	}
	lines := []string{
		"job-00000007  queued",
		"job-00000007  training     [........................] epoch 0/4  elapsed 1.2s",
		"job-00000007  training     [######..................] epoch 1/4  loss 0.50000  val loss 0.25000  elapsed 2s  left ~1m30s",
		"job-00000007  training     [##################......] epoch 3/4  loss 0.12500  val loss 0.06250  elapsed 3s",
		"job-00000007  SUCCEEDED    [##################......] epoch 3/4  loss 0.12500  val loss 0.06250  elapsed 4s",
	}
	for _, tt := range []struct {
		name string
		tty  bool
		want string
	}{
		{"Lines", false, strings.Join(lines, "\n") + "\n"},
		{"Terminal", true, "\r" + lines[0] + "\x1b[K\n" +
			"\r" + lines[1] + "\x1b[K" + "\r" + lines[2] + "\x1b[K" + "\r" + lines[3] + "\x1b[K\n" +
			"\r" + lines[4] + "\x1b[K\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			bar := progressBar{w: &out, tty: tt.tty}
			for _, e := range events {
				bar.draw(e)
			}
			bar.end()
			if got := out.String(); got != tt.want {
				t.Errorf("drawn:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}
