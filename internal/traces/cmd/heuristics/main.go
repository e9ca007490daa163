// Command heuristics scores simple memory and CPU limit heuristics on the
// tuning containers of real traces (traces.Tuning: training containers that
// generate-data --tuning-holdout leaves out; never a held-out one), each
// scaled by one factor for all container-days to a list of risk levels, as
// evaluate's slack-vs-risk curves are. It answers what a model's features
// can buy at equal risk before a network is trained on them: if no function
// of the features beats the history maximum × k, a network on the same
// features is not expected to either.
//
//	go run ./internal/traces/cmd/heuristics [--history 7d,2d] TRACE_DIR_OR_FILE...
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// day is one tuning container-day: its history's features and VPA's
// recommendation, and the following day.
type day struct {
	r                   features.Raw
	cpuP95Last24h       float64   // not a v2 feature: VPA's recency, for comparison
	peak2               float64   // second-largest daily memory peak
	chrono              []float64 // daily memory peaks, oldest first
	nearMax             float64   // share of the daily peaks within 5% of the max
	vpaUpper, vpaTarget trainer.Rec
	f                   traces.Future
	futCPU              []float64
}

type heuristic struct {
	name  string
	v2    bool // a function of major 2's features alone
	limit func(d *day) float64
}

var memHeuristics = []heuristic{
	{"history max (the fallback)", true, func(d *day) float64 { return d.r.MemMax }},
	{"max of the last 24 h", true, func(d *day) float64 { return d.r.MemMax24h }},
	{"p99", true, func(d *day) float64 { return d.r.MemP99 }},
	{"√(max · max 24 h)", true, func(d *day) float64 { return math.Sqrt(d.r.MemMax * d.r.MemMax24h) }},
	{"√(max · p99)", true, func(d *day) float64 { return math.Sqrt(d.r.MemMax * d.r.MemP99) }},
	{"max(max 24 h × 1.1, p99)", true, func(d *day) float64 { return max(d.r.MemMax24h*1.1, d.r.MemP99) }},
	{"max · (max / p50)^0.2", true, func(d *day) float64 { return d.r.MemMax * math.Pow(d.r.MemMax/d.r.MemP50, 0.2) }},
	{"max · (max / p50)^−0.1", true, func(d *day) float64 { return d.r.MemMax * math.Pow(d.r.MemMax/d.r.MemP50, -0.1) }},
	{"second-largest daily peak", false, func(d *day) float64 { return d.peak2 }},
	{"√(max · second peak)", false, func(d *day) float64 { return math.Sqrt(d.r.MemMax * d.peak2) }},
	{"max(max, trend of the daily peaks)", false, func(d *day) float64 { return max(d.r.MemMax, trend(d.chrono)) }},
	{"max + (max − p50) / 2", true, func(d *day) float64 { return d.r.MemMax + 0.5*(d.r.MemMax-d.r.MemP50) }},
	{"max · (1 + 0.3 · days near the max)", false, func(d *day) float64 { return d.r.MemMax * (1 + 0.3*d.nearMax) }},
	{"max · (max 24 h / max)^0.3", true, func(d *day) float64 { return d.r.MemMax * math.Pow(d.r.MemMax24h/d.r.MemMax, 0.3) }},
	{"VPA upper bound", false, func(d *day) float64 { return d.vpaUpper.MemLimit }},
}

// slope is the least-squares slope of c per element (per day for daily
// peaks); 0 for fewer than two.
func slope(c []float64) float64 {
	n := float64(len(c))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, v := range c {
		x := float64(i)
		sx, sy, sxx, sxy = sx+x, sy+v, sxx+x*x, sxy+x*v
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// trend extrapolates the last daily peak one day along the peaks' slope.
func trend(c []float64) float64 { return c[len(c)-1] + slope(c) }

var cpuHeuristics = []heuristic{
	{"p95", true, func(d *day) float64 { return d.r.CPUP95 }},
	{"p99", true, func(d *day) float64 { return d.r.CPUP99 }},
	{"max of the last 24 h", true, func(d *day) float64 { return d.r.CPUMax24h }},
	{"p95^0.75 · p99^0.25", true, func(d *day) float64 { return math.Pow(d.r.CPUP95, 0.75) * math.Pow(d.r.CPUP99, 0.25) }},
	{"√(p95 · p99)", true, func(d *day) float64 { return math.Sqrt(d.r.CPUP95 * d.r.CPUP99) }},
	{"max(p95 × 1.3, p99 × 0.9)", true, func(d *day) float64 { return max(d.r.CPUP95*1.3, d.r.CPUP99*0.9) }},
	{"p95 of the last 24 h", false, func(d *day) float64 { return d.cpuP95Last24h }},
	{"max(p95, p95 of the last 24 h)", false, func(d *day) float64 { return max(d.r.CPUP95, d.cpuP95Last24h) }},
	{"VPA upper bound", false, func(d *day) float64 { return d.vpaUpper.CPULimit }},
}

var (
	memRisks = []float64{0.02, 0.04, 0.06, 0.09, 0.12}
	cpuRisks = []float64{0.005, 0.01, 0.015, 0.02}
)

func main() {
	history := flag.String("history", "7d,2d", "history lengths, comma-separated, in days (Nd)")
	flag.Parse()
	if err := run(*history, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "heuristics:", err)
		os.Exit(1)
	}
}

func run(history string, paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("no traces; want TRACE_DIR_OR_FILE...")
	}
	series, _, _, err := traces.LoadPaths(paths, "")
	if err != nil {
		return err
	}
	specs, err := model.FeaturesFor(2)
	if err != nil {
		return err
	}
	for _, h := range strings.Split(history, ",") {
		var n int
		if _, err := fmt.Sscanf(h, "%dd", &n); err != nil || n < 1 {
			return fmt.Errorf("--history %q; want days such as 7d", h)
		}
		steps := int(time.Duration(n) * 24 * time.Hour / trainer.Step)
		days, containers, err := tuningDays(series, steps, specs)
		if err != nil {
			return err
		}
		fmt.Printf("\n### %d-day history: %d container-days of %d tuning containers (of %d read)\n\n", n, len(days), containers, len(series))
		fmt.Printf("Memory: mean limit slack with the limits scaled to each OOM-day rate (lower is better).\n\n")
		table(days, memHeuristics, memRisks, "OOM days", memAtRisk)
		fmt.Printf("\nCPU: mean limit slack with the limits scaled to each throttled-sample share (lower is better).\n\n")
		table(days, cpuHeuristics, cpuRisks, "throttled", cpuAtRisk)
	}
	return nil
}

