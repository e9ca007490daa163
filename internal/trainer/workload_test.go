package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// genTestSims simulates n containers of one kind for 864 steps.
func genTestSims(kind, n int) []genSim {
	var sims []genSim
	cum := [NumWorkloads]float64{1, 1, 1, 1, 1}
	for i := range n {
		src := rand.NewPCG(genMix64(99), genMix64(uint64(i)))
		r := rand.New(src)
		c := genDraw(r, &cum)
		c.kind = kind
		s := genSim{r: r, src: src, c: &c, hist: genDefaultHist, cpu: make([]float64, 864), mem: make([]float64, 864)}
		s.run()
		sims = append(sims, s)
	}
	return sims
}

func TestGenSimBounds(t *testing.T) {
	t.Parallel()
	for kind, name := range WorkloadNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for i, s := range genTestSims(kind, 300) {
				for j := range s.cpu {
					c, m := s.cpu[j], s.mem[j]
					if !(c >= 0) || c > genNodeCores || (s.c.cpuLimit > 0 && c > s.c.cpuLimit) {
						t.Fatalf("container %d step %d: CPU %v outside [0, min(limit %v, node %v)]", i, j, c, s.c.cpuLimit, genNodeCores)
					}
					if !(m >= genMinMem) || math.IsInf(m, 0) || m > 200*genGiB {
						t.Fatalf("container %d step %d: memory %v outside [1 MiB, 200 GiB]", i, j, m)
					}
				}
			}
		})
	}
}

// genTestMedian returns the median over containers of f(container).
func genTestMedian(sims []genSim, f func(s genSim) float64) float64 {
	v := make([]float64, len(sims))
	for i, s := range sims {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func genTestQuantile(x []float64, q float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func TestGenSimShapes(t *testing.T) {
	t.Parallel()
	// Spikiness: p99/p50 of CPU over the three days.
	spiky := func(s genSim) float64 { return genTestQuantile(s.cpu, 0.99) / genTestQuantile(s.cpu, 0.5) }
	cron := genTestMedian(genTestSims(genCron, 200), spiky)
	compute := genTestMedian(genTestSims(genCompute, 200), spiky)
	batch := genTestMedian(genTestSims(genBatch, 200), spiky)
	if cron < 10 || batch < 3 || compute > 1.3 {
		t.Errorf("median CPU p99/p50: cron %.2f, batch %.2f, compute %.2f; want cron ≥ 10, batch ≥ 3, compute ≤ 1.3", cron, batch, compute)
	}
	// Web: busier at the local peak than twelve hours later, over each day.
	webDay := genTestMedian(genTestSims(genWeb, 200), func(s genSim) float64 {
		return genTestQuantile(s.cpu, 0.9) / genTestQuantile(s.cpu, 0.1)
	})
	if webDay < 1.5 {
		t.Errorf("web: median CPU p90/p10 %.2f; want a diurnal swing ≥ 1.5", webDay)
	}
	// Database memory ends higher than it starts in most containers.
	grows := 0
	for _, s := range genTestSims(genDatabase, 200) {
		if s.mem[len(s.mem)-1] > s.mem[0] {
			grows++
		}
	}
	if grows < 100 {
		t.Errorf("database: memory grew over three days in %d of 200 containers; want most", grows)
	}
}

func TestGenMix64Spreads(t *testing.T) {
	t.Parallel()
	seen := map[uint64]bool{}
	for i := range uint64(10000) {
		v := genMix64(i)
		if seen[v] {
			t.Fatalf("genMix64 collides at %d", i)
		}
		seen[v] = true
	}
}

// genPeaks lifts memory briefly: most containers get peaks, they cover a
// small share of a week, and the flat stretches between them are untouched.
func TestGenPeaks(t *testing.T) {
	t.Parallel()
	const n, week = 200, 7 * genStepsPerDay
	with, covered := 0, 0.0
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 9))
		mem := make([]float64, week)
		for j := range mem {
			mem[j] = genGiB
		}
		genPeaks(r, mem)
		lifted := 0
		for _, v := range mem {
			if v < genGiB || v > 2.5*genGiB*(1+1e-9) {
				t.Fatalf("container %d: memory %v outside [1, 2.5] GiB: peaks do not overlap", i, v/genGiB)
			}
			if v > genGiB {
				lifted++
			}
		}
		if lifted > 0 {
			with++
		}
		covered += float64(lifted) / float64(week)
	}
	if with < n*8/10 || with > n*97/100 {
		t.Errorf("%d of %d containers have peaks; want about 90%%", with, n)
	}
	if c := covered / n; c <= 0 || c > 0.03 {
		t.Errorf("peaks cover %.2f%% of a week on average; want a small share (under 3%%)", 100*c)
	}
}

// Major 2's data has the peaks, major 1's only when asked: its files stay
// as they were.
func TestGenerateDataPeaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := func(cfg GenConfig) *Dataset {
		d, err := Generate(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	plain, peaky := gen(GenConfig{Samples: 300, Seed: 4}), gen(GenConfig{Samples: 300, Seed: 4, Peaks: true})
	if slices.Equal(plain.Y, peaky.Y) {
		t.Error("major 1 with Peaks gave the same labels as without")
	}
	if again := gen(GenConfig{Samples: 300, Seed: 4, Peaks: false}); !slices.Equal(plain.X, again.X) || !slices.Equal(plain.Y, again.Y) {
		t.Error("major 1 without Peaks is not reproducible")
	}
	if a, b := gen(GenConfig{Samples: 300, Seed: 4, Major: 2}), gen(GenConfig{Samples: 300, Seed: 4, Major: 2, Peaks: true}); !slices.Equal(a.X, b.X) {
		t.Error("major 2 differs with and without Peaks; want peaks always")
	}
}
