package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"recommendation-api/internal/auth"
	"recommendation-api/internal/model"
	"recommendation-api/internal/transport"
)

// SecurityConfig is who may call the server, over what, and how much.
type SecurityConfig struct {
	TokenFile           string        // bearer tokens, "name role token" per line; required unless InsecureNoAuth
	InsecureNoAuth      bool          // no authentication, loopback addresses only
	TLSCert, TLSKey     string        // PEM files of the certificate both ports serve; reloaded when they change
	TLSClientCA         string        // PEM CAs that must have signed every client's certificate (mutual TLS)
	MetricsAddr         string        // separate /metrics listener without authentication ("" = on the REST port, viewer token)
	CallTimeout         time.Duration // longest unary call (0 = none)
	MaxInflightPredicts int           // Predict calls at once beyond which one is refused (0 = no limit)
}

// DefaultSecurityConfig returns the defaults: everything off except the
// limits, and no way to start until a token file or --insecure-no-auth is
// given.
func DefaultSecurityConfig() SecurityConfig {
	return SecurityConfig{CallTimeout: 30 * time.Second, MaxInflightPredicts: 256}
}

// addSecurityFlags declares the flags of c, with str, duration and integer
// from parseServeFlags (flag plus RECO_* twin) and bad to report a
// malformed environment value.
func addSecurityFlags(fs *flag.FlagSet, c *SecurityConfig, getenv func(string) string, bad func(env, v, want string),
	str func(*string, string, string, string), duration func(*time.Duration, string, string, string), integer func(*int, string, string, string)) {
	str(&c.TokenFile, "token-file", "RECO_TOKEN_FILE", `bearer tokens, one "name role token" per line (role operator, agent or viewer); reloaded on SIGHUP`)
	if v := getenv("RECO_INSECURE_NO_AUTH"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			c.InsecureNoAuth = b
		} else {
			bad("RECO_INSECURE_NO_AUTH", v, "true or false")
		}
	}
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth,
		"run without authentication, every caller an operator; listens on loopback only (env RECO_INSECURE_NO_AUTH)")
	str(&c.TLSCert, "tls-cert", "RECO_TLS_CERT", "PEM certificate (chain) for TLS on the gRPC and REST ports; reloaded when the file changes or on SIGHUP")
	str(&c.TLSKey, "tls-key", "RECO_TLS_KEY", "PEM private key of --tls-cert")
	str(&c.TLSClientCA, "tls-client-ca", "RECO_TLS_CLIENT_CA", "PEM CA certificates; when set every client must present a certificate they signed (mutual TLS)")
	str(&c.MetricsAddr, "metrics-addr", "RECO_METRICS_ADDR", "listen address of a plaintext /metrics without authentication; empty serves /metrics on the REST port to viewer tokens")
	duration(&c.CallTimeout, "call-timeout", "RECO_CALL_TIMEOUT", "longest a unary call may run (DEADLINE_EXCEEDED / 504 after it); 0 for no limit")
	integer(&c.MaxInflightPredicts, "max-inflight-predicts", "RECO_MAX_INFLIGHT_PREDICTS", "Predict calls running at once; one more is refused with RESOURCE_EXHAUSTED / 429; 0 for no limit")
}

func (c SecurityConfig) validate() error {
	switch {
	case c.TokenFile != "" && c.InsecureNoAuth:
		return usageError{errors.New("serve: --token-file and --insecure-no-auth both given; choose one")}
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return usageError{errors.New("serve: --tls-cert and --tls-key go together; give both or neither")}
	case c.TLSClientCA != "" && c.TLSCert == "":
		return usageError{errors.New("serve: --tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS")}
	case c.CallTimeout < 0:
		return usageError{fmt.Errorf("serve: --call-timeout %v; want 0 (none) or a positive duration", c.CallTimeout)}
	case c.MaxInflightPredicts < 0:
		return usageError{fmt.Errorf("serve: --max-inflight-predicts %d; want 0 (no limit) or more", c.MaxInflightPredicts)}
	}
	return nil
}

// security is what SecurityConfig builds: the token file, the TLS
// certificate and configuration, the authenticator and the limits.
type security struct {
	tokens *auth.File          // nil without authentication
	certs  *transport.CertFile // nil without TLS
	tls    *tls.Config         // nil without TLS
	mutual bool                // clients must present certificates
	authn  *transport.Authenticator
	limits transport.Limits
}

// errNoAuth is the refusal to start without a token file.
var errNoAuth = usageError{errors.New("serve: no --token-file (RECO_TOKEN_FILE): refusing to serve without authentication; " +
	"give a token file, or --insecure-no-auth (RECO_INSECURE_NO_AUTH=true) for a loopback-only development server")}

