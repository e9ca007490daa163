// Package etcdtest runs a real etcd for tests: Debian's etcd-server binary
// started as child processes on loopback ports, with data in a temporary
// directory, killed by PID when the test ends. A test that needs it is
// skipped, saying how to install it, only when the binary is absent.
package etcdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary returns the path of the etcd server binary, and false when it is
// not installed.
func Binary() (string, bool) {
	if p := os.Getenv("ETCD_BIN"); p != "" {
		return p, true
	}
	p, err := exec.LookPath("etcd")
	return p, err == nil
}

// SkipMessage says why a test is skipped without etcd.
const SkipMessage = "etcd server not installed (no etcd on PATH, ETCD_BIN unset): apt-get install etcd-server, or make deps-system"

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	Dir       string // data directory
	LogFile   string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// Cluster is a running etcd cluster of one or more members.
type Cluster struct {
	Members []*Member
}

// Start starts an n-member cluster whose data lives in t.TempDir() and
// which is killed when t ends; it skips t when etcd is not installed.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, ok := Binary(); !ok {
		t.Skip(SkipMessage)
	}
	c, err := StartIn(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartIn starts an n-member cluster with its data under dir and waits
// until every member reports healthy. The caller must Stop it. Ports are
// picked free on 127.0.0.1; a start that loses a port to another process
// is tried again with new ones.
func StartIn(dir string, n int) (*Cluster, error) {
	bin, ok := Binary()
	if !ok {
		return nil, errors.New(SkipMessage)
	}
	var err error
	for attempt := range 3 {
		var c *Cluster
		if c, err = start(bin, filepath.Join(dir, "try"+strconv.Itoa(attempt)), n); err == nil {
			return c, nil
		}
	}
	return nil, err
}

func start(bin, dir string, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			Dir:       filepath.Join(dir, fmt.Sprintf("m%d", i)),
		}
		m.LogFile = m.Dir + ".log"
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	token := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, m := range c.Members {
		log, err := os.Create(m.LogFile)
		if err != nil {
			c.Stop()
			return nil, err
		}
		m.cmd = exec.Command(bin,
			"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// Fast elections: a killed leader is replaced within a second.
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-level", "warn")
		m.cmd.Stdout, m.cmd.Stderr = log, log
		// Die with the test binary, whatever becomes of it.
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := m.cmd.Start(); err != nil {
			log.Close()
			c.Stop()
			return nil, fmt.Errorf("etcdtest: start %s: %w", bin, err)
		}
		log.Close()
		m.exited = make(chan struct{})
		go func(m *Member) { _ = m.cmd.Wait(); close(m.exited) }(m)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range c.Members {
		if err := m.waitHealthy(deadline); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// waitHealthy polls the member's /health until it says true.
func (m *Member) waitHealthy(deadline time.Time) error {
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-m.exited:
			return fmt.Errorf("etcdtest: member %s exited during start: %s", m.Name, m.logTail())
		default:
		}
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdtest: member %s not healthy in time: %s", m.Name, m.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *Member) logTail() string {
	b, _ := os.ReadFile(m.LogFile)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Endpoints returns the client URLs of every member, dead or alive.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Kill kills member i (SIGKILL to its PID) and waits for it to exit.
func (c *Cluster) Kill(i int) {
	m := c.Members[i]
	if m.cmd == nil || m.cmd.Process == nil || m.exited == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	// Process.Kill signals this very process (a pidfd on Linux), never
	// another that reused its PID.
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// Stop kills every member that runs.
func (c *Cluster) Stop() {
	for i := range c.Members {
		c.Kill(i)
	}
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
