package deploy

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeVar expands ${NAME:-default} and ${NAME} as docker-compose does with
// the variable unset.
var composeVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}`)

func expandUnset(s string) string {
	return composeVar.ReplaceAllString(s, "$1")
}

type composeFileT struct {
	Version  string                    `json:"version"`
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]any `json:"volumes"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       any               `json:"build"`
	Command     []string          `json:"command"`
	Ports       []string          `json:"ports"`
	Environment map[string]string `json:"environment"`
	Secrets     []string          `json:"secrets"`
	Volumes     []string          `json:"volumes"`
	Healthcheck struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod string   `json:"start_period"`
	} `json:"healthcheck"`
	ReadOnly        bool     `json:"read_only"`
	Tmpfs           []string `json:"tmpfs"`
	CapDrop         []string `json:"cap_drop"`
	SecurityOpt     []string `json:"security_opt"`
	StopSignal      string   `json:"stop_signal"`
	StopGracePeriod string   `json:"stop_grace_period"`
	DependsOn       []string `json:"depends_on"`
	Restart         string   `json:"restart"`
	Profiles        []string `json:"profiles"`
}

func TestCompose(t *testing.T) {
	var cf composeFileT
	readStrict(t, composeFile, &cf)
	api, ok := cf.Services["recommendation-api"]
	if !ok {
		t.Fatal("no service recommendation-api")
	}
	f := flags(api.Command)
	setting := func(flag, env string) string {
		if v, ok := f[flag]; ok {
			return v
		}
		return api.Environment[env]
	}
	httpPort := listenPort(t, "compose --http-addr", setting("http-addr", "RECO_HTTP_ADDR"))
	grpcPort := listenPort(t, "compose --grpc-addr", setting("grpc-addr", "RECO_GRPC_ADDR"))

	t.Run("PortsOnLoopback", func(t *testing.T) {
		published := map[int32]bool{}
		for _, p := range api.Ports {
			parts := strings.Split(expandUnset(p), ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("port %q publishes on %q by default; want 127.0.0.1:HOST:CONTAINER", p, expandUnset(p))
				continue
			}
			n, _ := strconv.Atoi(parts[2])
			published[int32(n)] = true
		}
		for _, p := range []int32{httpPort, grpcPort} {
			if !published[p] {
				t.Errorf("listener port %d is not published", p)
			}
		}
		for name, s := range cf.Services {
			for _, p := range s.Ports {
				if !strings.HasPrefix(expandUnset(p), "127.0.0.1:") {
					t.Errorf("service %s publishes %q beyond loopback by default", name, p)
				}
			}
		}
	})

	t.Run("TokenSecret", func(t *testing.T) {
		if len(api.Secrets) != 1 {
			t.Fatalf("secrets %v; want the token file", api.Secrets)
		}
		name := api.Secrets[0]
		if got, want := setting("token-file", "RECO_TOKEN_FILE"), "/run/secrets/"+name; got != want {
			t.Errorf("--token-file %q; the secret %q is mounted at %s", got, name, want)
		}
		s, ok := cf.Secrets[name]
		if !ok {
			t.Fatalf("secret %q is not defined", name)
		}
		file := expandUnset(s.File)
		if !sameFile(filepath.Join("..", file), tokensFile) {
			t.Errorf("secret %q defaults to %q; want the committed placeholder deploy/%s", name, file, tokensFile)
		}
		if setting("insecure-no-auth", "RECO_INSECURE_NO_AUTH") != "" {
			t.Error("compose runs with --insecure-no-auth")
		}
	})

	t.Run("DataVolume", func(t *testing.T) {
		data := setting("data-dir", "RECO_DATA_DIR")
		found := false
		for _, v := range api.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			if _, named := cf.Volumes[src]; named && strings.TrimSuffix(dst, ":rw") == data {
				found = true
			}
		}
		if data == "" || !found {
			t.Errorf("data dir %q is not a named volume (volumes %v)", data, api.Volumes)
		}
	})

	t.Run("Healthcheck", func(t *testing.T) {
		hc := api.Healthcheck.Test
		if len(hc) < 3 || hc[0] != "CMD" || hc[2] != "healthcheck" {
			t.Fatalf("healthcheck %v; want [CMD binary healthcheck ...]", hc)
		}
		if a := flags(hc)["http-addr"]; a != net.JoinHostPort("127.0.0.1", strconv.Itoa(int(httpPort))) {
			t.Errorf("healthcheck --http-addr %q; the server listens on %d", a, httpPort)
		}
	})

	t.Run("PrometheusScrapesMetrics", func(t *testing.T) {
		prom, ok := cf.Services["prometheus"]
		if !ok {
			t.Fatal("no prometheus service")
		}
		mounted := false
		for _, v := range prom.Volumes {
			if src, _, _ := strings.Cut(v, ":"); sameFile(filepath.Join("..", src), prometheusFile) {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("prometheus does not mount deploy/%s (volumes %v)", prometheusFile, prom.Volumes)
		}
		metricsPort := httpPort
		if a := setting("metrics-addr", "RECO_METRICS_ADDR"); a != "" {
			metricsPort = listenPort(t, "compose --metrics-addr", a)
		}
		want := fmt.Sprintf("recommendation-api:%d", metricsPort)
		var pc struct {
			ScrapeConfigs []struct {
				JobName       string `json:"job_name"`
				MetricsPath   string `json:"metrics_path"`
				StaticConfigs []struct {
					Targets []string `json:"targets"`
				} `json:"static_configs"`
			} `json:"scrape_configs"`
		}
		if err := yaml.Unmarshal([]byte(mustRead(t, prometheusFile)), &pc); err != nil {
			t.Fatal(err)
		}
		for _, sc := range pc.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				if slices.Contains(st.Targets, want) && (sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
					return
				}
			}
		}
		t.Errorf("%s scrapes no %s/metrics", prometheusFile, want)
	})
}

