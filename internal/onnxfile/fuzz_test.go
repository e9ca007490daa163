package onnxfile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// FuzzDecode feeds arbitrary bytes to Decode and Signature: they must never
// panic, every error must wrap model.ErrInvalidModel, and whatever Decode
// accepts must be a valid model that encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	for seed := range int64(3) {
		b, err := onnxfile.Encode(onnxfile.RandomMLP(seed), model.Version{Major: 1, Minor: int(seed)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x08, 0x42, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := onnxfile.Signature(b); err != nil && !errors.Is(err, model.ErrInvalidModel) {
			t.Fatalf("Signature: err = %v; want nil or ErrInvalidModel", err)
		}
		m, v, err := onnxfile.Decode(b)
		if err != nil {
			if !errors.Is(err, model.ErrInvalidModel) {
				t.Fatalf("Decode: err = %v; want ErrInvalidModel", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid model: %v", err)
		}
		again, err := onnxfile.Encode(m, v)
		if err != nil {
			t.Fatalf("Encode of a decoded model: %v", err)
		}
		m2, v2, err := onnxfile.Decode(again)
		if err != nil || v2 != v || !reflect.DeepEqual(m2, m) {
			t.Fatalf("re-encoded model does not round-trip: err %v", err)
		}
		m.Forward(make([]float32, model.NumFeatures), 1)
	})
}

// FuzzCheck feeds mutated model files to Check, starting from the default
// model and its refused variants (the seed corpus in testdata/fuzz/FuzzCheck,
// written by TestTestdata): Check must never panic, never open a path — the
// fuzzer runs in a directory holding the secret.bin the external-data seeds
// name, watched with inotify — refuse with a public "model graph: " message
// wrapping ErrInvalidModel or ErrSignatureMismatch, and accept only bytes
// that are exactly what Encode writes for the model they decode to.
func FuzzCheck(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.bin"), make([]byte, 4096), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Chdir(dir)
	w := watchOpens(f, dir)
	if b, err := os.ReadFile("secret.bin"); err != nil || w.events() == "" { // the watch sees an open
		f.Fatalf("reading secret.bin (%d bytes, %v) raised no inotify event", len(b), err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := onnxfile.Check(b)
		if ev := w.events(); ev != "" {
			t.Fatalf("Check opened a file in %s: %s", dir, ev)
		}
		if err != nil {
			if !errors.Is(err, model.ErrInvalidModel) && !errors.Is(err, model.ErrSignatureMismatch) {
				t.Fatalf("Check: err = %v; want ErrInvalidModel or ErrSignatureMismatch", err)
			}
			if msg, ok := model.PublicMessage(err); !ok || !strings.HasPrefix(msg, "model graph: ") {
				t.Fatalf("Check: public message %q, %v; want one starting \"model graph: \"", msg, ok)
			}
			return
		}
		want, err := onnxfile.Encode(c.Model, c.Version)
		if err != nil || !bytes.Equal(want, b) || !bytes.Equal(c.Bytes, b) {
			t.Fatalf("Check accepted bytes that are not what Encode writes for their model (%v)", err)
		}
	})
}
