package onnxfile_test

import (
	"errors"
	"reflect"
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
