package jobs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"recommendation-api/internal/jobs"
	"recommendation-api/internal/model"
)

// sharedTraces is the directory of real Bitbrains VMs beside the checkout.
var sharedTraces = filepath.Join("..", "..", "..", "shared", "data", "bitbrains-rnd-2013-7")

// TestTraceJob trains on two real VMs mixed with simulated containers.
func TestTraceJob(t *testing.T) {
	if _, err := os.Stat(filepath.Join(sharedTraces, "1.csv.gz")); err != nil {
		t.Skipf("shared Bitbrains data not present (%v); CI and sessions have it in ../shared beside the checkout", err)
	}
	f := open(t, "")
	m := f.manager(t, jobs.Options{TraceDir: sharedTraces}, true)
	req := small(jobs.PolicyNever)
	// Held-out containers never train (traces.HeldOut), so take several VMs.
	req.Samples, req.Traces, req.TraceFormat = 1000, []string{"1*.csv.gz"}, "bitbrains"
	j, err := m.Start(req)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, m, j.ID)
	got, err := m.Get(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.StateSucceeded || !got.Registered {
		t.Fatalf("trace job = %s (%s); want succeeded and registered", got.State, got.Error)
	}
	man, err := f.store.Manifest(got.Version)
	if err != nil {
		t.Fatal(err)
	}
	// The training VMs among them give hundreds of hourly windows on top of the 1,000 simulated rows.
	if man.Training.Samples <= 1000+100 {
		t.Fatalf("manifest records %d training samples; want the 1,000 simulated plus the trace windows", man.Training.Samples)
	}
}

func TestTraceJobRefused(t *testing.T) {
	f := open(t, "")
	for name, tc := range map[string]struct {
		dir    string
		traces []string
		format string
		want   string
	}{
		"NoTraceDir":    {"", []string{"1.csv.gz"}, "", "--trace-dir"},
		"Absolute":      {sharedTraces, []string{"/etc/passwd"}, "", "traces[0]"},
		"Escapes":       {sharedTraces, []string{"../../secret"}, "", "traces[0]"},
		"NoMatch":       {sharedTraces, []string{"nothing-*.csv"}, "", "traces"},
		"UnknownFormat": {sharedTraces, []string{"1.csv.gz"}, "csv", "trace_format"},
	} {
		t.Run(name, func(t *testing.T) {
			m := f.manager(t, jobs.Options{TraceDir: tc.dir}, false)
			req := small(jobs.PolicyNever)
			req.Traces, req.TraceFormat = tc.traces, tc.format
			_, err := m.Start(req)
			if !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v; want ErrInvalidInput naming %s", err, tc.want)
			}
		})
	}
}
