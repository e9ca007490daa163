// Package leakcheck is the test helpers' leak check: after a package's
// tests, every goroutine they started has ended and every ONNX Runtime
// session they created has been closed. Use it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// It is imported by tests only.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"recommendation-api/internal/serving"
)

// Main runs the tests, then fails the run (exit 1, with a report on
// stderr) when goroutines or ONNX Runtime sessions outlive them. Sessions
// are closed when their last lease ends, so it waits up to a few seconds
// for stragglers before judging.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Check(); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Check reports goroutines other than the test runner's and ONNX Runtime
// sessions still open, after waiting up to 5 s for them to end.
func Check() error {
	deadline := time.Now().Add(5 * time.Second)
	for serving.OpenSessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := serving.OpenSessions(); n != 0 {
		return fmt.Errorf("%d ONNX Runtime sessions still open after the tests", n)
	}
	return goleak.Find()
}
