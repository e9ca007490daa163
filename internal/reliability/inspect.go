package reliability

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
)

// Snapshot is what a registry file holds, read while no server runs.
type Snapshot struct {
	Versions map[string]bool   // listed versions
	Active   map[int]string    // major → active version
	Events   []model.Event     // the kept history, oldest first
	Pruned   map[string]bool   // versions a prune event names
	Register map[string]uint64 // version → seq of its (last) register event
}

// Inspect opens the registry file of dataDir through package registry (the
// server must be down: the file's lock is exclusive), runs its Check and
// the invariants a crash must never break, and returns what it holds with
// every violation found. An error means the file could not be read at all.
//
// The invariants: every listed version loads, and its bytes hash to its
// manifest's sha256 and size; the history's sequence numbers are
// consecutive; every registered version is listed or was pruned by a later
// event; every version an activation names was registered before it; each
// major's activations chain (each one's From is the previous one's To) and
// the last one's To is the major's active version, which is listed.
func Inspect(dataDir string) (*Snapshot, []string, error) {
	s, err := registry.Open(filepath.Join(dataDir, "registry.db"), registry.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	if err := s.Check(); err != nil {
		fail("Check: %v", err)
	}
	snap := &Snapshot{Versions: map[string]bool{}, Active: map[int]string{}, Pruned: map[string]bool{}, Register: map[string]uint64{}}
	list, err := s.List()
	if err != nil {
		return nil, nil, err
	}
	for _, e := range list {
		v := e.Manifest.Version
		snap.Versions[v.String()] = true
		b, m, err := s.Load(v)
		if err != nil {
			fail("Load(%s): %v", v, err)
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != m.Model.SHA256 || int64(len(b)) != m.Model.SizeBytes {
			fail("%s: bytes hash to %x (%d bytes); manifest says %s (%d bytes)", v, sum, len(b), m.Model.SHA256, m.Model.SizeBytes)
		}
	}
	actives, err := s.Actives()
	if err != nil {
		return nil, nil, err
	}
	for major, v := range actives {
		snap.Active[major] = v.String()
	}
	if snap.Events, err = s.History(); err != nil {
		return nil, nil, err
	}
	bad = append(bad, checkHistory(snap)...)
	return snap, bad, nil
}

// checkHistory checks the history invariants of Inspect on snap, filling
// snap.Pruned and snap.Register.
func checkHistory(snap *Snapshot) []string {
	var bad []string
	fail := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	whole := len(snap.Events) > 0 && snap.Events[0].Seq == 1 // nothing trimmed: every rule applies from the start
	lastTo := map[int]string{}
	chained := map[int]bool{}
	for i, ev := range snap.Events {
		if i > 0 && ev.Seq != snap.Events[i-1].Seq+1 {
			fail("history seq %d follows %d", ev.Seq, snap.Events[i-1].Seq)
		}
		switch {
		case ev.Action == model.ActionRegister:
			snap.Register[ev.To] = ev.Seq
			delete(snap.Pruned, ev.To)
		case ev.Action == model.ActionPrune:
			if _, ok := snap.Register[ev.From]; !ok && whole {
				fail("event %d prunes %s, which no earlier event registered", ev.Seq, ev.From)
			}
			snap.Pruned[ev.From] = true
		case model.IsActivation(ev.Action):
			if _, ok := snap.Register[ev.To]; !ok && whole {
				fail("event %d (%s) activates %s, which no earlier event registered", ev.Seq, ev.Action, ev.To)
			}
			if snap.Pruned[ev.To] {
				fail("event %d (%s) activates %s, which was pruned", ev.Seq, ev.Action, ev.To)
			}
			if (whole || chained[ev.Major]) && ev.From != lastTo[ev.Major] {
				fail("event %d (%s %s -> %s) does not chain: the previous activation of major %d ended at %q", ev.Seq, ev.Action, ev.From, ev.To, ev.Major, lastTo[ev.Major])
			}
			lastTo[ev.Major], chained[ev.Major] = ev.To, true
		}
	}
	for v := range snap.Register {
		if !snap.Versions[v] && !snap.Pruned[v] {
			fail("%s was registered (event %d) but is neither listed nor pruned", v, snap.Register[v])
		}
	}
	for v := range snap.Versions {
		if snap.Pruned[v] {
			fail("%s is listed but a later event pruned it", v)
		}
		if _, ok := snap.Register[v]; !ok && whole {
			fail("%s is listed but no event registered it", v)
		}
	}
	for major, v := range snap.Active {
		if !snap.Versions[v] {
			fail("active version %s of major %d is not listed", v, major)
		}
		if to, ok := lastTo[major]; ok && to != v {
			fail("active version of major %d is %s but its last activation event moved it to %s", major, v, to)
		}
	}
	return bad
}
