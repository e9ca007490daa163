package reliability

import (
	"math"
	"testing"
	"time"
)

// TestRSSSlope: the fit finds a known growth across process lifetimes with
// different baselines, ignoring each lifetime's warm-up, and reports NaN
// when swaps never changed.
func TestRSSSlope(t *testing.T) {
	t.Parallel()
	var r SoakResult
	for pid, base := range map[int]int64{10: 50000, 11: 90000} {
		for k := range 8 {
			rss := base + int64(k*20)*3 // 3 KiB per swap after warm-up
			if k < 3 {
				rss += 40000 // warm-up noise, left out
			}
			r.Samples = append(r.Samples, Sample{At: time.Duration(k) * 5 * time.Second, PID: pid, RSSKiB: rss, Swaps: 100*pid + k*20})
		}
	}
	slope, se, n := r.rssFit()
	if math.Abs(slope-3000) > 1e-6 || n != 10 || se > 1e-6 {
		t.Errorf("slope %v ± %v KiB/1000 swaps from %d samples; want 3000 ± 0 from 10", slope, se, n)
	}
	flat := SoakResult{Samples: []Sample{{PID: 1, RSSKiB: 1}, {At: 20 * time.Second, PID: 1, RSSKiB: 2}, {At: 25 * time.Second, PID: 1, RSSKiB: 3}}}
	if s, _ := flat.RSSSlope(); !math.IsNaN(s) {
		t.Errorf("no swaps: slope %v; want NaN", s)
	}
}
