package traces

import (
	"math"
	"slices"
	"sort"

	"recommendation-api/internal/features"
	"recommendation-api/internal/trainer"
)

// KRR "simple" strategy defaults (robusta-dev/krr), as DESIGN.md records
// them, with KRR's configured minimums.
const (
	krrCPUPercentile = 95
	krrMemBuffer     = 1.15
	krrMinCPU        = 0.010     // cores (cpu_min_value 10 millicores)
	krrMinMem        = 100 << 20 // bytes (memory_min_value 100 MB)
)

// KRRSimple is Robusta KRR's "simple" strategy on a history window: CPU
// request = the nearest-rank p95 of CPU usage and no CPU limit (CPULimit is
// +Inf: it never throttles, and its CPU slack is scored on the request);
// memory request = limit = the window's maximum × 1.15. KRR's minimums
// apply (10 millicores, 100 MiB). An empty window gets the minimums.
func KRRSimple(w features.Window) trainer.Rec {
	cpu, mem := 0.0, 0.0
	if len(w.CPU) > 0 {
		var s features.Scratch
		var out [1]float64
		s.Percentiles(w.CPU, []float64{krrCPUPercentile}, out[:])
		cpu = out[0]
	}
	for _, m := range w.Mem {
		mem = max(mem, m)
	}
	if math.IsNaN(cpu) {
		cpu = 0
	}
	mem = max(mem*krrMemBuffer, krrMinMem)
	return trainer.Rec{CPURequest: max(cpu, krrMinCPU), CPULimit: math.Inf(1), MemRequest: mem, MemLimit: mem}
}

// Future is what a following window used, ready for scoring.
type Future struct {
	CPUP95, MemP95, MemMax float64
	cpuSorted, memSorted   []float64
}

// NewFuture summarizes a following window (cores, bytes).
func NewFuture(cpu, mem []float64) Future {
	f := Future{cpuSorted: slices.Clone(cpu), memSorted: slices.Clone(mem)}
	slices.Sort(f.cpuSorted)
	slices.Sort(f.memSorted)
	f.CPUP95 = features.Percentile(f.cpuSorted, 95)
	f.MemP95 = features.Percentile(f.memSorted, 95)
	if n := len(f.memSorted); n > 0 {
		f.MemMax = f.memSorted[n-1]
	}
	return f
}

// DayScore is one recommendation judged against one following window
// (a container-day), with Google Autopilot's definitions (EuroSys 2020):
//
//   - relative slack of a value v = (v − p95 usage)/v, clipped to [0,1]
//     exactly as trainer.Score clips it (usage above v is a shortfall, not a
//     negative slack); a CPU limit of none (+Inf) is scored on the request;
//   - absolute slack = max(v − p95 usage, 0) in cores or bytes, for limits;
//   - OOM: the window's memory maximum exceeds the memory limit;
//   - throttling: the share of CPU samples above the CPU limit (0 for none);
//   - request shortfall: the share of samples above the request.
type DayScore struct {
	CPURequestSlack     float64 `json:"cpu_request_slack"`
	CPULimitSlack       float64 `json:"cpu_limit_slack"`
	MemRequestSlack     float64 `json:"mem_request_slack"`
	MemLimitSlack       float64 `json:"mem_limit_slack"`
	CPULimitSlackCores  float64 `json:"cpu_limit_slack_cores"`
	MemLimitSlackBytes  float64 `json:"mem_limit_slack_bytes"`
	OOM                 bool    `json:"oom"`
	Throttle            float64 `json:"throttle"`
	CPURequestShortfall float64 `json:"cpu_request_shortfall"`
	MemRequestShortfall float64 `json:"mem_request_shortfall"`
}

// ScoreDay scores r against f.
func ScoreDay(r trainer.Rec, f Future) DayScore {
	cpuLimit := r.CPULimit
	if math.IsInf(cpuLimit, 1) {
		cpuLimit = r.CPURequest // no limit: the request is what is reserved
	}
	memLimit := trainer.LimitOrZero(r.MemLimit)
	return DayScore{
		CPURequestSlack:     trainer.RelativeSlack(r.CPURequest, f.CPUP95),
		CPULimitSlack:       trainer.RelativeSlack(cpuLimit, f.CPUP95),
		MemRequestSlack:     trainer.RelativeSlack(r.MemRequest, f.MemP95),
		MemLimitSlack:       trainer.RelativeSlack(r.MemLimit, f.MemP95),
		CPULimitSlackCores:  absSlack(cpuLimit, f.CPUP95),
		MemLimitSlackBytes:  absSlack(r.MemLimit, f.MemP95),
		OOM:                 !(f.MemMax <= memLimit),
		Throttle:            above(f.cpuSorted, trainer.LimitOrZero(r.CPULimit)),
		CPURequestShortfall: above(f.cpuSorted, trainer.LimitOrZero(r.CPURequest)),
		MemRequestShortfall: above(f.memSorted, trainer.LimitOrZero(r.MemRequest)),
	}
}

