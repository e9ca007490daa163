package transport_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
)

// register registers version vs (made from seed) over gRPC.
func (e *regEnv) register(t *testing.T, vs string, seed int64) {
	t.Helper()
	v := newRegVersion(t, vs, seed)
	if _, err := e.reg.RegisterVersion(rpcCtx(t), registerRequest(t, v.onnx, v.man, "ci", "")); err != nil {
		t.Fatalf("register %s: %v", vs, err)
	}
}

// historyLen returns how many history entries the server reports.
func (e *regEnv) historyLen(t *testing.T) int {
	t.Helper()
	h, err := e.reg.GetHistory(rpcCtx(t), &recommendationv1.GetHistoryRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(h.GetEntries())
}

// predictPinned calls Predict pinned to version over gRPC.
func (e *regEnv) predictPinned(t *testing.T, version string) error {
	t.Helper()
	_, err := e.predict.Predict(rpcCtx(t), &recommendationv1.PredictRequest{ModelVersion: version, Instances: []*recommendationv1.Instance{{
		ContainerId: "c1",
		Input:       &recommendationv1.Instance_Features{Features: &recommendationv1.NormalizedFeatures{Values: predictRow}},
	}}})
	return err
}

// TestRetentionKeepsRollbackTarget: with v1.1.0 active, four versions
// registered and not activated, and a fifth activated, registering another
// must not delete v1.1.0 — it is the rollback target and still loaded — so
// a manual rollback (gRPC and REST) still reaches it.
func TestRetentionKeepsRollbackTarget(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	for i, v := range []string{"v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0", "v1.6.0"} {
		e.register(t, v, int64(50+i))
	}
	if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.6.0"}); err != nil {
		t.Fatal(err)
	}
	e.register(t, "v1.7.0", 56)
	e.register(t, "v1.8.0", 57)
	if err := e.predictPinned(t, seedVersion); err != nil {
		t.Errorf("Predict pinned to the rollback target %s: %v", seedVersion, err)
	}
	var rb recommendationv1.RollbackResponse
	e.callOK(t, "POST", "/v1/models:rollback", `{"reason":"bad release"}`, &rb)
	if got := rb.GetModel().GetVersion(); got != seedVersion {
		t.Fatalf("REST rollback went to %s; want %s", got, seedVersion)
	}
	e.checkServes(t, seedVersion, nil)
	// A version retention deleted is not answered from memory.
	if err := e.predictPinned(t, "v1.2.0"); status.Code(err) != codes.NotFound {
		t.Errorf("Predict pinned to pruned v1.2.0: %v; want NotFound", err)
	}
}

// TestActivateActiveIsNoOp: re-activating the active version during its
// probation changes nothing: no history, the previous version stays warm
// (pinned calls to it succeed), and the response says so.
func TestActivateActiveIsNoOp(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	e.register(t, "v1.2.0", 61)
	if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0"}); err != nil {
		t.Fatal(err)
	}
	n := e.historyLen(t)
	resp, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0"})
	if err != nil || resp.GetChanged() || !strings.Contains(resp.GetNote(), "already the active version") {
		t.Fatalf("gRPC re-activate = %v, %v; want changed=false with a note", resp, err)
	}
	var rest recommendationv1.RollbackResponse
	e.callOK(t, "POST", "/v1/models:rollback", `{"to_version":"v1.2.0"}`, &rest)
	if rest.GetChanged() || rest.GetModel().GetVersion() != "v1.2.0" {
		t.Errorf("REST rollback to the active version = %v; want changed=false", &rest)
	}
	if got := e.historyLen(t); got != n {
		t.Errorf("no-op changes wrote %d history entries", got-n)
	}
	if err := e.predictPinned(t, seedVersion); err != nil {
		t.Errorf("Predict pinned to the rollback target after a no-op: %v (it was unloaded)", err)
	}
	e.checkServes(t, "v1.2.0", nil)
}

