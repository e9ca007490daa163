package transport_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEdgeDependsOnDomainOnly keeps the API edge free of the storage,
// runtime and training adapters: its interfaces take domain types, so it
// builds without cgo and links neither bbolt, ONNX Runtime nor plotting.
func TestEdgeDependsOnDomainOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	out, err := exec.Command("go", "list", "-deps", "recommendation-api/internal/transport").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"go.etcd.io/bbolt", "github.com/yalue/onnxruntime_go", "gonum.org/v1/plot",
		"recommendation-api/internal/registry", "recommendation-api/internal/serving",
		"recommendation-api/internal/jobs", "recommendation-api/internal/rollback", "recommendation-api/internal/trainer"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("internal/transport depends on %s", dep)
			}
		}
	}
	build := exec.Command("go", "build", "-o", os.DevNull, "recommendation-api/internal/transport")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 go build ./internal/transport: %v\n%s", err, out)
	}
}
