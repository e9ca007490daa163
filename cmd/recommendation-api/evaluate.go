package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/defaultmodel"
	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/serving"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
	"recommendation-api/internal/transport"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// traceFlags are the flags evaluate and generate-data share for reading traces.
type traceFlags struct {
	paths  stringList
	format *string
}

func addTraceFlags(fs *flag.FlagSet) *traceFlags {
	t := &traceFlags{}
	fs.Var(&t.paths, "trace", "trace files, directories of *.csv[.gz] files or quoted globs: every argument up to the next flag (repeatable)")
	t.format = fs.String("format", "auto", "trace format: generic (CSV container_id,timestamp,cpu_cores,memory_bytes), bitbrains (GWA-T-12 files as published) or auto (from the first file's header)")
	return t
}

// parseTraceArgs parses args, where --trace takes every following argument
// up to the next flag (what a shell glob after --trace expands to), and
// positional arguments after the flags are more trace files.
func parseTraceArgs(fs *flag.FlagSet, t *traceFlags, args []string) error {
	var expanded []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		expanded = append(expanded, a)
		if a == "--" {
			expanded = append(expanded, args[i+1:]...)
			break
		}
		if a != "--trace" && a != "-trace" {
			continue
		}
		// "--trace a b c" becomes "--trace a --trace b --trace c".
		for n := 0; i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"); n++ {
			if n > 0 {
				expanded = append(expanded, a)
			}
			i++
			expanded = append(expanded, args[i])
		}
	}
	if err := fs.Parse(expanded); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	t.paths = append(t.paths, fs.Args()...)
	return nil
}

// load expands the trace paths, resolves the format and reads every file.
func (t *traceFlags) load(cmd string) ([]*traces.Series, []string, traces.Format, error) {
	var f traces.Format // empty: auto, detected from the first file
	if *t.format != "auto" {
		var err error
		if f, err = traces.ParseFormat(*t.format); err != nil {
			return nil, nil, "", usageError{fmt.Errorf("%s: --format: %w", cmd, err)}
		}
	}
	return traces.LoadPaths(t.paths, f)
}

