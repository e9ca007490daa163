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

// RecFromOutputs denormalizes the first four values of one model output row
// (cpu_request, cpu_limit, mem_request, mem_limit) with outputs[i].Denormalize.
// A row or spec list shorter than four gives the zero Rec.
func RecFromOutputs(y []float32, outputs []model.Spec) Rec {
	if len(y) < 4 || len(outputs) < 4 {
		return Rec{}
	}
	d := func(i int) float64 { return outputs[i].Denormalize(float64(y[i])) }
	return Rec{CPURequest: d(0), CPULimit: d(1), MemRequest: d(2), MemLimit: d(3)}
}
