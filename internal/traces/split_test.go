package traces_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"recommendation-api/internal/traces"
)

// TestSplitByContainer checks that no container ID is ever in both the
// training and the held-out set, that together they are every container,
// and that a container's side depends on its ID alone: not on the other
// containers read with it nor on their order.
func TestSplitByContainer(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*traces.Series
	for i := 1; i <= 260; i++ { // the shared Bitbrains VMs' IDs
		all = append(all, &traces.Series{ID: fmt.Sprint(i)})
	}
	for i := range 5000 {
		all = append(all, &traces.Series{ID: fmt.Sprintf("ns-%d/pod-%x/c", i%7, rng.Uint64())})
	}
	train, test := traces.SplitByContainer(all)
	side := map[string]string{}
	for _, s := range train {
		side[s.ID] = "train"
	}
	for _, s := range test {
		if side[s.ID] == "train" {
			t.Fatalf("%s is in both sets", s.ID)
		}
		side[s.ID] = "test"
	}
	if len(side) != len(all) || len(train)+len(test) != len(all) {
		t.Fatalf("%d + %d containers in the sets, %d distinct; want all %d once", len(train), len(test), len(side), len(all))
	}
	if f := float64(len(test)) / float64(len(all)); f < 0.45 || f > 0.55 {
		t.Errorf("%.3f held out; want about %v", f, traces.HoldoutFraction)
	}
	// IDs that differ only in their last characters split evenly too.
	for _, ids := range [][]*traces.Series{all[:60], all[60:260]} {
		_, te := traces.SplitByContainer(ids)
		if f := float64(len(te)) / float64(len(ids)); f < 0.35 || f > 0.65 {
			t.Errorf("%d of %d VMs %s..%s held out; want about %v", len(te), len(ids), ids[0].ID, ids[len(ids)-1].ID, traces.HoldoutFraction)
		}
	}

	// Shuffled, and in random subsets (one month's files, say), every
	// container stays on its side.
	for range 20 {
		sub := slices.Clone(all)
		rng.Shuffle(len(sub), func(i, j int) { sub[i], sub[j] = sub[j], sub[i] })
		sub = sub[:rng.IntN(len(sub))+1]
		tr, te := traces.SplitByContainer(sub)
		for _, s := range tr {
			if side[s.ID] != "train" {
				t.Fatalf("%s moved to training in a subset", s.ID)
			}
		}
		for _, s := range te {
			if side[s.ID] != "test" || traces.HeldOut(s.ID) != true {
				t.Fatalf("%s moved to the held-out set in a subset", s.ID)
			}
		}
	}
}

// TestDatasetNeverUsesHeldOut checks that training data is cut from the
// training containers only: adding held-out containers adds no row.
func TestDatasetNeverUsesHeldOut(t *testing.T) {
	t.Parallel()
	train, test := heldOut("c", 1, false), heldOut("c", 2, true)
	only, err := traces.Dataset(series(t, container(train[0], 4, 1)), traces.Windows{})
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := traces.Dataset(series(t, container(test[0], 4, 2), container(train[0], 4, 1), container(test[1], 5, 3)), traces.Windows{})
	if err != nil {
		t.Fatal(err)
	}
	if mixed.N != only.N || !slices.Equal(mixed.X, only.X) {
		t.Errorf("with held-out containers: %d rows; want the training container's %d, the same", mixed.N, only.N)
	}
	if _, err := traces.Dataset(series(t, container(test[0], 4, 2)), traces.Windows{}); err == nil {
		t.Error("only held-out containers: no error; want ErrNoWindows")
	}
}

// TestTuningSplit checks the tuning containers: training containers only
// (never a held-out one), about TuningFraction of them, on their side by
// their ID alone; generate-data --tuning-holdout's data holds no row of
// theirs; and Evaluate with TuningContainers scores them and nothing else.
func TestTuningSplit(t *testing.T) {
	t.Parallel()
	var nTrain, nTuning int
	for i := range 20000 {
		id := fmt.Sprintf("ns/pod-%d/c", i)
		tun := traces.Tuning(id)
		if tun && traces.HeldOut(id) {
			t.Fatalf("%s is both held out and a tuning container", id)
		}
		if !traces.HeldOut(id) {
			nTrain++
			if tun {
				nTuning++
			}
		}
	}
	if f := float64(nTuning) / float64(nTrain); f < traces.TuningFraction-0.02 || f > traces.TuningFraction+0.02 {
		t.Errorf("%.3f of the training containers are tuning ones; want about %v", f, traces.TuningFraction)
	}

	var tuning, plain []string
	for _, id := range heldOut("t", 400, false) {
		if traces.Tuning(id) && len(tuning) < 2 {
			tuning = append(tuning, id)
		} else if !traces.Tuning(id) && len(plain) < 2 {
			plain = append(plain, id)
		}
	}
	test := heldOut("t", 1, true)
	all := series(t, container(tuning[0], 4, 1), container(plain[0], 4, 2), container(test[0], 4, 3), container(tuning[1], 4, 4), container(plain[1], 4, 5))
	only, err := traces.Dataset(series(t, container(plain[0], 4, 2), container(plain[1], 4, 5)), traces.Windows{})
	if err != nil {
		t.Fatal(err)
	}
	without, err := traces.Dataset(all, traces.Windows{ExcludeTuning: true})
	if err != nil {
		t.Fatal(err)
	}
	if without.N != only.N || !slices.Equal(without.X, only.X) {
		t.Errorf("tuning containers excluded: %d rows; want the other training containers' %d, the same", without.N, only.N)
	}
	with, err := traces.Dataset(all, traces.Windows{})
	if err != nil {
		t.Fatal(err)
	}
	if with.N <= only.N {
		t.Errorf("tuning containers kept: %d rows; want more than the %d without them", with.N, only.N)
	}

	rep, err := traces.Evaluate(t.Context(), all, traces.Config{Containers: traces.TuningContainers})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(rep.ContainerIDs))
	if want := slices.Sorted(slices.Values(tuning)); !slices.Equal(got, want) || rep.Containers != "tuning" {
		t.Errorf("TuningContainers scored %v (%q); want the tuning containers %v", got, rep.Containers, want)
	}
}
