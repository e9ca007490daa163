package traces_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"recommendation-api/internal/traces"
)

// fuzzRead checks a reader never panics, fails only with a *ParseError
// naming the file and a line, and returns only finite, non-negative values
// (or NaN for a missing sample) that Resample and Points accept.
func fuzzRead(t *testing.T, data []byte, f traces.Format) {
	cs, err := traces.Read(bytes.NewReader(data), "fuzz.csv", f)
	if err != nil {
		var pe *traces.ParseError
		if !errors.As(err, &pe) || !errors.Is(err, traces.ErrMalformed) || pe.File != "fuzz.csv" || pe.Line < 1 {
			t.Fatalf("err = %#v; want a *ParseError with the file and a line ≥ 1", err)
		}
		return
	}
	if len(cs) == 0 {
		t.Fatal("no error and no containers")
	}
	for _, c := range cs {
		for _, s := range c.Samples {
			for _, v := range []float64{s.CPU, s.Mem, s.CPUCap, s.MemCap} {
				if v < 0 || math.IsInf(v, 0) {
					t.Fatalf("sample %+v has a value outside [0, ∞)", s)
				}
			}
		}
		// Rows far apart in time could ask for a huge grid: only resample
		// what a sane trace spans.
		lo, hi := c.Samples[0].UnixMilli, c.Samples[0].UnixMilli
		for _, s := range c.Samples {
			lo, hi = min(lo, s.UnixMilli), max(hi, s.UnixMilli)
		}
		if hi-lo > 40*24*3600*1000 {
			continue
		}
		s, err := traces.Resample(c, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		traces.Points(s, traces.Windows{History: 2, Future: 1, Stride: 1})
	}
}

func seedFuzz(f *testing.F, files ...string) {
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzReadBitbrains(f *testing.F) {
	seedFuzz(f, filepath.Join("testdata", "bitbrains-20-excerpt.csv.gz"))
	f.Add([]byte(bbHead + "1372629804;\t2;\t5000;\t1250;\t25;\t1024;\t512\n1372629804;\t2;\t5000;\t1250;\t25;\t1024;\t512\n"))
	f.Add([]byte(bbHead + "1372629804;\t0;\t0;\t0;\t0;\t0;\t0\n1372630104;\t2;\t5000;\t9999;\t25;\t1024;\t512\n"))
	f.Add([]byte(bbHead + "1372629804000;\t1;\t1;\t1;\t1;\t1;\t1\n"))
	f.Add([]byte(bbHead + "1e300;\t1;\t1;\t1;\t1;\t1;\t1\n"))
	f.Add([]byte("Timestamp;a\n1;2\n"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data, traces.Bitbrains) })
}

func FuzzReadGeneric(f *testing.F) {
	f.Add([]byte("container_id,timestamp,cpu_cores,memory_bytes\na,1700000000,0.5,100\nb,2023-11-14T22:18:20Z,1,2\n"))
	f.Add([]byte("a,1700000000,0.5,100\na,1700000000,0.6,\na,1700000300.25,,7\n"))
	f.Add([]byte("memory_bytes,container_id,timestamp,cpu_cores,x\n1,a,1700000000,1,z\n"))
	f.Add([]byte("a,-1,1,1\n"))
	f.Add([]byte("a,1e30,1,1\n"))
	f.Add([]byte("a,0001-01-01T00:00:00Z,1,1\n"))
	f.Add(gz("a,1700000000,1,1\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data, traces.Generic) })
}
