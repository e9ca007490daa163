package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// runModels is the model registry's client (ModelRegistryService over gRPC):
//
//	recommendation-api models list
//	recommendation-api models show VERSION|active
//	recommendation-api models activate VERSION [--reason R] [--expected-active V]
//	recommendation-api models rollback [--to VERSION] [--major N] [--reason R] [--expected-active V]
//	recommendation-api models history [--page-size N] [--page-token T] [--major N] [--action A]
//	recommendation-api models upload DIR|FILE.onnx [--version V] [--reason R]
//	recommendation-api models download VERSION [-d DIR]
func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return newCLI(stdout, stderr).models(ctx, args)
}

func (c *cli) models(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "models", []subcommand{
		{"list", "", "the registered versions, newest first", (*cli).modelsList},
		{"show", "VERSION|active", "one version: checksum, training and evaluation (-o json: with its manifest)", (*cli).modelsShow},
		{"activate", "VERSION", "load, verify and serve a registered version", (*cli).modelsActivate},
		{"rollback", "", "serve the version active before the current one (or --to VERSION)", (*cli).modelsRollback},
		{"history", "", "registrations, activations and rollbacks, newest first, one page", (*cli).modelsHistory},
		{"upload", "DIR", "register the model a train run wrote to DIR (not activated)", (*cli).modelsUpload},
		{"download", "VERSION", "write a version's model and manifest as train does (-d DIR)", (*cli).modelsDownload},
	}, args)
}

func registryClient(conn *grpc.ClientConn) recommendationv1.ModelRegistryServiceClient {
	return recommendationv1.NewModelRegistryServiceClient(conn)
}

func (c *cli) modelsList(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models list", "", "List the registered versions, newest first; * marks the active one of its major.", true)
	if _, err := o.parse(fs, args, 0, 0); err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).ListVersions(ctx, &recommendationv1.ListVersionsRequest{})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, "VERSION\tACTIVE\tCREATED\tSIZE\tPARAMS\tSAMPLES\tPARENT\tOOM RATE\tLIMIT SLACK\tSHA256")
		for _, v := range resp.GetVersions() {
			active := ""
			if v.GetActive() {
				active = "*"
			}
			oom, slack := "-", "-"
			if s := v.GetEvaluation().GetModel(); s != nil {
				oom = fmt.Sprintf("%.4f", s.GetOomRate())
				slack = fmt.Sprintf("%.4f", (s.GetCpuLimitSlack()+s.GetMemLimitSlack())/2)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", v.GetVersion(), active, fmtTime(v.GetCreatedAt()),
				v.GetSizeBytes(), v.GetParameters(), v.GetTrainingSamples(), dash(v.GetParentVersion()), oom, slack, shortSum(v.GetSha256()))
		}
		return tw.Flush()
	})
}

// shortSum is the first 12 hex digits of a sha256, as in a table.
func shortSum(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return dash(s)
}

func (c *cli) modelsShow(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models show", "VERSION|active", "Show one version (\"active\": the served one) with its evaluation; -o json includes the manifest.", true)
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	version := pos[0]
	if version != "active" {
		if version, err = o.versionArg("VERSION", version); err != nil {
			return err
		}
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		var resp interface {
			proto.Message
			GetModel() *recommendationv1.ModelVersion
		}
		var err error
		if version == "active" {
			resp, err = registryClient(conn).GetActive(ctx, &recommendationv1.GetActiveRequest{})
		} else {
			resp, err = registryClient(conn).GetVersion(ctx, &recommendationv1.GetVersionRequest{Version: version})
		}
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		return printVersion(c.stdout, resp.GetModel())
	})
}