// runEvaluate replays real usage traces against the model and the VPA, KRR
// and provisioned baselines, once per history length:
//
//	recommendation-api evaluate --trace DIR|FILE... [--format generic|bitbrains] [--history 7d,2d]
//	    [--model FILE | --server ADDR | --no-model [--containers held-out|all]] [--containers tuning] [--out report.json] [--plot slack.png]
func runEvaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tf := addTraceFlags(fs)
	modelPath := fs.String("model", "", "model file with its manifest beside it (default: the embedded default model of --major)")
	major := fs.Int("major", 0, "without --model: the major whose embedded default model to score (default: the newest, what the server answers an agent sending every raw field with)")
	server := fs.String("server", "", "ask a running server (gRPC host:port) instead of a model file: Predict with raw metrics, as agents call it")
	noModel := fs.Bool("no-model", false, "score the baselines only")
	history := fs.String("history", "7d,2d", "history lengths to evaluate at, comma-separated (Nd or a duration; VPA keeps 8 days of memory peaks)")
	containers := fs.String("containers", "held-out", "containers scored: held-out (those never in training data), tuning (the training containers generate-data --tuning-holdout leaves out, for choosing training settings) or all (only with --no-model)")
	vpaRows := fs.Bool("vpa-count-rows", false, "count each trace row as one VPA sample in VPA's confidence (default: the one-minute samples a running recommender takes over the row's step)")
	batch := fs.Int("batch", 500, "with --server: instances per Predict call (at most the server's --max-batch)")
	lib := fs.String("onnxruntime-lib", "", "path to libonnxruntime.so (default: $ONNXRUNTIME_LIB, .tools/lib, system)")
	out := fs.String("out", "", "write the JSON report (every history length) here")
	plotPath := fs.String("plot", "", "write a PNG of slack-vs-risk curves per recommender (a row per history length) here")
	perDay := fs.Bool("per-day", false, "include every container-day's recommendations and scores in the JSON report")
	title := fs.String("title", "", "plot title (default: describes the traces and the model)")
	if err := parseTraceArgs(fs, tf, args); err != nil {
		return err
	}
	hists, err := parseHistories(*history)
	if err != nil {
		return usageError{fmt.Errorf("evaluate: --history: %w", err)}
	}
	cfg := traces.Config{PerDay: *perDay}
	if *vpaRows {
		cfg.VPASamplesPerRow = 1
	}
	if cfg.Containers, err = traces.ParseContainers(*containers, traces.HeldOutContainers, traces.TuningContainers, traces.AllContainers); err != nil {
		return usageError{fmt.Errorf("evaluate: %w", err)}
	}
	switch {
	case len(tf.paths) == 0:
		return usageError{fmt.Errorf("evaluate: no traces; want --trace FILE|DIR (repeatable)")}
	case *server != "" && *modelPath != "", *noModel && (*server != "" || *modelPath != ""):
		return usageError{fmt.Errorf("evaluate: more than one of --model, --server and --no-model; want one")}
	case cfg.Containers == traces.AllContainers && !*noModel:
		return usageError{fmt.Errorf("evaluate: --containers all with a model; a model is scored on held-out containers only (want --no-model to score the baselines on all)")}
	case *batch < 1:
		return usageError{fmt.Errorf("evaluate: --batch %d; want at least 1", *batch)}
	}
	start := time.Now()

	modelHistory := trainer.DefaultHistorySteps
	var name, short string
	var remote *remoteModel
	switch {
	case *noModel:
		name, short = "none", "none"
	case *server != "":
		if remote, err = dialRemoteModel(*server, *batch); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		defer remote.close()
		cfg.Recommend = remote.recommend
	default:
		if *major != 0 && *modelPath != "" {
			return usageError{fmt.Errorf("evaluate: --major with --model; the file's manifest says its major")}
		}
		b, m, n, sh, err := evaluateModel(*modelPath, *major)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		if err := serving.InitRuntime(*lib); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		sess, err := serving.NewSession(b, serving.SessionOptions{})
		if err != nil {
			return fmt.Errorf("evaluate: %s: %w", n, err)
		}
		defer sess.Close()
		cfg.Features, cfg.Outputs, cfg.Predict, cfg.Model = m.Features, m.Outputs, sess.Run, n
		modelHistory = int(m.HistoryWindow() / trainer.Step)
		name, short = n, sh
	}

	series, files, format, err := tf.load("evaluate")
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	read := time.Since(start)
	ev := &traces.Evaluation{Command: "evaluate " + strings.Join(args, " "), Revision: buildRevision()}
	for _, h := range hists {
		c := cfg
		c.Windows.History = int(h / trainer.Step)
		c.ModelHistory = min(modelHistory, c.Windows.History)
		rep, err := traces.Evaluate(ctx, series, c)
		if errors.Is(err, traces.ErrNoWindows) && len(hists) > 1 {
			fmt.Fprintf(stdout, "%s history: nothing to score: %v\n\n", days(h), err)
			continue
		}
		if err != nil {
			return fmt.Errorf("evaluate: %s history: %w", days(h), err)
		}
		if remote != nil {
			name = remote.versions() + " (server " + *server + ")"
			short, rep.Model = name, name
		}
		fmt.Fprintf(stdout, "%d %s trace files, %d containers (%d held out from training), %s history: %d %s containers scored, %d container-days (%d points skipped for gaps, %d repeated rows dropped); model %s\n\n",
			len(files), format, rep.Series, rep.HeldOutSeries, days(h), len(rep.ContainerIDs), rep.Containers, rep.ContainerDays, rep.Skipped, rep.Repeats, name)
		if err := rep.WriteTable(stdout); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		ev.Reports = append(ev.Reports, rep)
	}
	if len(ev.Reports) == 0 {
		return fmt.Errorf("evaluate: %w at any of the history lengths %s", traces.ErrNoWindows, *history)
	}
	if *out != "" {
		if err := ev.WriteJSON(*out); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
	}
	if *plotPath != "" {
		t := *title
		if t == "" {
			r := ev.Reports[0]
			t = fmt.Sprintf("model %s vs baselines: %d %s containers of %d %s traces\nlimits scaled along each curve; markers as recommended; lower is better at equal risk",
				short, len(r.ContainerIDs), r.Containers, r.Series, format)
		}
		if err := traces.WritePNG(*plotPath, ev.Reports, t); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", *plotPath)
	}
	fmt.Fprintf(stdout, "elapsed %s (reading traces %s)\n", time.Since(start).Round(time.Millisecond), read.Round(time.Millisecond))
	return nil
}

