// Command crash is the crash loop (`make crash`): it runs the real server,
// makes a random registry change, kills the process with SIGKILL at a
// random moment, checks the registry file and every acknowledged change,
// restarts, and repeats. It prints the counts and exits 1 on any violation.
//
//	go run ./internal/reliability/cmd/crash [-n 300] [-seed N] [-bin path] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"recommendation-api/internal/reliability"
)

func main() {
	n := flag.Int("n", 300, "iterations (kills)")
	seed := flag.Uint64("seed", 0, "random seed (0: from the clock; printed)")
	bin := flag.String("bin", "", "server binary (empty: go build it)")
	verbose := flag.Bool("v", false, "one line per iteration")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var progress io.Writer
	if *verbose {
		progress = os.Stderr
	}
	res, err := reliability.CrashLoop(ctx, reliability.CrashOptions{Iterations: *n, Seed: *seed, Bin: *bin, Progress: progress})
	if res != nil {
		fmt.Print(res.Summary())
		fmt.Printf("seed %d\n", res.Seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		os.Exit(2)
	}
	if len(res.Violations) > 0 {
		os.Exit(1)
	}
}