func tuningDays(series []*traces.Series, steps int, specs []model.Spec) ([]day, int, error) {
	var days []day
	var scratch features.Scratch
	containers := 0
	for _, s := range series {
		if !traces.Tuning(s.ID) {
			continue
		}
		pts, _ := traces.Points(s, traces.Windows{History: steps, Future: trainer.DefaultFutureSteps, Stride: trainer.DefaultFutureSteps})
		if len(pts) > 0 {
			containers++
		}
		for _, p := range pts {
			raw, _, err := traces.FeatureRow(&scratch, p.History, p.AgeDays, specs)
			if err != nil {
				return nil, 0, err
			}
			cpu, mem := p.History.CPU, p.History.Mem
			last := slices.Clone(cpu[len(cpu)-trainer.DefaultFutureSteps:])
			slices.Sort(last)
			var peaks []float64
			for e := len(mem); e-trainer.DefaultFutureSteps >= 0; e -= trainer.DefaultFutureSteps {
				peaks = append(peaks, slices.Max(mem[e-trainer.DefaultFutureSteps:e]))
			}
			chrono := slices.Clone(peaks)
			slices.Reverse(chrono)
			near, top := 0, slices.Max(peaks)
			for _, v := range peaks {
				if v >= 0.95*top {
					near++
				}
			}
			slices.Sort(peaks)
			peak2 := peaks[len(peaks)-1]
			if len(peaks) > 1 {
				peak2 = peaks[len(peaks)-2]
			}
			est := trainer.VPARecommend(p.History, trainer.VPAOptions{})
			days = append(days, day{
				chrono: chrono, nearMax: float64(near) / float64(len(peaks)),
				r: raw, cpuP95Last24h: features.Percentile(last, 95), peak2: peak2,
				vpaUpper: est.UpperBoundAsLimit(), vpaTarget: est.TargetAsLimit(),
				f: traces.NewFuture(p.FutureCPU, p.FutureMem), futCPU: p.FutureCPU,
			})
		}
	}
	if len(days) == 0 {
		return nil, 0, fmt.Errorf("no tuning container-day at a %d-step history", steps)
	}
	return days, containers, nil
}

func table(days []day, hs []heuristic, risks []float64, what string, at func([]day, heuristic, float64) (float64, float64)) {
	fmt.Printf("| heuristic × k | v2 features |")
	for _, r := range risks {
		fmt.Printf(" %s %.1f%% |", what, 100*r)
	}
	fmt.Printf("\n|---|---|%s\n", strings.Repeat("---:|", len(risks)))
	for _, h := range hs {
		v2 := "no"
		if h.v2 {
			v2 = "yes"
		}
		fmt.Printf("| %s | %s |", h.name, v2)
		for _, r := range risks {
			if slack, k := at(days, h, r); math.IsNaN(slack) {
				fmt.Printf(" — |")
			} else {
				fmt.Printf(" %.1f%% (× %.2f) |", 100*slack, k)
			}
		}
		fmt.Println()
	}
}

// memAtRisk scales h's memory limits by the smallest factor that leaves at
// most rate of the days OOM and returns the mean slack and the factor (NaN
// for both when no factor does).
func memAtRisk(days []day, h heuristic, rate float64) (float64, float64) {
	limits, peaks := make([]float64, len(days)), make([]float64, len(days))
	for i := range days {
		limits[i], peaks[i] = h.limit(&days[i]), days[i].f.MemMax
	}
	k, ok := trainer.OOMFactor(limits, peaks, rate)
	if !ok { // more days than rate can never hold: no factor reaches it
		return math.NaN(), math.NaN()
	}
	s := 0.0
	for i := range days {
		s += trainer.RelativeSlack(h.limit(&days[i])*k, days[i].f.MemP95)
	}
	return s / float64(len(days)), k
}

// cpuAtRisk finds by bisection the factor whose scaled CPU limits (at least
// the served 25 millicores) throttle share of the following days' samples
// on average, and returns the mean slack and the factor.
func cpuAtRisk(days []day, h heuristic, share float64) (float64, float64) {
	minCPU := float64(model.MinCPUMillicores) / 1000
	score := func(k float64) (thr, slack float64) {
		for i := range days {
			l := max(h.limit(&days[i])*k, minCPU)
			n := 0
			for _, c := range days[i].futCPU {
				if c > l {
					n++
				}
			}
			thr += float64(n) / float64(len(days[i].futCPU))
			slack += trainer.RelativeSlack(l, days[i].f.CPUP95)
		}
		return thr / float64(len(days)), slack / float64(len(days))
	}
	lo, hi := 1e-3, 1e3
	for range 80 {
		k := math.Sqrt(lo * hi)
		if thr, _ := score(k); thr > share {
			lo = k
		} else {
			hi = k
		}
	}
	_, slack := score(hi)
	return slack, hi
}
