package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// runHealthcheck asks a running server's /readyz and exits 0 when it is
// serving a model (the container image has no curl):
//
//	recommendation-api healthcheck [--http-addr 127.0.0.1:8080] [--tls-ca CA.pem [--tls-cert C.pem --tls-key K.pem]]
//
// /readyz needs no token; --token and --token-file are accepted for
// symmetry with the other client subcommands and sent when given.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:8080", "the server's REST address")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	var cf clientFlags
	cf.register(fs, os.Getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	scheme, client, err := cf.httpClient(*timeout)
	if err != nil {
		return usageError{fmt.Errorf("healthcheck: %w", err)}
	}
	token, err := cf.bearer()
	if err != nil {
		return usageError{fmt.Errorf("healthcheck: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+*addr+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(stdout, string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *addr, resp.Status)
	}
	return nil
}
