package registry_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
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

func TestRegister(t *testing.T) {
	t.Parallel()
	good := modelBytes(1, 1000)
	tests := []struct {
		name    string
		bytes   []byte
		m       func() *model.Manifest
		wantErr error
	}{
		{"OK", good, func() *model.Manifest { return newManifest(version("v1.0.1"), good) }, nil},
		{"OKEmptyBytes", nil, func() *model.Manifest { return newManifest(version("v1.0.1"), nil) }, nil},
		{"OKOlderVersion", good, func() *model.Manifest { return newManifest(version("v0.9.0"), good) }, nil},
		{"ErrVersionExists", good, func() *model.Manifest { return newManifest(version("v1.0.0"), good) }, model.ErrVersionExists},
		{"ErrChecksumMismatch", good, func() *model.Manifest { return newManifest(version("v1.0.1"), modelBytes(2, 1000)) }, model.ErrChecksumMismatch},
		{"ErrChecksumMismatchSize", good[:999], func() *model.Manifest {
			m := newManifest(version("v1.0.1"), good)
			m.Model.SHA256 = model.SHA256Hex(good[:999])
			return m
		}, model.ErrChecksumMismatch},
		{"ErrInvalidModelSchema", good, func() *model.Manifest {
			m := newManifest(version("v1.0.1"), good)
			m.Schema = 2
			return m
		}, model.ErrInvalidModel},
		{"ErrInvalidModelNoGolden", good, func() *model.Manifest {
			m := newManifest(version("v1.0.1"), good)
			m.Golden.Inputs, m.Golden.Outputs = nil, nil
			return m
		}, model.ErrInvalidModel},
		{"ErrInvalidModelNoVersion", good, func() *model.Manifest { return newManifest(model.Version{}, good) }, model.ErrInvalidModel},
		{"ErrInvalidModelNil", good, func() *model.Manifest { return nil }, model.ErrInvalidModel},
		{"ErrInvalidVersion", good, func() *model.Manifest { return newManifest(model.Version{Major: 1, Minor: -1}, good) }, model.ErrInvalidVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, registry.Options{Now: fixedClock()})
			register(t, s, "v1.0.0")
			beforeList, beforeHist := listed(t, s), history(t, s)

			m := tt.m()
			pruned, err := s.Register(tt.bytes, m, "alice")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Register: err = %v; want %v", err, tt.wantErr)
			}
			if len(pruned) != 0 {
				t.Errorf("Register pruned %v; want nothing", pruned)
			}
			if tt.wantErr != nil {
				if m != nil && !m.Version.IsZero() && !strings.Contains(err.Error(), m.Version.String()) {
					t.Errorf("Register: err = %v; want it to name %s", err, m.Version)
				}
				if got := listed(t, s); !slices.Equal(got, beforeList) {
					t.Errorf("after a refused Register, List = %v; want %v unchanged", got, beforeList)
				}
				if got := history(t, s); !reflect.DeepEqual(got, beforeHist) {
					t.Errorf("after a refused Register, History = %+v; want %+v unchanged", got, beforeHist)
				}
				return
			}
			b, got, err := s.Load(m.Version)
			if err != nil {
				t.Fatalf("Load(%s): %v", m.Version, err)
			}
			if !bytes.Equal(b, tt.bytes) {
				t.Errorf("Load(%s) bytes differ from the registered ones", m.Version)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("Load(%s) manifest = %+v; want %+v", m.Version, got, m)
			}
			h := history(t, s)
			last := h[len(h)-1]
			if last.Action != registry.ActionRegister || last.To != m.Version.String() || last.Actor != "alice" || last.Seq != uint64(len(h)) {
				t.Errorf("last event = %+v; want register of %s by alice, seq %d", last, m.Version, len(h))
			}
		})
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		// Seven versions, registered out of order: semver decides, so
		// v1.0.10 is newer than v1.0.9 and v0.9.0 is the oldest.
		t.Parallel()
		s, _ := openStore(t, registry.Options{})
		steps := []struct {
			register   string
			wantPruned []string
		}{
			{"v1.0.9", nil},
			{"v1.0.10", nil},
			{"v1.0.2", nil},
			{"v0.9.0", nil},
			{"v1.1.0", nil},
			{"v1.0.11", nil}, // v0.9.0 is another major, with its own five
			{"v1.0.12", []string{"v1.0.2"}},
			{"v2.0.0", nil},
		}
		for _, st := range steps {
			if got := versionStrings(register(t, s, st.register)); !slices.Equal(got, st.wantPruned) {
				t.Errorf("Register(%s) pruned %v; want %v", st.register, got, st.wantPruned)
			}
		}
		// Older than the five kept of its major: refused, nothing stored.
		before := history(t, s)
		b := modelBytes(99, 100)
		if _, err := s.Register(b, newManifest(version("v1.0.1"), b), "test"); !errors.Is(err, model.ErrVersionTooOld) {
			t.Errorf("Register(v1.0.1): err = %v; want %v", err, model.ErrVersionTooOld)
		} else if !strings.Contains(err.Error(), "v1.0.9") {
			t.Errorf("Register(v1.0.1): %q does not name the oldest kept version v1.0.9", err)
		}
		if after := history(t, s); len(after) != len(before) {
			t.Errorf("a refused registration wrote %d events", len(after)-len(before))
		}
		want := []string{"v0.9.0", "v1.0.9", "v1.0.10", "v1.0.11", "v1.0.12", "v1.1.0", "v2.0.0"}
		if got := listed(t, s); !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v", got, want)
		}
		if v, err := s.Newest(); err != nil || v.String() != "v2.0.0" {
			t.Errorf("Newest = %v, %v; want v2.0.0", v, err)
		}
		var prunes []string
		for _, ev := range history(t, s) {
			if ev.Action == registry.ActionPrune {
				prunes = append(prunes, ev.From)
			}
		}
		if want := []string{"v1.0.2"}; !slices.Equal(prunes, want) {
			t.Errorf("prune events for %v; want %v", prunes, want)
		}
	})
	t.Run("OKActiveKept", func(t *testing.T) {
		// The active version survives though it is the oldest: the newest
		// five plus the active one remain.
		t.Parallel()
		s, _ := openStore(t, registry.Options{})
		register(t, s, "v1.0.0")
		if _, err := s.SetActive(version("v1.0.0"), registry.Event{}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1.0.1", "v1.0.2", "v1.0.3", "v1.0.4", "v1.0.5", "v1.0.6"} {
			register(t, s, v)
		}
		want := []string{"v1.0.0", "v1.0.2", "v1.0.3", "v1.0.4", "v1.0.5", "v1.0.6"}
		if got := listed(t, s); !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v", got, want)
		}
		list, _ := s.List()
		if !list[0].Active || slices.ContainsFunc(list[1:], func(e registry.Entry) bool { return e.Active }) {
			t.Errorf("List marks the wrong version active: %+v", list)
		}
		if _, _, err := s.Load(version("v1.0.0")); err != nil {
			t.Errorf("Load of the kept active version: %v", err)
		}
		// Once another version is active, the old one is its rollback
		// target and stays; it goes once it is neither.
		if _, err := s.SetActive(version("v1.0.6"), registry.Event{}); err != nil {
			t.Fatal(err)
		}
		if got := versionStrings(register(t, s, "v1.0.7")); !slices.Equal(got, []string{"v1.0.2"}) {
			t.Errorf("Register(v1.0.7) pruned %v; want [v1.0.2] (v1.0.0 is the rollback target)", got)
		}
		if _, err := s.SetActive(version("v1.0.7"), registry.Event{}); err != nil {
			t.Fatal(err)
		}
		if got := versionStrings(register(t, s, "v1.0.8")); !slices.Equal(got, []string{"v1.0.0", "v1.0.3"}) {
			t.Errorf("Register(v1.0.8) pruned %v; want [v1.0.0 v1.0.3]", got)
		}
	})
	t.Run("OKKeep2", func(t *testing.T) {
		t.Parallel()
		s, _ := openStore(t, registry.Options{Keep: 2})
		for _, v := range []string{"v1.0.0", "v1.0.1", "v1.0.2"} {
			register(t, s, v)
		}
		if got, want := listed(t, s), []string{"v1.0.1", "v1.0.2"}; !slices.Equal(got, want) {
			t.Errorf("List = %v; want %v", got, want)
		}
	})
}

