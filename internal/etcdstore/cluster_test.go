package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"recommendation-api/internal/etcdstore/etcdtest"
	"recommendation-api/internal/model"
	"recommendation-api/internal/registry/registrytest"
)

// raftLeader returns the index of the cluster member that leads raft.
func raftLeader(t *testing.T, c *etcdtest.Cluster) int {
	t.Helper()
	raw := rawClient(t, c.Endpoints())
	for i, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := raw.Status(ctx, m.ClientURL)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no member leads")
	return -1
}

// retry calls f until it succeeds or 10s have passed: the cluster elects a
// new raft leader within about a second of losing one, and a call that met
// the election may fail.
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterMemberKilled: a registry on a 3-member cluster keeps working,
// with its data, when the raft leader is killed.
func TestClusterMemberKilled(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 3)
	s := open(t, c.Endpoints(), "/registry", registrytest.Options{})
	registrytest.Register(t, s, "v1.0.0")
	registrytest.Register(t, s, "v1.0.1")
	if _, err := s.SetActive(model.MustParseVersion("v1.0.0"), model.Event{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := s.WatchActives(ctx)

	c.Kill(raftLeader(t, c))

	v2 := model.MustParseVersion("v1.0.2")
	b := registrytest.ModelBytes(2, 3000)
	retry(t, "Register after the kill", func() error {
		_, err := s.Register(b, registrytest.NewManifest(v2, b), "t")
		if err != nil && errors.Is(err, model.ErrVersionExists) {
			return nil // an earlier try went through
		}
		return err
	})
	retry(t, "SetActive after the kill", func() error {
		_, err := s.SetActive(v2, model.Event{})
		if errors.Is(err, model.ErrAlreadyActive) {
			return nil
		}
		return err
	})
	if got, _, err := s.Load(v2); err != nil || len(got) != len(b) {
		t.Errorf("Load(v1.0.2) = %d bytes, %v", len(got), err)
	}
	if got := registrytest.Listed(t, s); fmt.Sprint(got) != "[v1.0.0 v1.0.1 v1.0.2]" {
		t.Errorf("List = %v", got)
	}
	if v, err := s.PreviousActive(1); err != nil || v.String() != "v1.0.0" {
		t.Errorf("PreviousActive = %v, %v; want v1.0.0", v, err)
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-watch:
			if m[1] == v2 {
				goto watched
			}
		case <-timeout:
			t.Fatal("WatchActives never reported v1.0.2 after the kill")
		}
	}
watched:
	h := registrytest.History(t, s)
	acts := 0
	for _, ev := range h {
		if ev.Action == model.ActionActivate {
			acts++
		}
	}
	if acts != 2 {
		t.Errorf("history has %d activations; want 2 (each change once, retries included): %+v", acts, h)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check with one member dead: %v", err)
	}
	// A fresh replica joins the surviving members.
	s2 := open(t, c.Endpoints(), "/registry", registrytest.Options{})
	if v, err := s2.Active(1); err != nil || v != v2 {
		t.Errorf("a new replica reads Active = %v, %v; want v1.0.2", v, err)
	}
}
