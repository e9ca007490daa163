package registry_test

import (
	"errors"
	"reflect"
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
