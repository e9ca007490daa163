package trainer

import (
	"math"
	"time"

	"recommendation-api/internal/features"
)

// The Kubernetes VPA recommender's defaults (kubernetes/autoscaler,
// vertical-pod-autoscaler/pkg/recommender: the flags of logic/recommender.go
// and the constants of model/aggregations_config.go).
const (
	vpaTargetPercentile = 0.90
	vpaLowerPercentile  = 0.50
	vpaUpperPercentile  = 0.95
	vpaSafetyMargin     = 0.15 // recommendation-margin-fraction

	// Confidence multipliers: a bound × (1 + multiplier/confidence)^exponent.
	vpaUpperConfMultiplier, vpaUpperConfExponent = 1.0, 1.0
	vpaLowerConfMultiplier, vpaLowerConfExponent = 0.001, -2.0

	vpaHalfLife     = 24 * time.Hour // both histograms decay with it
	vpaMemInterval  = 24 * time.Hour // one memory peak per interval
	vpaMemIntervals = 8              // the memory aggregation window: 8 intervals
	vpaMinCPUMilli  = 25             // pod-recommendation-min-cpu-millicores
	vpaMinMemBytes  = 250 << 20      // pod-recommendation-min-memory-mb (MiB)
	vpaOOMBumpRatio = 1.2
	vpaOOMMinBump   = 100 << 20 // bytes

	// Histogram buckets: exponential, each 5% wider than the one before;
	// CPU from 0.01 core up to 1000 cores, memory from 10 MB up to 1 TB.
	vpaBucketRatio       = 1.05
	vpaCPUFirstBucket    = 0.01
	vpaCPUMaxValue       = 1000.0
	vpaMemFirstBucket    = 1e7
	vpaMemMaxValue       = 1e12
	vpaMinSampleWeight   = 0.1                        // every CPU sample's weight before decay
	vpaEpsilon           = 0.001 * vpaMinSampleWeight // a bucket lighter than this is empty
	vpaMaxResourceAmount = 1e14                       // model.MaxResourceAmount

	// vpaSampleInterval is how often a running recommender takes a usage
	// sample (its main loop, --recommender-interval); the confidence counts
	// samples in these units.
	vpaSampleInterval = time.Minute
)

// VPAMaxHistory is the longest history the VPA recommender aggregates
// memory over: 8 intervals of 24 h.
const VPAMaxHistory = vpaMemIntervals * vpaMemInterval

// VPAResources is one VPA bound: CPU in cores (whole millicores, as the
// recommender's ResourceAmount holds them) and memory in bytes.
type VPAResources struct {
	CPU float64 `json:"cpu_cores"`
	Mem float64 `json:"mem_bytes"`
}

// VPAEstimate is what the VPA recommender reports for one container from
// its usage history: the target, lower and upper bounds, and the
// confidence (in days of history) its bounds were widened by.
type VPAEstimate struct {
	Target, LowerBound, UpperBound VPAResources
	Confidence                     float64
}

// VPAOOM is an OOM kill of the container at history sample At, while its
// memory request was Request bytes.
type VPAOOM struct {
	At      int
	Request float64
}

// VPAOptions are the inputs of VPARecommend besides the usage history.
type VPAOptions struct {
	// OOMs are the OOM kills in the history, in ascending At.
	OOMs []VPAOOM
	// SamplesPerRow is how many of VPA's samples one history sample counts
	// as in the confidence: 0 means Step / 1 min, what a running
	// recommender, sampling once a minute, would have taken over the same
	// time; 1 counts every history row as one sample (VPA fed the trace
	// rows themselves, e.g. 288 a day at 5-minute steps).
	SamplesPerRow float64
}

