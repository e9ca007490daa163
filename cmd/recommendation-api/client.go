package main

// The code the client subcommands (models, jobs) share: connection flags with
// their environment twins, dialing the server with TLS and a bearer token,
// output as aligned tables or protojson, and the exit codes that tell a
// script whether the server refused, could not be reached, or something
// else went wrong.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"recommendation-api/internal/model"
)

// Exit codes of the client subcommands.
const (
	exitOther       = 1 // anything else: a local file, a job that failed, a server bug
	exitUsage       = 2 // bad flags or arguments
	exitRefused     = 3 // the server refused the request
	exitUnreachable = 4 // the server could not be reached or did not answer in time
)

// clientExitCodes documents the exit codes in every client usage text.
const clientExitCodes = `exit codes:
  0  ok
  1  anything else (a local file, a job that ended FAILED or CANCELLED, an internal error)
  2  usage error: bad flags or arguments
  3  the server refused: InvalidArgument, NotFound, FailedPrecondition, AlreadyExists,
     PermissionDenied, Unauthenticated, ResourceExhausted, OutOfRange, Aborted
  4  the server is unreachable, Unavailable or DeadlineExceeded
errors are one line on stderr: the gRPC code name and the server's message`

// defaultServer is the gRPC address client subcommands dial by default.
const defaultServer = "127.0.0.1:50051"

// exitError is an error with its exit code; main's exitCode honours it.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for the error.
func (e exitError) ExitCode() int { return e.code }

// exitCodeOf maps a gRPC code to a client exit code.
func exitCodeOf(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted, codes.OutOfRange, codes.Aborted:
		return exitRefused
	case codes.Unavailable, codes.DeadlineExceeded:
		return exitUnreachable
	}
	return exitOther
}

// rpcError turns a failed call into one line, "op: Code: message", with the
// exit code of the gRPC code. For an unreachable server the line names the
// address that was dialed.
func rpcError(op, server string, err error) error {
	st := status.Convert(err)
	code := exitCodeOf(st.Code())
	msg := oneLine(st.Message())
	if code == exitUnreachable {
		msg = server + ": " + msg
	}
	return exitError{code, fmt.Errorf("%s: %s: %s", op, st.Code(), msg)}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cli is what a client subcommand runs with: its output streams, its
// environment and whether stdout is a terminal. Tests build it directly.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	tty            bool // stdout is a terminal: progress is redrawn in place
}

func newCLI(stdout, stderr io.Writer) *cli {
	return &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv, tty: isTerminal(stdout)}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clientOptions are the connection and output flags every client
// subcommand takes.
type clientOptions struct {
	name          string // "models list", for messages
	server        string
	token         string
	tokenFile     string
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	timeout       time.Duration // 0 for streams that last as long as the job
	output        string

	set    map[string]bool // flags given on the command line
	getenv func(string) string
	stderr io.Writer
}

// newFlags returns a flag set for the client subcommand name ("models
// list") with the connection and output flags. argsUsage names its
// positional arguments for the usage line; withTimeout adds --timeout.
func (c *cli) newFlags(name, argsUsage, summary string, withTimeout bool) (*flag.FlagSet, *clientOptions) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	o := &clientOptions{name: name, getenv: c.getenv, stderr: c.stderr, output: "table"}
	str := func(p *string, flagName, env, def, usage string) {
		*p = def
		if v := c.getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, flagName, *p, usage+" (env "+env+")")
	}
	str(&o.server, "server", "RECO_SERVER", defaultServer, "the server's gRPC address, host:port")
	// The token's value is not a flag default: -h must not print a secret.
	fs.StringVar(&o.token, "token", "", "bearer token sent as 'authorization: Bearer TOKEN' (env RECO_TOKEN)")
	str(&o.tokenFile, "token-file", "RECO_TOKEN_FILE_CLIENT", "", "file holding just the bearer token")
	str(&o.tlsCA, "tls-ca", "RECO_TLS_CA", "", "PEM CA bundle; when set, dial with TLS and verify the server against it")
	str(&o.tlsCert, "tls-cert", "RECO_CLIENT_CERT", "", "PEM client certificate for mutual TLS (with --tls-key)")
	str(&o.tlsKey, "tls-key", "RECO_CLIENT_KEY", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsServerName, "tls-server-name", "", "name to verify in the server's certificate (default: the host of --server)")
	if withTimeout {
		fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on the call after this long")
	}
	fs.StringVar(&o.output, "o", "table", "output: table or json (protojson of the response)")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: recommendation-api %s", name)
		if argsUsage != "" {
			fmt.Fprintf(c.stderr, " %s", argsUsage)
		}
		fmt.Fprintf(c.stderr, " [flags]\n\n%s\n\nflags:\n", summary)
		fs.PrintDefaults()
		fmt.Fprintf(c.stderr, "\n%s\n", clientExitCodes)
	}
	return fs, o
}

