package traces

import (
	"math"
	"time"

	"recommendation-api/internal/features"
)

// Windows says how a Series is cut into history and following windows.
// The zero value means the synthetic generator's: 576 steps (48 h) of
// history, 288 steps (24 h) after, one point a day.
type Windows struct {
	History int // steps of history the features and baselines see
	Future  int // steps after the history the recommendation is scored on
	Stride  int // steps between consecutive points
	// ExcludeTuning, for training data (Dataset) only, leaves the Tuning
	// containers out as well as the held-out ones.
	ExcludeTuning bool
}

func (w Windows) withDefaults(day int) Windows {
	if w.History <= 0 {
		w.History = 2 * day
	}
	if w.Future <= 0 {
		w.Future = day
	}
	if w.Stride <= 0 {
		w.Stride = day
	}
	return w
}

// Point is one evaluation point of a container: the history a recommender
// sees and the following window it is judged on.
type Point struct {
	Series  *Series
	End     int // index of the last history sample
	History features.Window
	// FutureCPU and FutureMem are the following window's samples.
	FutureCPU, FutureMem []float64
	// AgeDays is the workload age at End: days since the container's first
	// sample in the traces (the trace shows no earlier life).
	AgeDays float64
	// ProvCPU and ProvMem are the provisioned capacity at End (cores,
	// bytes); 0 when the format has none.
	ProvCPU, ProvMem float64
}

// Points cuts s into evaluation points: the first once a full history
// window exists, then every w.Stride steps, as long as a full following
// window exists. A point whose history or following window has a missing
// sample is skipped and counted in skipped. The history window's CPULimit
// is the provisioned CPU (cores) at its last sample when s has capacities,
// otherwise 0 (no limit). The windows alias s's slices.
func Points(s *Series, w Windows) (pts []Point, skipped int) {
	day := int(24 * time.Hour / s.Step)
	w = w.withDefaults(day)
	first := -1
	for i := range s.CPU {
		if !math.IsNaN(s.CPU[i]) && !math.IsNaN(s.Mem[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, 0
	}
	// missing[i] = number of missing samples in [0, i).
	missing := make([]int, len(s.CPU)+1)
	for i := range s.CPU {
		m := 0
		if math.IsNaN(s.CPU[i]) || math.IsNaN(s.Mem[i]) {
			m = 1
		}
		missing[i+1] = missing[i] + m
	}
	for end := first + w.History - 1; end+w.Future < len(s.CPU); end += w.Stride {
		lo, hi := end-w.History+1, end+w.Future+1
		if missing[hi] != missing[lo] {
			skipped++
			continue
		}
		p := Point{
			Series: s,
			End:    end,
			History: features.Window{
				End:  s.Start.Add(time.Duration(end) * s.Step),
				Step: s.Step,
				CPU:  s.CPU[lo : end+1],
				Mem:  s.Mem[lo : end+1],
			},
			FutureCPU: s.CPU[end+1 : hi],
			FutureMem: s.Mem[end+1 : hi],
			AgeDays:   float64(time.Duration(end-first+1)*s.Step) / float64(24*time.Hour),
		}
		if s.CPUCap != nil {
			if c := s.CPUCap[end]; c > 0 {
				p.ProvCPU = c
				p.History.CPULimit = c
			}
			if m := s.MemCap[end]; m > 0 {
				p.ProvMem = m
			}
		}
		pts = append(pts, p)
	}
	return pts, skipped
}
