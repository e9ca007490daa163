package trainer

import (
	"math"
	"sort"

	"recommendation-api/internal/model"
)

// Score measures recommendations against what the following windows used.
// Per sample:
//
//   - relative slack of each of the four values v (requests and limits
//     alike) = (v − future p95)/v, Autopilot's definition, with the CPU p95
//     for CPU and the memory p95 for memory. Slack is the unused share of
//     what was reserved, so it is clipped to [0,1]: a value below the p95
//     has no slack (its shortfall shows in OOMRate and ThrottleRate, not as
//     a negative slack that would offset other samples' waste); a value
//     ≤ 0 or NaN has slack 0, an infinite one slack 1.
//   - OOM: the future memory maximum exceeds MemLimit (a NaN limit counts
//     as 0).
//   - throttling: the share of future CPU samples above CPULimit.
//
// Slacks and the throttling share are averaged over samples; OOMRate is the
// share of samples with an OOM. recs[i] is scored against fut[i]; if the
// slices differ in length only the first min(len) pairs count, and none
// give zero Scores.
func Score(recs []Rec, fut []Outcome) model.Scores {
	n := min(len(recs), len(fut))
	var s model.Scores
	if n == 0 {
		return s
	}
	ooms := 0
	for i := range n {
		r, f := recs[i], fut[i]
		cpuP95, memP95 := float64(f.CPUP95), float64(f.MemP95)
		s.CPURequestSlack += RelativeSlack(r.CPURequest, cpuP95)
		s.CPULimitSlack += RelativeSlack(r.CPULimit, cpuP95)
		s.MemRequestSlack += RelativeSlack(r.MemRequest, memP95)
		s.MemLimitSlack += RelativeSlack(r.MemLimit, memP95)
		if !(float64(f.MemMax) <= LimitOrZero(r.MemLimit)) {
			ooms++
		}
		s.ThrottleRate += scoreThrottled(f.CPUSorted, LimitOrZero(r.CPULimit))
	}
	fn := float64(n)
	s.CPURequestSlack /= fn
	s.CPULimitSlack /= fn
	s.MemRequestSlack /= fn
	s.MemLimitSlack /= fn
	s.ThrottleRate /= fn
	s.OOMRate = float64(ooms) / fn
	return s
}

// RelativeSlack is Autopilot's relative slack of a limit or request v
// against p95 usage, (v − p95)/v, clipped to [0,1]: 0 for no value, 1 for
// an unbounded one. Under-provisioning shows in the OOM and throttling
// rates, not as negative slack cancelling waste elsewhere.
func RelativeSlack(v, p95 float64) float64 {
	switch {
	case !(v > 0):
		return 0
	case math.IsInf(v, 1):
		return 1
	}
	return min(max((v-p95)/v, 0), 1)
}

// LimitOrZero is the limit scoring counts: a NaN recommendation (a model
// that answered nothing usable) counts as 0, so it fails every comparison.
func LimitOrZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// scoreThrottled is the share of the ascending samples above limit.
func scoreThrottled(sorted []float32, limit float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	above := len(sorted) - sort.Search(len(sorted), func(j int) bool { return float64(sorted[j]) > limit })
	return float64(above) / float64(len(sorted))
}

// RecFromOutputs is what Predict serves for one model output row
// (cpu_request, cpu_limit, mem_request, mem_limit, …): the first four values
// denormalized with outputs[i].Denormalize and made admissible with
// model.Admissible (minimum ≤ request ≤ limit), so that scores measure the
// served answer. A row or spec list shorter than four gives the zero Rec.
func RecFromOutputs(y []float32, outputs []model.Spec) Rec {
	if len(y) < 4 || len(outputs) < 4 {
		return Rec{}
	}
	d := func(i int) float64 { return outputs[i].Denormalize(float64(y[i])) }
	cr, cl, mr, ml := model.Admissible(d(0)*1000, d(1)*1000, d(2), d(3))
	return Rec{CPURequest: cr / 1000, CPULimit: cl / 1000, MemRequest: mr, MemLimit: ml}
}

// Inadmissible counts the rows of a model's own output (before
// model.Admissible) that Kubernetes would refuse or that fall below the
// minimums.
type Inadmissible struct {
	Rows          int // rows looked at
	CPUOverLimit  int // CPU request above the CPU limit
	MemOverLimit  int // memory request above the memory limit
	BelowMinimums int // some value below model.MinCPUMillicores or model.MinMemoryBytes
	Any           int // rows with at least one of the above
}

// CountInadmissible counts, over the n rows of pred (n×5), the model
// answers that Predict has to correct.
func CountInadmissible(pred []float32, n int, outputs []model.Spec) Inadmissible {
	c := Inadmissible{Rows: n}
	if len(outputs) < 4 {
		return c
	}
	for r := 0; r < n && (r+1)*model.NumOutputs <= len(pred); r++ {
		y := pred[r*model.NumOutputs:]
		d := func(i int) float64 { return outputs[i].Denormalize(float64(y[i])) }
		cr, cl, mr, ml := d(0)*1000, d(1)*1000, d(2), d(3)
		cpu, mem := cr > cl, mr > ml
		low := min(cr, cl) < model.MinCPUMillicores || min(mr, ml) < model.MinMemoryBytes
		if cpu {
			c.CPUOverLimit++
		}
		if mem {
			c.MemOverLimit++
		}
		if low {
			c.BelowMinimums++
		}
		if cpu || mem || low {
			c.Any++
		}
	}
	return c
}
