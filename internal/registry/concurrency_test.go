package registry_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// TestConcurrent registers, activates and reads from several goroutines at
// once (run it with -race) and checks the end state adds up.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	const (
		writers   = 4
		perWriter = 8
		readers   = 2
	)
	s, _ := openStore(t, registry.Options{})
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex // guards errs
		errs    []error
		stopped = make(chan struct{})
	)
	report := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	var accepted atomic.Int64
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range perWriter {
				v := model.Version{Major: 1, Minor: w, Patch: i}
				b := modelBytes(uint64(w*100+i), 1000+rng.IntN(4000))
				_, err := s.Register(b, newManifest(v, b), fmt.Sprintf("writer-%d", w))
				if errors.Is(err, model.ErrVersionTooOld) {
					continue // other writers registered five newer ones
				}
				accepted.Add(1)
				if err != nil {
					report(err)
					return
				}
				to := v
				if list, err := s.List(); err == nil && rng.IntN(2) == 0 {
					to = list[rng.IntN(len(list))].Manifest.Version
				}
				// Another writer may prune to between List and SetActive.
				if _, err := s.SetActive(to, registry.Event{Actor: fmt.Sprintf("writer-%d", w)}); err != nil && !errors.Is(err, model.ErrVersionNotFound) && !errors.Is(err, model.ErrAlreadyActive) {
					report(err)
				}
			}
		})
	}
	var readerWG sync.WaitGroup
	for range readers {
		readerWG.Go(func() {
			for {
				select {
				case <-stopped:
					return
				default:
				}
				if v, err := s.Active(1); err == nil {
					// The active version can never be pruned under us.
					if _, _, err := s.Load(v); err != nil {
						report(fmt.Errorf("Load(active %s): %w", v, err))
					}
				}
				if _, err := s.List(); err != nil {
					report(err)
				}
				if _, err := s.History(); err != nil {
					report(err)
				}
			}
		})
	}
	wg.Wait()
	close(stopped)
	readerWG.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	active, err := s.Active(1)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list); n < registry.DefaultKeep || n > registry.DefaultKeep+1 {
		t.Errorf("%d versions remain; want %d or %d", n, registry.DefaultKeep, registry.DefaultKeep+1)
	}
	var activeListed bool
	for _, e := range list {
		if _, _, err := s.Load(e.Manifest.Version); err != nil {
			t.Errorf("Load(%s): %v", e.Manifest.Version, err)
		}
		activeListed = activeListed || (e.Active && e.Manifest.Version == active)
	}
	if !activeListed {
		t.Errorf("active %s is not listed as active", active)
	}
	var registers, prunes int
	var last registry.Event
	for i, ev := range history(t, s) {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		switch ev.Action {
		case registry.ActionRegister:
			registers++
		case registry.ActionPrune:
			prunes++
		default:
			last = ev
		}
	}
	if n := int(accepted.Load()); registers != n || prunes != registers-len(list) {
		t.Errorf("history has %d registers and %d prunes; want %d and %d", registers, prunes, n, n-len(list))
	}
	if last.To != active.String() {
		t.Errorf("last activation %+v; active is %s", last, active)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}
