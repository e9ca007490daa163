package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	channelzsvc "google.golang.org/grpc/channelz/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	recommendationv1 "recommendation-api/api/proto/recommendation/v1"
	"recommendation-api/internal/auth"
	"recommendation-api/internal/transport"
)

// Tokens of the tests; each is long and distinct so a leak is findable.
const (
	operatorToken = "op-0f9e8d7c6b5a49382716ab"
	agentToken    = "ag-1a2b3c4d5e6f70819202cd"
	viewerToken   = "vw-9a8b7c6d5e4f30211203ef"
	wrongToken    = "xx-00000000000000000000zz"
	// revokedToken stands in the first token file only.
	revokedToken = "rv-5555aaaa5555aaaa5555bb"
)

const tokenFile = "# test tokens\n" +
	"alice operator " + operatorToken + "\n" +
	"node-pool agent " + agentToken + "\n" +
	"\n" +
	"grafana viewer " + viewerToken + "\n" +
	"old-ci operator " + revokedToken + "\n"

func writeTokens(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tokenStack(t *testing.T) (*stack, *auth.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, tokenFile)
	f, err := auth.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return newStack(t, stackOptions{tokens: f}), f, path
}

// TestAccessTable checks that every method of every service the server
// registers has a role, that the table names no method the server lacks,
// and that each application service reports health.
func TestAccessTable(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	if err := transport.CheckAccessTable(s.srv); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for svc, info := range s.srv.GetServiceInfo() {
		for _, m := range info.Methods {
			registered["/"+svc+"/"+m.Name] = true
		}
		if !strings.HasPrefix(svc, "grpc.") && !slices.Contains(transport.HealthServices, svc) {
			t.Errorf("service %s is registered but not in HealthServices", svc)
		}
	}
	for m := range transport.MethodRoles {
		if !registered[m] {
			t.Errorf("MethodRoles names %s, which the server does not register", m)
		}
	}

	// A service added without table entries is reported, and refused.
	extra := grpc.NewServer(transport.NewAuthenticator(nil).ServerOptions()...)
	channelzsvc.RegisterChannelzServiceToServer(extra)
	err := transport.CheckAccessTable(extra)
	if err == nil || !strings.Contains(err.Error(), "/grpc.channelz.v1.Channelz/GetTopChannels") {
		t.Errorf("CheckAccessTable with channelz = %v; want it to name /grpc.channelz.v1.Channelz/GetTopChannels", err)
	}
}

// caller is who calls: a token and the role it carries.
type caller struct {
	name  string
	token string
	role  auth.Role // Public for no valid token
}

var callers = []caller{
	{"NoToken", "", auth.Public},
	{"WrongToken", wrongToken, auth.Public},
	{"Viewer", viewerToken, auth.Viewer},
	{"Agent", agentToken, auth.Agent},
	{"Operator", operatorToken, auth.Operator},
}

