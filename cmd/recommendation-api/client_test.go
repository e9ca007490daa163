package main

// Tests of what the client subcommands share: exit codes for bad usage and
// an unreachable server, the connection flags and their environment twins,
// and TLS, mutual TLS and the bearer token against a gRPC server started
// here with certificates made here.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// runClient runs a client command line in-process, as main does, with c's
// environment and terminal setting (nil: an empty environment, no
// terminal). It returns stdout, stderr and the error.
func runClient(t *testing.T, c *cli, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr lockedBuffer
	if c == nil {
		c = &cli{getenv: func(string) string { return "" }}
	}
	cc := *c
	cc.stdout, cc.stderr = &stdout, &stderr
	var err error
	switch args[0] {
	case "models":
		err = cc.models(t.Context(), args[1:])
	case "jobs":
		err = cc.jobs(t.Context(), args[1:])
	default:
		t.Fatalf("runClient: %q is not a client command", args[0])
	}
	return stdout.String(), stderr.String(), err
}

// mustClient runs a client command line that must succeed; it returns stdout.
func mustClient(t *testing.T, c *cli, args ...string) string {
	t.Helper()
	out, errOut, err := runClient(t, c, args...)
	if err != nil {
		t.Fatalf("%s: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, exitCode(err), out, errOut)
	}
	return out
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestClientUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(dir, "spaced-token")
	if err := os.WriteFile(spaced, []byte("two words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No server listens: every case must be refused before dialing.
	srv := closedAddr(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"NoCommand", []string{"models"}, "models: missing command"},
		{"UnknownCommand", []string{"jobs", "frobnicate"}, `jobs: unknown command "frobnicate"`},
		{"MissingArgument", []string{"models", "show"}, "models show: 0 arguments; want 1"},
		{"ExtraArgument", []string{"models", "list", "v1.0.0"}, `models list: unexpected argument "v1.0.0"; want none`},
		{"BadVersion", []string{"models", "activate", "1.2"}, `models activate: VERSION: invalid version "1.2"`},
		{"BadExpectedActive", []string{"models", "rollback", "--expected-active", "latest"}, `--expected-active: invalid version "latest"`},
		{"BadFlag", []string{"models", "list", "--frob"}, "flag provided but not defined: -frob"},
		{"BadOutput", []string{"jobs", "list", "-o", "yaml"}, `jobs list: -o "yaml"; want table or json`},
		{"BadTimeout", []string{"jobs", "list", "--timeout", "0s"}, "--timeout 0s; want a positive duration"},
		{"BadPageSize", []string{"models", "history", "--page-size", "5000"}, "--page-size 5000; want 1..1000"},
		{"BadServer", []string{"models", "list", "--server", "localhost"}, `--server "localhost": want host:port`},
		{"TokenAndTokenFile", []string{"models", "list", "--token", "a", "--token-file", empty}, "--token and --token-file both given; want one"},
		{"EmptyTokenFile", []string{"models", "list", "--token-file", empty}, "is empty; want a bearer token"},
		{"SpacedToken", []string{"models", "list", "--token-file", spaced}, "holds spaces or control characters"},
		{"MissingTokenFile", []string{"models", "list", "--token-file", filepath.Join(dir, "missing")}, "--token-file: open"},
		{"CertWithoutKey", []string{"models", "list", "--tls-cert", notPEM}, "--tls-cert and --tls-key go together"},
		{"CANotPEM", []string{"models", "list", "--tls-ca", notPEM}, "no PEM certificate in it"},
		{"MissingCA", []string{"models", "list", "--tls-ca", filepath.Join(dir, "missing.pem")}, "--tls-ca: open"},
		{"BadPolicy", []string{"jobs", "start", "--policy", "sometimes"}, `--policy "sometimes"; want never, if_better or always`},
		{"MajorBump", []string{"jobs", "start", "--bump", "major"}, `--bump "major"; want patch or minor`},
		{"VersionAndBump", []string{"jobs", "start", "--bump", "minor", "--version", "v1.2.0"}, "--version and --bump both given"},
		{"BadMix", []string{"jobs", "start", "--mix", "1,x,1,1,1"}, `--mix: weight 2 "x" is not a number`},
		{"EmptyJobID", []string{"jobs", "watch", ""}, "ID is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(tt.args, "--server", srv)
			if len(tt.args) == 1 || slices.Contains(tt.args, "--server") { // "models" alone takes no flags
				args = tt.args
			}
			out, _, err := runClient(t, nil, args...)
			checkFailure(t, err, exitUsage, tt.want)
			if out != "" {
				t.Errorf("stdout %q; want nothing", out)
			}
		})
	}
	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"models", "-h"}, {"jobs", "watch", "-h"}, {"models", "activate", "--help"}} {
			_, errOut, err := runClient(t, nil, args...)
			if !errors.Is(err, flag.ErrHelp) || exitCode(err) != exitUsage {
				t.Errorf("%v: error %v, exit %d; want flag.ErrHelp and 2", args, err, exitCode(err))
			}
			for _, want := range []string{"exit codes:", "3  the server refused", "4  the server is unreachable"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("%v usage does not document %q:\n%s", args, want, errOut)
				}
			}
		}
		out := mustClient(t, nil, "jobs", "help")
		for _, sub := range []string{"start", "list", "show ID", "watch ID", "cancel ID", "RECO_TOKEN_FILE_CLIENT"} {
			if !strings.Contains(out, sub) {
				t.Errorf("jobs help does not mention %q:\n%s", sub, out)
			}
		}
	})
}

