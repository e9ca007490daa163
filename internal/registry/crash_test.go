package registry_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// crashChildEnv, when set to a file path, turns TestCrashChild into the
// writer that TestCrashKill kills.
const crashChildEnv = "REGISTRY_CRASH_CHILD_DB"

// TestCrashKill runs a child process that registers and activates versions
// of majors 1 and 2 (each with its own active version)
// in a loop, kills it with SIGKILL at random moments, and checks after each
// kill that the file opens, is consistent, and holds only whole operations:
// every listed version loads with a matching checksum, the active version is
// listed, the last activation event names it, every operation the child
// reported done is in the history, and the one it was in the middle of is
// either entirely there or entirely absent.
func TestCrashKill(t *testing.T) {
	kills := 40
	if testing.Short() {
		kills = 8
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	t.Cleanup(func() { checkFile(t, path) })
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	var (
		st    crashState
		stats struct{ idle, midRegister, midRegisterCommitted, midActivate, midActivateCommitted int }
	)
	start := time.Now()
	for i := range kills {
		lines := runAndKill(t, path, time.Duration(rng.IntN(51))*time.Millisecond)
		pending := st.consume(t, lines)
		committed := verifyAfterCrash(t, path, &st, pending)
		switch {
		case pending.op == "":
			stats.idle++
		case pending.op == "register":
			stats.midRegister++
			if committed {
				stats.midRegisterCommitted++
			}
		default:
			stats.midActivate++
			if committed {
				stats.midActivateCommitted++
			}
		}
		if t.Failed() {
			t.Fatalf("after kill %d (pending %+v)", i+1, pending)
		}
	}
	t.Logf("%d kills in %v: %d between operations, %d mid-register (%d had committed), %d mid-activate (%d had committed); %d registers and %d activations done",
		kills, time.Since(start).Round(time.Millisecond), stats.idle, stats.midRegister, stats.midRegisterCommitted,
		stats.midActivate, stats.midActivateCommitted, st.registers, st.activations)
}

// TestCrashChild is the child process of TestCrashKill; it skips unless
// crashChildEnv is set. It loops until killed (or for 30 s): register a new
// version with 20–60 KB of random bytes, then activate it or an older one,
// printing "<op> <version> begin" and "<op> <version> done" around each.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("child process of TestCrashKill")
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	s, err := registry.Open(path, registry.Options{Timeout: 10 * time.Second})
	if err != nil {
		fail(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), seed))
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	bytesSrc := rand.NewChaCha8(key)
	fmt.Println("running")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		// Majors 1 and 2 side by side: each has its own active version.
		major := 1 + rng.IntN(2)
		list, err := s.List()
		if err != nil {
			fail(err)
		}
		v := model.Version{Major: major}
		for _, e := range list {
			if e.Manifest.Version.Major == major {
				v = e.Manifest.Version // ascending: the last is the newest
			}
		}
		switch {
		case v.Minor == 0 && v.Patch == 0:
			v.Patch = 1
		case rng.IntN(4) == 0:
			v, _ = v.Bump("minor")
		default:
			v, _ = v.Bump("patch")
		}
		b := make([]byte, 20<<10+rng.IntN(40<<10))
		_, _ = bytesSrc.Read(b)
		fmt.Printf("register %s begin\n", v)
		if _, err := s.Register(b, newManifest(v, b), "crash-child"); err != nil {
			fail(err)
		}
		fmt.Printf("register %s done\n", v)

		if list, err = s.List(); err != nil {
			fail(err)
		}
		var same []model.Version
		for _, e := range list {
			if e.Manifest.Version.Major == major {
				same = append(same, e.Manifest.Version)
			}
		}
		to, action := v, registry.ActionActivate
		if rng.IntN(3) == 0 {
			to, action = same[rng.IntN(len(same))], registry.ActionRollback
		}
		if cur, err := s.Active(major); err == nil && cur == to {
			continue // activating the active version records nothing
		}
		fmt.Printf("activate %s begin\n", to)
		if _, err := s.SetActive(to, registry.Event{Action: action, Reason: "crash test", Actor: "crash-child"}); err != nil {
			fail(err)
		}
		fmt.Printf("activate %s done\n", to)
	}
	s.Close()
	os.Exit(0)
}

// runAndKill starts the child on path, waits until it reports it is
// running, sleeps d, kills it with SIGKILL and returns what it printed.
func runAndKill(t *testing.T, path string, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := make(chan bool, 1)
	done := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if sc.Text() == "running" {
				running <- true
			}
		}
		close(running)
		done <- lines
	}()
	select {
	case ok := <-running:
		if !ok {
			lines := <-done
			_ = cmd.Wait()
			t.Fatalf("child exited before running: %q\nstderr: %s", lines, stderr.Bytes())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child not running after 30s; stderr: %s", stderr.Bytes())
	}
	time.Sleep(d)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatalf("kill: %v", err)
	}
	lines := <-done // read everything before Wait closes the pipe
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("child: %v (want killed by a signal)\nstdout: %q\nstderr: %s", err, lines, stderr.Bytes())
	}
	return lines
}

