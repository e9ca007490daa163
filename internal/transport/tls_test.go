package transport_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/transport"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by ca: a server
// certificate for 127.0.0.1 and localhost, or a client certificate.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "recommendation-api"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.Subject.CommonName = "node-agent"
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsFiles is a CA, a server certificate and a client certificate on disk.
type tlsFiles struct {
	dir                           string
	ca                            *testCA
	caFile, certFile, keyFile     string
	clientCertFile, clientKeyFile string
	otherCAFile                   string // a CA that signed nothing here
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), ca: newCA(t, "test CA")}
	f.caFile = writeFile(t, f.dir, "ca.pem", f.ca.pem)
	c, k := f.ca.issue(t, 100, false)
	f.certFile, f.keyFile = writeFile(t, f.dir, "server.pem", c), writeFile(t, f.dir, "server-key.pem", k)
	c, k = f.ca.issue(t, 200, true)
	f.clientCertFile, f.clientKeyFile = writeFile(t, f.dir, "client.pem", c), writeFile(t, f.dir, "client-key.pem", k)
	f.otherCAFile = writeFile(t, f.dir, "other-ca.pem", newCA(t, "other CA").pem)
	return f
}

func (f *tlsFiles) serverConfig(t *testing.T, mtls bool) (*tls.Config, *transport.CertFile) {
	t.Helper()
	certs, err := transport.LoadCertFile(f.certFile, f.keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	clientCA := ""
	if mtls {
		clientCA = f.caFile
	}
	cfg, err := transport.ServerTLSConfig(certs, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, certs
}

func clientConfig(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	cfg, err := transport.ClientTLSConfig(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
}

// grpcList calls ListVersions over conn and returns the code.
func grpcList(t *testing.T, s *stack, cfg *tls.Config) codes.Code {
	t.Helper()
	_, err := recommendationv1.NewModelRegistryServiceClient(s.dial(t, cfg)).ListVersions(bearer(t, ""), &recommendationv1.ListVersionsRequest{})
	return status.Code(err)
}

// restGet returns the status of GET /v1/models, or 0 when the request
// failed (handshake refused).
func restGet(t *testing.T, s *stack, client *http.Client) int {
	t.Helper()
	resp, err := client.Get(s.restURL + "/v1/models")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLS covers both listeners with TLS: the right CA succeeds, plaintext
// and a wrong CA fail, and the REST gateway reaches gRPC in process.
func TestTLS(t *testing.T) {
	t.Parallel()
	f := newTLSFiles(t)
	cfg, _ := f.serverConfig(t, false)
	s := newStack(t, stackOptions{tls: cfg})

	if got := grpcList(t, s, clientConfig(t, f.caFile, "", "")); got != codes.OK {
		t.Errorf("gRPC with the right CA = %v; want OK", got)
	}
	if got := restGet(t, s, httpsClient(clientConfig(t, f.caFile, "", ""))); got != http.StatusOK {
		t.Errorf("REST with the right CA = %d; want 200", got)
	}
	if got := grpcList(t, s, nil); got != codes.Unavailable {
		t.Errorf("plaintext gRPC to the TLS port = %v; want Unavailable", got)
	}
	plain := "http" + s.restURL[len("https"):]
	if resp, err := http.Get(plain + "/v1/models"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plaintext REST to the TLS port answered 200")
		}
	}
	if got := grpcList(t, s, clientConfig(t, f.otherCAFile, "", "")); got != codes.Unavailable {
		t.Errorf("gRPC trusting another CA = %v; want Unavailable", got)
	}
	if got := restGet(t, s, httpsClient(clientConfig(t, f.otherCAFile, "", ""))); got != 0 {
		t.Errorf("REST trusting another CA = %d; want the handshake to fail", got)
	}
}

// TestMutualTLS requires client certificates: without one both listeners
// refuse, with one signed by the client CA both serve.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	f := newTLSFiles(t)
	cfg, _ := f.serverConfig(t, true)
	s := newStack(t, stackOptions{tls: cfg})

	noCert := clientConfig(t, f.caFile, "", "")
	if got := grpcList(t, s, noCert); got != codes.Unavailable {
		t.Errorf("gRPC without a client certificate = %v; want Unavailable", got)
	}
	if got := restGet(t, s, httpsClient(noCert)); got != 0 {
		t.Errorf("REST without a client certificate = %d; want the handshake to fail", got)
	}
	// A certificate the client CA did not sign is refused too.
	other := newCA(t, "rogue CA")
	c, k := other.issue(t, 300, true)
	rogue := clientConfig(t, f.caFile, writeFile(t, f.dir, "rogue.pem", c), writeFile(t, f.dir, "rogue-key.pem", k))
	if got := grpcList(t, s, rogue); got != codes.Unavailable {
		t.Errorf("gRPC with a client certificate of another CA = %v; want Unavailable", got)
	}

	withCert := clientConfig(t, f.caFile, f.clientCertFile, f.clientKeyFile)
	if got := grpcList(t, s, withCert); got != codes.OK {
		t.Errorf("gRPC with a client certificate = %v; want OK", got)
	}
	if got := restGet(t, s, httpsClient(withCert)); got != http.StatusOK {
		t.Errorf("REST with a client certificate = %d; want 200", got)
	}
}

// servedSerial returns the serial number of the certificate the server at
// addr presents.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls.Dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestCertReload replaces the certificate files under a running server: the
// next handshake presents the new certificate; a broken pair keeps the old
// one serving; Reload reads the files on demand.
func TestCertReload(t *testing.T) {
	t.Parallel()
	f := newTLSFiles(t)
	cfg, certs := f.serverConfig(t, false)
	s := newStack(t, stackOptions{tls: cfg})
	client := clientConfig(t, f.caFile, "", "")
	restAddr := s.restURL[len("https://"):]

	if got := servedSerial(t, s.grpcAddr, client); got != 100 {
		t.Fatalf("serial %d served; want 100", got)
	}
	// Each rewrite gets a later modification time than the last, as a
	// renewal minutes later would (file times can be coarser than the test).
	step := 0
	rewrite := func(name string, b []byte) {
		step++
		p := writeFile(t, f.dir, name, b)
		at := time.Now().Add(time.Duration(step) * time.Minute)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	c, k := f.ca.issue(t, 101, false)
	rewrite("server.pem", c)
	rewrite("server-key.pem", k)
	for _, addr := range []string{s.grpcAddr, restAddr} {
		if got := servedSerial(t, addr, client); got != 101 {
			t.Errorf("after replacing the files %s serves serial %d; want 101", addr, got)
		}
	}
	if got := grpcList(t, s, client); got != codes.OK {
		t.Errorf("gRPC after the reload = %v; want OK", got)
	}

	// Half a renewal: a new certificate with the old key does not load.
	c, _ = f.ca.issue(t, 102, false)
	rewrite("server.pem", c)
	if got := servedSerial(t, s.grpcAddr, client); got != 101 {
		t.Errorf("with a mismatched pair the server presents serial %d; want 101 kept", got)
	}
	if err := certs.Reload(); err == nil {
		t.Error("Reload of a mismatched pair = nil; want an error")
	}
	c, k = f.ca.issue(t, 103, false)
	rewrite("server.pem", c)
	rewrite("server-key.pem", k)
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := certs.Certificate().Leaf.SerialNumber.Int64(); got != 103 {
		t.Errorf("after Reload the certificate has serial %d; want 103", got)
	}
	if got := servedSerial(t, restAddr, client); got != 103 {
		t.Errorf("REST serves serial %d after Reload; want 103", got)
	}
}
