package trainer_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"recommendation-api/internal/features"
	"recommendation-api/internal/model"
	"recommendation-api/internal/trainer"
)

// genTestEvalSet is a small generated evaluation set, made once.
var genTestEvalSet = sync.OnceValues(func() (*trainer.EvalSet, error) {
	return trainer.GenerateEval(context.Background(), trainer.GenConfig{Samples: 4000, Seed: 7})
})

func genTestSet(t testing.TB) *trainer.EvalSet {
	t.Helper()
	ev, err := genTestEvalSet()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func genTestNPZ(t *testing.T, cfg trainer.GenConfig) []byte {
	t.Helper()
	d, err := trainer.Generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.npz")
	if err := trainer.WriteNPZ(path, d); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := trainer.GenConfig{Samples: 700, Seed: 42, Workers: 1}
	one := genTestNPZ(t, cfg)
	if again := genTestNPZ(t, cfg); !bytes.Equal(one, again) {
		t.Errorf("two runs with the same config differ")
	}
	cfg.Workers = 2
	if two := genTestNPZ(t, cfg); !bytes.Equal(one, two) {
		t.Errorf("1 and 2 workers give different bytes")
	}
	cfg.Workers = 7
	if seven := genTestNPZ(t, cfg); !bytes.Equal(one, seven) {
		t.Errorf("1 and 7 workers give different bytes")
	}
	cfg.Seed = 43
	if other := genTestNPZ(t, cfg); bytes.Equal(one, other) {
		t.Errorf("seeds 42 and 43 give the same bytes")
	}
}

func TestGenerateEvalMatchesGenerate(t *testing.T) {
	t.Parallel()
	cfg := trainer.GenConfig{Samples: 500, Seed: 9}
	d, err := trainer.Generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := trainer.GenerateEval(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*d, ev.Dataset) {
		t.Errorf("GenerateEval's dataset differs from Generate's")
	}
	if len(ev.Future) != cfg.Samples || len(ev.VPA) != cfg.Samples {
		t.Fatalf("%d outcomes and %d VPA recommendations; want %d each", len(ev.Future), len(ev.VPA), cfg.Samples)
	}
	for i, f := range ev.Future {
		if len(f.CPUSorted) != 288 {
			t.Fatalf("sample %d: %d future CPU samples; want 288 (24 h)", i, len(f.CPUSorted))
		}
		for j := 1; j < len(f.CPUSorted); j++ {
			if f.CPUSorted[j] < f.CPUSorted[j-1] {
				t.Fatalf("sample %d: future CPU not ascending", i)
			}
		}
		if !(f.MemMax >= f.MemP95 && f.CPUP95 <= f.CPUSorted[len(f.CPUSorted)-1]) {
			t.Fatalf("sample %d: outcome %+v inconsistent", i, f)
		}
	}
}

func TestGenerateValuesAreNormalized(t *testing.T) {
	t.Parallel()
	ev := genTestSet(t)
	for name, v := range map[string][]float32{"X": ev.X, "Y": ev.Y} {
		for i, x := range v {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("%s[%d] = %v; want [0,1]", name, i, x)
			}
		}
	}
	for i, w := range ev.Workload {
		if w < 0 || w >= trainer.NumWorkloads {
			t.Fatalf("workload[%d] = %d", i, w)
		}
	}
}

