package traces

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"recommendation-api/internal/trainer"
)

// MaxFill is the longest run of missing steps Resample fills by linear
// interpolation between its neighbours (1 h at 5-minute steps); longer gaps
// stay missing and no window may span them.
const MaxFill = 12

// Series is one container's usage on a regular grid: sample i is at
// Start + i·Step. A NaN in CPU or Mem is a missing sample.
type Series struct {
	ID     string
	File   string
	Start  time.Time // UTC
	Step   time.Duration
	CPU    []float64 // cores
	Mem    []float64 // bytes
	CPUCap []float64 // provisioned cores per step (NaN unknown); nil when the format has none
	MemCap []float64 // provisioned bytes per step; nil likewise
	// Repeats counts rows dropped because their timestamp repeated an
	// earlier row's.
	Repeats int
	// Missing counts steps without a sample after filling short gaps.
	Missing int
}

// Resample puts a container's rows on a grid of step, anchored at its first
// timestamp: a row goes to the nearest grid point; rows sharing a timestamp
// after the first are dropped (counted in Repeats) unless they fill in a
// CPU or memory value the first row lacks; rows that land on the
// same grid point (finer input, or clock jitter) are averaged; missing
// samples are NaN, and runs of at most MaxFill missing steps between two
// samples are filled by linear interpolation (capacities by the previous
// value). Rows are sorted by time first, stably, so "first" means first in
// file order. step must be positive.
func Resample(c Container, step time.Duration) (*Series, error) {
	if step <= 0 {
		return nil, fmt.Errorf("resample %s: step %v; want a positive duration", c.ID, step)
	}
	rows := slices.Clone(c.Samples)
	slices.SortStableFunc(rows, func(a, b Sample) int { return cmp.Compare(a.UnixMilli, b.UnixMilli) })
	s := &Series{ID: c.ID, File: c.File, Step: step}
	if len(rows) == 0 {
		return s, nil
	}
	kept := rows[:1]
	for _, r := range rows[1:] {
		k := &kept[len(kept)-1]
		if r.UnixMilli != k.UnixMilli {
			kept = append(kept, r)
			continue
		}
		// A repeated timestamp: the first row wins; a later one only fills
		// in a value the first lacks (a CPU row and a memory row exported
		// separately), else it is dropped.
		filled := false
		if math.IsNaN(k.CPU) && !math.IsNaN(r.CPU) {
			k.CPU, filled = r.CPU, true
		}
		if math.IsNaN(k.Mem) && !math.IsNaN(r.Mem) {
			k.Mem, filled = r.Mem, true
		}
		if !filled {
			s.Repeats++
		}
	}
	rows = kept

	stepMS := float64(step.Milliseconds())
	t0 := rows[0].UnixMilli
	slot := func(ms int64) int { return int(math.Round(float64(ms-t0) / stepMS)) }
	n := slot(rows[len(rows)-1].UnixMilli) + 1
	const maxSteps = 50_000_000 // ~475 years of 5-minute steps: refuse absurd spans
	if n > maxSteps {
		return nil, fmt.Errorf("resample %s: rows span %d steps of %v; want at most %d", c.ID, n, step, maxSteps)
	}
	s.Start = time.UnixMilli(t0).UTC()
	s.CPU, s.Mem = make([]float64, n), make([]float64, n)
	hasCap := false
	for _, r := range rows {
		if r.CPUCap > 0 || r.MemCap > 0 {
			hasCap = true
			break
		}
	}
	if hasCap {
		s.CPUCap, s.MemCap = make([]float64, n), make([]float64, n)
	}
	cpuN, memN := make([]int32, n), make([]int32, n)
	for _, r := range rows {
		i := slot(r.UnixMilli)
		if !math.IsNaN(r.CPU) {
			s.CPU[i] += r.CPU
			cpuN[i]++
		}
		if !math.IsNaN(r.Mem) {
			s.Mem[i] += r.Mem
			memN[i]++
		}
		if hasCap && (r.CPUCap > 0 || r.MemCap > 0) {
			s.CPUCap[i], s.MemCap[i] = r.CPUCap, r.MemCap // the last row of a step wins
		}
	}
	for i := range n {
		s.CPU[i] = mean(s.CPU[i], cpuN[i])
		s.Mem[i] = mean(s.Mem[i], memN[i])
		if hasCap && s.CPUCap[i] == 0 && s.MemCap[i] == 0 {
			s.CPUCap[i], s.MemCap[i] = math.NaN(), math.NaN()
		}
	}
	fillGaps(s.CPU)
	fillGaps(s.Mem)
	if hasCap {
		holdGaps(s.CPUCap)
		holdGaps(s.MemCap)
	}
	for i := range n {
		if math.IsNaN(s.CPU[i]) || math.IsNaN(s.Mem[i]) {
			s.Missing++
		}
	}
	return s, nil
}

func mean(sum float64, n int32) float64 {
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// fillGaps interpolates runs of at most MaxFill NaNs between two values.
func fillGaps(v []float64) {
	last := -1 // index of the last value seen
	for i, x := range v {
		if math.IsNaN(x) {
			continue
		}
		if gap := i - last - 1; last >= 0 && gap > 0 && gap <= MaxFill {
			a, b := v[last], x
			for j := last + 1; j < i; j++ {
				f := float64(j-last) / float64(i-last)
				v[j] = a + (b-a)*f
			}
		}
		last = i
	}
}

// holdGaps carries the previous value over runs of at most MaxFill NaNs
// that end in a value.
func holdGaps(v []float64) {
	last := -1
	for i, x := range v {
		if math.IsNaN(x) {
			continue
		}
		if gap := i - last - 1; last >= 0 && gap > 0 && gap <= MaxFill {
			for j := last + 1; j < i; j++ {
				v[j] = v[last]
			}
		}
		last = i
	}
}

// Load reads trace files in format f and returns one Series per container on
// the generator's 5-minute grid (trainer.Step), in the order containers
// first appear. Rows of the same container ID in several files are merged
// (Bitbrains IDs are file names, so the same VM's monthly files join up).
// Errors name the file and line (see ReadFile).
func Load(paths []string, f Format, step time.Duration) ([]*Series, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("load traces: no files")
	}
	// Read (and decompress) the files in parallel, merge in argument order.
	read := make([][]Container, len(paths))
	g := new(errgroup.Group)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range paths {
		g.Go(func() error {
			cs, err := ReadFile(p, f)
			read[i] = cs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var all []Container
	byID := map[string]int{}
	for _, cs := range read {
		for _, c := range cs {
			if i, ok := byID[c.ID]; ok {
				all[i].Samples = append(all[i].Samples, c.Samples...)
				continue
			}
			byID[c.ID] = len(all)
			all = append(all, c)
		}
	}
	out := make([]*Series, 0, len(all))
	for _, c := range all {
		s, err := Resample(c, step)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.File, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// LoadPaths expands paths (files, directories, globs: ExpandPaths), reads
// them in format f — or, when f is empty, in the format DetectFormat finds
// in the first file (Load then checks every file against it) — and returns
// the series on the generator's grid (trainer.Step), the files read and
// the format.
func LoadPaths(paths []string, f Format) ([]*Series, []string, Format, error) {
	files, err := ExpandPaths(paths)
	if err != nil {
		return nil, nil, "", err
	}
	if f == "" {
		if f, err = DetectFormat(files[0]); err != nil {
			return nil, nil, "", err
		}
	}
	series, err := Load(files, f, trainer.Step)
	return series, files, f, err
}
