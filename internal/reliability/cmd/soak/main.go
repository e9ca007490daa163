// Command soak is the soak test (`make soak`): fixed-rate Predict over gRPC
// and REST with tokens and TLS against the real server while versions are
// swapped, jobs train and the process is killed and restarted. It writes a
// markdown report to stdout and exits 1 when a call failed outside a
// restart window or the registry was inconsistent after a kill.
//
//	go run ./internal/reliability/cmd/soak [-duration 10m] [-rate 100] [-kills 3] [-v] [-rss-csv rss.csv]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"recommendation-api/internal/reliability"
)

func main() {
	var o reliability.SoakOptions
	flag.DurationVar(&o.Duration, "duration", 0, "how long the load runs (default 10m)")
	flag.IntVar(&o.Rate, "rate", 0, "Predict calls per second (default 100)")
	flag.DurationVar(&o.SwapEvery, "swap-every", 0, "an activation or rollback this often (default 2s)")
	flag.DurationVar(&o.TrainEvery, "train-every", 0, "a training job this often (default 2m; -1s for none)")
	flag.IntVar(&o.Kills, "kills", 0, "SIGKILL + restart this many times, spread over the first half of the run (default 3; -1 for none)")
	flag.StringVar(&o.Bin, "bin", "", "server binary (empty: go build it)")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	verbose := flag.Bool("v", false, "progress on stderr every 5 s")
	rssCSV := flag.String("rss-csv", "", "also write every RSS reading (seconds, pid, VmRSS, RssAnon and RssFile in KiB, swaps so far) to this CSV file")
	flag.Parse()
	if *verbose {
		o.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	commit := reliability.Commit()
	res, err := reliability.Soak(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if *rssCSV != "" {
		if err := res.WriteRSS(*rssCSV); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}
	cmd := "go run ./internal/reliability/cmd/soak " + strings.Join(os.Args[1:], " ")
	res.Report(io.Writer(os.Stdout), strings.TrimSpace(cmd), commit)
	bad := res.FailedOutside() > 0 || len(res.SwapFailures) > 0 || len(res.JobFailures) > 0
	for _, c := range res.Consistency {
		bad = bad || c != "ok"
	}
	if bad {
		os.Exit(1)
	}
}