// invoke calls method with an empty request over conn and returns the
// status code of the call (a stream's first message or error).
func invoke(ctx context.Context, conn *grpc.ClientConn, method string, info grpc.MethodInfo) codes.Code {
	if !info.IsClientStream && !info.IsServerStream {
		return status.Code(conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: info.IsClientStream, ServerStreams: info.IsServerStream}, method)
	if err != nil {
		return status.Code(err)
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil {
		return status.Code(st.RecvMsg(&emptypb.Empty{}))
	}
	_ = st.CloseSend()
	return status.Code(st.RecvMsg(&emptypb.Empty{}))
}

// TestAuthEveryMethod calls every registered method as every caller over
// gRPC: public methods answer anyone; the others refuse a missing or
// unknown token (Unauthenticated), refuse a role below the table's
// (PermissionDenied), and run for the table's role and above. No token
// reaches the logs.
func TestAuthEveryMethod(t *testing.T) {
	t.Parallel()
	s, _, _ := tokenStack(t)
	conn := s.dial(t, nil)
	for svc, info := range s.srv.GetServiceInfo() {
		for _, m := range info.Methods {
			method := "/" + svc + "/" + m.Name
			need := transport.MethodRoles[method]
			for _, c := range callers {
				got := invoke(bearer(t, c.token), conn, method, m)
				switch {
				case need == auth.Public:
					if got == codes.Unauthenticated || got == codes.PermissionDenied {
						t.Errorf("%s as %s = %v; want a public method to answer anyone", method, c.name, got)
					}
				case c.role == auth.Public:
					if got != codes.Unauthenticated {
						t.Errorf("%s as %s = %v; want Unauthenticated", method, c.name, got)
					}
				case !c.role.Allows(need):
					if got != codes.PermissionDenied {
						t.Errorf("%s as %s = %v; want PermissionDenied (needs %v)", method, c.name, got, need)
					}
				default:
					if got == codes.Unauthenticated || got == codes.PermissionDenied {
						t.Errorf("%s as %s = %v; want the call to run (needs %v)", method, c.name, got, need)
					}
				}
			}
		}
	}
	checkNoTokens(t, s.logs.String())
}

func checkNoTokens(t *testing.T, logs string) {
	t.Helper()
	if logs == "" {
		t.Fatal("no logs captured")
	}
	for _, tok := range []string{operatorToken, agentToken, viewerToken, wrongToken, revokedToken} {
		if strings.Contains(logs, tok) {
			t.Errorf("the logs contain the token %s", tok)
		}
	}
}

// TestAuthMessages checks what a refused caller is told, over gRPC.
func TestAuthMessages(t *testing.T) {
	t.Parallel()
	s, _, _ := tokenStack(t)
	reg := recommendationv1.NewModelRegistryServiceClient(s.dial(t, nil))
	for _, c := range []struct {
		name, authz string
		code        codes.Code
		want        string
	}{
		{"NoToken", "", codes.Unauthenticated, "missing bearer token"},
		{"WrongScheme", "Basic " + operatorToken, codes.Unauthenticated, `want "Bearer <token>"`},
		{"EmptyBearer", "Bearer ", codes.Unauthenticated, `want "Bearer <token>"`},
		{"WrongToken", "Bearer " + wrongToken, codes.Unauthenticated, "invalid bearer token"},
		{"WrongRole", "Bearer " + viewerToken, codes.PermissionDenied, `needs role operator or higher; the token of "grafana" has role viewer`},
		{"LowercaseScheme", "bearer " + operatorToken, codes.NotFound, ""},
	} {
		ctx := bearer(t, "")
		if c.authz != "" {
			ctx = metadataCtx(ctx, c.authz)
		}
		_, err := reg.ActivateVersion(ctx, &recommendationv1.ActivateVersionRequest{Version: "v9.9.9"})
		if got := status.Code(err); got != c.code {
			t.Errorf("%s: code %v (%v); want %v", c.name, got, err, c.code)
		}
		if msg := status.Convert(err).Message(); !strings.Contains(msg, c.want) {
			t.Errorf("%s: message %q; want it to contain %q", c.name, msg, c.want)
		}
		for _, tok := range []string{operatorToken, viewerToken, wrongToken} {
			if strings.Contains(status.Convert(err).Message(), tok) {
				t.Errorf("%s: the message echoes the token", c.name)
			}
		}
	}
	// The call log names the token's owner, refused for its role or
	// served, and nobody for a token it does not know.
	actors := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var rec struct{ Msg, Method, Code, Actor string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "grpc call" && strings.HasSuffix(rec.Method, "/ActivateVersion") {
			actors[rec.Code] = append(actors[rec.Code], rec.Actor)
		}
	}
	for code, want := range map[string][]string{
		"PermissionDenied": {"grafana"},
		"NotFound":         {"alice"},
		"Unauthenticated":  {"", "", "", ""},
	} {
		if got := actors[code]; !slices.Equal(got, want) {
			t.Errorf("call log lines with code %s name actors %q; want %q", code, got, want)
		}
	}
	checkNoTokens(t, s.logs.String())
}

// TestAuthREST checks the same rules through the gateway: 401 with
// WWW-Authenticate for no or a wrong token, 403 for a wrong role, success
// for the right one, and no token for /healthz, /readyz and /openapi.json.
func TestAuthREST(t *testing.T) {
	t.Parallel()
	s, _, _ := tokenStack(t)
	for _, c := range []struct {
		name, method, path, authz, body string
		want                            int
	}{
		{"PredictNoToken", "POST", "/v1/predict", "", predictBody, http.StatusUnauthorized},
		{"PredictWrongToken", "POST", "/v1/predict", "Bearer " + wrongToken, predictBody, http.StatusUnauthorized},
		{"PredictBasic", "POST", "/v1/predict", "Basic " + agentToken, predictBody, http.StatusUnauthorized},
		{"PredictViewer", "POST", "/v1/predict", "Bearer " + viewerToken, predictBody, http.StatusForbidden},
		{"PredictAgent", "POST", "/v1/predict", "Bearer " + agentToken, predictBody, http.StatusOK},
		{"PredictOperator", "POST", "/v1/predict", "Bearer " + operatorToken, predictBody, http.StatusOK},
		{"ListNoToken", "GET", "/v1/models", "", "", http.StatusUnauthorized},
		{"ListViewer", "GET", "/v1/models", "Bearer " + viewerToken, "", http.StatusOK},
		{"DownloadViewer", "GET", "/v1/models/v1.1.0:download", "Bearer " + viewerToken, "", http.StatusForbidden},
		{"DownloadAgent", "GET", "/v1/models/v1.1.0:download", "Bearer " + agentToken, "", http.StatusOK},
		{"ActivateAgent", "POST", "/v1/models/v1.1.0:activate", "Bearer " + agentToken, "{}", http.StatusForbidden},
		{"ActivateOperator", "POST", "/v1/models/v1.1.0:activate", "Bearer " + operatorToken, "{}", http.StatusOK},
		{"RollbackViewer", "POST", "/v1/models:rollback", "Bearer " + viewerToken, "{}", http.StatusForbidden},
		{"JobsNoToken", "GET", "/v1/training-jobs", "", "", http.StatusUnauthorized},
		{"JobsViewer", "GET", "/v1/training-jobs", "Bearer " + viewerToken, "", http.StatusOK},
		{"WatchNoToken", "GET", "/v1/training-jobs/job-00000001:watch", "", "", http.StatusUnauthorized},
		{"WatchViewer", "GET", "/v1/training-jobs/job-99999999:watch", "Bearer " + viewerToken, "", http.StatusNotFound},
		{"StartTrainingAgent", "POST", "/v1/training-jobs", "Bearer " + agentToken, "{}", http.StatusForbidden},
		{"Healthz", "GET", "/healthz", "", "", http.StatusOK},
		{"Readyz", "GET", "/readyz", "", "", http.StatusOK},
		{"OpenAPI", "GET", "/openapi.json", "", "", http.StatusOK},
		{"MetricsNoToken", "GET", "/metrics", "", "", http.StatusUnauthorized},
		{"MetricsWrongToken", "GET", "/metrics", "Bearer " + wrongToken, "", http.StatusUnauthorized},
		{"MetricsViewer", "GET", "/metrics", "Bearer " + viewerToken, "", http.StatusOK},
	} {
		code, h, body := s.rest(t, nil, c.method, c.path, c.authz, c.body)
		if code != c.want {
			t.Errorf("%s: %s %s = %d %s; want %d", c.name, c.method, c.path, code, body, c.want)
		}
		if code == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer (got %q)", c.name, h.Get("WWW-Authenticate"))
		}
		if code != http.StatusUnauthorized && h.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d with WWW-Authenticate %q", c.name, code, h.Get("WWW-Authenticate"))
		}
	}
	checkNoTokens(t, s.logs.String())
}

