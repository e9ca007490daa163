package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"recommendation-api/internal/model"
)

// needORT skips when ONNX Runtime is not installed (`make deps`); the
// server binary cannot serve without it.
func needORT(t *testing.T) {
	t.Helper()
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	if p, err := filepath.Abs("../../.tools/lib/libonnxruntime.so.1"); err == nil {
		if _, err := os.Stat(p); err == nil {
			t.Setenv("ONNXRUNTIME_LIB", p)
			return
		}
	}
	t.Skip("no ONNX Runtime (ONNXRUNTIME_LIB or .tools/lib); run make deps")
}

// TestCrashLoopShort is `make crash` with 30 iterations: the same code.
func TestCrashLoopShort(t *testing.T) {
	needORT(t)
	if testing.Short() {
		t.Skip("runs the server binary 30 times")
	}
	res, err := CrashLoop(t.Context(), CrashOptions{Iterations: 30, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d\n%s", res.Seed, res.Summary())
	if len(res.Violations) > 0 {
		t.Errorf("%d violations (seed %d):\n%s", len(res.Violations), res.Seed, strings.Join(res.Violations, "\n"))
	}
	if res.Kills != 30 || res.Acknowledged == 0 {
		t.Errorf("kills %d, acknowledged %d; want 30 kills and some acknowledged changes", res.Kills, res.Acknowledged)
	}
}

func ev(seq uint64, action, from, to string) model.Event {
	return model.Event{Seq: seq, Action: action, Major: 1, From: from, To: to}
}

// TestCheckHistory: the offline invariants catch each kind of damage.
func TestCheckHistory(t *testing.T) {
	t.Parallel()
	good := func() *Snapshot {
		return &Snapshot{
			Versions: map[string]bool{"v1.0.0": true, "v1.0.2": true},
			Active:   map[int]string{1: "v1.0.2"},
			Events: []model.Event{
				ev(1, model.ActionRegister, "", "v1.0.0"), ev(2, model.ActionActivate, "", "v1.0.0"),
				ev(3, model.ActionRegister, "", "v1.0.1"), ev(4, model.ActionRegister, "", "v1.0.2"),
				ev(5, model.ActionActivate, "v1.0.0", "v1.0.2"), ev(6, model.ActionPrune, "v1.0.1", ""),
			},
			Pruned: map[string]bool{}, Register: map[string]uint64{},
		}
	}
	if bad := checkHistory(good()); len(bad) != 0 {
		t.Fatalf("a consistent history: %v", bad)
	}
	for _, c := range []struct {
		name, want string
		spoil      func(*Snapshot)
	}{
		{"ErrSeqGap", "follows", func(s *Snapshot) { s.Events[3].Seq = 9 }},
		{"ErrDanglingActivation", "which no earlier event registered", func(s *Snapshot) { s.Events[4].To = "v1.0.7"; s.Active[1] = "v1.0.7"; s.Versions["v1.0.7"] = true }},
		{"ErrBrokenChain", "does not chain", func(s *Snapshot) { s.Events[4].From = "v1.0.1" }},
		{"ErrActiveNotLastActivation", "last activation event moved it to", func(s *Snapshot) { s.Active[1] = "v1.0.0" }},
		{"ErrRegisteredButGone", "neither listed nor pruned", func(s *Snapshot) { delete(s.Versions, "v1.0.0"); s.Active[1] = "v1.0.2" }},
		{"ErrListedWithoutEvent", "no event registered it", func(s *Snapshot) { s.Versions["v1.0.9"] = true }},
		{"ErrActiveNotListed", "is not listed", func(s *Snapshot) { delete(s.Versions, "v1.0.2") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := good()
			c.spoil(s)
			bad := checkHistory(s)
			if !strings.Contains(strings.Join(bad, "\n"), c.want) {
				t.Errorf("violations %q; want one saying %q", bad, c.want)
			}
		})
	}
}

// TestCheckStep: an acknowledged change missing after the kill, or a change
// nobody asked for, is a violation.
func TestCheckStep(t *testing.T) {
	t.Parallel()
	prev := &Snapshot{Versions: map[string]bool{"v1.0.0": true}, Active: map[int]string{1: "v1.0.0"},
		Register: map[string]uint64{"v1.0.0": 1}, Pruned: map[string]bool{}}
	l := &crashLoop{snap: prev, res: &CrashResult{}}
	lost := &Snapshot{Versions: prev.Versions, Active: prev.Active, Register: prev.Register, Pruned: prev.Pruned}
	if bad := l.checkStep(&step{kind: StepRegister, version: "v1.0.1", ok: true}, lost); len(bad) == 0 {
		t.Error("an acknowledged register missing after the kill: no violation")
	}
	if bad := l.checkStep(&step{kind: StepActivate, version: "v1.0.1", ok: true, changed: true, to: "v1.0.1"}, lost); len(bad) == 0 {
		t.Error("an acknowledged activation missing after the kill: no violation")
	}
	moved := &Snapshot{Versions: map[string]bool{"v1.0.0": true, "v1.0.1": true}, Active: map[int]string{1: "v1.0.1"},
		Register: map[string]uint64{"v1.0.0": 1, "v1.0.1": 2}, Pruned: map[string]bool{}}
	if bad := l.checkStep(&step{kind: StepTrain, policy: 1, version: "v1.0.1", ok: true}, moved); len(bad) == 0 {
		t.Error("a job with activation policy NEVER moved the active version: no violation")
	}
	if bad := l.checkStep(&step{kind: StepRegister, version: "v1.0.1", ok: true}, &Snapshot{Versions: moved.Versions, Active: prev.Active, Register: moved.Register, Pruned: moved.Pruned}); len(bad) != 0 {
		t.Errorf("an acknowledged register present: %v", bad)
	}
}
