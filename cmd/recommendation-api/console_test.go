package main

// The operator console in a real headless browser (Debian's chromium,
// driven over the DevTools protocol by chromedp) against a server started
// through newServer and serve with a token file: log in, see the versions,
// train a small job and watch it reach SUCCEEDED, roll back with a reason
// and find it in the history, page the history, be refused as a stale page
// (409), see the evaluation charts, and as a viewer find no button that
// changes anything while the API refuses a forced call. axe-core
// (testdata/axe.min.js, vendored from npm) checks every page for WCAG 2.1
// A/AA violations.
//
// RECO_CONSOLE_SCREENSHOTS=DIR writes a PNG of each page into DIR
// (make console-screenshots writes docs/console/).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	consoleOperator = "console-operator-token-0123456789"
	consoleViewer   = "console-viewer-token-0123456789"
)

// chromiumPath is the browser the console tests drive, or "" when none is
// installed.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startConsoleServer runs the server as serve wires it, with a token file
// (operator "ops", viewer "watcher") and the committed July evaluation
// report in its evaluation directory.
func startConsoleServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("ops operator "+consoleOperator+"\nwatcher viewer "+consoleViewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir, cfg.TokenFile = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "data"), tokens
	report, err := os.ReadFile("../../docs/evaluation/july-heldout.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "evaluations"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "evaluations", "july-heldout.json"), report, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatalf("newServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := recv(t, done, "serve to return"); err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return "http://" + srv.httpLis.Addr().String()
}

// restCall makes a REST call with token and decodes the JSON answer into
// out (when not nil); it returns the HTTP status.
func restCall(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

func activeVersion(t *testing.T, base string, major int) string {
	t.Helper()
	var a struct {
		Model struct{ Version string } `json:"model"`
	}
	if code := restCall(t, "GET", fmt.Sprintf("%s/v1/models:active?major=%d", base, major), consoleViewer, "", &a); code != 200 {
		t.Fatalf("GET /v1/models:active = %d", code)
	}
	return a.Model.Version
}

// browser is one headless chromium tab.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	axe   string
	shots string // directory for screenshots, "" for none
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium, or make deps-system); skipping the console's browser tests")
	}
	axe, err := os.ReadFile("testdata/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute) // a hang guard, not a performance claim
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx, base: base, axe: string(axe), shots: os.Getenv("RECO_CONSOLE_SCREENSHOTS")}
}

// run runs actions, failing the test (with what) on an error or a timeout.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	runIn(b, what, chromedp.Steps(actions...))
}

// runIn runs one action with a timeout and returns its value, failing the
// test (with what and the page's text) on an error.
func runIn[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
	}
	return v
}

// eval evaluates a JavaScript expression, awaiting a promise, into a T.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	return runIn(b, what, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// text returns the text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return runIn(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// count returns how many elements match the CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, "count "+sel, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// checkA11y runs axe-core's WCAG 2.1 A and AA rules on the page as it is.
func (b *browser) checkA11y(page string) {
	b.t.Helper()
	if !eval[bool](b, "look for axe-core", "typeof axe !== 'undefined'") {
		eval[bool](b, "inject axe-core", b.axe+"\n;true")
		// The check can fail: axe finds the unlabelled field of a probe.
		n := eval[int](b, "axe self-check", `(() => { const d = document.createElement("div"); d.id = "axe-probe";
			d.innerHTML = '<input type="text">'; document.body.appendChild(d);
			return axe.run("#axe-probe", {runOnly: ["label"]}).then(r => { d.remove(); return r.violations.length; }); })()`)
		if n != 1 {
			b.t.Fatalf("axe-core found %d violations of rule label in an unlabelled input; want 1", n)
		}
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ Target []string }
	}
	violations := eval[[]violation](b, "axe.run on "+page, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.map(String)}))})))`)
	for _, v := range violations {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, strings.Join(n.Target, " "))
		}
		b.t.Errorf("%s: accessibility: %s (%s): %s at %s", page, v.ID, v.Impact, v.Help, strings.Join(where, "; "))
	}
}

// screenshot writes the page as DIR/name.png when screenshots are asked for.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png := runIn(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitText waits until the element matching sel contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.poll(fmt.Sprintf("wait for %s to say %q", sel, want),
		fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want))
}

// poll waits until the JavaScript expression is true.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	runIn(b, what, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// fill sets a form control's value and fires the event the console
// listens to (input for fields, change for selects), as typing or choosing
// would.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	ok := eval[bool](b, "fill "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.value = %q;
		e.dispatchEvent(new Event(e.tagName === "SELECT" ? "change" : "input", {bubbles: true})); return e.value === %q; })()`, sel, value, value))
	if !ok {
		b.t.Fatalf("%s does not take the value %q", sel, value)
	}
}