func metadataCtx(ctx context.Context, authz string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", authz)
}

// TestTokenReload checks that a reloaded file takes effect on the running
// server: a removed token is refused, an added one accepted, and a bad file
// keeps the tokens that were in force.
func TestTokenReload(t *testing.T) {
	t.Parallel()
	s, f, path := tokenStack(t)
	conn := s.dial(t, nil)
	reg := recommendationv1.NewModelRegistryServiceClient(conn)
	list := func(token string) codes.Code {
		_, err := reg.ListVersions(bearer(t, token), &recommendationv1.ListVersionsRequest{})
		return status.Code(err)
	}
	if got := list(revokedToken); got != codes.OK {
		t.Fatalf("ListVersions with the token to revoke = %v; want OK", got)
	}
	const newToken = "nw-77778888999900001111aa"
	writeTokens(t, path, strings.Replace(tokenFile, "old-ci operator "+revokedToken, "new-ci operator "+newToken, 1))
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := list(revokedToken); got != codes.Unauthenticated {
		t.Errorf("revoked token after reload = %v; want Unauthenticated", got)
	}
	if got := list(newToken); got != codes.OK {
		t.Errorf("added token after reload = %v; want OK", got)
	}
	code, _, _ := s.rest(t, nil, "GET", "/v1/models", "Bearer "+newToken, "")
	if code != http.StatusOK {
		t.Errorf("added token over REST = %d; want 200", code)
	}

	writeTokens(t, path, "new-ci superuser "+newToken+"\n")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), ":1:") || strings.Contains(err.Error(), newToken) {
		t.Errorf("bad reload = %v; want an error naming line 1 without the token", err)
	}
	if got := list(newToken); got != codes.OK {
		t.Errorf("after a bad reload = %v; want the previous tokens kept", got)
	}
}