// VPARecommend computes what the Kubernetes VPA recommender recommends from
// the history window w and opt.OOMs, as its code does:
//
//   - CPU: every sample enters a histogram with weight 0.1 ×
//     2^(t/24h) (a 24 h half-life). Buckets grow exponentially: bucket 0 is
//     [0, 0.01) cores and bucket i ≥ 1 starts at 0.01·(1.05^i − 1)/0.05.
//     A percentile is the upper end of the bucket where the cumulative
//     weight, in ascending buckets, first reaches that share of the total.
//   - Memory: one peak per 24 h interval, the intervals anchored at the
//     first memory sample; each peak enters a histogram of the same scheme
//     (10 MB first bucket) with weight 2^(interval end/24h), so a peak
//     weighs half as much for every day it is older. After an OOM kill the
//     interval's peak becomes at least max(used + 100 MiB, used × 1.2),
//     used = max(the memory request, the interval's peak so far).
//   - target = p90, lower bound = p50, upper bound = p95, each × 1.15
//     (truncated to whole millicores and bytes at every step, as
//     ResourceAmount is an integer); upper bound × (1 + 1/c), lower bound
//     × (1 + 0.001/c)^−2, c the confidence: min(days between the first
//     and last CPU sample, CPU samples / 1440). A running recommender takes
//     a sample a minute, so by default a history sample of Step counts as
//     Step/1 min samples (opt.SamplesPerRow) and for a gap-free history c
//     is its span in days.
//   - every bound at least 25 millicores and 250 MiB.
//
// Samples that are negative, NaN or infinite are ignored (VPA drops
// invalid samples). The recommender keeps at most 8 days of memory peaks
// (VPAMaxHistory); give it no more. Without any sample VPA has no
// recommendation: the minimums are returned, with confidence 0. (With
// memory but no CPU samples the confidence is 0 too, and the upper bound
// is VPA's "infinite" maximum, 10^14.)
func VPARecommend(w features.Window, opt VPAOptions) VPAEstimate {
	ooms := opt.OOMs
	start := w.End.Add(-time.Duration(len(w.CPU)-1) * w.Step)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * w.Step) }

	cpu := newVPAHistogram(vpaCPUFirstBucket, vpaCPUMaxValue)
	var first, last time.Time
	samples := 0
	for i, c := range w.CPU {
		if !vpaValid(c) {
			continue
		}
		t := at(i)
		cpu.add(c, vpaMinSampleWeight, t)
		if samples == 0 {
			first = t
		}
		last = t
		samples++
	}

	mem := newVPAHistogram(vpaMemFirstBucket, vpaMemMaxValue)
	var iv vpaInterval
	oi := 0
	for i, m := range w.Mem {
		if vpaValid(m) {
			iv.add(&mem, at(i), m, false)
		}
		for ; oi < len(ooms) && ooms[oi].At <= i; oi++ {
			if ooms[oi].At == i {
				used := max(ooms[oi].Request, iv.memPeak)
				iv.add(&mem, at(i), max(used+vpaOOMMinBump, used*vpaOOMBumpRatio), true)
			}
		}
	}

	conf := 0.0
	if samples > 0 {
		lifespan := last.Sub(first).Hours() / 24
		perRow := opt.SamplesPerRow
		if perRow <= 0 {
			perRow = float64(w.Step) / float64(vpaSampleInterval)
		}
		count := float64(samples) * perRow / (60 * 24)
		conf = min(lifespan, count)
	}
	bound := func(h *vpaHistogram, p, multiplier, exponent, scale float64) float64 {
		v := vpaAmount(h.percentile(p) * scale) // to millicores or bytes
		v += vpaAmount(v * vpaSafetyMargin)
		if multiplier != 0 {
			v = vpaAmount(v * math.Pow(1+multiplier/conf, exponent))
		}
		return v
	}
	est := VPAEstimate{
		Target: VPAResources{
			CPU: bound(&cpu, vpaTargetPercentile, 0, 0, 1000),
			Mem: bound(&mem, vpaTargetPercentile, 0, 0, 1),
		},
		LowerBound: VPAResources{
			CPU: bound(&cpu, vpaLowerPercentile, vpaLowerConfMultiplier, vpaLowerConfExponent, 1000),
			Mem: bound(&mem, vpaLowerPercentile, vpaLowerConfMultiplier, vpaLowerConfExponent, 1),
		},
		UpperBound: VPAResources{
			CPU: bound(&cpu, vpaUpperPercentile, vpaUpperConfMultiplier, vpaUpperConfExponent, 1000),
			Mem: bound(&mem, vpaUpperPercentile, vpaUpperConfMultiplier, vpaUpperConfExponent, 1),
		},
		Confidence: conf,
	}
	if samples == 0 && mem.empty() {
		est = VPAEstimate{} // no history: the minimums below
	}
	for _, r := range []*VPAResources{&est.Target, &est.LowerBound, &est.UpperBound} {
		r.CPU = max(r.CPU, vpaMinCPUMilli) / 1000
		r.Mem = max(r.Mem, vpaMinMemBytes)
	}
	return est
}

// TargetAsLimit is VPA deployed in RequestsAndLimits mode on pods whose
// limit equals their request: request = limit = the target.
func (e VPAEstimate) TargetAsLimit() Rec {
	return Rec{CPURequest: e.Target.CPU, CPULimit: e.Target.CPU, MemRequest: e.Target.Mem, MemLimit: e.Target.Mem}
}

// UpperBoundAsLimit is VPA with its upper bound as the limit: request =
// the target, limit = the upper bound.
func (e VPAEstimate) UpperBoundAsLimit() Rec {
	return Rec{CPURequest: e.Target.CPU, CPULimit: e.UpperBound.CPU, MemRequest: e.Target.Mem, MemLimit: e.UpperBound.Mem}
}

// VPA is the VPA recommender's target on the history window as request and
// limit (VPARecommend(w, VPAOptions{}).TargetAsLimit()): the baseline the trainer
// scores on synthetic data.
func VPA(w features.Window) Rec {
	return VPARecommend(w, VPAOptions{}).TargetAsLimit()
}

