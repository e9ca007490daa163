package deploy

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The replicated variant: several replicas, the registry in etcd.
const (
	replicatedDir        = "kubernetes/replicated"
	replicatedDeployment = replicatedDir + "/deployment.yaml"
	replicatedService    = replicatedDir + "/service.yaml"
	replicatedPDB        = replicatedDir + "/pdb.yaml"
	replicatedKustomize  = replicatedDir + "/kustomization.yaml"
)

// TestReplicatedDeployment: the replicated manifests decode strictly into
// the Kubernetes types; several replicas roll one at a time with no state
// on a volume and --registry naming etcd endpoints; the etcd client
// certificate files are in a mounted Secret; the Service, the budget and
// the kustomization fit the Deployment.
func TestReplicatedDeployment(t *testing.T) {
	var (
		d   appsv1.Deployment
		svc corev1.Service
		pdb policyv1.PodDisruptionBudget
	)
	readStrict(t, replicatedDeployment, &d)
	readStrict(t, replicatedService, &svc)
	readStrict(t, replicatedPDB, &pdb)
	if d.Kind != "Deployment" || svc.Kind != "Service" || pdb.Kind != "PodDisruptionBudget" {
		t.Fatalf("kinds %q %q %q", d.Kind, svc.Kind, pdb.Kind)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("want one container")
	}
	c := &d.Spec.Template.Spec.Containers[0]
	f := flags(c.Args)
	pod := &d.Spec.Template.Spec

	t.Run("SeveralReplicasRolling", func(t *testing.T) {
		if r := d.Spec.Replicas; r == nil || *r < 3 {
			t.Errorf("replicas %v; want at least 3", r)
		}
		st := d.Spec.Strategy
		if st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil ||
			st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.IntValue() != 0 {
			t.Errorf("strategy %+v; want RollingUpdate with maxUnavailable 0", st)
		}
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil {
				t.Errorf("volume %q is a PersistentVolumeClaim; replicas keep no state of their own", v.Name)
			}
		}
		if a := pod.Affinity; a == nil || a.PodAntiAffinity == nil {
			t.Error("no pod anti-affinity: the replicas may share a node")
		}
	})

	t.Run("RegistryInEtcd", func(t *testing.T) {
		reg := serverSetting(c, f, "registry", "RECO_REGISTRY")
		list, ok := strings.CutPrefix(reg, "etcd://")
		if !ok {
			t.Fatalf("--registry %q; want etcd://HOST:PORT[,HOST:PORT...]", reg)
		}
		eps := strings.Split(list, ",")
		if len(eps)%2 == 0 {
			t.Errorf("%d etcd endpoints; an etcd cluster has an odd number of members", len(eps))
		}
		for _, ep := range eps {
			if h, p, err := net.SplitHostPort(ep); err != nil || h == "" || p == "" {
				t.Errorf("endpoint %q is not HOST:PORT", ep)
			}
		}
		if serverSetting(c, f, "data-dir", "RECO_DATA_DIR") != "" {
			t.Error("--data-dir is set; in etcd mode nothing lives there")
		}
		name := ""
		for _, e := range c.Env {
			if e.Name == "RECO_REPLICA_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				name = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if name != "metadata.name" && f["replica-name"] == "" {
			t.Errorf("the replica's name is not the pod's (RECO_REPLICA_NAME from %q)", name)
		}
	})

	t.Run("SecretFilesMounted", func(t *testing.T) {
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = v
		}
		for _, s := range []struct{ flag, env string }{
			{"token-file", "RECO_TOKEN_FILE"}, {"tls-cert", "RECO_TLS_CERT"}, {"tls-key", "RECO_TLS_KEY"},
			{"etcd-ca", "RECO_ETCD_CA"}, {"etcd-cert", "RECO_ETCD_CERT"}, {"etcd-key", "RECO_ETCD_KEY"},
		} {
			file := serverSetting(c, f, s.flag, s.env)
			if file == "" {
				t.Errorf("--%s is not set", s.flag)
				continue
			}
			vm, v := mountOf(c, volumes, file)
			if v == nil || v.Secret == nil || !vm.ReadOnly {
				t.Errorf("--%s %s is not in a Secret mounted read-only", s.flag, file)
				continue
			}
			rel, _ := filepath.Rel(vm.MountPath, file)
			found := false
			for _, it := range v.Secret.Items {
				found = found || it.Path == rel
			}
			if !found {
				t.Errorf("--%s %s: Secret volume %q maps no key to %q", s.flag, file, vm.Name, rel)
			}
			if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
				t.Errorf("--%s: Secret volume %q mode %v; want no access for others", s.flag, vm.Name, mode)
			}
		}
		if f["insecure-no-auth"] != "" {
			t.Error("--insecure-no-auth in a deployment")
		}
	})

	t.Run("ServiceAndProbes", func(t *testing.T) {
		if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			containerPort(t, c, target, "Service port "+sp.Name)
		}
		httpPort := listenPort(t, "--http-addr", serverSetting(c, f, "http-addr", "RECO_HTTP_ADDR"))
		for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("no %s httpGet probe", name)
				continue
			}
			if cp := containerPort(t, c, p.HTTPGet.Port, name); cp.ContainerPort != httpPort {
				t.Errorf("%s probe on %d; want the REST port %d", name, cp.ContainerPort, httpPort)
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness path %q; want /readyz", c.ReadinessProbe.HTTPGet.Path)
		}
	})

	t.Run("DisruptionBudget", func(t *testing.T) {
		if pdb.Spec.Selector == nil || !subset(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || len(pdb.Spec.Selector.MatchLabels) == 0 {
			t.Errorf("budget selector %v does not select the pods", pdb.Spec.Selector)
		}
		if m := pdb.Spec.MinAvailable; m == nil || m.IntValue() < 1 || int32(m.IntValue()) >= *d.Spec.Replicas {
			t.Errorf("minAvailable %v; want between 1 and replicas-1", m)
		}
	})

	t.Run("Kustomization", func(t *testing.T) {
		b, err := os.ReadFile(replicatedKustomize)
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"deployment.yaml", "service.yaml", "pdb.yaml"} {
			if !slices.Contains(k.Resources, f) {
				t.Errorf("kustomization.yaml resources %v lack %s", k.Resources, f)
			}
		}
	})
}
