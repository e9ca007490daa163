package reliability

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// lifetimeRSS appends the readings of a process (pid) that became ready at
// swap start0 and second at0 and was read 4 times per swap (a swap every 2
// s) for swaps swaps; rss gives the reading at swap k of the lifetime.
func lifetimeRSS(r *SoakResult, pid, start0 int, at0 time.Duration, swaps int, rss func(k, i int) int64) {
	r.Lifetimes = append(r.Lifetimes, Lifetime{PID: pid, At: at0, Swaps: start0})
	for k := range swaps {
		for i := range 4 {
			at := at0 + time.Duration(k)*2*time.Second + time.Duration(i)*500*time.Millisecond
			r.RSS = append(r.RSS, RSSPoint{At: at, PID: pid, KiB: rss(k, i), Swaps: start0 + k})
		}
	}
}

// TestRSSGrowth: on readings that grow by a known amount per swap, the fit
// finds it exactly across lifetimes with different baselines, leaving out
// each lifetime's warm-up and the readings during and just after a
// training job, and counts the swaps it rests on.
func TestRSSGrowth(t *testing.T) {
	t.Parallel()
	var r SoakResult
	// 3 KiB per swap; the warm-up and a job add large offsets that must not
	// count.
	const perSwap = 3
	lifetimeRSS(&r, 10, 0, 0, 60, func(k, _ int) int64 {
		rss := int64(50000 + perSwap*k)
		if k < warmUpSwaps {
			rss += 40000 - int64(k)*2000
		}
		return rss
	})
	r.JobSpans = append(r.JobSpans, [2]time.Duration{150 * time.Second, 170 * time.Second}) // swaps 75..84, settled by 90
	lifetimeRSS(&r, 11, 60, 122*time.Second, 100, func(k, i int) int64 {
		rss := int64(90000 + perSwap*k)
		if at := 122*time.Second + time.Duration(k)*2*time.Second + time.Duration(i)*500*time.Millisecond; at >= 150*time.Second && at < 180*time.Second {
			rss += 60000
		}
		return rss
	})
	// A process killed during its warm-up adds nothing.
	lifetimeRSS(&r, 12, 160, 330*time.Second, warmUpSwaps, func(int, int) int64 { return 1 })

	g := r.RSSGrowth()
	if math.Abs(g.Slope-perSwap*1000) > 1e-6 || g.StdErr > 1e-6 {
		t.Errorf("slope %v ± %v KiB per 1,000 swaps; want %d ± 0", g.Slope, g.StdErr, perSwap*1000)
	}
	// Lifetime 10: swaps 15..59 (45 points, 44 spanned). Lifetime 11:
	// warm-up to swap 75, the job from 150 s (swap 74) to 180 s (swap 89)
	// out: swaps 89..159 (the reading at 180 s is swap 89's first).
	if g.Lifetimes != 2 || g.Points != 45+71 || g.Swaps != 44+70 {
		t.Errorf("%d points spanning %d swaps in %d lifetimes; want 116, 114, 2", g.Points, g.Swaps, g.Lifetimes)
	}
	var report strings.Builder
	r.Report(&report, "soak", "abc")
	if !strings.Contains(report.String(), "RSS growth: +3000 ± 0 KiB per 1,000 swaps (slope ± standard error) over 114 swaps in 2 process lifetimes") {
		t.Errorf("the report does not state the fit:\n%s", report.String())
	}
}

// TestRSSGrowthNoise: under correlated noise (a drifting AR(1) offset, as
// RSS drifts with the garbage collector) the standard error is honest:
// over 200 simulated soaks the true slope lies within two standard errors
// of the estimate in about 95% of them. The ordinary least-squares error,
// which takes the points as independent, would cover it far less often.
func TestRSSGrowthNoise(t *testing.T) {
	t.Parallel()
	const perSwap, runs = 2.0, 200
	covered, rho := 0, 0.0
	for seed := range uint64(runs) {
		rng := rand.New(rand.NewPCG(seed, 2))
		var r SoakResult
		for l := range 4 {
			drift := 0.0
			lifetimeRSS(&r, 100+l, l*200, time.Duration(l)*400*time.Second, 200, func(k, i int) int64 {
				if i == 0 {
					drift = 0.8*drift + rng.NormFloat64()*300
				}
				return int64(60000 + 7000*float64(l) + perSwap*float64(k) + drift + rng.NormFloat64()*50)
			})
		}
		g := r.RSSGrowth()
		if g.Lifetimes != 4 || g.Swaps != 4*(200-warmUpSwaps-1) || !(g.StdErr > 0) {
			t.Fatalf("seed %d: %+v; want 4 lifetimes, %d swaps, a standard error", seed, g, 4*(200-warmUpSwaps-1))
		}
		if math.Abs(g.Slope-perSwap*1000) <= 2*g.StdErr {
			covered++
		}
		rho += g.Rho / runs
	}
	if rho < 0.5 {
		t.Errorf("mean residual autocorrelation %.2f; want the drift seen (> 0.5)", rho)
	}
	if c := float64(covered) / runs; c < 0.88 || c > 0.995 {
		t.Errorf("the true slope is within 2 standard errors in %.0f%% of the runs; want about 95%%", 100*c)
	}
}

// TestRSSGrowthTooShort: lifetimes that end within their warm-up give no
// estimate, and the report says so instead of printing a number.
func TestRSSGrowthTooShort(t *testing.T) {
	t.Parallel()
	var r SoakResult
	for l := range 3 {
		lifetimeRSS(&r, 1+l, l*10, time.Duration(l)*20*time.Second, 10, func(k, _ int) int64 { return int64(1000 * k) })
	}
	if g := r.RSSGrowth(); !math.IsNaN(g.Slope) || g.Points != 0 {
		t.Errorf("fit %+v; want none", g)
	}
	var report strings.Builder
	r.Report(&report, "soak", "abc")
	if !strings.Contains(report.String(), "RSS growth: not measured") {
		t.Errorf("the report does not say the growth was not measured:\n%s", report.String())
	}
}
