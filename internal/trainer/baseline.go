package trainer

import (
	"cmp"
	"math"
	"slices"
	"time"

	"recommendation-api/internal/features"
)

// The VPA recommender's defaults (kubernetes/autoscaler,
// vertical-pod-autoscaler/pkg/recommender), as DESIGN.md records them.
const (
	vpaTargetPercentile = 90
	vpaSafetyMargin     = 1.15
	vpaHalfLife         = 24 * time.Hour // of the CPU histogram's sample weights
	vpaMemInterval      = 24 * time.Hour // one memory peak per interval
	vpaMinCPU           = 0.025          // cores
	vpaMinMem           = 250 * genMiB   // bytes
)

// VPA is the baseline the model must beat: the Kubernetes VPA recommender's
// target, computed on the history window.
//
//   - CPU: every sample weighs 2^(−age/24h), age measured back from the last
//     sample; the target is the weighted 90th percentile (the smallest sample
//     value whose cumulative weight, ascending, reaches 90% of the total)
//     × 1.15, at least 25 millicores.
//   - Memory: the peak of each 24 h interval counted back from the last
//     sample (a shorter oldest interval counts too); the target is the
//     nearest-rank 90th percentile of the peaks × 1.15, at least 250 MiB.
//     With fewer than ten peaks that is the largest one.
//
// Request and limit are both the target: the model recommends both, and
// the comparison that matters is the limit against the following usage.
// The real VPA keeps histograms with 5% buckets (it reports a bucket bound)
// over 8 days of memory peaks and weighs CPU samples by the request too;
// here the percentiles are exact and only the window is available.
// Negative and non-finite samples are ignored; a window without usable
// samples gets the minimums.
func VPA(w features.Window) Rec {
	type vpaSample struct{ v, weight float64 }
	n := len(w.CPU)
	samples := make([]vpaSample, 0, n)
	total := 0.0
	for i, c := range w.CPU {
		if !(c >= 0) || math.IsInf(c, 1) {
			continue
		}
		age := 0.0
		if w.Step > 0 {
			age = float64(time.Duration(n-1-i)*w.Step) / float64(vpaHalfLife)
		}
		wt := math.Exp2(-age)
		samples = append(samples, vpaSample{c, wt})
		total += wt
	}
	cpu := 0.0
	if len(samples) > 0 {
		slices.SortFunc(samples, func(a, b vpaSample) int { return cmp.Compare(a.v, b.v) })
		cpu = samples[len(samples)-1].v // should rounding leave the loop without a hit
		target, acc := total*vpaTargetPercentile/100, 0.0
		for _, s := range samples {
			if acc += s.weight; acc >= target {
				cpu = s.v
				break
			}
		}
	}

	per := len(w.Mem) // samples per interval; a bad step makes the window one interval
	if w.Step > 0 {
		per = max(1, int(vpaMemInterval/w.Step))
	}
	var peaks []float64
	for end := len(w.Mem); end > 0; end -= per {
		peak, ok := 0.0, false
		for _, m := range w.Mem[max(0, end-per):end] {
			if m >= 0 && !math.IsInf(m, 1) {
				peak, ok = max(peak, m), true
			}
		}
		if ok {
			peaks = append(peaks, peak)
		}
	}
	slices.Sort(peaks)
	mem := 0.0
	if len(peaks) > 0 {
		mem = features.Percentile(peaks, vpaTargetPercentile)
	}

	cpu = max(cpu*vpaSafetyMargin, vpaMinCPU)
	mem = max(mem*vpaSafetyMargin, vpaMinMem)
	return Rec{CPURequest: cpu, CPULimit: cpu, MemRequest: mem, MemLimit: mem}
}
