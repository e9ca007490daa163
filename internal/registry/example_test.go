package registry_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

func Example() {
	dir, err := os.MkdirTemp("", "registry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{Keep: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// register stores a version; the bytes would be an ONNX file that
	// package onnxfile has checked.
	register := func(vs string) {
		v := model.MustParseVersion(vs)
		b := []byte("onnx bytes of " + vs)
		pruned, err := s.Register(b, newManifest(v, b), "trainer")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("registered", v, "pruned", pruned)
	}
	activate := func(v model.Version, ev registry.Event) {
		ev, err := s.SetActive(v, ev)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s from %q to %q by %s: %s\n", ev.Action, ev.From, ev.To, ev.Actor, ev.Reason)
	}

	register("v1.0.0")
	register("v1.1.0")
	activate(model.MustParseVersion("v1.1.0"), registry.Event{Reason: "first model", Actor: "ops"})
	register("v1.2.0") // Keep is 2: v1.0.0 goes
	activate(model.MustParseVersion("v1.2.0"), registry.Event{Reason: "lower OOM rate", Actor: "ops"})

	list, err := s.List()
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range list {
		fmt.Println(e.Manifest.Version, "active:", e.Active)
	}

	prev, err := s.PreviousActive(1)
	if err != nil {
		log.Fatal(err)
	}
	activate(prev, registry.Event{Action: registry.ActionRollback, Reason: "p99 latency up", Actor: "ops"})

	// Output:
	// registered v1.0.0 pruned []
	// registered v1.1.0 pruned []
	// activate from "" to "v1.1.0" by ops: first model
	// registered v1.2.0 pruned [v1.0.0]
	// activate from "v1.1.0" to "v1.2.0" by ops: lower OOM rate
	// v1.1.0 active: false
	// v1.2.0 active: true
	// rollback from "v1.2.0" to "v1.1.0" by ops: p99 latency up
}