// absSlack is the absolute slack v − p95 (0 when v does not exceed p95 or
// is unbounded).
func absSlack(v, p95 float64) float64 {
	if !(v > p95) || math.IsInf(v, 1) {
		return 0
	}
	return v - p95
}

// above is the share of the ascending samples above limit (+Inf: none).
func above(sorted []float64, limit float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	n := len(sorted) - sort.SearchFloat64s(sorted, math.Nextafter(limit, math.Inf(1)))
	return float64(n) / float64(len(sorted))
}

// Stat is a distribution across container-days: its mean and nearest-rank
// median and 90th percentile.
type Stat struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
}

func newStat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Stat{Mean: sum / float64(len(s)), P50: features.Percentile(s, 50), P90: features.Percentile(s, 90)}
}

// Summary is one recommender's scores across container-days.
type Summary struct {
	Name          string `json:"name"`
	ContainerDays int    `json:"container_days"`
	// Relative slack of each value, Autopilot's (v − p95)/v.
	CPURequestSlack Stat `json:"cpu_request_slack"`
	CPULimitSlack   Stat `json:"cpu_limit_slack"`
	MemRequestSlack Stat `json:"mem_request_slack"`
	MemLimitSlack   Stat `json:"mem_limit_slack"`
	// Absolute slack of the limits.
	CPULimitSlackCores Stat `json:"cpu_limit_slack_cores"`
	MemLimitSlackBytes Stat `json:"mem_limit_slack_bytes"`
	// OOMRate is the share of container-days with an OOM (memory above the
	// limit at least once): with one task per container, Autopilot's
	// relative OOM rate (OOMs per day / running tasks) counted once a day.
	OOMRate float64 `json:"oom_rate"`
	OOMDays int     `json:"oom_days"`
	// ThrottleRate is the share of 5-minute samples above the CPU limit;
	// ThrottledDays the share of container-days with at least one.
	ThrottleRate  Stat    `json:"throttle_rate"`
	ThrottledDays float64 `json:"throttled_days"`
	// Request shortfall: the share of samples using more than the request.
	CPURequestShortfall Stat `json:"cpu_request_shortfall"`
	MemRequestShortfall Stat `json:"mem_request_shortfall"`
}

// Summarize aggregates day scores under a recommender's name.
func Summarize(name string, days []DayScore) Summary {
	s := Summary{Name: name, ContainerDays: len(days)}
	if len(days) == 0 {
		return s
	}
	col := func(f func(DayScore) float64) Stat {
		v := make([]float64, len(days))
		for i, d := range days {
			v[i] = f(d)
		}
		return newStat(v)
	}
	s.CPURequestSlack = col(func(d DayScore) float64 { return d.CPURequestSlack })
	s.CPULimitSlack = col(func(d DayScore) float64 { return d.CPULimitSlack })
	s.MemRequestSlack = col(func(d DayScore) float64 { return d.MemRequestSlack })
	s.MemLimitSlack = col(func(d DayScore) float64 { return d.MemLimitSlack })
	s.CPULimitSlackCores = col(func(d DayScore) float64 { return d.CPULimitSlackCores })
	s.MemLimitSlackBytes = col(func(d DayScore) float64 { return d.MemLimitSlackBytes })
	s.ThrottleRate = col(func(d DayScore) float64 { return d.Throttle })
	s.CPURequestShortfall = col(func(d DayScore) float64 { return d.CPURequestShortfall })
	s.MemRequestShortfall = col(func(d DayScore) float64 { return d.MemRequestShortfall })
	throttled := 0
	for _, d := range days {
		if d.OOM {
			s.OOMDays++
		}
		if d.Throttle > 0 {
			throttled++
		}
	}
	s.OOMRate = float64(s.OOMDays) / float64(len(days))
	s.ThrottledDays = float64(throttled) / float64(len(days))
	return s
}
