package trainer

import (
	"math"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
)

// The generator's sampling and window lengths, exported so that real traces
// are cut into the same history and following windows (package traces).
const (
	// Step is the sampling step of every series: 5 minutes.
	Step = genStep
	// DefaultHistorySteps is the history window the features come from:
	// 576 steps, 48 h.
	DefaultHistorySteps = genDefaultHist
	// DefaultFutureSteps is the following window the labels and scores come
	// from: 288 steps, 24 h.
	DefaultFutureSteps = genDefaultFuture
)

// FutureUsage summarizes the window that follows a history: the nearest-rank
// percentiles (features.Percentile) the labels and the scores read.
type FutureUsage struct {
	CPUP90, CPUP95, CPUP99 float64 // cores
	MemP90, MemP95, MemMax float64 // bytes
}

// SummarizeFuture computes the FutureUsage of a following window of CPU
// (cores) and memory (bytes) samples, using s's buffer. cpu and mem are not
// changed. Empty series give NaN percentiles.
func SummarizeFuture(s *features.Scratch, cpu, mem []float64) FutureUsage {
	var pc, pm [3]float64
	s.Percentiles(cpu, genFuturePercentilesCPU, pc[:])
	s.Percentiles(mem, genFuturePercentilesMem, pm[:])
	return FutureUsage{CPUP90: pc[0], CPUP95: pc[1], CPUP99: pc[2], MemP90: pm[0], MemP95: pm[1], MemMax: pm[2]}
}

// Labels returns a sample's five labels in raw units (cores, bytes, ratio),
// in model.DefaultOutputs order, as docs/data.md defines them: from the
// following window f, CPU request = p90, CPU limit = p99 × 1.05, memory
// request = p90, memory limit = max × 1.05 (each at least 10 millicores or
// 16 MiB, and each limit at least its request), and a confidence exp(−(|ln(future CPU p95 / history CPU p95)| +
// |ln(future memory max / history memory max)|)) that is 1 when the
// following window looks like the history. hist holds the history window's
// features and histMemMax its largest memory sample. The synthetic generator
// and trace replay both call it, so real and synthetic samples carry the same
// labels.
func Labels(hist features.Raw, histMemMax float64, f FutureUsage) [model.NumOutputs]float64 {
	conf := math.Exp(-(math.Abs(math.Log(max(f.CPUP95, genConfCPUFloor)/max(hist.CPUP95, genConfCPUFloor))) +
		math.Abs(math.Log(max(f.MemMax, genConfMemFloor)/max(histMemMax, genConfMemFloor)))))
	// Each limit at least its request, as in every served answer (p99 ≥ p90
	// and max ≥ p90 already; the max keeps it so for any FutureUsage). The
	// floors stay below the served minimums (model.MinCPUMillicores,
	// model.MinMemoryBytes), which Predict applies to any model's answer.
	cpuReq := max(f.CPUP90, genMinCPU)
	memReq := max(f.MemP90, genMinMemLabel)
	return [model.NumOutputs]float64{
		cpuReq,
		max(f.CPUP99*genLimitHeadroom, cpuReq),
		memReq,
		max(f.MemMax*genLimitHeadroom, memReq),
		conf,
	}
}