// printVersion writes a version's fields and its evaluation against the
// VPA-style baseline.
func printVersion(w io.Writer, v *recommendationv1.ModelVersion) error {
	tw := newTable(w)
	active := "no"
	if v.GetActive() {
		active = "yes"
	}
	for _, kv := range [][2]string{
		{"version", v.GetVersion()},
		{"active", active},
		{"created", fmtTime(v.GetCreatedAt())},
		{"sha256", v.GetSha256()},
		{"size", fmt.Sprintf("%d bytes", v.GetSizeBytes())},
		{"parameters", fmt.Sprint(v.GetParameters())},
		{"parent", dash(v.GetParentVersion())},
		{"training samples", fmt.Sprint(v.GetTrainingSamples())},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ev := v.GetEvaluation()
	if ev == nil {
		_, err := fmt.Fprintln(w, "\nnot evaluated")
		return err
	}
	fmt.Fprintf(w, "\nheld-out evaluation (%d samples; lower is better)\n", ev.GetHeldOutSamples())
	tw = newTable(w)
	fmt.Fprintln(tw, "METRIC\tMODEL\tVPA p90")
	m, b := ev.GetModel(), ev.GetVpaBaseline()
	row := func(name string, x, y float64) { fmt.Fprintf(tw, "%s\t%.4f\t%.4f\n", name, x, y) }
	row("cpu request slack", m.GetCpuRequestSlack(), b.GetCpuRequestSlack())
	row("cpu limit slack", m.GetCpuLimitSlack(), b.GetCpuLimitSlack())
	row("mem request slack", m.GetMemRequestSlack(), b.GetMemRequestSlack())
	row("mem limit slack", m.GetMemLimitSlack(), b.GetMemLimitSlack())
	row("OOM rate", m.GetOomRate(), b.GetOomRate())
	row("throttling rate", m.GetThrottleRate(), b.GetThrottleRate())
	return tw.Flush()
}

// releaseFlags are activate's and rollback's --reason and --expected-active.
func releaseFlags(fs interface {
	String(name, value, usage string) *string
}) (reason, expected *string) {
	reason = fs.String("reason", "", "why, recorded in the history")
	expected = fs.String("expected-active", "", "compare-and-swap: change nothing unless this version (or \"none\") is active; "+
		"the server answers FailedPrecondition naming the actual one")
	return reason, expected
}

func (o *clientOptions) expectedArg(s string) (string, error) {
	if s == "" || s == "none" {
		return s, nil
	}
	return o.versionArg("--expected-active", s)
}

func (c *cli) modelsActivate(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models activate", "VERSION", "Load, verify and serve a registered version; the previous one keeps serving on any failure.", true)
	reason, expected := releaseFlags(fs)
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	version, err := o.versionArg("VERSION", pos[0])
	if err != nil {
		return err
	}
	exp, err := o.expectedArg(*expected)
	if err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{
			Version: version, Reason: *reason, ExpectedActive: exp})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		return printRelease(c.stdout, "activated", resp.GetModel().GetVersion(), resp.GetPreviousVersion(), resp.GetChanged(), resp.GetNote())
	})
}

func (c *cli) modelsRollback(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models rollback", "", "Serve the version active before the current one, or --to VERSION.", true)
	to := fs.String("to", "", "the version to return to (default: the previously active one)")
	major := fs.Int("major", 0, "the major version to roll back when --to is not given (default: the served one)")
	reason, expected := releaseFlags(fs)
	if _, err := o.parse(fs, args, 0, 0); err != nil {
		return err
	}
	var err error
	target := *to
	if target != "" {
		if target, err = o.versionArg("--to", target); err != nil {
			return err
		}
	}
	if *major < 0 {
		return o.usage("--major %d; want a major version ≥ 1, or 0 for the served one", *major)
	}
	exp, err := o.expectedArg(*expected)
	if err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).Rollback(ctx, &recommendationv1.RollbackRequest{
			ToVersion: target, Major: int32(*major), Reason: *reason, ExpectedActive: exp})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		return printRelease(c.stdout, "rolled back to", resp.GetModel().GetVersion(), resp.GetPreviousVersion(), resp.GetChanged(), resp.GetNote())
	})
}

// printRelease says what an activation or rollback did; when nothing
// changed it prints the server's note.
func printRelease(w io.Writer, did, now, previous string, changed bool, note string) error {
	if !changed {
		_, err := fmt.Fprintf(w, "unchanged: %s\n", dash(note))
		return err
	}
	_, err := fmt.Fprintf(w, "%s %s (was %s)\n", did, now, dash(previous))
	return err
}

