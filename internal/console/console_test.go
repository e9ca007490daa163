package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"recommendation-api/internal/auth"
	"recommendation-api/internal/console"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/transport"
)

const (
	operatorToken = "console-operator-token-0123456789"
	viewerToken   = "console-viewer-token-0123456789"
)

// newConsole serves Mount over a REST stand-in that answers 299, with the
// real Authenticator over a parsed token file.
func newConsole(t *testing.T, evalDir string) *httptest.Server {
	t.Helper()
	set, err := auth.Parse(strings.NewReader("ops operator " + operatorToken + "\nwatcher viewer " + viewerToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	authn := transport.NewAuthenticator(set)
	rest := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	srv := httptest.NewServer(console.Mount(rest, console.Options{Guard: authn.RequireHTTP, EvaluationDir: evalDir}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestStatic(t *testing.T) {
	t.Parallel()
	srv := newConsole(t, "")
	for _, c := range []struct {
		path, wantType, wantIn string
	}{
		{"/console/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/console/index.html", "text/html; charset=utf-8", "<title>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "console-unauthorized"},
		{"/console/app.css", "text/css; charset=utf-8", "--accent"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run("OK"+c.path, func(t *testing.T) {
			resp, body := do(t, srv, "GET", c.path, "")
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d; want 200", c.path, resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != c.wantType {
				t.Errorf("Content-Type = %q; want %q", got, c.wantType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP {
				t.Errorf("Content-Security-Policy = %q; want %q", got, console.CSP)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q; want nosniff", got)
			}
			if !strings.Contains(body, c.wantIn) {
				t.Errorf("GET %s does not contain %q", c.path, c.wantIn)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
			req.Header.Set("If-None-Match", etag)
			r2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r2.Body.Close()
			if r2.StatusCode != http.StatusNotModified {
				t.Errorf("GET with If-None-Match: its ETag = %d; want 304", r2.StatusCode)
			}
		})
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		resp, body := do(t, srv, "GET", "/console/nope.js", "")
		if resp.StatusCode != 404 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET /console/nope.js = %d (CSP %q) %q; want 404 with the CSP", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
		}
	})
	t.Run("ErrMethod", func(t *testing.T) {
		resp, body := do(t, srv, "POST", "/console/", operatorToken)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(body, "allowed: GET, HEAD") {
			t.Errorf("POST /console/ = %d Allow %q %q; want 405, Allow: GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	})
}

// TestBuildIsSelfContained: the page loads only its own files: every src
// and href of index.html is one of the embedded files, and nothing names
// another origin to load from.
func TestBuildIsSelfContained(t *testing.T) {
	t.Parallel()
	srv := newConsole(t, "")
	_, index := do(t, srv, "GET", "/console/", "")
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d files; want the script, the style sheet and the icon", len(refs))
	}
	for _, m := range refs {
		if strings.Contains(m[1], ":") || strings.HasPrefix(m[1], "/") {
			t.Errorf("index.html references %q; want a file beside it", m[1])
			continue
		}
		if resp, _ := do(t, srv, "GET", "/console/"+m[1], ""); resp.StatusCode != 200 {
			t.Errorf("index.html references %s, which is %d", m[1], resp.StatusCode)
		}
	}
	_, js := do(t, srv, "GET", "/console/app.js", "")
	// XML namespace names are identifiers, not loads.
	for _, u := range regexp.MustCompile(`https?://[^"'\s)]+`).FindAllString(js, -1) {
		if !strings.HasPrefix(u, "http://www.w3.org/") {
			t.Errorf("app.js names %s; the console must load nothing from another origin", u)
		}
	}
	if strings.Contains(js, "localStorage") {
		t.Error("app.js uses localStorage; the token must live in sessionStorage only")
	}
}

func TestMount(t *testing.T) {
	t.Parallel()
	srv := newConsole(t, "")
	if resp, _ := do(t, srv, "GET", "/", ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Errorf("GET / = %d to %q; want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/v1/models", "/consolex", "/healthz"} {
		if resp, _ := do(t, srv, "GET", p, ""); resp.StatusCode != 299 {
			t.Errorf("GET %s = %d; want the REST handler's 299", p, resp.StatusCode)
		}
	}
	if resp, _ := do(t, srv, "POST", "/", ""); resp.StatusCode != 299 {
		t.Errorf("POST / = %d; want the REST handler's 299 (only GET / redirects)", resp.StatusCode)
	}
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	srv := newConsole(t, "")
	for _, c := range []struct {
		name, token string
		want        console.Identity
	}{
		{"Operator", operatorToken, console.Identity{Name: "ops", Role: "operator", Authenticated: true}},
		{"Viewer", viewerToken, console.Identity{Name: "watcher", Role: "viewer", Authenticated: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, srv, "GET", "/console/api/whoami", c.token)
			var got console.Identity
			if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("whoami = %d %q (%v); want 200 JSON", resp.StatusCode, body, err)
			}
			if got != c.want {
				t.Errorf("whoami = %+v; want %+v", got, c.want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", cc)
			}
		})
	}
	for _, c := range []struct{ name, token string }{{"ErrNoToken", ""}, {"ErrWrongToken", "not-a-token-of-this-server"}} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, srv, "GET", "/console/api/whoami", c.token)
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("whoami = %d (WWW-Authenticate %q) %q; want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			if c.token != "" && strings.Contains(body, c.token) {
				t.Error("the refusal echoes the token")
			}
		})
	}
	t.Run("AuthOff", func(t *testing.T) {
		authn := transport.NewAuthenticator(nil)
		h := console.Handler(console.Options{Guard: authn.RequireHTTP})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/console/api/whoami", nil))
		var got console.Identity
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if want := (console.Identity{Name: "anonymous", Role: "operator"}); got != want {
			t.Errorf("whoami without authentication = %+v; want %+v", got, want)
		}
	})
}

// copyReport puts the committed July report into dir as name.
func copyReport(t *testing.T, dir, name string) {
	t.Helper()
	b, err := os.ReadFile("../../docs/evaluation/july-heldout.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEvaluations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyReport(t, dir, "july.json")
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"secret": "do-not-echo"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	copyReport(t, outside, "elsewhere.json")
	if err := os.Symlink(filepath.Join(outside, "elsewhere.json"), filepath.Join(dir, "escape.json")); err != nil {
		t.Fatal(err)
	}
	srv := newConsole(t, dir)

	t.Run("List", func(t *testing.T) {
		resp, body := do(t, srv, "GET", "/console/api/evaluations", viewerToken)
		var got console.EvaluationList
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("list = %d %q (%v)", resp.StatusCode, body, err)
		}
		if len(got.Evaluations) != 1 || got.Evaluations[0].File != "july.json" {
			t.Fatalf("listed %+v; want july.json only", got.Evaluations)
		}
		ev := got.Evaluations[0]
		if len(ev.Reports) != 2 || !strings.HasPrefix(ev.Reports[0].Model, "v2.0.0 ") || ev.Reports[0].HistoryDays != 7 || len(ev.Reports[0].Recommenders) != 5 {
			t.Errorf("july.json's reports = %+v; want 2 (7d, 2d) of the default v2.0.0 with 5 recommenders", ev.Reports)
		}
		if ev.Reports[0].MemoryCurves != nil || ev.Reports[0].CPUCurves != nil {
			t.Error("the listing carries the curves; want them only in the report itself")
		}
		var files []string
		for _, u := range got.Unreadable {
			files = append(files, u.File)
		}
		if strings.Join(files, ",") != "broken.json,escape.json" {
			t.Errorf("unreadable = %v; want broken.json (not a report) and escape.json (a link out of the directory)", got.Unreadable)
		}
		if strings.Contains(body, "do-not-echo") || strings.Contains(body, outside) {
			t.Errorf("the listing echoes a file's content or the link's target: %s", body)
		}
	})
	t.Run("Get", func(t *testing.T) {
		resp, body := do(t, srv, "GET", "/console/api/evaluations/july.json", viewerToken)
		var got console.Evaluation
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("get = %d %q (%v)", resp.StatusCode, body, err)
		}
		r := got.Reports[0]
		if len(r.MemoryCurves) != 5 || len(r.CPUCurves) != 5 || len(r.EqualRisk) == 0 {
			t.Fatalf("report has %d memory curves, %d CPU curves, %d equal-risk matches; want 5, 5, some", len(r.MemoryCurves), len(r.CPUCurves), len(r.EqualRisk))
		}
		var asRecommended *console.CurvePoint
		for i, p := range r.MemoryCurves[0].Points {
			if p.Factor == 1 {
				asRecommended = &r.MemoryCurves[0].Points[i]
			}
		}
		if p := asRecommended; r.MemoryCurves[0].Name != "model" || p == nil || p.Risk != r.Recommenders[0].OOMRate || p.Slack != r.Recommenders[0].MemLimitSlack.Mean {
			t.Errorf("model's memory point at factor 1 = %+v; want its as-recommended OOM rate %v and slack %v", p, r.Recommenders[0].OOMRate, r.Recommenders[0].MemLimitSlack.Mean)
		}
		if !strings.HasPrefix(got.Command, "evaluate ") || !strings.Contains(got.Command, "--trace") {
			t.Errorf("command = %q; want the evaluate command line", got.Command)
		}
		if strings.Contains(body, "container_ids") {
			t.Error("the report carries container_ids; the console serves only what it shows")
		}
	})
	for _, c := range []struct {
		name, path string
		want       int
	}{
		{"ErrNotFound", "/console/api/evaluations/august.json", 404},
		{"ErrNotReport", "/console/api/evaluations/broken.json", 404},
		{"ErrEscape", "/console/api/evaluations/escape.json", 404},
		{"ErrBadName", "/console/api/evaluations/notes.txt", 400},
		{"ErrHidden", "/console/api/evaluations/.july.json", 400},
		{"ErrTraversal", "/console/api/evaluations/..%2Fjuly.json", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, srv, "GET", c.path, viewerToken)
			if resp.StatusCode != c.want {
				t.Errorf("GET %s = %d %q; want %d", c.path, resp.StatusCode, body, c.want)
			}
			if strings.Contains(body, "do-not-echo") {
				t.Error("the refusal echoes the file's content")
			}
		})
	}
	t.Run("ErrNoToken", func(t *testing.T) {
		if resp, _ := do(t, srv, "GET", "/console/api/evaluations/july.json", ""); resp.StatusCode != 401 {
			t.Errorf("without a token = %d; want 401", resp.StatusCode)
		}
	})
	t.Run("NoDirectory", func(t *testing.T) {
		srv := newConsole(t, filepath.Join(dir, "missing"))
		resp, body := do(t, srv, "GET", "/console/api/evaluations", viewerToken)
		var got console.EvaluationList
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 || len(got.Evaluations) != 0 || got.Evaluations == nil {
			t.Errorf("list of a missing directory = %d %q; want 200 with an empty list", resp.StatusCode, body)
		}
	})
}

// TestReportFieldsMatchTraces keeps the console's view of a report in step
// with what traces writes: every JSON name the console reads exists, with
// the same kind, in the traces type it mirrors.
func TestReportFieldsMatchTraces(t *testing.T) {
	t.Parallel()
	pairs := []struct{ mine, theirs any }{
		{console.Evaluation{}, traces.Evaluation{}},
		{console.Report{}, traces.Report{}},
		{console.Recommender{}, traces.Summary{}},
		{console.Stat{}, traces.Stat{}},
		{console.EqualRiskMatch{}, traces.Matched{}},
		{console.Curve{}, traces.Curve{}},
		{console.CurvePoint{}, traces.CurvePoint{}},
	}
	fields := func(v any) map[string]reflect.Kind {
		out := map[string]reflect.Kind{}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out[name] = rt.Field(i).Type.Kind()
		}
		return out
	}
	for _, p := range pairs {
		theirs := fields(p.theirs)
		for name, kind := range fields(p.mine) {
			if name == "file" { // the console's own: the report's file name
				continue
			}
			if k, ok := theirs[name]; !ok {
				t.Errorf("%T reads %q, which %T does not write", p.mine, name, p.theirs)
			} else if k != kind {
				t.Errorf("%T reads %q as %v; %T writes %v", p.mine, name, kind, p.theirs, k)
			}
		}
	}
}
