package reliability

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BuildServer builds the server binary (recommendation-api/cmd/recommendation-api)
// into dir and returns its path. It needs the go tool and a working
// directory inside the module.
func BuildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "recommendation-api")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "recommendation-api/cmd/recommendation-api").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build the server: %v\n%s", err, out)
	}
	return bin, nil
}

// Tokens are the bearer tokens of a token file the tool writes: one per
// role, random, so a server started on it accepts only this tool.
type Tokens struct {
	Path                    string
	Operator, Agent, Viewer string
}

// WriteTokens writes a token file (mode 0600) with one random token per
// role into dir.
func WriteTokens(dir string) (Tokens, error) {
	t := Tokens{Path: filepath.Join(dir, "tokens")}
	for _, p := range []*string{&t.Operator, &t.Agent, &t.Viewer} {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return t, err
		}
		*p = hex.EncodeToString(b)
	}
	body := fmt.Sprintf("reliability-operator operator %s\nreliability-agent agent %s\nreliability-viewer viewer %s\n", t.Operator, t.Agent, t.Viewer)
	return t, os.WriteFile(t.Path, []byte(body), 0o600)
}

// ServerConfig is how to start the server binary.
type ServerConfig struct {
	Bin       string    // the binary
	DataDir   string    // --data-dir
	TokenFile string    // --token-file
	TLS       *TLSFiles // nil: plaintext
	Extra     []string  // more flags
}

// Process is a running server binary.
type Process struct {
	cmd        *exec.Cmd
	GRPC, HTTP string // the addresses it reported
	log        *tailBuffer
	exited     chan struct{}
	err        error // set before exited closes
}

var listeningLine = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// Start starts the server on loopback ports chosen by the kernel and waits
// (at most timeout) until it logs its addresses. It does not wait for
// readiness; see WaitReady.
func Start(cfg ServerConfig, timeout time.Duration) (*Process, error) {
	args := []string{"serve", "--data-dir", cfg.DataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--log-format", "text", "--token-file", cfg.TokenFile}
	if cfg.TLS != nil {
		args = append(args, "--tls-cert", cfg.TLS.Cert, "--tls-key", cfg.TLS.Key)
	}
	args = append(args, cfg.Extra...)
	p := &Process{cmd: exec.Command(cfg.Bin, args...), log: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Bin, err)
	}
	addrs := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteLine(line)
			if m := listeningLine.FindStringSubmatch(line); m != nil && !found {
				found = true
				addrs <- [2]string{m[1], m[2]}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case a := <-addrs:
		p.GRPC, p.HTTP = a[0], a[1]
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("server exited before listening: %v; log:\n%s", p.err, p.log.String())
	case <-time.After(timeout):
		p.Kill()
		return nil, fmt.Errorf("server did not report its addresses within %v; log:\n%s", timeout, p.log.String())
	}
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log is the tail of the server's log.
func (p *Process) Log() string { return p.log.String() }

// Kill sends SIGKILL and waits until the process has exited.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits at most timeout for the exit, then kills.
// It returns the exit error of a clean stop (nil for exit 0).
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("server did not stop within %v of SIGTERM; killed", timeout)
	}
}

// Dial connects to the gRPC address, with TLS trusting ca when not nil.
func Dial(addr string, tlsFiles *TLSFiles) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsFiles != nil {
		creds = credentials.NewTLS(tlsFiles.ClientConfig())
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
}

// WaitReady waits (at most timeout) until the gRPC health service reports
// SERVING for the whole server.
func WaitReady(ctx context.Context, conn *grpc.ClientConn, p *Process, timeout time.Duration) error {
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("server exited before it was ready: %v; log:\n%s", p.err, p.log.String())
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := h.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("health %s", resp.GetStatus())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("server not ready within %v: %v; log:\n%s", timeout, last, p.log.String())
}

// tailBuffer keeps the last max bytes of lines written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []string
	n   int
	max int
}

func (b *tailBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, s)
	b.n += len(s) + 1
	for b.n > b.max && len(b.buf) > 1 {
		b.n -= len(b.buf[0]) + 1
		b.buf = b.buf[1:]
	}
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.buf, "\n")
}

// errKilled marks a call cut by the server's death.
var errKilled = errors.New("server killed")

func credentialsTLS(f *TLSFiles) credentials.TransportCredentials {
	return credentials.NewTLS(f.ClientConfig())
}