// The labels must promise at least the usage they were made from: the
// memory limit covers the following window's peak, the CPU limit its p99.
func TestGenerateLabelsCoverFutureUsage(t *testing.T) {
	t.Parallel()
	ev := genTestSet(t)
	outs := model.DefaultOutputs()
	recs := make([]trainer.Rec, ev.N)
	for i := range recs {
		y := ev.Y[i*model.NumOutputs : (i+1)*model.NumOutputs]
		r := trainer.RecFromOutputs(y, outs)
		recs[i] = r
		f := ev.Future[i]
		cpuP99 := float64(f.CPUSorted[features.Rank(len(f.CPUSorted), 99)])
		cpuP90 := float64(f.CPUSorted[features.Rank(len(f.CPUSorted), 90)])
		switch {
		case r.MemLimit < float64(f.MemMax):
			t.Fatalf("sample %d: mem_limit label %v below the future peak %v", i, r.MemLimit, f.MemMax)
		case r.CPULimit < cpuP99*1.04:
			t.Fatalf("sample %d: cpu_limit label %v below future p99 %v × 1.05", i, r.CPULimit, cpuP99)
		case r.CPURequest < cpuP90*0.999:
			t.Fatalf("sample %d: cpu_request label %v below future p90 %v", i, r.CPURequest, cpuP90)
		// The labels themselves, before RecFromOutputs makes anything
		// admissible: request ≤ limit, and the label floors.
		case y[1] < y[0] || y[3] < y[2]:
			t.Fatalf("sample %d: label limit below request: %v", i, y)
		case outs[0].Denormalize(float64(y[0])) < 0.0099 || outs[2].Denormalize(float64(y[2])) < 16<<20*0.999:
			t.Fatalf("sample %d: label below the floors: %v", i, y)
		}
	}
	s := trainer.Score(recs, ev.Future)
	if s.OOMRate != 0 || s.ThrottleRate > 0.01 {
		t.Errorf("labels as recommendations: OOM rate %v, throttle rate %v; want 0 and ≤ 0.01", s.OOMRate, s.ThrottleRate)
	}
	t.Logf("labels as recommendations: %+v", s)
	t.Logf("VPA baseline:              %+v", trainer.Score(ev.VPA, ev.Future))
}

// genTestMeans returns per-workload means of the raw (denormalized) features.
func genTestMeans(ev *trainer.EvalSet) (means [trainer.NumWorkloads][model.NumFeatures]float64, counts [trainer.NumWorkloads]int) {
	specs := model.DefaultFeatures()
	for i := range ev.N {
		k := ev.Workload[i]
		counts[k]++
		for j := range model.NumFeatures {
			means[k][j] += specs[j].Denormalize(float64(ev.X[i*model.NumFeatures+j]))
		}
	}
	for k := range means {
		for j := range means[k] {
			means[k][j] /= float64(max(counts[k], 1))
		}
	}
	return means, counts
}

func TestGenerateWorkloadsDiffer(t *testing.T) {
	t.Parallel()
	ev := genTestSet(t)
	means, counts := genTestMeans(ev)
	const (
		cpuVar, memTrend                    = 6, 7 // feature indexes
		web, batch, compute, database, cron = 0, 1, 2, 3, 4
	)
	for k, n := range counts {
		if n < ev.N/trainer.NumWorkloads*8/10 {
			t.Errorf("%s: %d of %d samples; want about a fifth (uniform mix)", trainer.WorkloadNames[k], n, ev.N)
		}
		t.Logf("%-9s n=%4d cpu_variance %.3f mem_trend %+.4f/day", trainer.WorkloadNames[k], n, means[k][cpuVar], means[k][memTrend])
	}
	for k := range trainer.NumWorkloads {
		if k != database && means[database][memTrend] <= means[k][memTrend] {
			t.Errorf("mean mem_trend: database %v ≤ %s %v; want database highest", means[database][memTrend], trainer.WorkloadNames[k], means[k][memTrend])
		}
		if k != compute && means[compute][cpuVar] >= means[k][cpuVar] {
			t.Errorf("mean cpu_variance: compute %v ≥ %s %v; want compute steadiest", means[compute][cpuVar], trainer.WorkloadNames[k], means[k][cpuVar])
		}
	}
	if means[cron][cpuVar] <= 3*means[web][cpuVar] {
		t.Errorf("mean cpu_variance: cron %v; want it far above web %v", means[cron][cpuVar], means[web][cpuVar])
	}
	if means[batch][cpuVar] <= means[web][cpuVar] {
		t.Errorf("mean cpu_variance: batch %v; want it above web %v", means[batch][cpuVar], means[web][cpuVar])
	}

	// The clock features cover the day and the week.
	specs := model.DefaultFeatures()
	hours, days := map[float64]bool{}, map[float64]bool{}
	for i := range ev.N {
		hours[math.Round(specs[9].Denormalize(float64(ev.X[i*model.NumFeatures+9])))] = true
		days[math.Round(specs[10].Denormalize(float64(ev.X[i*model.NumFeatures+10])))] = true
	}
	if len(hours) != 24 || len(days) != 7 {
		t.Errorf("%d distinct hours and %d days; want 24 and 7", len(hours), len(days))
	}
}

