package deploy

import (
	"encoding/json"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerInstr is one instruction of a Dockerfile's last stage.
type dockerInstr struct{ cmd, args string }

// finalStage reads the Dockerfile's last stage, continuation lines joined.
func finalStage(t *testing.T) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			out = nil
		}
		out = append(out, dockerInstr{cmd, strings.TrimSpace(args)})
	}
	return out
}

func lastInstr(stage []dockerInstr, cmd string) (string, bool) {
	for i := len(stage) - 1; i >= 0; i-- {
		if stage[i].cmd == cmd {
			return stage[i].args, true
		}
	}
	return "", false
}

// execForm decodes ["a", "b"].
func execForm(t *testing.T, what, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("Dockerfile %s %s: want the exec (JSON) form: %v", what, s, err)
	}
	return v
}

// imageUser is the final stage's USER, which must be a numeric uid (or
// uid:gid): Kubernetes' runAsNonRoot cannot check a user name.
func imageUser(t *testing.T) int {
	t.Helper()
	u, ok := lastInstr(finalStage(t), "USER")
	if !ok {
		t.Fatal("Dockerfile: the final stage sets no USER, so it runs as root")
	}
	name, _, _ := strings.Cut(u, ":")
	uid, err := strconv.Atoi(name)
	if err != nil {
		t.Fatalf("Dockerfile USER %q: want a numeric uid so runAsNonRoot can verify it", u)
	}
	if uid == 0 {
		t.Fatal("Dockerfile USER is root")
	}
	return uid
}

func TestDockerfile(t *testing.T) {
	stage := finalStage(t)
	if from, _ := lastInstr(stage, "FROM"); !strings.HasPrefix(from, "debian:") || !strings.Contains(from, "-slim") {
		t.Errorf("final stage FROM %q; want a Debian slim image", from)
	}
	imageUser(t)

	entry, _ := lastInstr(stage, "ENTRYPOINT")
	cmd, _ := lastInstr(stage, "CMD")
	argv := append(execForm(t, "ENTRYPOINT", entry), execForm(t, "CMD", cmd)...)
	f := flags(argv)
	httpPort := listenPort(t, "Dockerfile CMD --http-addr", f["http-addr"])
	grpcPort := listenPort(t, "Dockerfile CMD --grpc-addr", f["grpc-addr"])

	var exposed []int32
	for _, in := range stage {
		if in.cmd != "EXPOSE" {
			continue
		}
		for _, p := range strings.Fields(in.args) {
			n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			if err != nil {
				t.Fatalf("EXPOSE %q", p)
			}
			exposed = append(exposed, int32(n))
		}
	}
	for _, p := range []int32{httpPort, grpcPort} {
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE %v lacks the listener port %d", exposed, p)
		}
	}

	hc, ok := lastInstr(stage, "HEALTHCHECK")
	if !ok {
		t.Fatal("no HEALTHCHECK")
	}
	_, probe, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	hargv := execForm(t, "HEALTHCHECK CMD", probe)
	if len(hargv) < 2 || hargv[0] != execForm(t, "ENTRYPOINT", entry)[0] || hargv[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK runs %v; want the binary's healthcheck subcommand", hargv)
	}
	if a := flags(hargv)["http-addr"]; a != net.JoinHostPort("127.0.0.1", strconv.Itoa(int(httpPort))) {
		t.Errorf("HEALTHCHECK --http-addr %q; the server listens on port %d", a, httpPort)
	}

	env := map[string]string{}
	for _, in := range stage {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		}
	}
	workdir, _ := lastInstr(stage, "WORKDIR")
	volume, _ := lastInstr(stage, "VOLUME")
	if vols := execForm(t, "VOLUME", volume); !slices.Equal(vols, []string{workdir}) || env["RECO_DATA_DIR"] != workdir {
		t.Errorf("WORKDIR %q, VOLUME %v, RECO_DATA_DIR %q: want the working directory to be the data volume and nothing else", workdir, vols, env["RECO_DATA_DIR"])
	}
	lib := env["ONNXRUNTIME_LIB"]
	copied := false
	for _, in := range stage {
		if fs := strings.Fields(in.args); in.cmd == "COPY" && len(fs) > 0 && fs[len(fs)-1] == lib {
			copied = true
		}
	}
	if lib == "" || !copied {
		t.Errorf("ONNXRUNTIME_LIB %q is not a file the final stage copies in", lib)
	}
	text := mustRead(t, dockerfile)
	if strings.Contains(text, "nodefaultmodel") {
		t.Error("the Dockerfile builds with the tag nodefaultmodel: the image would have no model to serve on first start")
	}
	if !strings.Contains(text, "scripts/install-onnxruntime.sh") {
		t.Error("the Dockerfile does not fetch ONNX Runtime with scripts/install-onnxruntime.sh (which verifies its sha256)")
	}
}
