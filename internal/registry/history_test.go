package registry_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// history returns s's events, failing the test on error.
func history(t *testing.T, s *registry.Store) []registry.Event {
	t.Helper()
	h, err := s.History()
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return h
}

func TestHistory(t *testing.T) {
	t.Parallel()
	clock := fixedClock()
	s, path := openStore(t, registry.Options{Now: clock})
	register(t, s, "v1.0.0")
	register(t, s, "v1.1.0")

	at := time.Date(2025, 7, 1, 9, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	steps := []struct {
		to string
		ev registry.Event
	}{
		{"v1.0.0", registry.Event{Reason: "first model", Actor: "alice"}},
		{"v1.1.0", registry.Event{Action: registry.ActionActivate, Reason: "better mae", Actor: "bob", Time: at}},
		{"v1.0.0", registry.Event{Action: registry.ActionRollback, Reason: "oom rate up", Actor: "carol", From: "ignored"}},
	}
	var returned []registry.Event
	for _, st := range steps {
		ev, err := s.SetActive(version(st.to), st.ev)
		if err != nil {
			t.Fatalf("SetActive(%s): %v", st.to, err)
		}
		returned = append(returned, ev)
	}

	check := func(t *testing.T, s *registry.Store) {
		t.Helper()
		h := history(t, s)
		want := []registry.Event{
			{Seq: 1, Time: time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC), Action: "register", Major: 1, To: "v1.0.0", Actor: "test"},
			{Seq: 2, Time: time.Date(2025, 6, 1, 12, 0, 2, 0, time.UTC), Action: "register", Major: 1, To: "v1.1.0", Actor: "test"},
			{Seq: 3, Time: time.Date(2025, 6, 1, 12, 0, 3, 0, time.UTC), Action: "activate", Major: 1, To: "v1.0.0", Reason: "first model", Actor: "alice"},
			{Seq: 4, Time: at.UTC(), Action: "activate", Major: 1, From: "v1.0.0", To: "v1.1.0", Reason: "better mae", Actor: "bob"},
			{Seq: 5, Time: time.Date(2025, 6, 1, 12, 0, 4, 0, time.UTC), Action: "rollback", Major: 1, From: "v1.1.0", To: "v1.0.0", Reason: "oom rate up", Actor: "carol"},
		}
		if len(h) != len(want) {
			t.Fatalf("History has %d events; want %d: %+v", len(h), len(want), h)
		}
		for i := range want {
			if !h[i].Time.Equal(want[i].Time) {
				t.Errorf("event %d time = %v; want %v", i, h[i].Time, want[i].Time)
			}
			h[i].Time, want[i].Time = time.Time{}, time.Time{}
			if h[i] != want[i] {
				t.Errorf("event %d = %+v; want %+v", i, h[i], want[i])
			}
		}
		if v, err := s.Active(1); err != nil || v.String() != "v1.0.0" {
			t.Errorf("Active = %v, %v; want v1.0.0", v, err)
		}
		if v, err := s.PreviousActive(1); !errors.Is(err, model.ErrVersionNotFound) {
			t.Errorf("PreviousActive after rolling back to the first version = %v, %v; want ErrVersionNotFound", v, err)
		}
	}
	t.Run("OK", func(t *testing.T) {
		check(t, s)
		h := history(t, s)
		if !reflect.DeepEqual(returned, h[2:]) {
			t.Errorf("SetActive returned %+v; History has %+v", returned, h[2:])
		}
	})
	t.Run("OKAfterReopen", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := registry.Open(path, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		check(t, s2)
	})
}

func TestSetActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		to      model.Version
		action  string
		wantErr error
	}{
		{"OK", version("v1.0.0"), "", nil},
		{"OKAutoRollback", version("v1.0.0"), registry.ActionAutoRollback, nil},
		{"ErrVersionNotFound", version("v1.0.1"), "", model.ErrVersionNotFound},
		{"ErrInvalidVersion", model.Version{Patch: -3}, "", model.ErrInvalidVersion},
		{"ErrAction", version("v1.0.0"), registry.ActionPrune, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, registry.Options{})
			register(t, s, "v1.0.0")
			before := history(t, s)
			_, err := s.SetActive(tt.to, registry.Event{Action: tt.action})
			if tt.name == "ErrAction" {
				if err == nil || !strings.Contains(err.Error(), registry.ActionPrune) {
					t.Fatalf("SetActive with action %q: err = %v; want it refused", tt.action, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SetActive(%s): err = %v; want %v", tt.to, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.to.String()) {
					t.Errorf("SetActive: err = %v; want it to name %s", err, tt.to)
				}
				if _, err := s.Active(1); !errors.Is(err, model.ErrNoActiveVersion) {
					t.Errorf("Active after a refused SetActive: err = %v; want ErrNoActiveVersion", err)
				}
				if got := history(t, s); !reflect.DeepEqual(got, before) {
					t.Errorf("History after a refused SetActive = %+v; want %+v", got, before)
				}
				return
			}
			if v, err := s.Active(1); err != nil || v != tt.to {
				t.Errorf("Active = %v, %v; want %s", v, err, tt.to)
			}
		})
	}
}

func TestPreviousActive(t *testing.T) {
	t.Parallel()
	// Each step is "a v" (activate), "r v" (rollback), "R v" (auto_rollback)
	// or "+ v" (register, which may prune); v1.0.0..v1.0.4 are registered
	// first, Keep is 5.
	tests := []struct {
		name    string
		steps   []string
		want    string
		wantErr error
	}{
		{"OK", []string{"a v1.0.0", "a v1.0.1"}, "v1.0.0", nil},
		{"OKChain", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "r v1.0.1"}, "v1.0.0", nil},
		{"OKAutoRollback", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "R v1.0.1"}, "v1.0.0", nil},
		{"OKRollbackPastOne", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "a v1.0.3", "r v1.0.1"}, "v1.0.0", nil},
		{"OKRollbackElsewhere", []string{"a v1.0.0", "a v1.0.1", "a v1.0.2", "r v1.0.4"}, "v1.0.1", nil},
		{"OKReactivate", []string{"a v1.0.0", "a v1.0.1", "a v1.0.0"}, "v1.0.1", nil},
		{"OKSameTwice", []string{"a v1.0.0", "a v1.0.1", "a v1.0.1"}, "v1.0.0", nil}, // the second is a no-op
		// Retention never deletes the rollback target (v1.0.1), so it is
		// still the answer after two registrations that prune.
		{"OKTargetKept", []string{"a v1.0.3", "a v1.0.1", "a v1.0.4", "+ v1.0.5", "+ v1.0.6"}, "v1.0.1", nil},
		{"ErrNoActiveVersion", nil, "", model.ErrNoActiveVersion},
		{"ErrVersionNotFoundFirst", []string{"a v1.0.0"}, "", model.ErrVersionNotFound},
		{"ErrVersionNotFoundRolledBack", []string{"a v1.0.0", "a v1.0.1", "r v1.0.0"}, "", model.ErrVersionNotFound},
		// v1.0.0 was pruned (neither active nor the target), so after the
		// rollback to v1.0.1 there is nothing further back.
		{"ErrVersionNotFoundPruned", []string{"a v1.0.0", "a v1.0.1", "a v1.0.4", "+ v1.0.5", "+ v1.0.6", "r v1.0.1"}, "", model.ErrVersionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := openStore(t, registry.Options{})
			for _, v := range []string{"v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3", "v1.0.4"} {
				register(t, s, v)
			}
			for _, st := range tt.steps {
				op, v, _ := strings.Cut(st, " ")
				action := map[string]string{"a": registry.ActionActivate, "r": registry.ActionRollback, "R": registry.ActionAutoRollback}[op]
				if op == "+" {
					register(t, s, v)
					continue
				}
				if _, err := s.SetActive(version(v), registry.Event{Action: action}); err != nil && !errors.Is(err, model.ErrAlreadyActive) {
					t.Fatalf("SetActive(%s): %v", v, err)
				}
			}
			got, err := s.PreviousActive(1)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PreviousActive: err = %v; want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got.String() != tt.want {
				t.Errorf("PreviousActive = %s; want %s", got, tt.want)
			}
		})
	}
}
