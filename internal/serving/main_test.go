package serving

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaks a goroutine or an ONNX
// Runtime session (internal/leakcheck does the same for other packages;
// it imports this one, so this package checks itself).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for OpenSessions() != 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := OpenSessions(); n != 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d ONNX Runtime sessions still open after the tests\n", n)
			code = 1
		} else if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			code = 1
		}
	}
	os.Exit(code)
}
