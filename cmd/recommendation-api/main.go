// Command recommendation-api serves CPU and memory recommendations for
// Kubernetes containers from an int8 ONNX model and owns that model's life
// cycle. Without a subcommand (or with "serve") it runs the server; the model
// pipeline steps are subcommands:
//
//	recommendation-api [serve] [flags]
//	recommendation-api generate-data --samples N --output FILE.npz [--seed N]
//	recommendation-api train --data FILE.npz --output DIR [--version vX.Y.Z] [--epochs N] [--seed N]
//	recommendation-api validate --model DIR/predictor.onnx
//	recommendation-api export --model DIR/predictor.onnx --output DIR
//
// and the operator's client of a running server (gRPC; exit codes 0 ok, 2
// usage, 3 refused by the server, 4 server unreachable, 1 anything else):
//
//	recommendation-api models list|show|activate|rollback|history|upload|download [flags]
//	recommendation-api jobs start|list|show|watch|cancel [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the gRPC and REST server (the default)", runServe},
		{"generate-data", "simulate container usage and write features and labels to an .npz", runGenerateData},
		{"train", "train, quantize and export a model version", runTrain},
		{"validate", "check a model file and evaluate it against the VPA baseline", runValidate},
		{"export", "copy a model and its manifest into a directory, with checksums", runExport},
		{"evaluate", "replay real usage traces against the model, VPA and KRR; table, JSON and plot", runEvaluate},
		{"healthcheck", "exit 0 when a running server is ready (for container health checks)", runHealthcheck},
		{"models", "client: list, show, activate, roll back, upload and download model versions", runModels},
		{"jobs", "client: start, list, show, watch and cancel training jobs in the server", runJobs},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			// One line, whatever the error: a log collector keeps it whole.
			fmt.Fprintln(os.Stderr, "recommendation-api:", strings.Join(strings.Fields(err.Error()), " "))
		}
		os.Exit(exitCode(err))
	}
}

// run dispatches to a subcommand; no subcommand, or one starting with "-", means serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args, stdout, stderr)
		}
	}
	if name == "help" {
		usage(stdout)
		return nil
	}
	usage(stderr)
	return usageError{fmt.Errorf("unknown command %q", name)}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: recommendation-api [command] [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'recommendation-api COMMAND -h' for a command's flags")
	fmt.Fprintln(w, "\nexit codes: 0 ok, 2 usage error, 1 anything else; the client commands (models, jobs)\n"+
		"also exit 3 when the server refused and 4 when it is unreachable")
}

// usageError marks a bad command line (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}