func (b *browser) login(token, wantName string) {
	b.t.Helper()
	b.run("log in as "+wantName, chromedp.WaitVisible(chromedp.ID("token")))
	b.fill("#token", "")
	b.run("log in as "+wantName,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.waitText("#who", wantName)
}

func (b *browser) open(page, ready string) {
	b.t.Helper()
	b.run("open "+page, chromedp.Navigate(b.base+"/console/#/"+page), chromedp.WaitVisible(chromedp.CSS(ready)))
}

func TestConsoleBrowser(t *testing.T) {
	if chromiumPath() == "" {
		t.Skip("chromium is not installed (apt-get install chromium, or make deps-system); skipping the console's browser tests")
	}
	base := startConsoleServer(t)
	b := newBrowser(t, base)

	// ---- log in ----
	b.run("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	b.checkA11y("login")
	b.screenshot("login")
	b.run("log in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token-of-this-server"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b.waitText(".login .error", "refused")
	b.login(consoleOperator, "ops")
	storage := eval[struct {
		Session, URL string
		Local        int
	}](b, "storage", `({session: sessionStorage.getItem("recommendation-api.token"), local: localStorage.length, url: location.href})`)
	if storage.Session != consoleOperator || storage.Local != 0 || strings.Contains(storage.URL, consoleOperator) {
		t.Errorf("after login: sessionStorage token %t, localStorage has %d items, URL %q; want the token in sessionStorage only",
			storage.Session == consoleOperator, storage.Local, storage.URL)
	}

	// ---- models ----
	// An empty registry serves the embedded default of every major.
	b.run("models", chromedp.WaitVisible(chromedp.CSS(`tr[data-version="v1.1.0"]`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-version="v2.0.0"]`)))
	for major, v := range map[int]string{1: "v1.1.0", 2: "v2.0.0"} {
		if got := b.text(fmt.Sprintf(`.active-version[data-major="%d"]`, major)); got != v {
			t.Errorf("major %d's active version reads %q; want %s", major, got, v)
		}
	}
	if row := b.text(`tr[data-version="v1.1.0"]`); !strings.Contains(row, defaultVersion(t).Model.SHA256) || !strings.Contains(row, "held-out samples") {
		t.Errorf("v1.1.0's row %q lacks its sha256 or held-out scores", row)
	}

	// The console's jobs name no major, so they train the newest served
	// one, major 2: the rest acts on it.

	// ---- training: a small job, followed to SUCCEEDED ----
	b.open("training", "#train-start")
	b.fill("#train-samples", "2000")
	b.fill("#train-epochs", "2")
	b.fill("#train-seed", "7")
	b.fill("#train-policy", "ACTIVATION_POLICY_ALWAYS")
	b.run("start a job", chromedp.SendKeys(chromedp.ID("train-reason"), "console test job"), chromedp.Click(chromedp.ID("train-start")))
	b.waitText("#training-notice", "Queued job-")
	job := `article.job[data-job="job-00000001"]`
	b.run("watch the job reach SUCCEEDED", chromedp.WaitVisible(chromedp.CSS(job+`[data-state="SUCCEEDED"]`)))
	if card := b.text(job); !strings.Contains(card, "2,000 samples, 2 epochs, seed 7") {
		t.Errorf("the job card says %q; want the parameters entered (2,000 samples, 2 epochs, seed 7)", card)
	}
	if b.count(job+` svg[role="img"][aria-label^="Loss per epoch"]`) != 1 {
		t.Error("no loss curve from the watch stream on the finished job")
	}
	if b.count(job+` .decision[data-activated="true"]`) != 1 || !strings.Contains(b.text(job+" table.eval"), "candidate v2.0.1") {
		t.Errorf("the finished job shows no activation decision or evaluation: %q", b.text(job))
	}
	b.waitText("#training-notice", "job-00000001 ended SUCCEEDED")
	b.checkA11y("training")
	b.screenshot("training")

	// ---- roll back with a reason ----
	b.open("models", `tr[data-version="v2.0.1"]`)
	b.waitText(`.active-version[data-major="2"]`, "v2.0.1")
	b.checkA11y("models")
	b.screenshot("models")
	const reason = "console test: v2.0.1 misbehaves"
	// By keyboard: Enter on the focused button opens the dialog, whose
	// reason field then takes the keys typed.
	b.run("open the rollback dialog", chromedp.Focus(chromedp.CSS(`button.rollback[data-major="2"]`)), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog[open]")))
	b.checkA11y("rollback dialog")
	b.run("reason", chromedp.SendKeys(chromedp.ID("change-reason"), reason))
	b.screenshot("rollback-dialog")
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-change")))
	b.waitText("#models-notice", "Rolled back to v2.0.0 (was v2.0.1)")
	b.waitText(`.active-version[data-major="2"]`, "v2.0.0")
	if got := activeVersion(t, base, 2); got != "v2.0.0" {
		t.Errorf("after the console's rollback the server serves %s; want v2.0.0", got)
	}

	// ---- history: the rollback row, filters, paging ----
	b.open("history", `tr[data-action="rollback"]`)
	if row := b.text(`tr[data-action="rollback"]`); !strings.Contains(row, reason) || !strings.Contains(row, "ops") || !strings.Contains(row, "v2.0.1") {
		t.Errorf("the rollback's history row %q lacks the reason, the actor ops or the version rolled back from", row)
	}
	b.checkA11y("history")
	b.screenshot("history")
	// Twelve more changes make three pages of ten.
	for i := range 6 {
		for _, v := range []string{"v2.0.1", "v2.0.0"} {
			if code := restCall(t, "POST", base+"/v1/models/"+v+":activate", consoleOperator, fmt.Sprintf(`{"reason":"flip %d"}`, i), nil); code != 200 {
				t.Fatalf("activate %s = %d", v, code)
			}
		}
	}
	b.open("models", `tr[data-version]`) // away and back: the history reloads
	b.open("history", `table.history tr[data-seq]`)
	rows := func() int { return b.count("table.history tbody tr[data-seq]") }
	if n := rows(); n != 10 {
		t.Errorf("page 1 has %d rows; want 10", n)
	}
	first := b.text("table.history tbody tr[data-seq] td")
	b.run("older", chromedp.Click(chromedp.ID("history-older")))
	b.waitText("table.history caption", "Page 2")
	b.poll("page 2's rows", `document.querySelectorAll("table.history tbody tr[data-seq]").length > 0`)
	if got := b.text("table.history tbody tr[data-seq] td"); got == first {
		t.Errorf("page 2 starts with seq %s like page 1", got)
	}
	if !strings.Contains(b.text("table.history"), reason) {
		t.Error("page 2 lacks the rollback, which twelve newer entries pushed there")
	}
	b.fill("#history-action", "rollback")
	b.waitText("table.history caption", "Page 1")
	b.poll("only rollbacks", `document.querySelectorAll("table.history tbody tr[data-seq]").length === 1`)
	if n := b.count(`table.history tbody tr[data-action="rollback"]`); n != 1 {
		t.Errorf("filtered by rollback: %d rollback rows; want 1", n)
	}

	// ---- a stale page is refused (409) and says so ----
	b.open("models", `button.rollback[data-major="2"]`)
	b.waitText(`.active-version[data-major="2"]`, "v2.0.0")
	if code := restCall(t, "POST", base+"/v1/models/v2.0.1:activate", consoleOperator, `{"reason":"behind the page's back"}`, nil); code != 200 {
		t.Fatalf("activate v2.0.1 = %d", code)
	}
	b.run("roll back from the stale page", chromedp.Click(chromedp.CSS(`button.rollback[data-major="2"]`)),
		chromedp.WaitVisible(chromedp.ID("change-reason")),
		chromedp.SendKeys(chromedp.ID("change-reason"), "stale click"),
		chromedp.Click(chromedp.ID("confirm-change")))
	b.waitText("#change-error", "the page is out of date")
	b.waitText("#change-error", "v2.0.1") // the server names the actual active version
	if got := activeVersion(t, base, 2); got != "v2.0.1" {
		t.Errorf("after the refused rollback the server serves %s; want v2.0.1 unchanged", got)
	}
	b.run("close", chromedp.KeyEvent("\x1b"), chromedp.WaitNotPresent(chromedp.CSS("#confirm-dialog")))

	// ---- evaluation ----
	b.open("evaluation", `figure.chart svg[role="img"]`)
	if n := b.count(`figure.chart svg[role="img"]`); n != 4 {
		t.Errorf("%d charts; want 4 (memory and CPU at 7 and 2 days of history)", n)
	}
	if !strings.Contains(b.text("main"), "krr-simple") || !strings.Contains(b.text("main"), "vpa-upper-bound") {
		t.Error("the evaluation page names neither KRR nor VPA")
	}
	b.checkA11y("evaluation")
	b.screenshot("evaluation")

	// ---- a viewer sees everything and can change nothing ----
	b.open("models", "#who")
	b.run("log out", chromedp.Click(chromedp.CSS("#who button")))
	b.login(consoleViewer, "watcher")
	b.run("read-only", chromedp.WaitVisible(chromedp.ID("read-only")), chromedp.WaitVisible(chromedp.CSS(`tr[data-version="v2.0.1"]`)))
	if n := b.count("button.rollback, button.activate"); n != 0 {
		t.Errorf("a viewer sees %d activate or roll-back buttons; want none", n)
	}
	b.checkA11y("models as viewer")
	b.screenshot("models-viewer")
	b.open("training", `article.job[data-job="job-00000001"]`)
	if n := b.count("#train-start, article.job button"); n != 0 {
		t.Errorf("a viewer sees %d training buttons; want none", n)
	}
	forced := eval[int](b, "forced rollback", `fetch("/v1/models:rollback", {method: "POST", headers: {"Authorization": "Bearer " + sessionStorage.getItem("recommendation-api.token"), "Content-Type": "application/json"}, body: JSON.stringify({reason: "forced"})}).then(r => r.status)`)
	if forced != http.StatusForbidden {
		t.Errorf("a viewer's forced rollback = %d; want 403", forced)
	}
	if got := activeVersion(t, base, 2); got != "v2.0.1" {
		t.Errorf("after the viewer's forced rollback the server serves %s; want v2.0.1", got)
	}
	if n := eval[int](b, "log out", `document.querySelector("#who button").click(); sessionStorage.length`); n != 0 {
		t.Errorf("after logging out sessionStorage holds %d items; want none", n)
	}
}