// crashState accumulates what the children reported across kills.
type crashState struct {
	registers   int            // "register ... done" lines
	activations int            // "activate ... done" lines
	lastActive  map[int]string // per major
	doneRegs    []string       // versions whose register was reported done
}

// setActive records v as the last activated version of its major.
func (st *crashState) setActive(v string) {
	if st.lastActive == nil {
		st.lastActive = map[int]string{}
	}
	st.lastActive[version(v).Major] = v
}

// pendingOp is the operation a child was killed in the middle of.
type pendingOp struct{ op, version string }

// consume records a child's output and returns the operation it had begun
// but not finished, if any.
func (st *crashState) consume(t *testing.T, lines []string) pendingOp {
	t.Helper()
	var p pendingOp
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && f[0] == "running":
		case len(f) == 3 && f[2] == "begin":
			p = pendingOp{f[0], f[1]}
		case len(f) == 3 && f[2] == "done":
			if p != (pendingOp{f[0], f[1]}) {
				t.Fatalf("child printed %q without its begin", l)
			}
			p = pendingOp{}
			if f[0] == "register" {
				st.registers++
				st.doneRegs = append(st.doneRegs, f[1])
			} else {
				st.activations++
				st.setActive(f[1])
			}
		default:
			// A line cut by the kill can only be the last one.
			if l != lines[len(lines)-1] {
				t.Fatalf("child printed %q", l)
			}
		}
	}
	return p
}

// verifyAfterCrash reopens the file after a kill and checks it; it reports
// whether the pending operation had committed, and counts it as done.
func verifyAfterCrash(t *testing.T, path string, st *crashState, p pendingOp) (committed bool) {
	t.Helper()
	s, err := registry.Open(path, registry.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Errorf("Check after kill: %v", err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatalf("List after kill: %v", err)
	}
	// Per major, the newest five plus the active version and its rollback target.
	perMajor := map[int]int{}
	for _, e := range list {
		perMajor[e.Manifest.Version.Major]++
	}
	for major, n := range perMajor {
		if n > registry.DefaultKeep+2 {
			t.Errorf("%d versions of major %d listed; retention keeps at most %d", n, major, registry.DefaultKeep+2)
		}
	}
	present := map[string]bool{}
	for _, e := range list {
		v := e.Manifest.Version
		present[v.String()] = true
		if _, _, err := s.Load(v); err != nil {
			t.Errorf("Load(%s) after kill: %v", v, err)
		}
	}

	h, err := s.History()
	if err != nil {
		t.Fatalf("History after kill: %v", err)
	}
	var registers, activations int
	lastActivation := map[int]registry.Event{}
	registered := map[string]bool{}
	for i, ev := range h {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		switch ev.Action {
		case registry.ActionRegister:
			registers++
			registered[ev.To] = true
		case registry.ActionActivate, registry.ActionRollback:
			activations++
			lastActivation[ev.Major] = ev
		}
	}

	// Every operation reported done is there; the pending one is there
	// entirely or not at all.
	wantRegs, wantActs := st.registers, st.activations
	switch p.op {
	case "register":
		committed = registered[p.version]
		if committed != present[p.version] {
			t.Errorf("pending register of %s: register event %v but version listed %v", p.version, committed, present[p.version])
		}
		if committed {
			wantRegs++
			st.registers++
			st.doneRegs = append(st.doneRegs, p.version)
		}
	case "activate":
		committed = activations == st.activations+1
		if committed {
			wantActs++
			st.activations++
			st.setActive(p.version)
		}
	}
	if registers != wantRegs || activations != wantActs {
		t.Errorf("history has %d registers and %d activations; the child completed %d and %d (pending %+v)",
			registers, activations, wantRegs, wantActs, p)
	}
	for _, v := range st.doneRegs {
		if !registered[v] {
			t.Errorf("register of %s was reported done but is not in the history", v)
		}
	}

	actives, err := s.Actives()
	if err != nil {
		t.Fatalf("Actives after kill: %v", err)
	}
	if len(actives) == 0 && activations != 0 {
		t.Errorf("no active version after %d activations", activations)
	}
	for major, active := range actives {
		if !present[active.String()] {
			t.Errorf("active %s is not listed (%d listed)", active, len(list))
		}
		if lastActivation[major].To != active.String() || active.String() != st.lastActive[major] {
			t.Errorf("major %d: active %s; last activation event %+v; child last activated %s", major, active, lastActivation[major], st.lastActive[major])
		}
	}
	return committed
}
