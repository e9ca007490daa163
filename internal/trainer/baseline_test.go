package trainer_test

import (
	"math"
	"testing"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/trainer"
)

// Expected values below are computed by hand from VPA's formulas:
//
//	bucket(v)     = floor(log(v·0.05/first + 1) / log 1.05)   (0 below first)
//	bucketEnd(b)  = first·(1.05^(b+1) − 1)/0.05               (first: 0.01 core, 1e7 bytes)
//	bound         = trunc(x) + trunc(trunc(x)·0.15), then × the confidence
//	                multiplier, truncated again (millicores, bytes)
//
// Bucket ends used: 1 core → bucket 36, end 1.01628 (1016 m); 3 cores →
// 56, end 3.02716 (3027 m); 1 GiB → 37, end 1,077,095,457 B; 1.2 GiB → 41,
// end 1,352,317,511 B; 2 GiB → 50, end 2,208,153,955 B; 4 GiB → 63, end
// 4,340,933,439 B; 400 MiB → 23, end 445,019,988 B.

const vpaTestGiB = 1 << 30

// vpaTestWindow is n samples of step with cpu(i) and mem(i).
func vpaTestWindow(n int, step time.Duration, cpu, mem func(i int) float64) features.Window {
	w := features.Window{End: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n-1) * step), Step: step}
	for i := range n {
		w.CPU = append(w.CPU, cpu(i))
		w.Mem = append(w.Mem, mem(i))
	}
	return w
}

func constant(v float64) func(int) float64 { return func(int) float64 { return v } }

func vpaTestCheck(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("%s = %.10g; want %.10g", what, got, want)
	}
}

func TestVPARecommend(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		w        features.Window
		ooms     []trainer.VPAOOM
		conf     float64
		target   trainer.VPAResources
		lower    trainer.VPAResources
		upper    trainer.VPAResources
		skipUpLo bool
	}{
		{
			// 48 hourly samples: 1 core, 1 GiB. Confidence = min(47 h, 48 × 60
			// one-minute samples = 2 days) = 47/24 = 1.958 days: upper ×
			// 1.51064, lower × (1 + 0.001/1.958)^−2 = 0.998980.
			// CPU: 1016 + 152 = 1168 m; upper trunc(1168 × 1.51064) = 1764;
			// lower trunc(1168 × 0.99898) = 1166.
			// Memory: 1,077,095,457 + 161,564,318 = 1,238,659,775;
			// upper 1,871,166,894; lower 1,237,395,729.
			name:   "Constant",
			w:      vpaTestWindow(48, time.Hour, constant(1), constant(vpaTestGiB)),
			conf:   47.0 / 24,
			target: trainer.VPAResources{CPU: 1.168, Mem: 1238659775},
			lower:  trainer.VPAResources{CPU: 1.166, Mem: 1237395729},
			upper:  trainer.VPAResources{CPU: 1.764, Mem: 1871166894},
		},
		{
			// The oldest 7 of 48 hourly samples (ages 41-47 h) at 3 cores: 14.6%
			// of the samples but, decayed by 2^(−age/24h), 7.47% of the weight:
			// Σ_{a=41..47} 2^(−a/24) / Σ_{a=0..47} 2^(−a/24) = 1.9665/26.345.
			// Without decay the p90 would be 3 cores; with it the p90 and p50
			// stay at 1 core (1168 m, 1166 m) and only the p95 reaches 3:
			// 3027 + 454 = 3481 m, × 1.51064 → 5258 m.
			name: "CPUDecay",
			w: vpaTestWindow(48, time.Hour, func(i int) float64 {
				if i < 7 {
					return 3
				}
				return 1
			}, constant(vpaTestGiB)),
			conf:   47.0 / 24,
			target: trainer.VPAResources{CPU: 1.168, Mem: 1238659775},
			lower:  trainer.VPAResources{CPU: 1.166, Mem: 1237395729},
			upper:  trainer.VPAResources{CPU: 5.258, Mem: 1871166894},
		},
		{
			// Four days hourly at 0.5 GiB with one peak a day: 4, 1, 1.5, 2 GiB
			// (oldest first). Peaks weigh 2^(interval end/24h): 1/8, 1/4, 1/2, 1
			// (total 1.875). Ascending: 1 GiB 0.25, 1.5 GiB 0.5, 2 GiB 1, 4 GiB
			// 0.125; cumulative 13.3%, 40%, 93.3%, 100%. p50 and p90 → 2 GiB
			// (unweighted the p90 would be the 4 GiB peak), p95 → 4 GiB.
			// Confidence 95/24 = 3.958 days. Target 2,208,153,955 + 331,223,093
			// = 2,539,377,048; lower × (1 + 0.001/3.958)^−2 → 2,538,094,480;
			// upper 4,340,933,439 + 651,140,015 = 4,992,073,454, × 1.25263 →
			// 6,253,228,852.
			name: "MemoryPeaks",
			w: vpaTestWindow(96, time.Hour, constant(1), func(i int) float64 {
				if i%24 == 12 {
					return []float64{4, 1, 1.5, 2}[i/24] * vpaTestGiB
				}
				return 0.5 * vpaTestGiB
			}),
			conf:   95.0 / 24,
			target: trainer.VPAResources{CPU: 1.168, Mem: 2539377048},
			lower:  trainer.VPAResources{Mem: 2538094480},
			upper:  trainer.VPAResources{Mem: 6253228852},
		},
		{
			// An OOM kill at 1 GiB used with a 1 GiB request: the interval's
			// peak becomes max(1 GiB + 100 MiB, 1.2 GiB) = 1.2 GiB.
			// 1,352,317,511 + 202,847,626 = 1,555,165,137.
			name:     "OOMRatio",
			w:        vpaTestWindow(24, time.Hour, constant(1), constant(vpaTestGiB)),
			ooms:     []trainer.VPAOOM{{At: 12, Request: vpaTestGiB}},
			conf:     23.0 / 24,
			target:   trainer.VPAResources{CPU: 1.168, Mem: 1555165137},
			skipUpLo: true,
		},
		{
			// 300 MiB used, 200 MiB request: max(300 + 100, 300 × 1.2 = 360) =
			// 400 MiB. 445,019,988 + 66,752,998 = 511,772,986.
			name:     "OOMMinBump",
			w:        vpaTestWindow(24, time.Hour, constant(1), constant(300<<20)),
			ooms:     []trainer.VPAOOM{{At: 3, Request: 200 << 20}},
			conf:     23.0 / 24,
			target:   trainer.VPAResources{CPU: 1.168, Mem: 511772986},
			skipUpLo: true,
		},
		{
			// 1 millicore and 1 MiB: every bound is raised to the minimums.
			name:   "Minimums",
			w:      vpaTestWindow(48, time.Hour, constant(0.001), constant(1<<20)),
			conf:   47.0 / 24,
			target: trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
			lower:  trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
			upper:  trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
		},
		{
			// No samples: no recommendation, the minimums.
			name:   "Empty",
			w:      features.Window{Step: time.Hour},
			target: trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
			lower:  trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
			upper:  trainer.VPAResources{CPU: 0.025, Mem: 250 << 20},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := trainer.VPARecommend(c.w, trainer.VPAOptions{OOMs: c.ooms})
			vpaTestCheck(t, "confidence", e.Confidence, c.conf)
			vpaTestCheck(t, "target CPU", e.Target.CPU, c.target.CPU)
			vpaTestCheck(t, "target memory", e.Target.Mem, c.target.Mem)
			if c.skipUpLo {
				return
			}
			if c.lower.CPU != 0 {
				vpaTestCheck(t, "lower bound CPU", e.LowerBound.CPU, c.lower.CPU)
				vpaTestCheck(t, "upper bound CPU", e.UpperBound.CPU, c.upper.CPU)
			}
			vpaTestCheck(t, "lower bound memory", e.LowerBound.Mem, c.lower.Mem)
			vpaTestCheck(t, "upper bound memory", e.UpperBound.Mem, c.upper.Mem)
		})
	}
}

