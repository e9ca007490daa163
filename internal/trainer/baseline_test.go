package trainer_test

import (
	"math"
	"testing"
	"time"

	"recommendation-api/internal/features"
	"recommendation-api/internal/trainer"
)

const vpaTestGiB = 1 << 30

// vpaTestWindow is 48 h at 5-minute steps with cpu(i) and mem(i).
func vpaTestWindow(cpu, mem func(i int) float64) features.Window {
	w := features.Window{End: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Step: 5 * time.Minute}
	for i := range 576 {
		w.CPU = append(w.CPU, cpu(i))
		w.Mem = append(w.Mem, mem(i))
	}
	return w
}

func vpaTestNear(got, want float64) bool { return math.Abs(got-want) <= 1e-9*want }

func TestVPA(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		cpu, mem func(i int) float64
		wantCPU  float64
		wantMem  float64
	}{
		{"Constant", func(int) float64 { return 1 }, func(int) float64 { return vpaTestGiB }, 1.15, 1.15 * vpaTestGiB},
		{"Minimums", func(int) float64 { return 0.001 }, func(int) float64 { return 1 << 20 }, 0.025, 250 << 20},
		// The oldest 15% of samples (40.8-48 h ago) run at 3 cores. Unweighted
		// they would set the p90; decayed by 2^(-age/24h) they hold only
		// (2^-1.7 - 2^-2)/(1 - 2^-2) ≈ 7.7% of the weight, so the p90 is 1 core.
		{"DecayedCPU", func(i int) float64 {
			if i < 576*15/100 {
				return 3
			}
			return 1
		}, func(int) float64 { return vpaTestGiB }, 1.15, 1.15 * vpaTestGiB},
		// The same burst in the newest 15% holds (1 - 2^-0.3)/(1 - 2^-2) ≈ 25% of the weight: p90 = 3 cores.
		{"RecentCPU", func(i int) float64 {
			if i >= 576*85/100 {
				return 3
			}
			return 1
		}, func(int) float64 { return vpaTestGiB }, 3 * 1.15, 1.15 * vpaTestGiB},
		// One peak per 24 h: yesterday's 4 GiB spike sets the target even
		// though today peaks at 2 GiB (the p90 of two peaks is the larger).
		{"MemoryPeaks", func(int) float64 { return 1 }, func(i int) float64 {
			switch i {
			case 100:
				return 4 * vpaTestGiB
			case 400:
				return 2 * vpaTestGiB
			}
			return vpaTestGiB
		}, 1.15, 4 * 1.15 * vpaTestGiB},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := trainer.VPA(vpaTestWindow(c.cpu, c.mem))
			if !vpaTestNear(r.CPURequest, c.wantCPU) || !vpaTestNear(r.MemRequest, c.wantMem) {
				t.Errorf("VPA = %v cores, %v GiB; want %v, %v", r.CPURequest, r.MemRequest/vpaTestGiB, c.wantCPU, c.wantMem/vpaTestGiB)
			}
			if r.CPULimit != r.CPURequest || r.MemLimit != r.MemRequest {
				t.Errorf("VPA = %+v; want limits equal to requests", r)
			}
		})
	}
}

func TestVPAPeaksOfManyDays(t *testing.T) {
	t.Parallel()
	// Ten days with peaks 1..10 GiB: the nearest-rank p90 of ten peaks is the 9th.
	w := features.Window{End: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Step: time.Hour}
	for day := range 10 {
		for h := range 24 {
			w.CPU = append(w.CPU, 1)
			m := 0.5 * vpaTestGiB
			if h == 12 {
				m = float64(day+1) * vpaTestGiB
			}
			w.Mem = append(w.Mem, m)
		}
	}
	if r := trainer.VPA(w); !vpaTestNear(r.MemLimit, 9*1.15*vpaTestGiB) {
		t.Errorf("memory target %v GiB; want 9 × 1.15", r.MemLimit/vpaTestGiB)
	}
}

func TestVPAEmptyWindow(t *testing.T) {
	t.Parallel()
	r := trainer.VPA(features.Window{})
	if r.CPULimit != 0.025 || r.MemLimit != 250<<20 {
		t.Errorf("VPA of nothing = %+v; want the minimums", r)
	}
}