func TestLoad(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, registry.Options{})
	register(t, s, "v1.0.0")
	tests := []struct {
		name    string
		v       model.Version
		wantErr error
	}{
		{"OK", version("v1.0.0"), nil},
		{"ErrVersionNotFound", version("v1.0.1"), model.ErrVersionNotFound},
		{"ErrVersionNotFoundZero", model.Version{}, model.ErrVersionNotFound},
		{"ErrInvalidVersion", model.Version{Major: -1}, model.ErrInvalidVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := s.Load(tt.v)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Load(%s): err = %v; want %v", tt.v, err, tt.wantErr)
			}
			_, err = s.Manifest(tt.v)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Manifest(%s): err = %v; want %v", tt.v, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.v.String()) {
				t.Errorf("Manifest(%s): err = %v; want it to name the version", tt.v, err)
			}
		})
	}
	t.Run("OKCopy", func(t *testing.T) {
		t.Parallel()
		b, _, err := s.Load(version("v1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range b { // the caller owns the bytes
			b[i] = 0
		}
		if _, _, err := s.Load(version("v1.0.0")); err != nil {
			t.Errorf("Load after scribbling on a previous result: %v", err)
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

func TestRecords(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, registry.Options{})
	for _, kv := range [][2]string{{"job-2", "b"}, {"job-1", "a"}, {"job-3", "c"}, {"job-1", "a2"}} {
		if err := s.PutRecord("jobs", kv[0], []byte(kv[1])); err != nil {
			t.Fatalf("PutRecord(%s): %v", kv[0], err)
		}
	}
	t.Run("OK", func(t *testing.T) {
		if got, err := s.GetRecord("jobs", "job-1"); err != nil || string(got) != "a2" {
			t.Errorf("GetRecord(jobs, job-1) = %q, %v; want \"a2\"", got, err)
		}
	})
	t.Run("OKList", func(t *testing.T) {
		got, err := s.ListRecords("jobs")
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, v := range got {
			vs = append(vs, string(v))
		}
		if want := []string{"a2", "b", "c"}; !slices.Equal(vs, want) {
			t.Errorf("ListRecords(jobs) = %q; want %q (key order)", vs, want)
		}
	})
	t.Run("OKListMissingBucket", func(t *testing.T) {
		if got, err := s.ListRecords("nothing"); err != nil || len(got) != 0 {
			t.Errorf("ListRecords(nothing) = %q, %v; want none", got, err)
		}
	})
	t.Run("OKNamesDoNotCollide", func(t *testing.T) {
		// A record bucket named like an internal bucket is a different one.
		if err := s.PutRecord("models", "x", []byte("y")); err != nil {
			t.Fatal(err)
		}
		if got := listed(t, s); len(got) != 0 {
			t.Errorf("List after PutRecord(models, ...) = %v; want none", got)
		}
	})
	for _, tt := range []struct{ name, bucket, key string }{
		{"ErrRecordNotFound", "jobs", "job-9"},
		{"ErrRecordNotFoundBucket", "nothing", "job-1"},
		{"ErrRecordNotFoundEmptyKey", "jobs", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.GetRecord(tt.bucket, tt.key)
			if !errors.Is(err, registry.ErrRecordNotFound) || !strings.Contains(err.Error(), tt.bucket+"/"+tt.key) {
				t.Errorf("GetRecord(%q, %q): err = %v; want ErrRecordNotFound naming them", tt.bucket, tt.key, err)
			}
		})
	}
	t.Run("ErrEmptyName", func(t *testing.T) {
		if err := s.PutRecord("", "k", nil); err == nil {
			t.Error("PutRecord with an empty bucket succeeded")
		}
		if err := s.PutRecord("jobs", "", nil); err == nil {
			t.Error("PutRecord with an empty key succeeded")
		}
	})
}
