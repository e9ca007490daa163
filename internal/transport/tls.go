package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// CertFile is a TLS certificate and key read from two PEM files and
// reloaded while the server runs: GetCertificate checks the files'
// modification times and sizes on every handshake (two stat calls, small
// beside a handshake) and reads them again when either changed; Reload
// (on SIGHUP) reads them unconditionally. A pair that does not load — a
// renewal caught half-written, a key that does not match — is logged once
// and the previous certificate keeps serving until the files are right.
type CertFile struct {
	certPath, keyPath string
	log               *slog.Logger

	cur atomic.Pointer[loadedCert]
	// mu serializes reloads and guards failed.
	mu     sync.Mutex
	failed fileStamp // the stamp of the last pair that failed to load, logged once
}

type loadedCert struct {
	cert  *tls.Certificate
	stamp fileStamp
}

// fileStamp identifies a version of the two files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// LoadCertFile reads the pair at certPath and keyPath. A nil log discards
// logs. Errors name the files and what is wrong.
func LoadCertFile(certPath, keyPath string, log *slog.Logger) (*CertFile, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &CertFile{certPath: certPath, keyPath: keyPath, log: log}
	st, err := c.stamp()
	if err != nil {
		return nil, err
	}
	cert, err := c.read()
	if err != nil {
		return nil, err
	}
	c.cur.Store(&loadedCert{cert: cert, stamp: st})
	return c, nil
}

func (c *CertFile) stamp() (fileStamp, error) {
	ci, err := os.Stat(c.certPath)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(c.keyPath)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls key: %w", err)
	}
	return fileStamp{certMod: ci.ModTime(), keyMod: ki.ModTime(), certSize: ci.Size(), keySize: ki.Size()}, nil
}

func (c *CertFile) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s and key %s: %w", c.certPath, c.keyPath, err)
	}
	return &cert, nil
}

// Certificate returns the certificate being served.
func (c *CertFile) Certificate() *tls.Certificate { return c.cur.Load().cert }

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// reloaded first when the files changed.
func (c *CertFile) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cur := c.cur.Load()
	if st, err := c.stamp(); err == nil && st != cur.stamp {
		c.reload(st, false)
	}
	return c.cur.Load().cert, nil
}

// Reload reads the files again. On error the current certificate stays and
// the error says why.
func (c *CertFile) Reload() error {
	st, err := c.stamp()
	if err != nil {
		return err
	}
	return c.reload(st, true)
}

func (c *CertFile) reload(st fileStamp, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && (c.cur.Load().stamp == st || c.failed == st) {
		return nil // another handshake reloaded it, or this version is known bad
	}
	cert, err := c.read()
	if err != nil {
		c.failed = st
		c.log.Error("tls certificate reload failed; the previous certificate keeps serving", "err", err)
		return err
	}
	c.cur.Store(&loadedCert{cert: cert, stamp: st})
	c.failed = fileStamp{}
	c.log.Info("tls certificate reloaded", "cert", c.certPath, "not_after", cert.Leaf.NotAfter)
	return nil
}

// ServerTLSConfig returns the TLS configuration of both listeners: TLS 1.2
// or later with certs' current certificate and, when clientCAFile is not
// empty, mutual TLS: every client must present a certificate signed by a
// CA in that PEM file (read once, at start).
func ServerTLSConfig(certs *CertFile, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if clientCAFile != "" {
		pool, err := certPool(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLSConfig returns a client's TLS configuration: servers verified
// against the CAs in caFile (the system roots when empty), and the client
// certificate certFile/keyFile presented for mutual TLS when both are set.
func ClientTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := certPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("tls client certificate: give both the certificate and the key, or neither")
	}
	return cfg, nil
}

func certPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// ServerCredentials returns the gRPC server's transport credentials: TLS
// with cfg (nil: plaintext) on network connections, and none on the
// InProcess listener's, which never leave the process.
func ServerCredentials(cfg *tls.Config) credentials.TransportCredentials {
	c := splitCredentials{plain: insecure.NewCredentials(), net: insecure.NewCredentials()}
	if cfg != nil {
		c.net = credentials.NewTLS(cfg)
	}
	return c
}

type splitCredentials struct {
	plain, net credentials.TransportCredentials
}

func (c splitCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("transport: server credentials used by a client")
}

func (c splitCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(inProcessConn); ok {
		return c.plain.ServerHandshake(conn)
	}
	return c.net.ServerHandshake(conn)
}

func (c splitCredentials) Info() credentials.ProtocolInfo { return c.net.Info() }

func (c splitCredentials) Clone() credentials.TransportCredentials {
	return splitCredentials{plain: c.plain.Clone(), net: c.net.Clone()}
}

func (c splitCredentials) OverrideServerName(string) error { return nil }

// InProcess is the gateway's connection to the gRPC server: an in-memory
// listener the server also serves, so REST calls take the same
// interceptors (authentication, limits, metrics) without a network hop,
// a port, or TLS to the server's own certificate. The REST listener does
// TLS and mutual TLS itself.
type InProcess struct {
	lis *bufconn.Listener
}

// InProcessTarget is the gRPC target to dial with InProcess.DialOptions.
const InProcessTarget = "passthrough:///in-process"

// NewInProcess returns an in-memory listener.
func NewInProcess() *InProcess { return &InProcess{lis: bufconn.Listen(1 << 20)} }

// Listener is what the gRPC server serves: grpcServer.Serve(p.Listener()).
func (p *InProcess) Listener() net.Listener { return inProcessListener{p.lis} }

// DialOptions connect a client to the listener (with InProcessTarget).
func (p *InProcess) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return p.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}
}

type inProcessListener struct{ *bufconn.Listener }

func (l inProcessListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return inProcessConn{c}, nil
}

// inProcessConn marks a connection accepted by InProcess.
type inProcessConn struct{ net.Conn }
