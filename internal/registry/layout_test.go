package registry_test

import (
	"errors"
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

func TestSetActiveIf(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, registry.Options{})
	register(t, s, "v1.0.0")
	register(t, s, "v1.1.0")
	none := model.Version{}
	if _, err := s.SetActiveIf(version("v1.0.0"), registry.Event{}, &none); err != nil {
		t.Fatalf("first activation expecting none: %v", err)
	}
	n := len(history(t, s))
	t.Run("ErrActiveMismatch", func(t *testing.T) {
		want := version("v1.1.0")
		_, err := s.SetActiveIf(version("v1.1.0"), registry.Event{}, &want)
		if !errors.Is(err, model.ErrActiveMismatch) || !strings.Contains(err.Error(), "active version of major 1 is v1.0.0") {
			t.Fatalf("err = %v; want %v naming the actual active v1.0.0", err, model.ErrActiveMismatch)
		}
	})
	t.Run("ErrAlreadyActive", func(t *testing.T) {
		if _, err := s.SetActive(version("v1.0.0"), registry.Event{Action: registry.ActionRollback}); !errors.Is(err, model.ErrAlreadyActive) {
			t.Fatalf("err = %v; want %v", err, model.ErrAlreadyActive)
		}
	})
	if got := len(history(t, s)); got != n {
		t.Errorf("refused changes wrote %d events", got-n)
	}
	if v, _ := s.Active(1); v.String() != "v1.0.0" {
		t.Errorf("active %s after refused changes; want v1.0.0", v)
	}
	t.Run("OK", func(t *testing.T) {
		want := version("v1.0.0")
		ev, err := s.SetActiveIf(version("v1.1.0"), registry.Event{}, &want)
		if err != nil || ev.From != "v1.0.0" || ev.Major != 1 {
			t.Fatalf("SetActiveIf = %+v, %v", ev, err)
		}
	})
}

func TestRetentionPerMajor(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, registry.Options{Keep: 2})
	for _, v := range []string{"v1.0.0", "v2.0.0", "v2.0.1"} {
		register(t, s, v)
	}
	if _, err := s.SetActive(version("v1.0.0"), registry.Event{}); err != nil {
		t.Fatal(err)
	}
	// v2's registrations prune v2 only; v1.0.0 is alone in its major.
	if got := versionStrings(register(t, s, "v2.0.2")); !slices.Equal(got, []string{"v2.0.0"}) {
		t.Errorf("Register(v2.0.2) pruned %v; want [v2.0.0]", got)
	}
	register(t, s, "v1.0.1")
	// Loaded versions the caller names are kept too.
	b := modelBytes(7, 64)
	pruned, err := s.RegisterWith(b, newManifest(version("v2.0.3"), b), registry.RegisterOptions{Actor: "t", Reason: "weekly", Protect: []model.Version{version("v2.0.1")}})
	if err != nil || len(pruned) != 0 {
		t.Errorf("RegisterWith protecting v2.0.1 pruned %v, %v; want none", pruned, err)
	}
	if got := listed(t, s); !slices.Equal(got, []string{"v1.0.0", "v1.0.1", "v2.0.1", "v2.0.2", "v2.0.3"}) {
		t.Errorf("List = %v", got)
	}
	h := history(t, s)
	if ev := h[len(h)-1]; ev.Action != registry.ActionRegister || ev.Reason != "weekly" || ev.Major != 2 {
		t.Errorf("register event %+v; want the reason and major recorded", ev)
	}
}

func TestHistoryPage(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, registry.Options{HistoryKeep: 10})
	register(t, s, "v1.0.0")
	register(t, s, "v1.0.1")
	for i := range 11 {
		to := []string{"v1.0.0", "v1.0.1"}[i%2]
		if _, err := s.SetActive(version(to), registry.Event{Reason: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// 13 events, 10 kept: seq 4..13.
	all := history(t, s)
	if len(all) != 10 || all[0].Seq != 4 || all[9].Seq != 13 {
		t.Fatalf("History kept %d events, seq %d..%d; want 10, 4..13", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	var seqs []uint64
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := s.HistoryPage(model.HistoryQuery{PageSize: 4, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page {
			seqs = append(seqs, ev.Seq)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages; want 3", pages+1)
			}
			break
		}
		token = next
	}
	if want := []uint64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4}; !slices.Equal(seqs, want) {
		t.Errorf("pages gave seq %v; want %v", seqs, want)
	}
	page, _, err := s.HistoryPage(model.HistoryQuery{Action: registry.ActionRegister})
	if err != nil || len(page) != 0 {
		t.Errorf("register events after trimming: %v, %v; want none", page, err)
	}
	if _, _, err := s.HistoryPage(model.HistoryQuery{PageToken: "abc"}); !errors.Is(err, model.ErrInvalidInput) {
		t.Errorf("bad token: %v; want %v", err, model.ErrInvalidInput)
	}
	if _, _, err := s.HistoryPage(model.HistoryQuery{PageSize: model.MaxHistoryPage + 1}); !errors.Is(err, model.ErrInvalidInput) {
		t.Errorf("page size too large: %v; want %v", err, model.ErrInvalidInput)
	}
	// The rollback target does not depend on the trimmed events.
	if v, err := s.PreviousActive(1); err != nil || v.String() != "v1.0.1" {
		t.Errorf("PreviousActive after trimming = %v, %v; want v1.0.1", v, err)
	}
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
}
