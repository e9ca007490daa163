package deploy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"recommendation-api/internal/serving"
	"recommendation-api/internal/transport"
)

// The files under test, relative to this directory.
const (
	deploymentFile     = "kubernetes/deployment.yaml"
	serviceFile        = "kubernetes/service.yaml"
	pvcFile            = "kubernetes/pvc.yaml"
	secretFile         = "kubernetes/secret.example.yaml"
	serviceMonitorFile = "kubernetes/servicemonitor.yaml"
	kustomizationFile  = "kubernetes/kustomization.yaml"
	prometheusFile     = "prometheus.yml"
	tokensFile         = "tokens.example"
	composeFile        = "../docker-compose.yml"
	dockerfile         = "../Dockerfile"
)

// readStrict decodes a one-object YAML file into v; a field the type does
// not have (a misspelt key) is an error, as kubectl's strict validation is.
func readStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

type manifests struct {
	deploy  appsv1.Deployment
	svc     corev1.Service
	pvc     corev1.PersistentVolumeClaim
	secret  corev1.Secret
	monitor serviceMonitor
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// manifest uses (the operator's Go module is too large a dependency for it).
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Scheme   string `json:"scheme"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	readStrict(t, deploymentFile, &m.deploy)
	readStrict(t, serviceFile, &m.svc)
	readStrict(t, pvcFile, &m.pvc)
	readStrict(t, secretFile, &m.secret)
	readStrict(t, serviceMonitorFile, &m.monitor)
	for _, c := range []struct{ file, got, want string }{
		{deploymentFile, m.deploy.Kind, "Deployment"},
		{serviceFile, m.svc.Kind, "Service"},
		{pvcFile, m.pvc.Kind, "PersistentVolumeClaim"},
		{secretFile, m.secret.Kind, "Secret"},
		{serviceMonitorFile, m.monitor.Kind, "ServiceMonitor"},
	} {
		if c.got != c.want {
			t.Fatalf("%s: kind %q; want %q", c.file, c.got, c.want)
		}
	}
	if n := len(m.deploy.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%s: %d containers; want 1", deploymentFile, n)
	}
	return m
}

func (m *manifests) container() *corev1.Container { return &m.deploy.Spec.Template.Spec.Containers[0] }

// flags reads a command line's --name=value and --name value flags.
func flags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(a, "="); ok {
			out[k] = v
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out[k] = args[i+1]
			i++
		} else {
			out[k] = "true"
		}
	}
	return out
}

// serverSetting is a serve flag from the command line or its RECO_* twin.
func serverSetting(c *corev1.Container, f map[string]string, flag, env string) string {
	if v, ok := f[flag]; ok {
		return v
	}
	for _, e := range c.Env {
		if e.Name == env {
			return e.Value
		}
	}
	return ""
}

// listenPort checks that addr binds every interface explicitly (a bare ":8080"
// would work too, but says less) and returns its port.
func listenPort(t *testing.T, what, addr string) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	if host != "0.0.0.0" {
		t.Errorf("%s %q binds %q; want 0.0.0.0 inside a container", what, addr, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		t.Fatalf("%s %q: bad port", what, addr)
	}
	return int32(p)
}

// containerPort resolves a probe's or Service's port (name or number) to the
// container's port, failing when the container has no such port.
func containerPort(t *testing.T, c *corev1.Container, p intstr.IntOrString, what string) corev1.ContainerPort {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp
		}
	}
	t.Fatalf("%s points at port %s, which the container does not declare", what, p.String())
	return corev1.ContainerPort{}
}

// gatewayServer is the REST handler exactly as the server builds it, with a
// model manager that has loaded no version yet.
func gatewayServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	models := serving.NewManager(serving.Options{})
	t.Cleanup(models.Close)
	// Nothing listens here: /healthz and /readyz must not need the gRPC side.
	h, err := transport.NewGateway(ctx, "127.0.0.1:1", transport.GatewayOptions{Models: transport.ModelsOf(models)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestDeployment(t *testing.T) {
	m := load(t)
	c := m.container()
	f := flags(c.Args)
	pod := &m.deploy.Spec.Template.Spec

	httpPort := listenPort(t, "--http-addr", serverSetting(c, f, "http-addr", "RECO_HTTP_ADDR"))
	grpcPort := listenPort(t, "--grpc-addr", serverSetting(c, f, "grpc-addr", "RECO_GRPC_ADDR"))
	listen := map[int32]string{httpPort: "http-addr", grpcPort: "grpc-addr"}
	metricsPort := httpPort // empty --metrics-addr: /metrics on the REST port
	if a := serverSetting(c, f, "metrics-addr", "RECO_METRICS_ADDR"); a != "" {
		metricsPort = listenPort(t, "--metrics-addr", a)
		listen[metricsPort] = "metrics-addr"
	}
	tls := serverSetting(c, f, "tls-cert", "RECO_TLS_CERT") != ""

	t.Run("OneReplicaRecreate", func(t *testing.T) {
		if r := m.deploy.Spec.Replicas; r == nil || *r != 1 {
			t.Errorf("replicas %v; want 1 (the bbolt registry is one process's file)", r)
		}
		if s := m.deploy.Spec.Strategy.Type; s != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("strategy %q; want Recreate: a second pod cannot open the registry while the first holds it", s)
		}
		if !slices.Equal(m.pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("PVC access modes %v; want [ReadWriteOnce]", m.pvc.Spec.AccessModes)
		}
		if _, ok := m.pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			t.Error("PVC requests no storage")
		}
		sel := m.deploy.Spec.Selector
		if sel == nil || len(sel.MatchLabels) == 0 || !subset(sel.MatchLabels, m.deploy.Spec.Template.Labels) {
			t.Errorf("selector %v does not select the pod template's labels %v", sel, m.deploy.Spec.Template.Labels)
		}
	})

	t.Run("PortsMatchListeners", func(t *testing.T) {
		seen := map[int32]bool{}
		for _, cp := range c.Ports {
			if _, ok := listen[cp.ContainerPort]; !ok {
				t.Errorf("container port %s/%d is none of the server's listeners %v", cp.Name, cp.ContainerPort, listen)
			}
			if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP {
				t.Errorf("container port %s: protocol %s; want TCP", cp.Name, cp.Protocol)
			}
			seen[cp.ContainerPort] = true
		}
		for p, flag := range listen {
			if !seen[p] {
				t.Errorf("--%s port %d is not a container port", flag, p)
			}
		}
	})

	t.Run("ServiceReachesEveryPort", func(t *testing.T) {
		if !subset(m.svc.Spec.Selector, m.deploy.Spec.Template.Labels) || len(m.svc.Spec.Selector) == 0 {
			t.Errorf("Service selector %v does not select the pods (labels %v)", m.svc.Spec.Selector, m.deploy.Spec.Template.Labels)
		}
		reached := map[int32]bool{}
		for _, sp := range m.svc.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			cp := containerPort(t, c, target, "Service port "+sp.Name)
			if cp.Name != sp.Name {
				t.Errorf("Service port %q reaches container port %q; name them alike", sp.Name, cp.Name)
			}
			reached[cp.ContainerPort] = true
		}
		for _, cp := range c.Ports {
			if !reached[cp.ContainerPort] {
				t.Errorf("container port %s/%d is not in the Service", cp.Name, cp.ContainerPort)
			}
		}
	})

	t.Run("ProbesHitRealHandler", func(t *testing.T) {
		srv := gatewayServer(t)
		probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
		for _, name := range []string{"liveness", "readiness"} {
			if probes[name] == nil {
				t.Fatalf("no %s probe", name)
			}
		}
		for name, p := range probes {
			if p == nil {
				continue
			}
			switch {
			case p.HTTPGet != nil:
				g := p.HTTPGet
				if serverSetting(c, f, "tls-client-ca", "RECO_TLS_CLIENT_CA") != "" {
					t.Errorf("%s probe: with --tls-client-ca the kubelet cannot present a client certificate", name)
				}
				if cp := containerPort(t, c, g.Port, name+" probe"); cp.ContainerPort != httpPort {
					t.Errorf("%s probe on port %d; want the REST port %d", name, cp.ContainerPort, httpPort)
				}
				if want := map[bool]corev1.URIScheme{true: corev1.URISchemeHTTPS, false: corev1.URISchemeHTTP}[tls]; g.Scheme != want && !(g.Scheme == "" && want == corev1.URISchemeHTTP) {
					t.Errorf("%s probe scheme %q; want %q (TLS on the REST port: %v)", name, g.Scheme, want, tls)
				}
				resp, err := http.Get(srv.URL + g.Path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				// Readiness is 503 until a model serves; liveness must
				// answer 200 at once, whatever the model.
				ok := resp.StatusCode == http.StatusOK || (name == "readiness" && resp.StatusCode == http.StatusServiceUnavailable)
				if !ok {
					t.Errorf("%s probe GET %s: %s from the server's REST handler", name, g.Path, resp.Status)
				}
			case p.GRPC != nil:
				if p.GRPC.Port != grpcPort {
					t.Errorf("%s gRPC probe on port %d; want the gRPC port %d", name, p.GRPC.Port, grpcPort)
				}
				if tls {
					t.Errorf("%s gRPC probe: the kubelet's gRPC probe speaks no TLS, and the server has --tls-cert", name)
				}
			default:
				t.Errorf("%s probe is neither httpGet nor grpc", name)
			}
		}
	})

	t.Run("VolumesMatchMounts", func(t *testing.T) {
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = v
		}
		used := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("volume mount %q at %s has no volume", vm.Name, vm.MountPath)
			}
			used[vm.Name] = true
		}
		for name := range volumes {
			if !used[name] {
				t.Errorf("volume %q is mounted nowhere", name)
			}
		}
		data := serverSetting(c, f, "data-dir", "RECO_DATA_DIR")
		if data == "" {
			t.Fatal("no --data-dir: the registry would land in the image's working directory")
		}
		vm, v := mountOf(c, volumes, data)
		if v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != m.pvc.Name {
			t.Errorf("--data-dir %s is not on the PersistentVolumeClaim %q", data, m.pvc.Name)
		} else if vm.ReadOnly {
			t.Errorf("--data-dir %s is mounted read-only", data)
		}
	})

	t.Run("SecretFilesMounted", func(t *testing.T) {
		if f["insecure-no-auth"] != "" || serverSetting(c, f, "insecure-no-auth", "RECO_INSECURE_NO_AUTH") != "" {
			t.Error("--insecure-no-auth in a deployment")
		}
		if serverSetting(c, f, "token-file", "RECO_TOKEN_FILE") == "" {
			t.Fatal("no --token-file: the server would refuse to start, or run without auth")
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = v
		}
		for _, s := range []struct{ flag, env string }{
			{"token-file", "RECO_TOKEN_FILE"}, {"tls-cert", "RECO_TLS_CERT"}, {"tls-key", "RECO_TLS_KEY"}, {"tls-client-ca", "RECO_TLS_CLIENT_CA"},
		} {
			file := serverSetting(c, f, s.flag, s.env)
			if file == "" {
				continue
			}
			vm, v := mountOf(c, volumes, file)
			if v == nil || v.Secret == nil {
				t.Errorf("--%s %s is not in a mounted Secret", s.flag, file)
				continue
			}
			if !vm.ReadOnly {
				t.Errorf("--%s: Secret volume %q is mounted writable", s.flag, vm.Name)
			}
			rel, _ := filepath.Rel(vm.MountPath, file)
			key := ""
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			if key == "" {
				t.Errorf("--%s %s: Secret volume %q maps no key to %q (items %v)", s.flag, file, vm.Name, rel, v.Secret.Items)
				continue
			}
			if v.Secret.SecretName == m.secret.Name {
				if _, ok := m.secret.StringData[key]; !ok {
					t.Errorf("--%s: the example Secret %q has no key %q", s.flag, m.secret.Name, key)
				}
			}
			if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
				t.Errorf("--%s: Secret volume %q mode %v; want no access for others", s.flag, vm.Name, mode)
			}
		}
		if tokens, ok := m.secret.StringData["tokens"]; !ok {
			t.Errorf("example Secret has no key tokens")
		} else {
			checkTokens(t, secretFile, tokens)
		}
	})

	t.Run("NonRoot", func(t *testing.T) {
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Fatal("pod securityContext.runAsNonRoot is not true")
		}
		if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Fatal("pod securityContext.runAsUser is unset or 0")
		}
		if uid := imageUser(t); int64(uid) != *psc.RunAsUser {
			t.Errorf("runAsUser %d; the image's USER is %d", *psc.RunAsUser, uid)
		}
		if psc.FSGroup == nil || *psc.FSGroup != *psc.RunAsUser {
			t.Errorf("fsGroup %v; want %d so the volume and the Secrets are the server's", psc.FSGroup, *psc.RunAsUser)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("container allowPrivilegeEscalation is not false")
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("container readOnlyRootFilesystem is not true")
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Error("container capabilities do not drop ALL")
		}
	})

	t.Run("Resources", func(t *testing.T) {
		r := c.Resources
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := r.Requests[name]; !ok {
				t.Errorf("no %s request", name)
			}
		}
		lim, ok := r.Limits[corev1.ResourceMemory]
		if !ok {
			t.Fatal("no memory limit")
		}
		if req := r.Requests[corev1.ResourceMemory]; lim.Cmp(req) < 0 {
			t.Errorf("memory limit %s below request %s", lim.String(), req.String())
		}
	})

	t.Run("Scrape", func(t *testing.T) {
		a := m.deploy.Spec.Template.Annotations
		if a["prometheus.io/scrape"] != "true" {
			t.Errorf("prometheus.io/scrape %q; want \"true\"", a["prometheus.io/scrape"])
		}
		if a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
			t.Errorf("prometheus.io/port %q; the metrics listener is on %d", a["prometheus.io/port"], metricsPort)
		}
		if a["prometheus.io/path"] != "/metrics" {
			t.Errorf("prometheus.io/path %q; want /metrics", a["prometheus.io/path"])
		}
		sm := m.monitor
		if sm.APIVersion != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor apiVersion %q", sm.APIVersion)
		}
		if len(sm.Spec.Selector.MatchLabels) == 0 || !subset(sm.Spec.Selector.MatchLabels, m.svc.Labels) {
			t.Errorf("ServiceMonitor selects %v; the Service's labels are %v", sm.Spec.Selector.MatchLabels, m.svc.Labels)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Fatal("ServiceMonitor has no endpoints")
		}
		for _, e := range sm.Spec.Endpoints {
			var port *corev1.ServicePort
			for i := range m.svc.Spec.Ports {
				if m.svc.Spec.Ports[i].Name == e.Port {
					port = &m.svc.Spec.Ports[i]
				}
			}
			if port == nil {
				t.Errorf("ServiceMonitor endpoint port %q is not a Service port name", e.Port)
				continue
			}
			if cp := containerPort(t, c, port.TargetPort, "Service port "+port.Name); cp.ContainerPort != metricsPort {
				t.Errorf("ServiceMonitor scrapes container port %d; the metrics listener is on %d", cp.ContainerPort, metricsPort)
			}
			if e.Path != "/metrics" {
				t.Errorf("ServiceMonitor path %q; want /metrics", e.Path)
			}
		}
	})

	t.Run("Kustomization", func(t *testing.T) {
		var k struct {
			APIVersion string   `json:"apiVersion"`
			Kind       string   `json:"kind"`
			Resources  []string `json:"resources"`
			Images     []struct {
				Name    string `json:"name"`
				NewName string `json:"newName"`
				NewTag  string `json:"newTag"`
			} `json:"images"`
		}
		readStrict(t, kustomizationFile, &k)
		for _, want := range []string{deploymentFile, serviceFile, pvcFile} {
			if !slices.Contains(k.Resources, path.Base(want)) {
				t.Errorf("%s does not list %s", kustomizationFile, path.Base(want))
			}
		}
		for _, r := range k.Resources {
			if _, err := os.Stat(filepath.Join(filepath.Dir(kustomizationFile), r)); err != nil {
				t.Errorf("%s: %v", kustomizationFile, err)
			}
			if r == path.Base(secretFile) {
				t.Errorf("%s applies the placeholder Secret", kustomizationFile)
			}
		}
		image, _, _ := strings.Cut(c.Image, ":")
		for _, im := range k.Images {
			if im.Name != image {
				t.Errorf("%s images: %q is not the container's image %q", kustomizationFile, im.Name, image)
			}
		}
	})
}

// mountOf finds the volume mount (and its volume) that holds file.
func mountOf(c *corev1.Container, volumes map[string]corev1.Volume, file string) (corev1.VolumeMount, *corev1.Volume) {
	var best corev1.VolumeMount
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(path.Clean(file)+"/", path.Clean(vm.MountPath)+"/") && len(vm.MountPath) > len(best.MountPath) {
			best = vm
		}
	}
	v, ok := volumes[best.Name]
	if !ok {
		return best, nil
	}
	return best, &v
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkTokens checks a token file's format (lines "name role token") and that
// every token in a committed example says it is a placeholder.
func checkTokens(t *testing.T, file, text string) {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		n++
		if len(fields) != 3 {
			t.Errorf("%s:%d: %d fields; want \"name role token\"", file, line, len(fields))
			continue
		}
		if !slices.Contains([]string{"operator", "agent", "viewer"}, fields[1]) {
			t.Errorf("%s:%d: role %q; want operator, agent or viewer", file, line, fields[1])
		}
		if !strings.Contains(fields[2], "PLACEHOLDER") {
			t.Errorf("%s:%d: a committed token that does not say PLACEHOLDER", file, line)
		}
	}
	if n == 0 {
		t.Errorf("%s: no tokens", file)
	}
}

func TestTokensExample(t *testing.T) {
	b, err := os.ReadFile(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	checkTokens(t, tokensFile, string(b))
}

// sameFile reports whether two paths relative to this directory name the same file.
func sameFile(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

func mustRead(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
