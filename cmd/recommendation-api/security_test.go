package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/transport"
)

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{":8080", "127.0.0.1:8080"},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"[::1]:50051", "[::1]:50051"},
		{"localhost:8080", "localhost:8080"},
		{"0.0.0.0:8080", ""},
		{"[::]:8080", ""},
		{"10.1.2.3:80", ""},
		{"example.com:80", ""},
		{"8080", ""},
	} {
		got, err := loopbackOnly(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("loopbackOnly(%q) = %q; want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("loopbackOnly(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestServeNeedsAuth: without a token file the server refuses to start
// (exit 2) unless --insecure-no-auth, which then binds loopback only, says
// so first, and refuses an explicit non-loopback address.
func TestServeNeedsAuth(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, &stdout, &stderr)
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "refusing to serve without authentication") {
		t.Errorf("serve without a token file = %v (exit %d); want a refusal, exit 2", err, exitCode(err))
	}

	err = run(t.Context(), []string{"serve", "--insecure-no-auth", "--http-addr", "0.0.0.0:0", "--grpc-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `--http-addr "0.0.0.0:0" is not a loopback address`) {
		t.Errorf("--insecure-no-auth on 0.0.0.0 = %v; want a refusal naming --http-addr", err)
	}
	err = run(t.Context(), []string{"serve", "--insecure-no-auth", "--token-file", "x", "--data-dir", t.TempDir()}, &stdout, &stderr)
	if err == nil || exitCode(err) != 2 {
		t.Errorf("--insecure-no-auth with --token-file = %v; want a usage error", err)
	}

	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir, cfg.InsecureNoAuth = ":0", ":0", t.TempDir(), true
	logs := &lockedBuffer{}
	srv, err := newServer(t.Context(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	for _, l := range []net.Listener{srv.grpcLis, srv.httpLis} {
		if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Errorf("--insecure-no-auth with :0 listens on %v; want loopback", l.Addr())
		}
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	if !strings.Contains(first, "authentication is off") || !strings.Contains(first, "loopback only") {
		t.Errorf("first log line %q; want it to say authentication is off and loopback only", first)
	}
}

// ---- the full run: tokens, TLS, a metrics listener, SIGHUP ----

const (
	e2eOperator = "e2e-operator-7c1d0b9a3f5e"
	e2eAgent    = "e2e-agent-2b8e4f6a1c3d5e"
	e2eWrong    = "e2e-wrong-000000000000000"
	e2eRotated  = "e2e-rotated-9f8e7d6c5b4a"
)

// e2eCerts writes a CA and a server certificate for 127.0.0.1 and returns
// the files.
func e2eCerts(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "recommendation-api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", kb)
}

// TestServeSecured runs the server as `serve` wires it, with a token file,
// TLS on both ports and a metrics listener, and calls it with good and bad
// tokens over gRPC and REST; rotates the token file with SIGHUP (a broken
// file first, which keeps the old tokens); runs healthcheck over TLS; and
// checks that the whole log, at debug level, holds no token.
func TestServeSecured(t *testing.T) {
	caFile, certFile, keyFile := e2eCerts(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeTok := func(s string) {
		if err := os.WriteFile(tokens, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTok("ops operator " + e2eOperator + "\nnodes agent " + e2eAgent + "\n")

	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.MetricsAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.TokenFile, cfg.TLSCert, cfg.TLSKey = tokens, certFile, keyFile
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	grpcAddr, httpAddr, metricsAddr := srv.grpcLis.Addr().String(), srv.httpLis.Addr().String(), srv.metricsLis.Addr().String()

	clientTLS, err := transport.ClientTLSConfig(caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	predict := recommendationv1.NewRecommendationServiceClient(conn)
	call := func(token string) codes.Code {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if token != "" {
			c = metadata.AppendToOutgoingContext(c, "authorization", "Bearer "+token)
		}
		_, err := predict.Predict(c, &recommendationv1.PredictRequest{Instances: []*recommendationv1.Instance{{
			Input: &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{
				Values: []float32{0.3, 0.45, 0.5, 0.55, 0.6, 0.62, 0.2, 0.5, 0.1, 0.5, 0.5, 0.4}}}}}})
		return status.Code(err)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 30 * time.Second}
	rest := func(method, path, token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+httpAddr+path, strings.NewReader("{}"))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := https.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, c := range []struct {
		token string
		want  codes.Code
	}{{e2eAgent, codes.OK}, {e2eOperator, codes.OK}, {"", codes.Unauthenticated}, {e2eWrong, codes.Unauthenticated}} {
		if got := call(c.token); got != c.want {
			t.Errorf("Predict with token %q = %v; want %v", c.token[:min(len(c.token), 8)], got, c.want)
		}
	}
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "/v1/models/v1.1.0:activate", e2eAgent, http.StatusForbidden},
		{"POST", "/v1/models/v1.1.0:activate", e2eOperator, http.StatusOK},
		{"GET", "/v1/models", "", http.StatusUnauthorized},
		{"GET", "/v1/models", e2eWrong, http.StatusUnauthorized},
		{"GET", "/readyz", "", http.StatusOK},
	} {
		if got, body := rest(c.method, c.path, c.token); got != c.want {
			t.Errorf("%s %s = %d %s; want %d", c.method, c.path, got, body, c.want)
		}
	}
	// Plaintext gRPC to the TLS port fails.
	plain, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = recommendationv1.NewRecommendationServiceClient(plain).Predict(ctx, &recommendationv1.PredictRequest{})
	plain.Close()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC to the TLS port = %v; want Unavailable", err)
	}

	// The metrics listener needs no token, is plaintext, and has moved.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(metrics, []byte(`recommendation_predictions_total{version="v1.1.0"} 2`)) {
		t.Errorf("GET /metrics on --metrics-addr = %d; want 200 with 2 predictions of v1.1.0:\n%.2000s", resp.StatusCode, metrics)
	}
	if got, _ := rest("GET", "/metrics", e2eOperator); got != http.StatusNotFound {
		t.Errorf("/metrics on the REST port with --metrics-addr = %d; want 404 (served on the metrics listener only)", got)
	}

	// healthcheck over TLS, and without trusting the CA.
	var out bytes.Buffer
	if err := run(ctx, []string{"healthcheck", "--http-addr", httpAddr, "--tls-ca", caFile}, &out, &out); err != nil {
		t.Errorf("healthcheck --tls-ca = %v; %s", err, out.String())
	}
	if err := run(ctx, []string{"healthcheck", "--http-addr", httpAddr}, &out, &out); err == nil {
		t.Error("plaintext healthcheck against the TLS port succeeded")
	}

	// SIGHUP with a broken file keeps the tokens; with a good one rotates them.
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	writeTok("ops operator " + e2eRotated + "\nnodes agent\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("token file reload failed")
	if got := call(e2eAgent); got != codes.OK {
		t.Errorf("after a broken reload the agent token = %v; want OK (old tokens kept)", got)
	}
	writeTok("ops operator " + e2eRotated + "\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(`"msg":"token file reloaded"`)
	if got := call(e2eRotated); got != codes.OK {
		t.Errorf("rotated token = %v; want OK", got)
	}
	if got := call(e2eAgent); got != codes.Unauthenticated {
		t.Errorf("removed token after reload = %v; want Unauthenticated", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("serve did not stop")
	}
	all := logs.String()
	for _, tok := range []string{e2eOperator, e2eAgent, e2eWrong, e2eRotated} {
		if strings.Contains(all, tok) {
			t.Errorf("the server log contains the token %s", tok)
		}
	}
	for _, want := range []string{"authentication on", "tls on", `"code":"Unauthenticated"`, "tokens:2: 2 fields"} {
		if !strings.Contains(all, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", all)
	}
}

var (
	processTokens     string
	processTokensOnce sync.Once
)

// processTokenFile is a token file for serve processes, beside the test
// binary (a directory asOtherUser opens to every user), readable by all:
// its tokens guard nothing.
func processTokenFile() string {
	processTokensOnce.Do(func() {
		processTokens = filepath.Join(filepath.Dir(binPath), "tokens")
		if err := os.WriteFile(processTokens, []byte("test operator process-test-token-0123456789\n"), 0o644); err != nil {
			panic(err)
		}
	})
	return processTokens
}