// TestExpectedActive: a compare-and-swap that names another version fails
// with FailedPrecondition / 409 naming the actual one, and 50 simultaneous
// rollbacks that all expect the same active version move it once.
func TestExpectedActive(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	for i, v := range []string{"v1.2.0", "v1.3.0", "v1.4.0"} {
		e.register(t, v, int64(70+i))
		if _, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.reg.ActivateVersion(rpcCtx(t), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", ExpectedActive: "v1.3.0"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "active version of major 1 is v1.4.0") {
		t.Errorf("gRPC activate expecting v1.3.0: %v; want FailedPrecondition naming v1.4.0", err)
	}
	code, _, body := e.call(t, "POST", "/v1/models/v1.2.0:activate", `{"expected_active":"v1.3.0"}`)
	if code != http.StatusConflict || !strings.Contains(string(body), "active version of major 1 is v1.4.0") {
		t.Errorf("REST activate expecting v1.3.0: %d %s; want 409 naming v1.4.0", code, body)
	}
	code, _, body = e.call(t, "POST", "/v1/models:rollback", `{"expected_active":"v1.o.0"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "expected_active") {
		t.Errorf("REST rollback with a malformed expected_active: %d %s; want 400 naming the field", code, body)
	}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, stale int
	)
	for range 50 {
		wg.Go(func() {
			code, _, body := e.call(t, "POST", "/v1/models:rollback", `{"expected_active":"v1.4.0","reason":"click"}`)
			mu.Lock()
			defer mu.Unlock()
			switch code {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				stale++
			default:
				t.Errorf("rollback click: %d %s", code, body)
			}
		})
	}
	wg.Wait()
	if ok != 1 || stale != 49 {
		t.Errorf("50 rollbacks expecting v1.4.0: %d moved, %d refused; want 1 and 49", ok, stale)
	}
	e.checkServes(t, "v1.3.0", nil)
}

// TestHistoryPaging pages GET /v1/models/history newest first with tokens
// and filters by action.
func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	e := newRegEnv(t)
	for i := range 5 {
		e.register(t, fmt.Sprintf("v1.%d.0", i+2), int64(80+i))
	}
	var seqs []uint64
	token := ""
	for range 10 {
		var page recommendationv1.GetHistoryResponse
		e.callOK(t, "GET", "/v1/models/history?page_size=3&page_token="+token, "", &page)
		for _, en := range page.GetEntries() {
			seqs = append(seqs, en.GetSeq())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	// 2 seed events and 5 registrations: seq 7..1, newest first.
	if fmt.Sprint(seqs) != "[7 6 5 4 3 2 1]" {
		t.Errorf("paged seqs %v; want [7 6 5 4 3 2 1]", seqs)
	}
	var regs recommendationv1.GetHistoryResponse
	e.callOK(t, "GET", "/v1/models/history?action=register&major=1", "", &regs)
	if n := len(regs.GetEntries()); n != 6 {
		t.Errorf("register entries of major 1: %d; want 6", n)
	}
	for _, bad := range []string{"page_size=5000", "page_token=xyz", "action=delete"} {
		if code, _, body := e.call(t, "GET", "/v1/models/history?"+bad, ""); code != http.StatusBadRequest {
			t.Errorf("GET history?%s: %d %s; want 400", bad, code, body)
		}
	}
}

// TestRegisterOnFullDisk: registration on a full data directory answers
// ResourceExhausted / 507 naming the directory, and Predict goes on.
func TestRegisterOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=160k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	e := newRegEnvIn(t, dir)
	var lastCode int
	var lastBody []byte
	for i := range 60 {
		v := newRegVersion(t, fmt.Sprintf("v1.%d.0", i+2), int64(90+i))
		code, _, body := e.call(t, "POST", "/v1/models", registerBody(t, v.onnx, manifestJSON(t, v.man), "ci"))
		lastCode, lastBody = code, body
		if code != http.StatusOK {
			break
		}
	}
	var st struct{ Code int }
	_ = json.Unmarshal(lastBody, &st)
	if lastCode != http.StatusInsufficientStorage || !strings.Contains(string(lastBody), dir) || codes.Code(st.Code) != codes.ResourceExhausted {
		t.Fatalf("register on a full disk: %d %s; want 507, RESOURCE_EXHAUSTED, naming %s", lastCode, lastBody, dir)
	}
	e.checkServes(t, seedVersion, nil)
	// The refused write left the file whole.
	if err := e.store.Check(); err != nil {
		t.Errorf("registry after a full disk: %v", err)
	}
}