// TestVPAConfidence checks the confidence VPA widens its bounds by: the
// span of the history in days, unless it has fewer samples than a running
// recommender would have taken (one a minute).
func TestVPAConfidence(t *testing.T) {
	t.Parallel()
	// Seven days at 5-minute steps: 2016 samples spanning 2015 × 5 min =
	// 6.9965 days (the samples count 2016 × 5 / 1440 = 7 days): upper bound
	// × 1.14293.
	week := vpaTestWindow(2016, 5*time.Minute, constant(1), constant(vpaTestGiB))
	e := trainer.VPARecommend(week, trainer.VPAOptions{})
	vpaTestCheck(t, "7-day confidence", e.Confidence, 2015*5/1440.0)
	// 1168 m target; upper trunc(1168 × 1.14293) = 1334 m.
	vpaTestCheck(t, "7-day upper bound CPU", e.UpperBound.CPU, 1.334)

	// Two days at 5-minute steps with every other sample missing: 288
	// samples = 1 day of one-minute samples, though they span 2 days.
	gappy := vpaTestWindow(576, 5*time.Minute, func(i int) float64 {
		if i%2 == 1 {
			return math.NaN()
		}
		return 1
	}, constant(vpaTestGiB))
	vpaTestCheck(t, "confidence with gaps", trainer.VPARecommend(gappy, trainer.VPAOptions{}).Confidence, 1)

	// Counting each 5-minute row as one VPA sample, 7 days of rows are
	// 2016/1440 = 1.4 days of samples: upper bound × (1 + 1/1.4) = 1.71429,
	// trunc(1168 × 1.71429) = 2002 m.
	rows := trainer.VPARecommend(week, trainer.VPAOptions{SamplesPerRow: 1})
	vpaTestCheck(t, "confidence counting rows", rows.Confidence, 1.4)
	vpaTestCheck(t, "upper bound CPU counting rows", rows.UpperBound.CPU, 2.002)
}

func TestVPADeployments(t *testing.T) {
	t.Parallel()
	e := trainer.VPARecommend(vpaTestWindow(48, time.Hour, constant(1), constant(vpaTestGiB)), trainer.VPAOptions{})
	if r := e.TargetAsLimit(); r != (trainer.Rec{CPURequest: e.Target.CPU, CPULimit: e.Target.CPU, MemRequest: e.Target.Mem, MemLimit: e.Target.Mem}) {
		t.Errorf("target as limit = %+v; want request = limit = target %+v", r, e.Target)
	}
	if r := e.UpperBoundAsLimit(); r != (trainer.Rec{CPURequest: e.Target.CPU, CPULimit: e.UpperBound.CPU, MemRequest: e.Target.Mem, MemLimit: e.UpperBound.Mem}) {
		t.Errorf("upper bound as limit = %+v; want request = target %+v, limit = upper bound %+v", r, e.Target, e.UpperBound)
	}
	if r := trainer.VPA(vpaTestWindow(48, time.Hour, constant(1), constant(vpaTestGiB))); r != e.TargetAsLimit() {
		t.Errorf("VPA = %+v; want the target as limit %+v", r, e.TargetAsLimit())
	}
}