func TestGenerateMix(t *testing.T) {
	t.Parallel()
	d, err := trainer.Generate(context.Background(), trainer.GenConfig{Samples: 300, Seed: 1, Mix: [trainer.NumWorkloads]float64{0, 0, 0, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range d.Workload {
		if w != 4 {
			t.Fatalf("workload[%d] = %s; want only cron", i, trainer.WorkloadNames[w])
		}
	}
	d, err = trainer.Generate(context.Background(), trainer.GenConfig{Samples: 4000, Seed: 1, Mix: [trainer.NumWorkloads]float64{1, 0, 3, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	var n [trainer.NumWorkloads]int
	for _, w := range d.Workload {
		n[w]++
	}
	if n[1] != 0 || n[3] != 0 || n[4] != 0 || math.Abs(float64(n[2])/float64(n[0])-3) > 0.4 {
		t.Errorf("mix 1:0:3:0:0 gave counts %v", n)
	}
}

func TestGenerateErrInvalidInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		cfg    trainer.GenConfig
		phrase string
	}{
		{"NoSamples", trainer.GenConfig{}, "0 samples"},
		{"NegativeWorkers", trainer.GenConfig{Samples: 1, Workers: -1}, "-1 workers"},
		{"NegativeMix", trainer.GenConfig{Samples: 1, Mix: [5]float64{1, -1}}, "mix weight -1 for batch"},
		{"NaNMix", trainer.GenConfig{Samples: 1, Mix: [5]float64{math.NaN()}}, "mix weight NaN for web"},
		{"ShortHistory", trainer.GenConfig{Samples: 1, HistorySteps: 5}, "history window of 5 steps"},
		{"LongFuture", trainer.GenConfig{Samples: 1, FutureSteps: 100000}, "future window of 100000 steps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := trainer.Generate(context.Background(), c.cfg)
			if !errors.Is(err, model.ErrInvalidInput) || !strings.Contains(err.Error(), c.phrase) || !strings.Contains(err.Error(), "want") {
				t.Errorf("err = %v; want ErrInvalidInput saying %q and what is accepted", err, c.phrase)
			}
		})
	}
}

func TestGenerateCustomWindows(t *testing.T) {
	t.Parallel()
	ev, err := trainer.GenerateEval(context.Background(), trainer.GenConfig{Samples: 50, Seed: 3, HistorySteps: 12 * 24 * 7, FutureSteps: 12})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range ev.Future {
		if len(f.CPUSorted) != 12 {
			t.Fatalf("sample %d: %d future samples; want 12", i, len(f.CPUSorted))
		}
	}
}

func TestGenerateStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := trainer.Generate(ctx, trainer.GenConfig{Samples: 100000, Seed: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

func BenchmarkGenerate100k(b *testing.B) {
	for b.Loop() {
		if _, err := trainer.Generate(context.Background(), trainer.GenConfig{Samples: 100_000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/sample")
}

func BenchmarkGenerateEval10k(b *testing.B) {
	for b.Loop() {
		if _, err := trainer.GenerateEval(context.Background(), trainer.GenConfig{Samples: 10_000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