// TestClientUnreachable: a closed port is exit 4 with one line naming the
// address, for unary calls and the WatchJob stream; so is a server that
// does not answer within --timeout.
func TestClientUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"models", "list"}, {"models", "history"}, {"models", "download", "v1.0.0", "-d", t.TempDir()},
		{"jobs", "list"}, {"jobs", "watch", "job-00000001"}, {"jobs", "start"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			t.Parallel()
			_, _, err := runClient(t, nil, append(args, "--server", addr)...)
			checkFailure(t, err, exitUnreachable, "Unavailable: "+addr+": ", "connection refused")
		})
	}
	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		// Accepts TCP connections but never speaks HTTP/2.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		_, _, err = runClient(t, nil, "models", "list", "--server", l.Addr().String(), "--timeout", "300ms")
		checkFailure(t, err, exitUnreachable, "DeadlineExceeded: "+l.Addr().String())
	})
}

func TestExitCodeOf(t *testing.T) {
	t.Parallel()
	for c, want := range map[codes.Code]int{
		codes.InvalidArgument: 3, codes.NotFound: 3, codes.FailedPrecondition: 3, codes.AlreadyExists: 3,
		codes.PermissionDenied: 3, codes.Unauthenticated: 3, codes.ResourceExhausted: 3,
		codes.Unavailable: 4, codes.DeadlineExceeded: 4,
		codes.Internal: 1, codes.Unknown: 1, codes.Canceled: 1, codes.Unimplemented: 1,
	} {
		err := rpcError("models list", "host:1", status.Error(c, "line one\nline two"))
		if got := exitCode(err); got != want {
			t.Errorf("%s: exit %d; want %d", c, got, want)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "models list: "+c.String()+": ") {
			t.Errorf("%s: error %q; want one line with the code name", c, msg)
		}
	}
}

// ---- TLS, mTLS and the bearer token ----

// testPKI is a CA with a server certificate (127.0.0.1 and reco.test) and a
// client certificate (CN operator-1), written as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "EC PRIVATE KEY", der)
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"reco.test"})
	cliDER, cliKey := issue(3, "operator-1", x509.ExtKeyUsageClientAuth, nil, nil)
	p := &testPKI{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", srvDER),
		serverKey:  writeKey("server-key.pem", srvKey),
		clientCert: write("client.pem", "CERTIFICATE", cliDER),
		clientKey:  writeKey("client-key.pem", cliKey),
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(caCert)
	return p
}