// parse parses args, flags and positional arguments in any order (a "--"
// ends the flags), and checks that between min and max positional
// arguments were given.
func (o *clientOptions) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{fmt.Errorf("%s: %w", o.name, err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	switch {
	case len(pos) < min:
		return nil, usageError{fmt.Errorf("%s: %d arguments; want %s", o.name, len(pos), argCount(min, max))}
	case len(pos) > max:
		return nil, usageError{fmt.Errorf("%s: unexpected argument %q; want %s", o.name, pos[max], argCount(min, max))}
	}
	if o.output != "table" && o.output != "json" {
		return nil, usageError{fmt.Errorf("%s: -o %q; want table or json", o.name, o.output)}
	}
	if o.set["timeout"] && o.timeout <= 0 {
		return nil, usageError{fmt.Errorf("%s: --timeout %v; want a positive duration such as 10s", o.name, o.timeout)}
	}
	return pos, nil
}

func argCount(min, max int) string {
	switch {
	case min == max && max == 0:
		return "none"
	case min == max:
		return fmt.Sprint(min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

// usage returns a usage error for o's command.
func (o *clientOptions) usage(format string, args ...any) error {
	return usageError{fmt.Errorf("%s: "+format, append([]any{o.name}, args...)...)}
}

// versionArg parses a version argument or flag value; what names it in
// the error.
func (o *clientOptions) versionArg(what, s string) (string, error) {
	v, err := model.ParseVersion(s)
	if err != nil {
		return "", o.usage("%s: %v", what, err)
	}
	return v.String(), nil
}

// bearerToken returns the token to send, "" for none: --token or
// --token-file, else RECO_TOKEN or RECO_TOKEN_FILE_CLIENT.
func (o *clientOptions) bearerToken() (string, error) {
	token, file := o.token, o.tokenFile
	switch {
	case o.set["token"] && o.set["token-file"]:
		return "", o.usage("--token and --token-file both given; want one")
	case o.set["token"]:
		file = ""
	case o.set["token-file"]:
	default:
		token = o.getenv("RECO_TOKEN")
		if token != "" && file != "" {
			return "", o.usage("RECO_TOKEN and RECO_TOKEN_FILE_CLIENT are both set; want one")
		}
	}
	what := "--token"
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", o.usage("--token-file: %v", err)
		}
		token, what = string(b), "--token-file "+file
	}
	token = strings.TrimSpace(token)
	if (file != "" || o.set["token"]) && token == "" {
		return "", o.usage("%s is empty; want a bearer token", what)
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", o.usage("%s holds spaces or control characters; want the token alone on one line", what)
	}
	return token, nil
}

// tlsConfig returns the TLS configuration, nil for plaintext: TLS is on
// when any of --tls-ca, --tls-cert or --tls-server-name is given (without
// --tls-ca the system's roots verify the server).
func (o *clientOptions) tlsConfig() (*tls.Config, error) {
	if o.tlsCA == "" && o.tlsCert == "" && o.tlsKey == "" && o.tlsServerName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.tlsServerName}
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, o.usage("--tls-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, o.usage("--tls-ca %s: no PEM certificate in it", o.tlsCA)
		}
	}
	switch {
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return nil, o.usage("--tls-cert and --tls-key go together; want both or neither")
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, o.usage("--tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// bearer sends the token as gRPC metadata on every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: a server behind a TLS-terminating
// proxy, or on loopback, may take tokens in plaintext; dial warns otherwise.
func (b bearer) RequireTransportSecurity() bool { return false }

// dial checks the connection flags and returns a client connection. The
// connection is made by the first call, so an unreachable server shows as
// that call's Unavailable error.
func (o *clientOptions) dial() (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(o.server)
	if err != nil {
		return nil, o.usage("--server %q: want host:port, e.g. %s", o.server, defaultServer)
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	token, err := o.bearerToken()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		if tlsCfg == nil && !isLoopback(host) {
			fmt.Fprintf(o.stderr, "warning: sending the bearer token to %s without TLS (--tls-ca)\n", o.server)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(o.server, opts...)
	if err != nil {
		return nil, o.usage("--server %q: %v", o.server, err)
	}
	return conn, nil
}

func isLoopback(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// call dials, runs fn with a context bounded by --timeout (when the command
// has one) and closes the connection. An error fn returns from a call
// becomes rpcError's one line and exit code; other errors pass unchanged.
func (o *clientOptions) call(ctx context.Context, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	conn, err := o.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	err = fn(ctx, conn)
	if _, isStatus := status.FromError(err); err != nil && isStatus {
		return rpcError(o.name, o.server, err)
	}
	return err
}

// json reports whether -o json was asked for.
func (o *clientOptions) json() bool { return o.output == "json" }

// jsonOptions match the REST gateway's: every field, zero values included.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// printJSON writes m as one indented JSON document. protojson varies its
// whitespace on purpose; re-indenting makes the output stable.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// printJSONLine writes m as one line of NDJSON.
func printJSONLine(w io.Writer, m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// newTable returns a tabwriter for aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// fmtTime formats a timestamp in UTC to the second, "-" when absent.
func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil || !ts.IsValid() || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// fmtDuration rounds a duration for people: tenths of a second below a
// minute, seconds above.
func fmtDuration(d *durationpb.Duration) string {
	t := d.AsDuration()
	if t < time.Minute {
		return t.Round(100 * time.Millisecond).String()
	}
	return t.Round(time.Second).String()
}

// dash stands in for an empty value in a table.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// subcommand is one command of a client group (models, jobs).
type subcommand struct {
	name, args, summary string
	run                 func(c *cli, ctx context.Context, args []string) error
}

// dispatch runs the subcommand of group that args name. "help" prints the
// group's usage to stdout; no subcommand or an unknown one is a usage error.
func (c *cli) dispatch(ctx context.Context, group string, subs []subcommand, args []string) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: recommendation-api %s COMMAND [ARGS] [flags]\n\ncommands:\n", group)
		tw := newTable(w)
		for _, s := range subs {
			fmt.Fprintf(tw, "  %s %s\t%s\n", s.name, s.args, s.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nconnection flags of every command (flags override the environment):\n"+
			"  --server host:port (RECO_SERVER, default %s), --token (RECO_TOKEN) or --token-file (RECO_TOKEN_FILE_CLIENT),\n"+
			"  --tls-ca (RECO_TLS_CA), --tls-cert/--tls-key (RECO_CLIENT_CERT/RECO_CLIENT_KEY), --tls-server-name,\n"+
			"  --timeout (default 10s), -o table|json\n"+
			"run 'recommendation-api %s COMMAND -h' for a command's flags\n\n%s\n", defaultServer, group, clientExitCodes)
	}
	if len(args) == 0 {
		usage(c.stderr)
		return usageError{fmt.Errorf("%s: missing command; want one of %s", group, subNames(subs))}
	}
	switch args[0] {
	case "help":
		usage(c.stdout)
		return nil
	case "-h", "-help", "--help":
		usage(c.stderr)
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(c, ctx, args[1:])
		}
	}
	usage(c.stderr)
	return usageError{fmt.Errorf("%s: unknown command %q; want one of %s", group, args[0], subNames(subs))}
}

func subNames(subs []subcommand) string {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}