func vpaValid(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }

// vpaAmount is the recommender's ResourceAmount conversion: truncated to an
// integer, negative to 0, capped at its maximum.
func vpaAmount(v float64) float64 {
	switch {
	case !(v >= 0):
		return 0
	case v > vpaMaxResourceAmount:
		return vpaMaxResourceAmount
	}
	return math.Trunc(v)
}

// vpaHistogram is VPA's decaying histogram with exponential buckets
// (util/histogram.go, decaying_histogram.go, histogram_options.go).
type vpaHistogram struct {
	first    float64 // size of bucket 0
	weight   []float64
	total    float64
	min, max int       // first and last bucket of at least vpaEpsilon
	ref      time.Time // decay reference, a multiple of the half-life
	hasRef   bool
}

func newVPAHistogram(first, maxValue float64) vpaHistogram {
	n := int(math.Ceil(math.Log(maxValue*(vpaBucketRatio-1)/first+1)/math.Log(vpaBucketRatio))) + 1
	return vpaHistogram{first: first, weight: make([]float64, n), min: n - 1}
}

func (h *vpaHistogram) bucket(v float64) int {
	if v < h.first {
		return 0
	}
	b := int(math.Log(v*(vpaBucketRatio-1)/h.first+1) / math.Log(vpaBucketRatio))
	return min(b, len(h.weight)-1)
}

func (h *vpaHistogram) bucketStart(b int) float64 {
	if b == 0 {
		return 0
	}
	return h.first * (math.Pow(vpaBucketRatio, float64(b)) - 1) / (vpaBucketRatio - 1)
}

// decay is the weight factor of a sample at t: 2^((t − ref)/half-life).
// The reference is set at the first sample (VPA moves it forward once the
// exponent passes 100, which no history here reaches).
func (h *vpaHistogram) decay(t time.Time) float64 {
	if !h.hasRef {
		h.ref, h.hasRef = t.Round(vpaHalfLife), true
	}
	return math.Exp2(float64(t.Sub(h.ref)) / float64(vpaHalfLife))
}

func (h *vpaHistogram) add(v, weight float64, t time.Time) {
	b := h.bucket(v)
	w := weight * h.decay(t)
	h.weight[b] += w
	h.total += w
	if b < h.min && h.weight[b] >= vpaEpsilon {
		h.min = b
	}
	if b > h.max && h.weight[b] >= vpaEpsilon {
		h.max = b
	}
}

func (h *vpaHistogram) subtract(v, weight float64, t time.Time) {
	b := h.bucket(v)
	w := weight * h.decay(t)
	if h.total -= w; h.total < vpaEpsilon {
		h.total = 0
	}
	if h.weight[b] -= w; h.weight[b] < vpaEpsilon {
		h.weight[b] = 0
	}
	for h.weight[h.min] < vpaEpsilon && h.min < len(h.weight)-1 {
		h.min++
	}
	for h.weight[h.max] < vpaEpsilon && h.max > 0 {
		h.max--
	}
}

func (h *vpaHistogram) empty() bool { return h.weight[h.min] < vpaEpsilon }

// percentile is the end of the bucket where the ascending cumulative weight
// first reaches p × total (the start of the last bucket, which has no end);
// 0 for an empty histogram.
func (h *vpaHistogram) percentile(p float64) float64 {
	if h.empty() {
		return 0
	}
	sum, threshold := 0.0, p*h.total
	b := h.min
	for ; b < h.max; b++ {
		if sum += h.weight[b]; sum >= threshold {
			break
		}
	}
	if b < len(h.weight)-1 {
		return h.bucketStart(b + 1)
	}
	return h.bucketStart(b)
}

// vpaInterval is a container's current memory aggregation interval
// (model/container.go): its end and the peaks of usage and of OOM
// estimates in it, one of which is in the histogram at the interval's end.
type vpaInterval struct {
	end              time.Time
	memPeak, oomPeak float64
	started          bool
}

func (iv *vpaInterval) add(h *vpaHistogram, t time.Time, v float64, oom bool) {
	if !iv.started {
		iv.end, iv.started = t, true
	}
	addPeak := false
	if t.Before(iv.end) {
		// A higher sample replaces the interval's peak. (VPA's check: an
		// interval whose first sample was 0 keeps 0.)
		if old := max(iv.memPeak, iv.oomPeak); old != 0 && v > old {
			h.subtract(old, 1, iv.end)
			addPeak = true
		}
	} else {
		iv.end = iv.end.Add(t.Sub(iv.end).Truncate(vpaMemInterval) + vpaMemInterval)
		iv.memPeak, iv.oomPeak = 0, 0
		addPeak = true
	}
	if addPeak {
		h.add(v, 1, iv.end)
		if oom {
			iv.oomPeak = v
		} else {
			iv.memPeak = v
		}
	}
}