// newSecurity checks cfg's security settings and loads its files. Without
// authentication it rewrites cfg's listen addresses to loopback (":8080"
// becomes "127.0.0.1:8080") and refuses any other host, and it logs so
// first. Otherwise it logs nothing: logStart says what is in force once the
// server runs, so a start-up failure stays one line.
func newSecurity(cfg *Config, log *slog.Logger) (*security, error) {
	c := cfg.SecurityConfig
	if err := c.validate(); err != nil {
		return nil, err
	}
	sec := &security{limits: transport.Limits{CallTimeout: c.CallTimeout, MaxInflightPredicts: c.MaxInflightPredicts}}
	switch {
	case c.InsecureNoAuth:
		for _, a := range []struct {
			flag string
			addr *string
		}{{"--grpc-addr", &cfg.GRPCAddr}, {"--http-addr", &cfg.HTTPAddr}, {"--metrics-addr", &cfg.MetricsAddr}} {
			if *a.addr == "" {
				continue
			}
			lo, err := loopbackOnly(*a.addr)
			if err != nil {
				return nil, usageError{fmt.Errorf("serve: --insecure-no-auth listens on loopback only: %s %w", a.flag, err)}
			}
			*a.addr = lo
		}
		log.Warn("authentication is off (--insecure-no-auth): every caller is an operator named anonymous; listening on loopback only",
			"grpc", cfg.GRPCAddr, "http", cfg.HTTPAddr)
		sec.authn = transport.NewAuthenticator(nil)
	case c.TokenFile != "":
		f, err := auth.OpenFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		sec.tokens = f
		sec.authn = transport.NewAuthenticator(f)
	default:
		return nil, errNoAuth
	}
	if c.TLSCert != "" {
		certs, err := transport.LoadCertFile(c.TLSCert, c.TLSKey, log)
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		if sec.tls, err = transport.ServerTLSConfig(certs, c.TLSClientCA); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		sec.certs = certs
	}
	sec.mutual = c.TLSClientCA != ""
	return sec, nil
}

// logStart logs what authentication and TLS are in force, and warns of a
// token file others can read and of tokens sent in plaintext.
func (sec *security) logStart(log *slog.Logger) {
	if sec.tokens != nil {
		log.Info("authentication on", "token_file", sec.tokens.Path(), "tokens", sec.tokens.Len())
		if fi, err := os.Stat(sec.tokens.Path()); err == nil && fi.Mode().Perm()&0o007 != 0 {
			log.Warn("the token file is readable by other users; chmod o-rwx it", "file", sec.tokens.Path())
		}
	}
	if sec.certs != nil {
		log.Info("tls on", "mutual", sec.mutual, "not_after", sec.certs.Certificate().Leaf.NotAfter)
	} else if sec.tokens != nil {
		log.Warn("no --tls-cert: bearer tokens travel in plaintext; terminate TLS in front of the server or give it a certificate")
	}
}

// loopbackOnly returns addr with an empty host made 127.0.0.1, or an error
// when its host is not a loopback address or "localhost".
func loopbackOnly(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: %v", addr, err)
	}
	switch {
	case host == "":
		return net.JoinHostPort("127.0.0.1", port), nil
	case host == "localhost":
		return addr, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, nil
	}
	return "", fmt.Errorf("%q is not a loopback address; want 127.0.0.1:PORT, [::1]:PORT or :PORT (or give a --token-file)", addr)
}

// grpcOptions are the server options in their order: metrics first (so
// refusals are counted), then authentication, then the limits (so a refused
// caller takes no Predict slot), and the transport credentials.
func (sec *security) grpcOptions(m *transport.Metrics) []grpc.ServerOption {
	var opts []grpc.ServerOption
	opts = append(opts, m.ServerOptions()...)
	opts = append(opts, sec.authn.ServerOptions()...)
	opts = append(opts, sec.limits.ServerOptions()...)
	return append(opts, grpc.Creds(transport.ServerCredentials(sec.tls)))
}

// reload reads the token file and the certificate again; a file that does
// not load leaves what was in force and is logged.
func (sec *security) reload(log *slog.Logger) {
	if sec.tokens != nil {
		if err := sec.tokens.Reload(); err != nil {
			log.Error("token file reload failed; the previous tokens stay in force", "err", err)
		} else {
			log.Info("token file reloaded", "file", sec.tokens.Path(), "tokens", sec.tokens.Len())
		}
	}
	if sec.certs != nil {
		_ = sec.certs.Reload() // logs its own failure
	}
}

// reloadOnHangup calls reload for every signal on hup until ctx ends.
func (sec *security) reloadOnHangup(ctx context.Context, hup <-chan os.Signal, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			sec.reload(log)
		}
	}
}

// notifyHangup returns a channel of SIGHUPs and its stop function.
func notifyHangup() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// newMetrics returns the metrics over s's parts, read at scrape time (the
// store and job manager exist by the time anything is scraped).
func (s *server) newMetrics(started time.Time) *transport.Metrics {
	return transport.NewMetrics(transport.MetricSources{
		Active: func() []model.Version {
			actives, err := s.store.Actives()
			if err != nil {
				s.log.Error("metrics: active versions", "err", err)
			}
			return slices.Collect(maps.Values(actives))
		},
		LiveSessions: func() int { return s.models.LiveSessions() },
		Versions:     func() ([]model.Entry, error) { return s.store.List() },
		History:      func(q model.HistoryQuery) ([]model.Event, string, error) { return s.store.HistoryPage(q) },
		Since:        started,
		Jobs:         func() ([]*model.Job, error) { return s.jobs.List() },
		Log:          s.log,
	})
}

// newHTTPServers builds the REST server over gw (with /metrics when there
// is no --metrics-addr, for viewer tokens) and the metrics server.
func (s *server) newHTTPServers(gw http.Handler) {
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelInfo) // TLS handshake failures and the like
	mux := http.NewServeMux()
	if s.metricsLis == nil {
		mux.Handle("/metrics", s.sec.authn.RequireHTTP(auth.Viewer, "/metrics", s.metrics.Handler()))
	} else {
		m := http.NewServeMux()
		m.Handle("/metrics", s.metrics.Handler())
		s.metricsSrv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errorLog}
	}
	mux.Handle("/", transport.WithBearerChallenge(gw))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: s.sec.tls, ErrorLog: errorLog}
}

// serveHTTP serves REST, with TLS when configured.
func (s *server) serveHTTP() error {
	if s.sec.tls != nil {
		return s.http.ServeTLS(s.httpLis, "", "")
	}
	return s.http.Serve(s.httpLis)
}
