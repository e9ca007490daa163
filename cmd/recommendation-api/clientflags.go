package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"recommendation-api/internal/transport"
)

// clientFlags are how a client subcommand reaches a server that has TLS,
// mutual TLS or bearer tokens. Each flag has a RECO_CLIENT_* or RECO_TOKEN
// twin; they differ from the server's RECO_TLS_* so a healthcheck run in the
// server's container does not present the server's certificate as its own.
type clientFlags struct {
	tls                       bool
	caFile, certFile, keyFile string
	serverName                string
	token, tokenFile          string
}

// register declares the flags on fs, defaults from getenv.
func (c *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	str := func(p *string, name, env, usage string) {
		fs.StringVar(p, name, getenv(env), usage+" (env "+env+")")
	}
	fs.BoolVar(&c.tls, "tls", getenv("RECO_CLIENT_TLS") == "true", "connect with TLS, trusting the system CAs unless --tls-ca (env RECO_CLIENT_TLS=true); implied by --tls-ca and --tls-cert")
	str(&c.caFile, "tls-ca", "RECO_CLIENT_TLS_CA", "PEM CA certificates that signed the server's certificate")
	str(&c.certFile, "tls-cert", "RECO_CLIENT_TLS_CERT", "PEM client certificate, for a server with --tls-client-ca")
	str(&c.keyFile, "tls-key", "RECO_CLIENT_TLS_KEY", "PEM private key of --tls-cert")
	str(&c.serverName, "tls-server-name", "RECO_CLIENT_TLS_SERVER_NAME", "name to verify the server's certificate against, when it is not the address's host")
	str(&c.token, "token", "RECO_TOKEN", "bearer token (prefer --token-file: a flag shows in the process list)")
	str(&c.tokenFile, "token-file", "RECO_CLIENT_TOKEN_FILE", "file holding the bearer token alone")
}

// tlsConfig returns the client TLS configuration, nil for plaintext.
func (c *clientFlags) tlsConfig() (*tls.Config, error) {
	if !c.tls && c.caFile == "" && c.certFile == "" && c.keyFile == "" {
		return nil, nil
	}
	cfg, err := transport.ClientTLSConfig(c.caFile, c.certFile, c.keyFile)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = c.serverName
	return cfg, nil
}

// bearer returns the token to send, "" for none. Errors never contain it.
func (c *clientFlags) bearer() (string, error) {
	switch {
	case c.token != "" && c.tokenFile != "":
		return "", errors.New("--token and --token-file both given; choose one")
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \t\n") {
			return "", fmt.Errorf("token file %s: want the token alone on one line", c.tokenFile)
		}
		return tok, nil
	}
	return c.token, nil
}

// httpClient returns the scheme to use and a client configured by c.
func (c *clientFlags) httpClient(timeout time.Duration) (scheme string, client *http.Client, err error) {
	cfg, err := c.tlsConfig()
	if err != nil {
		return "", nil, err
	}
	scheme = "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg != nil {
		scheme = "https"
		tr.TLSClientConfig = cfg
	}
	return scheme, &http.Client{Transport: tr, Timeout: timeout}, nil
}
