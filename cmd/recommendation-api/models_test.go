package main

// The models client against the real server (newServer + serve on
// loopback): upload of a directory train wrote, download round trip,
// activate and rollback with the compare-and-swap, history paging, and
// JSON output.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/model"
)

// decodeJSON parses a client's -o json output into m, failing the test
// when it is not exactly one JSON document of that message.
func decodeJSON(t *testing.T, out string, m proto.Message) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("output holds more than one JSON document:\n%s", out)
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		t.Fatalf("output is not a %T: %v\n%s", m, err, out)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return model.SHA256Hex(b)
}

func TestModelsCLI(t *testing.T) {
	needORT(t)
	t.Parallel()
	ts := startServer(t, nil)
	srv := []string{"--server", ts.grpcAddr}
	models := func(args ...string) string {
		t.Helper()
		return mustClient(t, nil, append(append([]string{"models"}, args...), srv...)...)
	}
	refused := func(want []string, args ...string) {
		t.Helper()
		_, _, err := runClient(t, nil, append(append([]string{"models"}, args...), srv...)...)
		checkFailure(t, err, exitRefused, want...)
	}
	activeVersion := func() string {
		var resp recommendationv1.GetActiveResponse
		decodeJSON(t, models("show", "active", "-o", "json"), &resp)
		return resp.GetModel().GetVersion()
	}
	def := defaultVersion(t).Version.String()

	// A model made by train, as an operator would.
	root := t.TempDir()
	data := filepath.Join(root, "data.npz")
	generate(t, data, "5")
	trained := filepath.Join(root, "trained")
	const v = "v1.5.0"
	train(t, data, trained, v, "3")
	trainedSum := fileSum(t, filepath.Join(trained, "predictor_"+v+".onnx"))

	t.Run("Upload", func(t *testing.T) {
		out := models("upload", trained, "--reason", "cli upload")
		if !strings.Contains(out, "registered "+v) || !strings.Contains(out, trainedSum) {
			t.Errorf("upload output does not name %s and sha256 %s:\n%s", v, trainedSum, out)
		}
		refused([]string{"models upload: AlreadyExists: ", v}, "upload", trained)
	})
	t.Run("ErrUploadTampered", func(t *testing.T) {
		dir := filepath.Join(root, "tampered")
		copyDir(t, trained, dir)
		p := filepath.Join(dir, "predictor.onnx")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err = runClient(t, nil, append([]string{"models", "upload", dir}, srv...)...)
		checkFailure(t, err, exitOther, "models upload: ", "checksum")
	})
	t.Run("List", func(t *testing.T) {
		out := models("list")
		if !regexp.MustCompile(`(?m)^VERSION +ACTIVE +CREATED`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(v)+` +2`).MatchString(out) || // not active: no "*"
			!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(def)+` +\* `).MatchString(out) {
			t.Errorf("models list does not show %s inactive and %s active:\n%s", v, def, out)
		}
		var resp recommendationv1.ListVersionsResponse
		decodeJSON(t, models("list", "-o", "json"), &resp)
		if got := versionsOf(&resp); !strings.Contains(strings.Join(got, " "), v) || resp.GetActiveVersion() != def {
			t.Errorf("list -o json: versions %v active %q; want %s among them, %s active", got, resp.GetActiveVersion(), v, def)
		}
	})
	t.Run("Show", func(t *testing.T) {
		out := models("show", v)
		for _, want := range []string{"version           " + v, "active            no", trainedSum, "OOM rate", "parameters        1029"} {
			if !strings.Contains(out, want) {
				t.Errorf("show %s lacks %q:\n%s", v, want, out)
			}
		}
		var resp recommendationv1.GetVersionResponse
		decodeJSON(t, models("show", v, "-o", "json"), &resp)
		m, err := model.ParseManifest([]byte(resp.GetModel().GetManifestJson()))
		if err != nil || m.Version.String() != v || m.Model.SHA256 != trainedSum {
			t.Errorf("show -o json manifest: %v, %v; want %s with sha256 %s", m, err, v, trainedSum)
		}
		refused([]string{"models show: NotFound: ", "v9.9.9"}, "show", "v9.9.9")
	})
	t.Run("DownloadRoundTrip", func(t *testing.T) {
		dir := filepath.Join(root, "downloaded")
		out := models("download", v, "-d", dir)
		if !strings.Contains(out, trainedSum) {
			t.Errorf("download output lacks the sha256:\n%s", out)
		}
		for _, f := range []string{"predictor_" + v + ".onnx", "predictor.onnx"} {
			if got := fileSum(t, filepath.Join(dir, f)); got != trainedSum {
				t.Errorf("%s: sha256 %s; want %s (the trained file)", f, got, trainedSum)
			}
		}
		for _, f := range []string{"manifest.json", "manifest_" + v + ".json"} {
			if m := readManifest(t, filepath.Join(dir, f)); m.Version.String() != v || m.Model.SHA256 != trainedSum {
				t.Errorf("%s: version %s sha256 %s; want %s %s", f, m.Version, m.Model.SHA256, v, trainedSum)
			}
		}
		// The default model downloads into the same directory beside it.
		models("download", def, "-d", dir)
		if m := readManifest(t, filepath.Join(dir, "manifest.json")); m.Version.String() != def {
			t.Errorf("manifest.json is of %s after downloading %s", m.Version, def)
		}
		if got := fileSum(t, filepath.Join(dir, "predictor_"+v+".onnx")); got != trainedSum {
			t.Errorf("downloading %s changed predictor_%s.onnx", def, v)
		}
		// What download wrote, upload takes: the server refuses only
		// because the version is registered, not the files.
		refused([]string{"AlreadyExists"}, "upload", dir, "--version", v)
	})
	t.Run("ErrDownloadUnknown", func(t *testing.T) {
		dir := filepath.Join(root, "none")
		refused([]string{"models download: NotFound: "}, "download", "v1.9.9", "-d", dir)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("a refused download created %s (%v)", dir, err)
		}
	})
	t.Run("ActivateExpectedActiveMismatch", func(t *testing.T) {
		refused([]string{"models activate: FailedPrecondition: ", "active version of major 1 is " + def}, "activate", v, "--expected-active", "v1.4.0")
		if got := activeVersion(); got != def {
			t.Fatalf("a refused activation changed the active version to %s", got)
		}
	})
	t.Run("Activate", func(t *testing.T) {
		out := models("activate", v, "--expected-active", def, "--reason", "cli activate")
		if want := "activated " + v + " (was " + def + ")"; !strings.Contains(out, want) {
			t.Errorf("activate: %q; want %q", out, want)
		}
		if got := activeVersion(); got != v {
			t.Fatalf("active %s after activate; want %s", got, v)
		}
		// Again: a no-op that prints the server's note.
		out = models("activate", v)
		if !strings.HasPrefix(out, "unchanged: ") || !strings.Contains(out, v) {
			t.Errorf("activating the active version: %q; want the server's note", out)
		}
		var resp recommendationv1.ActivateVersionResponse
		decodeJSON(t, models("activate", v, "-o", "json"), &resp)
		if resp.GetChanged() || resp.GetNote() == "" {
			t.Errorf("activate -o json of the active version: %v; want changed false with a note", &resp)
		}
	})
	t.Run("RollbackExpectedActiveMismatch", func(t *testing.T) {
		refused([]string{"models rollback: FailedPrecondition: ", "active version of major 1 is " + v}, "rollback", "--expected-active", def)
		if got := activeVersion(); got != v {
			t.Fatalf("a refused rollback changed the active version to %s", got)
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		out := models("rollback", "--expected-active", v, "--reason", "cli rollback", "--major", "1")
		if want := "rolled back to " + def + " (was " + v + ")"; !strings.Contains(out, want) {
			t.Errorf("rollback: %q; want %q", out, want)
		}
		out = models("rollback", "--to", def)
		if !strings.HasPrefix(out, "unchanged: ") {
			t.Errorf("rolling back to the active version: %q; want the server's note", out)
		}
		refused([]string{"models rollback: NotFound: "}, "rollback", "--to", "v1.7.7")
	})
	t.Run("HistoryPaging", func(t *testing.T) {
		var all recommendationv1.GetHistoryResponse
		decodeJSON(t, models("history", "--page-size", "1000", "-o", "json"), &all)
		// first start registers and activates; then register, activate, rollback.
		if n := len(all.GetEntries()); n < 5 {
			t.Fatalf("history has %d entries; want at least 5: %v", n, &all)
		}
		var seqs []uint64
		token := ""
		for pages := 0; ; pages++ {
			if pages > len(all.GetEntries()) {
				t.Fatalf("paging does not end")
			}
			args := []string{"history", "--page-size", "2", "-o", "json"}
			if token != "" {
				args = append(args, "--page-token", token)
			}
			var page recommendationv1.GetHistoryResponse
			decodeJSON(t, models(args...), &page)
			if len(page.GetEntries()) > 2 {
				t.Fatalf("page of %d entries; want at most 2", len(page.GetEntries()))
			}
			for _, e := range page.GetEntries() {
				seqs = append(seqs, e.GetSeq())
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
			// The table prints how to get the next page.
			if out := models(args[:3]...); pages == 0 && !strings.Contains(out, "next page: --page-token "+token) {
				t.Errorf("history table does not print the next page token %q:\n%s", token, out)
			}
		}
		if len(seqs) != len(all.GetEntries()) {
			t.Fatalf("pages of 2 hold %d entries; one page of 1000 holds %d", len(seqs), len(all.GetEntries()))
		}
		for i, e := range all.GetEntries() {
			if seqs[i] != e.GetSeq() {
				t.Fatalf("paged seqs %v differ from %v at %d", seqs, all.GetEntries(), i)
			}
			if i > 0 && seqs[i] >= seqs[i-1] {
				t.Fatalf("seqs %v are not newest first", seqs)
			}
		}

		out := models("history", "--action", "rollback")
		if !regexp.MustCompile(`(?m)^\d+ +\S+ +rollback +1 +` + regexp.QuoteMeta(v) + ` +` + regexp.QuoteMeta(def) + ` .*cli rollback$`).MatchString(out) {
			t.Errorf("history --action rollback lacks the rollback:\n%s", out)
		}
		if strings.Contains(out, " activate ") || strings.Contains(out, " register ") {
			t.Errorf("history --action rollback shows other actions:\n%s", out)
		}
		refused([]string{"models history: InvalidArgument: "}, "history", "--page-token", "not-a-token")
	})
}
