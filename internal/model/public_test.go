package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// stepErr is a wrapper that adds a step to its cause's public message, as
// serving.StepError does.
type stepErr struct{ err error }

func (e stepErr) Error() string { return "load v1.2.3: golden rows: " + e.err.Error() }
func (e stepErr) Unwrap() error { return e.err }
func (e stepErr) PublicMessage() string {
	return "load v1.2.3: " + PublicOr(e.err, "golden rows mismatch")
}

func TestPublic(t *testing.T) {
	t.Parallel()
	inner := fmt.Errorf("%w: row 2: got 0.123456, want 0.5", ErrGoldenMismatch)
	pub := Public(inner, "golden rows mismatch: row 2")
	t.Run("OK", func(t *testing.T) {
		if pub.Error() != inner.Error() || !errors.Is(pub, ErrGoldenMismatch) {
			t.Errorf("Public(err).Error() = %q, Is = %v; want err's text and chain", pub.Error(), errors.Is(pub, ErrGoldenMismatch))
		}
		if msg, ok := PublicMessage(fmt.Errorf("register: %w", pub)); !ok || msg != "golden rows mismatch: row 2" {
			t.Errorf("PublicMessage(wrapped) = %q, %v; want the public message", msg, ok)
		}
	})
	t.Run("Outermost", func(t *testing.T) {
		msg, ok := PublicMessage(fmt.Errorf("release: %w", stepErr{pub}))
		if want := "load v1.2.3: golden rows mismatch: row 2"; !ok || msg != want {
			t.Errorf("PublicMessage = %q, %v; want %q", msg, ok, want)
		}
		if msg := (stepErr{inner}).PublicMessage(); strings.Contains(msg, "0.123456") {
			t.Errorf("a wrapper over an unmarked error says %q; want only the fallback", msg)
		}
	})
	t.Run("None", func(t *testing.T) {
		if msg, ok := PublicMessage(inner); ok {
			t.Errorf("PublicMessage(unmarked) = %q, true; want false", msg)
		}
		if got := PublicOr(inner, "fallback"); got != "fallback" {
			t.Errorf("PublicOr(unmarked) = %q; want the fallback", got)
		}
		if Public(nil, "x") != nil {
			t.Error("Public(nil) != nil")
		}
	})
}

// TestGoldenServerTolerance checks the manifest cannot loosen the golden
// check: a tolerance above GoldenTolerance is refused, and CheckGolden uses
// GoldenTolerance whatever the manifest says. Its public message carries
// no value the model computed.
func TestGoldenServerTolerance(t *testing.T) {
	t.Parallel()
	b := []byte("model bytes")
	for name, tol := range map[string]float64{"Huge": 1e9, "JustAbove": GoldenTolerance * 1.01} {
		m := testManifest(b)
		m.Golden.Tolerance = tol
		if err := m.Validate(); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "tolerance") {
			t.Errorf("%s: Validate with tolerance %g = %v; want ErrInvalidModel about the tolerance", name, tol, err)
		}
	}
	m := testManifest(b)
	m.Golden.Tolerance = GoldenTolerance / 100 // stricter is allowed; the server's tolerance applies
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate with a stricter tolerance: %v", err)
	}
	if err := m.CheckGolden([]float32{0.1, 0.2, 0.3, 0.4, 0.5 + GoldenTolerance/2}); err != nil {
		t.Errorf("CheckGolden within the server's tolerance: %v", err)
	}
	err := m.CheckGolden([]float32{0.1, 0.2, 0.3, 0.4, 0.987654})
	if !errors.Is(err, ErrGoldenMismatch) || !strings.Contains(err.Error(), "0.987654") {
		t.Fatalf("CheckGolden off by 0.49 = %v; want ErrGoldenMismatch with both values in its Error", err)
	}
	msg, ok := PublicMessage(err)
	if !ok || strings.Contains(msg, "0.987654") || !strings.Contains(msg, "row 0 output confidence") {
		t.Errorf("public message %q (%v); want the row and output, without the computed value", msg, ok)
	}
}

func TestGoldenValidate(t *testing.T) {
	t.Parallel()
	b := []byte("model bytes")
	nan := float32(0)
	nan /= nan
	for name, edit := range map[string]func(*Manifest){
		"InputAboveOne": func(m *Manifest) { m.Golden.Inputs[0][3] = 1.5 },
		"InputNegative": func(m *Manifest) { m.Golden.Inputs[0][0] = -0.1 },
		"InputNaN":      func(m *Manifest) { m.Golden.Inputs[0][0] = nan },
		"OutputNaN":     func(m *Manifest) { m.Golden.Outputs[0][4] = nan },
		"TooManyRows": func(m *Manifest) {
			for range MaxGoldenRows {
				m.Golden.Inputs = append(m.Golden.Inputs, m.Golden.Inputs[0])
				m.Golden.Outputs = append(m.Golden.Outputs, m.Golden.Outputs[0])
			}
		},
		"ShortRow": func(m *Manifest) { m.Golden.Outputs[0] = m.Golden.Outputs[0][:4] },
	} {
		m := testManifest(b)
		edit(m)
		if err := m.Validate(); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%s: Validate = %v; want ErrInvalidModel", name, err)
		}
	}
}