// TestComposeEtcdProfile: the optional profile "etcd" adds an etcd and a
// server whose --registry names it on the port it listens on, with the
// same token secret; the default services stay out of the profile; and
// docker-compose itself accepts the file with and without the profile.
func TestComposeEtcdProfile(t *testing.T) {
	var cf composeFileT
	readStrict(t, composeFile, &cf)
	etcd, ok := cf.Services["etcd"]
	if !ok {
		t.Fatal("no service etcd")
	}
	api, ok := cf.Services["recommendation-api-etcd"]
	if !ok {
		t.Fatal("no service recommendation-api-etcd")
	}
	for name, s := range cf.Services {
		inProfile := slices.Contains(s.Profiles, "etcd")
		if want := name == "etcd" || name == "recommendation-api-etcd"; inProfile != want {
			t.Errorf("service %s in profile etcd: %v; want %v", name, inProfile, want)
		}
	}
	f := flags(api.Command)
	reg := f["registry"]
	if !strings.HasPrefix(reg, "etcd://") {
		t.Fatalf("recommendation-api-etcd --registry %q; want etcd://HOST:PORT", reg)
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(reg, "etcd://"))
	if err != nil || host != "etcd" {
		t.Fatalf("--registry %q: want the etcd service's host:port (%v)", reg, err)
	}
	listens := flags(etcd.Command)["listen-client-urls"]
	if !strings.HasSuffix(listens, ":"+port) {
		t.Errorf("etcd listens on %q; the server dials port %s", listens, port)
	}
	if !slices.Contains(api.DependsOn, "etcd") {
		t.Errorf("recommendation-api-etcd depends on %v; want etcd", api.DependsOn)
	}
	if len(api.Secrets) != 1 || f["token-file"] != "/run/secrets/"+api.Secrets[0] || f["insecure-no-auth"] != "" {
		t.Errorf("recommendation-api-etcd: secrets %v, --token-file %q; want the token secret, and auth on", api.Secrets, f["token-file"])
	}
	if flags(etcd.Command)["auto-compaction-retention"] == "" {
		t.Error("etcd runs without --auto-compaction-retention: deleted models would never free space")
	}
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (Debian docker-compose): the file was not validated by it")
	}
	for _, args := range [][]string{{"config", "-q"}, {"--profile", "etcd", "config", "-q"}} {
		cmd := exec.Command(bin, append([]string{"-f", composeFile}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
}
