package traces

import (
	"math"
	"testing"

	"recommendation-api/internal/trainer"
)

// confidenceDeciles sorts days by confidence into ten equal groups, lowest
// first, and reports each group's realised OOM share, slack and log error.
func TestConfidenceDeciles(t *testing.T) {
	const n = 100
	conf := make([]float64, n)
	recs := make([]trainer.Rec, n)
	scores := make([]DayScore, n)
	futs := make([]Future, n)
	for i := range n {
		conf[i] = float64((i*37)%n) / n // a permutation of 0, 0.01, … 0.99
		recs[i] = trainer.Rec{MemLimit: 1 << 30}
		futs[i] = Future{MemMax: float64(1<<30) * math.Exp(1-conf[i])} // less confident, further off
		scores[i] = DayScore{OOM: futs[i].MemMax > recs[i].MemLimit, MemLimitSlack: conf[i]}
	}
	got := confidenceDeciles(conf, conf, recs, scores, futs)
	if len(got) != 10 {
		t.Fatalf("%d deciles; want 10", len(got))
	}
	for d, c := range got {
		lo := float64(d) / 10
		if c.Decile != d+1 || c.Days != 10 || math.Abs(c.ConfidenceLow-lo) > 1e-12 || math.Abs(c.ConfidenceHigh-(lo+0.09)) > 1e-12 {
			t.Fatalf("decile %d = %+v; want days 10, confidence %.2f–%.2f", d+1, c, lo, lo+0.09)
		}
		if math.Abs(c.Realised-(lo+0.045)) > 1e-9 {
			t.Errorf("decile %d: realised confidence %v; want the mean label %v", d+1, c.Realised, lo+0.045)
		}
		if wantErr := 1 - (lo + 0.045); math.Abs(c.MemError-wantErr) > 1e-9 || c.OOMRate != 1 {
			t.Errorf("decile %d: error %v, OOM %v; want %v, 1", d+1, c.MemError, c.OOMRate, wantErr)
		}
		if d > 0 && !(c.MemError < got[d-1].MemError) {
			t.Errorf("decile %d error %v not below decile %d's %v", d+1, c.MemError, d, got[d-1].MemError)
		}
	}
	if confidenceDeciles(conf[:9], nil, recs, scores, futs) != nil {
		t.Error("fewer than 10 days gave deciles; want none")
	}
}