func (c *cli) modelsHistory(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models history", "", "One page of the registry's history, newest first.", true)
	size := fs.Int("page-size", 0, "entries per page, 1..1000 (default: the server's, 100)")
	token := fs.String("page-token", "", "the next-page token a previous page printed")
	major := fs.Int("major", 0, "only entries of this major version (default: all)")
	action := fs.String("action", "", "only entries with this action: register, prune, activate, rollback, auto_rollback, upgrade")
	if _, err := o.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *size < 0 || *size > 1000 {
		return o.usage("--page-size %d; want 1..1000", *size)
	}
	if *major < 0 {
		return o.usage("--major %d; want a major version ≥ 1, or 0 for all", *major)
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).GetHistory(ctx, &recommendationv1.GetHistoryRequest{
			PageSize: int32(*size), PageToken: *token, Major: int32(*major), Action: *action})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tMAJOR\tFROM\tTO\tACTOR\tREASON")
		for _, e := range resp.GetEntries() {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.GetSeq(), fmtTime(e.GetTime()), e.GetAction(), e.GetMajor(),
				dash(e.GetFromVersion()), dash(e.GetToVersion()), dash(oneLine(e.GetActor())), dash(oneLine(e.GetReason())))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if t := resp.GetNextPageToken(); t != "" {
			fmt.Fprintf(c.stdout, "next page: --page-token %s\n", t)
		}
		return nil
	})
}

func (c *cli) modelsUpload(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models upload", "DIR|FILE.onnx",
		"Register the model that train (or models download) wrote: DIR's predictor.onnx with manifest.json,\n"+
			"--version's predictor_vX.Y.Z.onnx with its manifest, or the .onnx file given. The checksum is\n"+
			"verified before sending; the server verifies everything again. The version is not activated.", true)
	version := fs.String("version", "", "upload DIR/predictor_v{version}.onnx instead of DIR/predictor.onnx")
	reason := fs.String("reason", "", "why, recorded in the history")
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	path := pos[0]
	if *version != "" {
		v, err := model.ParseVersion(*version)
		if err != nil {
			return o.usage("--version: %v", err)
		}
		path = filepath.Join(path, trainer.VersionedModelFile(v))
	} else if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, trainer.ActiveModelFile)
	}
	b, m, err := trainer.ReadModelFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", o.name, err)
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%s: encode manifest: %w", o.name, err)
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).RegisterVersion(ctx, &recommendationv1.RegisterVersionRequest{
			Onnx: b, ManifestJson: string(mj), Reason: *reason})
		if err != nil {
			return err
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		v := resp.GetModel()
		_, err = fmt.Fprintf(c.stdout, "registered %s from %s (%d bytes, sha256 %s); serve it with: recommendation-api models activate %s\n",
			v.GetVersion(), path, v.GetSizeBytes(), v.GetSha256(), v.GetVersion())
		return err
	})
}

func (c *cli) modelsDownload(ctx context.Context, args []string) error {
	fs, o := c.newFlags("models download", "VERSION",
		"Write a version as train does: DIR/predictor_vX.Y.Z.onnx and its manifest, and predictor.onnx and\n"+
			"manifest.json as copies. The checksum is verified before anything is written; a different model\n"+
			"of the same version already in DIR is not overwritten.", true)
	dir := fs.String("d", ".", "the directory to write to (created if missing)")
	pos, err := o.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	version, err := o.versionArg("VERSION", pos[0])
	if err != nil {
		return err
	}
	return o.call(ctx, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := registryClient(conn).DownloadVersion(ctx, &recommendationv1.DownloadVersionRequest{Version: version})
		if err != nil {
			return err
		}
		m, err := model.ParseManifest([]byte(resp.GetManifestJson()))
		if err != nil {
			return fmt.Errorf("%s: the server's manifest of %s: %w", o.name, version, err)
		}
		if got := m.Version.String(); got != version {
			return fmt.Errorf("%s: asked for %s, the server's manifest is of %s", o.name, version, got)
		}
		if err := trainer.WriteModelDir(*dir, resp.GetOnnx(), m); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
		if o.json() {
			return printJSON(c.stdout, resp)
		}
		_, err = fmt.Fprintf(c.stdout, "wrote %s, %s, %s and %s to %s (%d bytes, sha256 %s)\n",
			trainer.VersionedModelFile(m.Version), trainer.VersionedManifestFile(m.Version), trainer.ActiveModelFile,
			trainer.ActiveManifestFile, *dir, len(resp.GetOnnx()), m.Model.SHA256)
		return err
	})
}
