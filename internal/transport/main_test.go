package transport_test

import (
	"testing"

	"recommendation-api/internal/leakcheck"
)

// TestMain fails the package when a test leaks a goroutine or an ONNX
// Runtime session.
func TestMain(m *testing.M) { leakcheck.Main(m) }