// TestActorIsTheToken checks that the history records the token's name as
// the actor, over gRPC and REST, that a request naming someone else is
// refused and changes nothing, and that X-Forwarded-For changes nothing.
func TestActorIsTheToken(t *testing.T) {
	t.Parallel()
	s, _, _ := tokenStack(t)
	reg := recommendationv1.NewModelRegistryServiceClient(s.dial(t, nil))
	train := recommendationv1.NewTrainingServiceClient(s.dial(t, nil))

	v110 := newRegVersion(t, "v1.2.0", 11)
	if _, err := reg.RegisterVersion(bearer(t, operatorToken), registerRequest(t, v110.onnx, v110.man, "", "grpc register")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ActivateVersion(bearer(t, operatorToken), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Reason: "grpc, no actor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ActivateVersion(bearer(t, operatorToken), &recommendationv1.ActivateVersionRequest{Version: "v1.1.0", Actor: "alice", Reason: "grpc, own name"}); err != nil {
		t.Fatal(err)
	}
	before, err := s.store.History()
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.ActivateVersion(bearer(t, operatorToken), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "mallory"})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), `"mallory" is not the caller`) {
		t.Errorf("activate claiming another actor = %v; want PermissionDenied naming the claim", err)
	}
	code, _, body := s.rest(t, nil, "POST", "/v1/models:rollback", "Bearer "+operatorToken, `{"actor":"mallory"}`)
	if code != http.StatusForbidden {
		t.Errorf("REST rollback claiming another actor = %d %s; want 403", code, body)
	}
	_, err = train.StartTraining(bearer(t, operatorToken), &recommendationv1.StartTrainingRequest{Actor: "mallory"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("StartTraining claiming another actor = %v; want PermissionDenied", err)
	}
	if after, _ := s.store.History(); len(after) != len(before) {
		t.Errorf("refused claims changed the history: %d events, then %d", len(before), len(after))
	}

	req, err := http.NewRequest("POST", s.restURL+"/v1/models/v1.2.0:activate", strings.NewReader(`{"reason":"rest"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	req.Header.Set("X-Forwarded-For", "10.9.8.7, mallory")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST activate = %d", resp.StatusCode)
	}

	evs, err := s.store.History()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		if ev.Actor != "system" {
			got = append(got, ev.Action+" by "+ev.Actor+": "+ev.Reason)
		}
	}
	slices.Sort(got) // the order is not what is tested
	want := []string{"activate by alice: grpc, no actor", "activate by alice: grpc, own name", "activate by alice: rest", "register by alice: grpc register"}
	if !slices.Equal(got, want) {
		t.Errorf("history actors %q; want %q", got, want)
	}

	job, err := train.StartTraining(bearer(t, operatorToken), &recommendationv1.StartTrainingRequest{Samples: 2000, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a := job.GetJob().GetParams().GetActor(); a != "alice" {
		t.Errorf("training job actor %q; want alice, the token's name", a)
	}
}

// TestActorWithoutAuth checks the development mode: no token, every caller
// an operator; the request's actor is recorded, "anonymous" when empty,
// never the X-Forwarded-For address.
func TestActorWithoutAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	reg := recommendationv1.NewModelRegistryServiceClient(s.dial(t, nil))
	v110 := newRegVersion(t, "v1.2.0", 11)
	if _, err := reg.RegisterVersion(bearer(t, ""), registerRequest(t, v110.onnx, v110.man, "", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ActivateVersion(bearer(t, ""), &recommendationv1.ActivateVersionRequest{Version: "v1.2.0", Actor: "dev"}); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", s.restURL+"/v1/models/v1.1.0:activate", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "10.9.8.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST activate without auth = %d", resp.StatusCode)
	}
	evs, err := s.store.History()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs[len(evs)-2:] {
		got = append(got, ev.Actor)
	}
	if want := []string{"dev", "anonymous"}; !slices.Equal(got, want) {
		t.Errorf("actors %q; want %q", got, want)
	}
	code, _, _ := s.rest(t, nil, "GET", "/metrics", "", "")
	if code != http.StatusOK {
		t.Errorf("/metrics without auth = %d; want 200", code)
	}
}