// seenCall is what the TLS test server saw of the last call.
type seenCall struct {
	authorization string // the authorization metadata, "" for none
	clientCN      string // the verified client certificate's CN, "" for none
}

// tlsRegistry answers ListVersions with one version, behind TLS (client
// certificates verified when given) and a bearer token check.
type tlsRegistry struct {
	recommendationv1.UnimplementedModelRegistryServiceServer
	mu   sync.Mutex // guards seen
	seen seenCall
}

func (r *tlsRegistry) ListVersions(context.Context, *recommendationv1.ListVersionsRequest) (*recommendationv1.ListVersionsResponse, error) {
	return &recommendationv1.ListVersionsResponse{ActiveVersion: "v1.0.0",
		Versions: []*recommendationv1.ModelVersion{{Version: "v1.0.0", Active: true, Sha256: strings.Repeat("ab", 32)}}}, nil
}

func (r *tlsRegistry) last() seenCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

// startTLSServer serves tlsRegistry on loopback with TLS; calls must carry
// "authorization: Bearer <token>".
func startTLSServer(t *testing.T, p *testPKI, token string) (string, *tlsRegistry) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	reg := &tlsRegistry{}
	check := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var seen seenCall
		if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
			seen.authorization = md.Get("authorization")[0]
		}
		if pr, ok := peer.FromContext(ctx); ok {
			if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				seen.clientCN = ti.State.VerifiedChains[0][0].Subject.CommonName
			}
		}
		reg.mu.Lock()
		reg.seen = seen
		reg.mu.Unlock()
		if seen.authorization != "Bearer "+token {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong bearer token")
		}
		return handler(ctx, req)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: p.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12,
	})), grpc.UnaryInterceptor(check))
	recommendationv1.RegisterModelRegistryServiceServer(srv, reg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String(), reg
}

func TestClientTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newTestPKI(t, dir)
	other := newTestPKI(t, t.TempDir()) // a CA the server's certificate is not from
	const token = "s3cret-token"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, reg := startTLSServer(t, p, token)
	env := func(kv map[string]string) *cli {
		return &cli{getenv: func(k string) string { return kv[k] }}
	}

	for _, tt := range []struct {
		name   string
		c      *cli
		args   []string
		wantCN string
	}{
		{"TLSWithToken", nil, []string{"--server", addr, "--tls-ca", p.ca, "--token", token}, ""},
		{"TokenFile", nil, []string{"--server", addr, "--tls-ca", p.ca, "--token-file", tokenFile}, ""},
		{"MutualTLS", nil, []string{"--server", addr, "--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey, "--token", token}, "operator-1"},
		{"ServerName", nil, []string{"--server", addr, "--tls-ca", p.ca, "--tls-server-name", "reco.test", "--token", token}, ""},
		{"Environment", env(map[string]string{"RECO_SERVER": addr, "RECO_TLS_CA": p.ca, "RECO_CLIENT_CERT": p.clientCert,
			"RECO_CLIENT_KEY": p.clientKey, "RECO_TOKEN_FILE_CLIENT": tokenFile}), nil, "operator-1"},
		{"EnvironmentToken", env(map[string]string{"RECO_SERVER": addr, "RECO_TLS_CA": p.ca, "RECO_TOKEN": token}), nil, ""},
		// A flag beats its environment twin.
		{"FlagOverridesEnvironment", env(map[string]string{"RECO_SERVER": closedAddr(t), "RECO_TLS_CA": other.ca, "RECO_TOKEN": "wrong"}),
			[]string{"--server", addr, "--tls-ca", p.ca, "--token-file", tokenFile}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Sequential: each case reads what the server saw of its call.
			out := mustClient(t, tt.c, append([]string{"models", "list"}, tt.args...)...)
			if !regexp.MustCompile(`(?m)^v1\.0\.0 +\* `).MatchString(out) {
				t.Errorf("models list over TLS:\n%s", out)
			}
			seen := reg.last()
			if seen.authorization != "Bearer "+token {
				t.Errorf("server saw authorization %q; want %q", seen.authorization, "Bearer "+token)
			}
			if seen.clientCN != tt.wantCN {
				t.Errorf("server saw client certificate %q; want %q", seen.clientCN, tt.wantCN)
			}
		})
	}
	t.Run("ErrWrongToken", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--tls-ca", p.ca, "--token", "guess")
		checkFailure(t, err, exitRefused, "models list: Unauthenticated: missing or wrong bearer token")
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--tls-ca", p.ca)
		checkFailure(t, err, exitRefused, "Unauthenticated")
		if got := reg.last().authorization; got != "" {
			t.Errorf("no token given, yet the server saw authorization %q", got)
		}
	})
	t.Run("ErrPlaintextToTLS", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--token", token)
		checkFailure(t, err, exitUnreachable, "Unavailable: "+addr)
	})
	t.Run("ErrUnknownCA", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--tls-ca", other.ca, "--token", token)
		checkFailure(t, err, exitUnreachable, "Unavailable: "+addr, "certificate")
	})
	t.Run("ErrWrongServerName", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--tls-ca", p.ca, "--tls-server-name", "other.test", "--token", token)
		checkFailure(t, err, exitUnreachable, "Unavailable: "+addr, "other.test")
	})
	t.Run("ErrClientCertOfOtherCA", func(t *testing.T) {
		_, _, err := runClient(t, nil, "models", "list", "--server", addr, "--tls-ca", p.ca,
			"--tls-cert", other.clientCert, "--tls-key", other.clientKey, "--token", token)
		if err == nil || exitCode(err) == 0 {
			t.Fatalf("a client certificate from an unknown CA was accepted")
		}
	})
	t.Run("WarnsTokenInPlaintext", func(t *testing.T) {
		// dial only builds the connection (it connects on the first call,
		// which is not made): the warning must come from dial itself.
		for _, tt := range []struct {
			server string
			warn   bool
		}{{"reco.example:50051", true}, {"127.0.0.1:50051", false}, {"localhost:50051", false}, {"[::1]:50051", false}} {
			var stderr bytes.Buffer
			o := &clientOptions{name: "models list", server: tt.server, token: token, set: map[string]bool{"token": true},
				getenv: func(string) string { return "" }, stderr: &stderr}
			conn, err := o.dial()
			if err != nil {
				t.Fatalf("dial %s: %v", tt.server, err)
			}
			conn.Close()
			if got := strings.Contains(stderr.String(), "without TLS"); got != tt.warn {
				t.Errorf("%s: warned %v (stderr %q); want %v", tt.server, got, stderr.String(), tt.warn)
			}
			if strings.Contains(stderr.String(), token) {
				t.Errorf("stderr shows the token: %q", stderr.String())
			}
		}
	})
}

// TestClientBinary checks the built binary's exit codes and one-line
// stderr for the client commands.
func TestClientBinary(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string // the whole of stderr, a regexp
	}{
		{"ErrUnreachable", []string{"models", "list", "--server", addr}, 4,
			`^recommendation-api: models list: Unavailable: ` + regexp.QuoteMeta(addr) + `: [^\n]*connection refused[^\n]*\n$`},
		{"ErrUnreachableEnv", []string{"jobs", "list"}, 4, `^recommendation-api: jobs list: Unavailable: ` + regexp.QuoteMeta(addr) + `: [^\n]*\n$`},
		{"ErrUsage", []string{"models", "activate", "--server", addr}, 2, `^recommendation-api: models activate: 0 arguments; want 1\n$`},
		{"ErrNoCommand", []string{"jobs"}, 2, `(?s)^usage: recommendation-api jobs .*exit codes:.*\nrecommendation-api: jobs: missing command; want one of start, list, show, watch, cancel\n$`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), binPath, tt.args...)
			cmd.Env = append(os.Environ(), "RECO_SERVER="+addr)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d; want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q; want nothing", stdout.String())
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr.String()) {
				t.Errorf("stderr %q; want it to match %q", stderr.String(), tt.stderr)
			}
		})
	}
}
