package registry_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, registry.Options{})
		if err := s.Check(); err != nil {
			t.Errorf("Check on a new file: %v", err)
		}
		if got := listed(t, s); len(got) != 0 {
			t.Errorf("List on a new file = %v; want none", got)
		}
		if _, err := s.Newest(); !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("Newest on a new file: err = %v; want ErrVersionNotFound", err)
		}
		if _, err := s.Active(1); !errors.Is(err, model.ErrNoActiveVersion) {
			t.Errorf("Active on a new file: err = %v; want ErrNoActiveVersion", err)
		}
	})
	t.Run("ErrLocked", func(t *testing.T) {
		t.Parallel()
		_, path := openStore(t, registry.Options{})
		s2, err := registry.Open(path, registry.Options{Timeout: 100 * time.Millisecond})
		if err == nil {
			s2.Close()
			t.Fatal("second Open of a locked file succeeded")
		}
		if !errors.Is(err, bolterrors.ErrTimeout) || !strings.Contains(err.Error(), path) {
			t.Errorf("second Open: err = %v; want bbolt ErrTimeout naming %s", err, path)
		}
	})
	t.Run("ErrNoDirectory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "missing", "registry.db")
		if s, err := registry.Open(path, registry.Options{}); err == nil {
			s.Close()
			t.Fatal("Open in a missing directory succeeded")
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("Open: err = %v; want it to name %s", err, path)
		}
	})
	t.Run("CloseTwice", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, registry.Options{})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := s.List(); err == nil {
			t.Error("List after Close succeeded")
		}
	})
}

func TestTamper(t *testing.T) {
	t.Parallel()
	s, path := openStore(t, registry.Options{})
	register(t, s, "v1.0.0")
	register(t, s, "v1.0.1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Flip one byte of v1.0.0's stored model, behind the registry's back.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(registry.BucketModels)
		k := registry.VersionKey(version("v1.0.0"))
		v := bytes.Clone(b.Get(k))
		v[len(v)/2] ^= 0x01
		return b.Put(k, v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("tampering: %v", err)
	}

	s, err = registry.Open(path, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Run("ErrChecksumMismatch", func(t *testing.T) {
		b, m, err := s.Load(version("v1.0.0"))
		if !errors.Is(err, model.ErrChecksumMismatch) || !strings.Contains(err.Error(), "v1.0.0") {
			t.Errorf("Load(v1.0.0): err = %v; want ErrChecksumMismatch naming v1.0.0", err)
		}
		if b != nil || m != nil {
			t.Errorf("Load(v1.0.0) returned bytes or a manifest with its error")
		}
	})
	t.Run("OKManifest", func(t *testing.T) {
		if m, err := s.Manifest(version("v1.0.0")); err != nil || m.Version.String() != "v1.0.0" {
			t.Errorf("Manifest(v1.0.0) = %v, %v; want the manifest", m, err)
		}
	})
	t.Run("OKOtherVersion", func(t *testing.T) {
		if _, _, err := s.Load(version("v1.0.1")); err != nil {
			t.Errorf("Load(v1.0.1): %v", err)
		}
	})
	t.Run("OKCheck", func(t *testing.T) {
		// The file's structure is intact; only a value changed.
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
}