// parseHistories parses a comma-separated list of history lengths: Nd
// (days) or a Go duration, each a whole number of trainer.Step, at least a
// day and at most 60 days.
func parseHistories(v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		var d time.Duration
		if n, ok := strings.CutSuffix(f, "d"); ok {
			k, err := strconv.Atoi(n)
			if err != nil {
				return nil, fmt.Errorf("%q; want Nd (days) or a duration such as 48h", f)
			}
			d = time.Duration(k) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(f); err != nil {
				return nil, fmt.Errorf("%q; want Nd (days) or a duration such as 48h", f)
			}
		}
		if d < 24*time.Hour || d > 60*24*time.Hour || d%trainer.Step != 0 {
			return nil, fmt.Errorf("%q; want 1d to 60d in whole multiples of %v", f, trainer.Step)
		}
		out = append(out, d)
	}
	return out, nil
}

// days formats a history length.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// buildRevision is the VCS revision the binary was built from, when the
// build recorded it ("+dirty" if the tree had changes), else "".
func buildRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}

// evaluateModel reads the model file and its manifest, or the embedded
// default model when path is empty, and names it for the report (in full,
// and short for a plot title).
func evaluateModel(path string, major int) (b []byte, m *model.Manifest, name, short string, err error) {
	if path == "" {
		if major == 0 {
			majors := defaultmodel.Majors()
			if len(majors) == 0 {
				return nil, nil, "", "", fmt.Errorf("this binary has no embedded default model; want --model FILE")
			}
			major = majors[len(majors)-1]
		}
		if b, m, err = defaultmodel.LoadMajor(major); err != nil {
			return nil, nil, "", "", usageError{fmt.Errorf("--major: %w", err)}
		}
		name = m.Version.String() + " (embedded default)"
		return b, m, name, name, nil
	}
	if b, m, err = trainer.ReadModelFile(path); err != nil {
		return nil, nil, "", "", err
	}
	rel := filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path))
	return b, m, m.Version.String() + " (" + path + ")", m.Version.String() + " (" + rel + ")", nil
}

// remoteModel asks a running server's Predict for recommendations, with raw
// metrics, as node agents do.
type remoteModel struct {
	conn   *grpc.ClientConn
	client recommendationv1.RecommendationServiceClient
	batch  int
	seen   map[string]bool // model versions that answered
}

func dialRemoteModel(addr string, batch int) (*remoteModel, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", addr, err)
	}
	return &remoteModel{conn: conn, client: recommendationv1.NewRecommendationServiceClient(conn), batch: batch, seen: map[string]bool{}}, nil
}

func (r *remoteModel) close() { r.conn.Close() }

// versions lists the model versions that answered.
func (r *remoteModel) versions() string {
	var vs []string
	for v := range r.seen {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return strings.Join(vs, "+")
}

func (r *remoteModel) recommend(ctx context.Context, ids []string, raws []features.Raw) ([]trainer.Rec, error) {
	out := make([]trainer.Rec, 0, len(raws))
	for lo := 0; lo < len(raws); lo += r.batch {
		hi := min(lo+r.batch, len(raws))
		req := &recommendationv1.PredictRequest{Instances: make([]*recommendationv1.Instance, 0, hi-lo)}
		for i := lo; i < hi; i++ {
			f := raws[i]
			req.Instances = append(req.Instances, &recommendationv1.Instance{
				ContainerId: ids[i],
				Input:       &recommendationv1.Instance_Raw{Raw: transport.RawMetricsOf(f)},
			})
		}
		resp, err := r.client.Predict(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("Predict on %d instances: %w", hi-lo, err)
		}
		if len(resp.GetPredictions()) != hi-lo {
			return nil, fmt.Errorf("Predict answered %d predictions for %d instances", len(resp.GetPredictions()), hi-lo)
		}
		r.seen[resp.GetModelVersion()] = true
		for _, p := range resp.GetPredictions() {
			res := p.GetResources()
			out = append(out, trainer.Rec{
				CPURequest: float64(res.GetCpuRequestMillicores()) / 1000,
				CPULimit:   float64(res.GetCpuLimitMillicores()) / 1000,
				MemRequest: float64(res.GetMemoryRequestBytes()),
				MemLimit:   float64(res.GetMemoryLimitBytes()),
			})
		}
	}
	return out, nil
}
