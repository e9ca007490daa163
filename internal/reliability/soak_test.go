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
// s) for swaps swaps; rss gives the reading at swap k of the lifetime, of
// which a constant 40,000 KiB are mapped files and the rest anonymous.
func lifetimeRSS(r *SoakResult, pid, start0 int, at0 time.Duration, swaps int, rss func(k, i int) int64) {
	r.Lifetimes = append(r.Lifetimes, Lifetime{PID: pid, At: at0, Swaps: start0})
	for k := range swaps {
		for i := range 4 {
			at := at0 + time.Duration(k)*2*time.Second + time.Duration(i)*500*time.Millisecond
			kib := rss(k, i)
			r.RSS = append(r.RSS, RSSPoint{At: at, PID: pid, KiB: kib, Anon: kib - 40000, File: 40000, DB: 1000, Swaps: start0 + k})
		}
	}
}

// warmUpAt2s is the first swap of a lifetime the fit counts when swaps are
// 2 s apart: after warmUpSwaps and warmUpTime.
var warmUpAt2s = max(warmUpSwaps, int(warmUpTime/(2*time.Second)))

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
		if k < warmUpAt2s {
			rss += 40000 - int64(k)*800
		}
		return rss
	})
	r.JobSpans = append(r.JobSpans, [2]time.Duration{260 * time.Second, 280 * time.Second}) // swaps 129..138, settled by 144
	lifetimeRSS(&r, 11, 60, 122*time.Second, 100, func(k, i int) int64 {
		rss := int64(90000 + perSwap*k)
		if k < warmUpAt2s {
			rss -= 30000
		}
		if at := 122*time.Second + time.Duration(k)*2*time.Second + time.Duration(i)*500*time.Millisecond; at >= 260*time.Second && at < 290*time.Second {
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
	// Lifetime 10: warm-up to swap 45 (90 s): swaps 45..59 (15 points, 14
	// spanned). Lifetime 11: warm-up to swap 105, the job from 260 s (swap
	// 129) to 290 s (swap 144) out: swaps 105..128 and 144..159 (40 points,
	// 54 spanned; the reading at 290 s is swap 144's first).
	if warmUpAt2s != 45 {
		t.Fatalf("the expected counts below assume a 45-swap warm-up at 2 s per swap, not %d", warmUpAt2s)
	}
	if g.Lifetimes != 2 || g.Points != 15+40 || g.Swaps != 14+54 {
		t.Errorf("%d points spanning %d swaps in %d lifetimes; want 55, 68, 2", g.Points, g.Swaps, g.Lifetimes)
	}
	var report strings.Builder
	r.Report(&report, "soak", "abc")
	if !strings.Contains(report.String(), "RSS growth: +3000 ± 0 KiB per 1,000 swaps (slope ± standard error) over 68 swaps in 2 process lifetimes") {
		t.Errorf("the report does not state the fit:\n%s", report.String())
	}
	if a, f := r.AnonGrowth(), r.FileGrowth(); math.Abs(a.Slope-perSwap*1000) > 1e-6 || math.Abs(f.Slope) > 1e-6 || a.Points != g.Points || f.Points != g.Points {
		t.Errorf("anonymous %+v, mapped files %+v; want all the growth anonymous, on the same %d points", a, f, g.Points)
	}
	if !strings.Contains(report.String(), "anonymous memory (RssAnon: heaps, stacks) +3000 ± 0 and mapped files (RssFile + RssShmem: binary, libraries, registry file) +0 ± 0 KiB per 1,000 swaps") {
		t.Errorf("the report does not split the growth:\n%s", report.String())
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
		if g.Lifetimes != 4 || g.Swaps != 4*(200-warmUpAt2s-1) || !(g.StdErr > 0) {
			t.Fatalf("seed %d: %+v; want 4 lifetimes, %d swaps, a standard error", seed, g, 4*(200-warmUpAt2s-1))
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
