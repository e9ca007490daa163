package registry_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// copyFixture copies testdata/name into a fresh directory and returns the path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "registry.db")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// layoutOf reads the layout marker and the layout-1 active pointer of the
// closed file at path with bbolt directly.
func layoutOf(t *testing.T, path string) (layout, activeV1 string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		layout, activeV1 = string(meta.Get([]byte("layout"))), string(meta.Get([]byte("active")))
		return nil
	})
	return layout, activeV1
}

func TestUpgradeLayout1(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := copyFixture(t, "layout1.db")
		if l, a := layoutOf(t, path); l != "" || a != "v1.1.0" {
			t.Fatalf("fixture: layout %q active %q; want layout 1 (no marker) with v1.1.0 active", l, a)
		}
		s, err := registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Check(); err != nil {
			t.Errorf("Check after upgrade: %v", err)
		}
		if v, err := s.Active(1); err != nil || v.String() != "v1.1.0" {
			t.Errorf("Active(1) = %v, %v; want v1.1.0", v, err)
		}
		// Activated v1.0.0, v1.1.0, v1.2.0, rolled back to v1.1.0: the next
		// rollback goes to v1.0.0, as the replay of layout 1 said.
		if v, err := s.PreviousActive(1); err != nil || v.String() != "v1.0.0" {
			t.Errorf("PreviousActive(1) = %v, %v; want v1.0.0", v, err)
		}
		if got := listed(t, s); !slices.Equal(got, []string{"v1.0.0", "v1.1.0", "v1.2.0"}) {
			t.Errorf("List = %v", got)
		}
		if rec, err := s.GetRecord("jobs", "job-1"); err != nil || !strings.Contains(string(rec), "DONE") {
			t.Errorf("job record after upgrade: %q, %v", rec, err)
		}
		h := history(t, s)
		last := h[len(h)-1]
		if last.Action != model.ActionUpgrade || last.Actor != "system" {
			t.Errorf("last event %+v; want an upgrade event by system", last)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if l, a := layoutOf(t, path); l != strconv.Itoa(registry.Layout) || a != "" {
			t.Errorf("after upgrade: layout %q, layout-1 pointer %q", l, a)
		}
		// A second open upgrades nothing.
		s, err = registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if n := len(history(t, s)); n != len(h) {
			t.Errorf("reopen wrote %d more events", n-len(h))
		}
	})
	t.Run("ErrCrashMidUpgradeKeepsLayout1", func(t *testing.T) {
		path := copyFixture(t, "layout1.db")
		crash := errors.New("power cut")
		registry.SetUpgradeHook(func() error { return crash })
		_, err := registry.Open(path, registry.Options{})
		registry.SetUpgradeHook(nil)
		if !errors.Is(err, crash) {
			t.Fatalf("Open with a failing upgrade: %v; want %v", err, crash)
		}
		if l, a := layoutOf(t, path); l != "" || a != "v1.1.0" {
			t.Fatalf("after an aborted upgrade: layout %q active %q; want layout 1 untouched", l, a)
		}
		s, err := registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatalf("Open after the aborted upgrade: %v", err)
		}
		defer s.Close()
		if v, err := s.Active(1); err != nil || v.String() != "v1.1.0" {
			t.Errorf("Active(1) = %v, %v; want v1.1.0", v, err)
		}
	})
}

// TestStorageFull fills a small tmpfs: registration fails with
// model.ErrStorageFull naming the directory, and the store still reads.
func TestStorageFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
	s, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{Keep: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var full error
	for i := range 100 {
		b := modelBytes(uint64(i), 64<<10)
		if _, err := s.Register(b, newManifest(model.Version{Major: 1, Patch: i}, b), "t"); err != nil {
			full = err
			break
		}
	}
	if !errors.Is(full, model.ErrStorageFull) || !strings.Contains(full.Error(), dir) {
		t.Fatalf("filling the disk: %v; want %v naming %s", full, model.ErrStorageFull, dir)
	}
	if _, err := s.List(); err != nil {
		t.Errorf("List on a full disk: %v", err)
	}
	// A record (a training job's) larger than the whole file system.
	err = s.PutRecord("jobs", "job-1", make([]byte, 1<<20))
	if !errors.Is(err, model.ErrStorageFull) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("PutRecord on a full disk: %v; want %v naming %s", err, model.ErrStorageFull, dir)
	}
}

// TestStorageErrorClasses: a write the file system refuses is classed by
// its errno, also when bbolt formatted the errno into its text (growing the
// file: "file resize error: ..."), which drops it from the chain.
func TestStorageErrorClasses(t *testing.T) {
	t.Parallel()
	path := filepath.Join("/data", "registry.db")
	for _, tt := range []struct {
		err  error
		want error
	}{
		{&os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}, model.ErrStorageFull},
		{fmt.Errorf("file resize error: %s", syscall.ENOSPC), model.ErrStorageFull},
		{&os.PathError{Op: "write", Path: path, Err: syscall.EDQUOT}, model.ErrStorageFull},
		{&os.PathError{Op: "write", Path: path, Err: syscall.EROFS}, model.ErrStorageReadOnly},
		{fmt.Errorf("file resize error: %s", syscall.EROFS), model.ErrStorageReadOnly},
		{fmt.Errorf("file sync error: %s", syscall.EROFS), model.ErrStorageReadOnly},
	} {
		got := registry.StorageError(path, tt.err)
		if !errors.Is(got, tt.want) || !strings.Contains(model.PublicOr(got, ""), "/data") {
			t.Errorf("storageError(%v) = %v; want %v naming /data", tt.err, got, tt.want)
		}
	}
	other := errors.New("bbolt: page 7 corrupt")
	if got := registry.StorageError(path, other); got != other {
		t.Errorf("storageError(%v) = %v; want it unchanged", other, got)
	}
}
