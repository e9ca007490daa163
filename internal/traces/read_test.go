package traces_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"recommendation-api/internal/traces"
	"recommendation-api/internal/trainer"
)

// sharedDir holds the 60 Bitbrains VMs the project evaluates on: beside
// the repository, or under $RECO_SHARED_DATA (a checkout elsewhere).
var sharedDir = func() string {
	if d := os.Getenv("RECO_SHARED_DATA"); d != "" {
		return filepath.Join(d, "bitbrains-rnd-2013-7")
	}
	return filepath.Join("..", "..", "..", "shared", "data", "bitbrains-rnd-2013-7")
}()

// sharedFile returns the path of a shared Bitbrains file, skipping the test
// when the shared data is not on this machine.
func sharedFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(sharedDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared Bitbrains data not present: %v", err)
	}
	return p
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

func TestReadBitbrainsRealFile(t *testing.T) {
	t.Parallel()
	p := sharedFile(t, "1.csv.gz")
	cs, err := traces.ReadFile(p, traces.Bitbrains)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != "1" {
		t.Fatalf("got %d containers (first %q); want one named 1", len(cs), cs[0].ID)
	}
	s := cs[0].Samples
	// 8261 lines: the header and 8260 rows.
	if len(s) != 8260 {
		t.Errorf("%d rows; want 8260", len(s))
	}
	// First row: "1372629804;\t2;\t5851.9989;\t87.7799835;\t1.5;\t8218624.0;\t1034592.8;..."
	// The header says [ms] but 1372629804 is seconds: 2013-06-30T22:03:24Z.
	first := s[0]
	if got, want := time.UnixMilli(first.UnixMilli).UTC(), time.Date(2013, 6, 30, 22, 3, 24, 0, time.UTC); !got.Equal(want) {
		t.Errorf("first timestamp %v; want %v (the values are seconds, whatever the header says)", got, want)
	}
	if want := 87.7799835 / (5851.9989 / 2); !near(first.CPU, want) {
		t.Errorf("CPU %v cores; want usage MHz / (capacity MHz / cores) = %v", first.CPU, want)
	}
	if want := 1034592.8 * 1024; !near(first.Mem, want) {
		t.Errorf("memory %v bytes; want KB × 1024 = %v", first.Mem, want)
	}
	if first.CPUCap != 2 || first.MemCap != 8218624*1024 {
		t.Errorf("capacity %v cores, %v bytes; want 2 and %v", first.CPUCap, first.MemCap, 8218624*1024)
	}
	// The last row is in late July 2013: seconds throughout.
	if got := time.UnixMilli(s[len(s)-1].UnixMilli).UTC(); got.Year() != 2013 || got.Month() != time.July {
		t.Errorf("last timestamp %v; want July 2013", got)
	}
}

func TestReadBitbrainsUsageAboveCapacityKept(t *testing.T) {
	t.Parallel()
	p := sharedFile(t, "41.csv.gz")
	cs, err := traces.ReadFile(p, traces.Bitbrains)
	if err != nil {
		t.Fatal(err)
	}
	// "1372689810;\t8;\t20799.994872;\t21833.061283976;\t104.96666666666665;..."
	for _, s := range cs[0].Samples {
		if s.UnixMilli != 1372689810_000 {
			continue
		}
		want := 21833.061283976 / (20799.994872 / 8)
		if !near(s.CPU, want) || s.CPU <= s.CPUCap {
			t.Errorf("CPU %v cores with %v provisioned; want %v, above the capacity", s.CPU, s.CPUCap, want)
		}
		return
	}
	t.Fatal("row 1372689810 not found")
}

func TestReadBitbrainsRepeatedTimestampsDropped(t *testing.T) {
	t.Parallel()
	// Rows 4469-4489 of VM 20: from 1373975437 on the VM is switched off
	// (0 cores) and every timestamp comes two or three times.
	cs, err := traces.ReadFile(filepath.Join("testdata", "bitbrains-20-excerpt.csv.gz"), traces.Bitbrains)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cs[0].Samples); n != 21 {
		t.Fatalf("%d rows; want 21", n)
	}
	s, err := traces.Resample(cs[0], 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeats != 8 {
		t.Errorf("%d repeated rows dropped; want 8", s.Repeats)
	}
	if len(s.CPU) != 13 {
		t.Errorf("%d steps; want 13 distinct timestamps", len(s.CPU))
	}
	// The first row of 1373975437 (0 cores: off) wins over its repeat, which
	// claims 671088 KB: the step is missing, not 671088 KB.
	if i := 8; !math.IsNaN(s.Mem[i]) {
		t.Errorf("step %d memory %v; want missing (the VM is off in the first row of its timestamp)", i, s.Mem[i])
	}
	if want := 19.06666159933333 / 2599.999309; !near(s.CPU[0], want) {
		t.Errorf("CPU[0] = %v; want %v", s.CPU[0], want)
	}

	// Everywhere in the shared set: files 20 and 54 repeat timestamps.
	p := sharedFile(t, "20.csv.gz")
	cs, err = traces.ReadFile(p, traces.Bitbrains)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = traces.Resample(cs[0], 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if s.Repeats != 4158 {
		t.Errorf("20.csv.gz: %d repeats dropped; want 4158", s.Repeats)
	}
}

func TestReadBitbrainsSeparators(t *testing.T) {
	t.Parallel()
	// ";\t" as published, ";" alone and "; " all read the same.
	const head = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB]\n"
	for name, row := range map[string]string{
		"SemicolonTab":   "1372629804;\t2;\t5000;\t1250;\t25;\t1024;\t512\n",
		"Semicolon":      "1372629804;2;5000;1250;25;1024;512\n",
		"SemicolonSpace": "1372629804; 2; 5000; 1250; 25; 1024; 512\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cs, err := traces.Read(strings.NewReader(head+row), "vm.csv", traces.Bitbrains)
			if err != nil {
				t.Fatal(err)
			}
			s := cs[0].Samples[0]
			if s.CPU != 0.5 || s.Mem != 512*1024 || s.UnixMilli != 1372629804_000 {
				t.Errorf("got %+v; want 0.5 cores, 512 KiB at 1372629804 s", s)
			}
		})
	}
}

// TestReadBitbrainsZeroMemoryMissing checks that a running VM's 0 KB of
// memory, a sampling gap between ordinary values, is a missing memory
// sample (its CPU is kept), which Resample then fills from its neighbours.
func TestReadBitbrainsZeroMemoryMissing(t *testing.T) {
	t.Parallel()
	in := bbHead +
		"1372629600;\t2;\t5000;\t1250;\t25;\t1024;\t512\n" +
		"1372629900;\t2;\t5000;\t1250;\t25;\t1024;\t0.0\n" +
		"1372630200;\t2;\t5000;\t1250;\t25;\t1024;\t768\n"
	cs, err := traces.Read(strings.NewReader(in), "vm.csv", traces.Bitbrains)
	if err != nil {
		t.Fatal(err)
	}
	if s := cs[0].Samples[1]; !math.IsNaN(s.Mem) || s.CPU != 0.5 {
		t.Fatalf("row with 0 KB: memory %v, CPU %v; want missing memory, 0.5 cores", s.Mem, s.CPU)
	}
	ser, err := traces.Resample(cs[0], trainer.Step)
	if err != nil {
		t.Fatal(err)
	}
	if got := ser.Mem[1]; got != 640*1024 {
		t.Errorf("resampled memory %v; want 640 KiB interpolated between 512 and 768", got)
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

const bbHead = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB]\n"

func TestReadMalformed(t *testing.T) {
	t.Parallel()
	ok := "1372629804;\t2;\t5000;\t1250;\t25;\t1024;\t512\n"
	truncated := gz(bbHead + strings.Repeat(ok, 200))
	truncated = truncated[:len(truncated)-30]
	for _, c := range []struct {
		name   string
		format traces.Format
		data   []byte
		line   int
		phrase string
	}{
		{"BitbrainsBadNumber", traces.Bitbrains, []byte(bbHead + ok + "1372630104;\t2;\t5000;\tabc;\t25;\t1024;\t512\n"), 3, `CPU usage [MHz]) is "abc"`},
		{"BitbrainsNegative", traces.Bitbrains, []byte(bbHead + "1372630104;\t2;\t5000;\t100;\t25;\t1024;\t-5\n"), 2, "want a finite number ≥ 0"},
		{"BitbrainsNaN", traces.Bitbrains, []byte(bbHead + "1372630104;\t2;\tNaN;\t100;\t25;\t1024;\t5\n"), 2, "want a finite number ≥ 0"},
		{"BitbrainsShortRow", traces.Bitbrains, []byte(bbHead + ok + ok + "1372630104;\t2;\t5000\n"), 4, "3 fields; want 7"},
		{"BitbrainsEmpty", traces.Bitbrains, nil, 1, "empty file"},
		{"BitbrainsEmptyGzip", traces.Bitbrains, gz(""), 1, "empty file"},
		{"BitbrainsHeaderOnly", traces.Bitbrains, []byte(bbHead), 2, "no rows"},
		{"BitbrainsNoHeader", traces.Bitbrains, []byte(ok), 1, "want the GWA-T-12 header"},
		{"NotGzip", traces.Bitbrains, []byte("\x00\x01\x02garbage\xff\xfe"), 1, "want the GWA-T-12 header"},
		{"CorruptGzip", traces.Bitbrains, []byte("\x1f\x8b\x08\x00garbage-after-magic"), 1, "gzip"},
		{"TruncatedGzip", traces.Bitbrains, truncated, 0, "corrupt or truncated gzip stream"},
		{"GenericBadNumber", traces.Generic, []byte("a,1700000000,0.5,100\na,1700000300,x,100\n"), 2, `cpu_cores is "x"`},
		{"GenericShortRow", traces.Generic, []byte("container_id,timestamp,cpu_cores,memory_bytes\na,1700000000,0.5\n"), 2, "3 fields; want 4"},
		{"GenericLongRow", traces.Generic, []byte("a,1700000000,0.5,1,9\n"), 1, "5 fields; want 4"},
		{"GenericBadTimestamp", traces.Generic, []byte("a,yesterday,0.5,100\n"), 1, "want Unix seconds or RFC 3339"},
		{"GenericMilliseconds", traces.Generic, []byte("a,1700000000000,0.5,100\n"), 1, "milliseconds"},
		{"GenericBadRFC3339", traces.Generic, []byte("a,2024-13-01T00:00:00Z,0.5,100\n"), 1, "RFC 3339"},
		{"GenericEmptyID", traces.Generic, []byte(",1700000000,0.5,100\n"), 1, "empty container_id"},
		{"GenericEmpty", traces.Generic, nil, 1, "empty file"},
		{"GenericHeaderOnly", traces.Generic, []byte("container_id,timestamp,cpu_cores,memory_bytes\n"), 2, "no data rows"},
		{"GenericHeaderMissingColumn", traces.Generic, []byte("container_id,timestamp,cpu\n"), 1, "no column cpu_cores"},
		{"GenericNotGzip", traces.Generic, []byte("\x00\x01\x02garbage\xff\xfe"), 1, "fields; want 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "trace.csv.gz")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := traces.ReadFile(path, c.format)
			if !errors.Is(err, traces.ErrMalformed) {
				t.Fatalf("err = %v; want ErrMalformed", err)
			}
			var pe *traces.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v; want a *ParseError", err)
			}
			if pe.File != path || (c.line > 0 && pe.Line != c.line) || pe.Line < 1 {
				t.Errorf("error at %s:%d; want %s:%d", pe.File, pe.Line, path, c.line)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+":") || !strings.Contains(msg, c.phrase) {
				t.Errorf("err = %q; want it to start with the file and line and say %q", msg, c.phrase)
			}
		})
	}
}

func TestReadGeneric(t *testing.T) {
	t.Parallel()
	const csv = "memory_bytes,timestamp,container_id,cpu_cores,node\n" + // a header in another order, an extra column
		"1000,2024-03-06T14:00:00Z,web-1,0.25,n1\n" +
		"2000,1709733600,db-1,1.5,n2\n" +
		",1709733900,web-1,0.5,n1\n" + // empty memory: no sample
		"1500,1709733900.5,db-1,,n2\n"
	for _, enc := range []string{"plain", "gzip"} {
		t.Run(enc, func(t *testing.T) {
			data := []byte(csv)
			if enc == "gzip" {
				data = gz(csv)
			}
			cs, err := traces.Read(bytes.NewReader(data), "x.csv", traces.Generic)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 2 || cs[0].ID != "web-1" || cs[1].ID != "db-1" {
				t.Fatalf("containers %v; want web-1 and db-1 in order of appearance", cs)
			}
			w := cs[0].Samples
			if len(w) != 2 || w[0].UnixMilli != 1709733600_000 || w[0].CPU != 0.25 || w[0].Mem != 1000 {
				t.Errorf("web-1 rows %+v; want 0.25 cores and 1000 bytes at 2024-03-06T14:00:00Z first", w)
			}
			if !math.IsNaN(w[1].Mem) || w[1].CPU != 0.5 {
				t.Errorf("web-1 second row %+v; want 0.5 cores and no memory sample", w[1])
			}
			if d := cs[1].Samples[1]; d.UnixMilli != 1709733900_500 || !math.IsNaN(d.CPU) {
				t.Errorf("db-1 second row %+v; want decimal seconds kept and no CPU sample", d)
			}
		})
	}
	// Without a header the four columns come in order.
	cs, err := traces.Read(strings.NewReader("a,1709733600,1,2\na,1709733900,3,4\n"), "y.csv", traces.Generic)
	if err != nil || len(cs) != 1 || len(cs[0].Samples) != 2 {
		t.Fatalf("headerless: %v, %v", cs, err)
	}
}

// TestReadGenericPrometheusExport reads the CSV docs/evaluation.md builds
// from two Prometheus range queries: CPU rows, then memory rows.
func TestReadGenericPrometheusExport(t *testing.T) {
	t.Parallel()
	const csv = `container_id,timestamp,cpu_cores,memory_bytes
shop/web-7d9f-abc/web,1700000000,0.25,
shop/web-7d9f-abc/web,1700000300,0.5,
shop/web-7d9f-abc/web,1700000000,,104857600
shop/web-7d9f-abc/web,1700000300,,110000000
`
	cs, err := traces.Read(strings.NewReader(csv), "trace.csv", traces.Generic)
	if err != nil {
		t.Fatal(err)
	}
	s, err := traces.Resample(cs[0], 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CPU) != 2 || s.CPU[1] != 0.5 || s.Mem[0] != 104857600 || s.Repeats != 0 || s.Missing != 0 {
		t.Errorf("CPU %v, memory %v, %d repeats, %d missing; want both series complete on 2 steps", s.CPU, s.Mem, s.Repeats, s.Missing)
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]traces.Format{"generic": traces.Generic, "Bitbrains": traces.Bitbrains} {
		if got, err := traces.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := traces.ParseFormat("parquet"); err == nil || !strings.Contains(err.Error(), "want generic or bitbrains") {
		t.Errorf("ParseFormat(parquet) err = %v; want the accepted formats named", err)
	}
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	if f, err := traces.DetectFormat(filepath.Join("testdata", "bitbrains-20-excerpt.csv.gz")); err != nil || f != traces.Bitbrains {
		t.Errorf("excerpt: %q, %v; want bitbrains", f, err)
	}
	p := filepath.Join(t.TempDir(), "g.csv")
	os.WriteFile(p, []byte("container_id,timestamp,cpu_cores,memory_bytes\n"), 0o644)
	if f, err := traces.DetectFormat(p); err != nil || f != traces.Generic {
		t.Errorf("generic: %q, %v; want generic", f, err)
	}
}

func TestExpandPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, n := range []string{"10.csv.gz", "2.csv.gz", "1.csv", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := traces.ExpandPaths([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	if strings.Join(names, " ") != "1.csv 2.csv.gz 10.csv.gz" {
		t.Errorf("expanded %v; want 1.csv 2.csv.gz 10.csv.gz (natural order, CSV only)", names)
	}
	if _, err := traces.ExpandPaths([]string{filepath.Join(dir, "nope.csv")}); err == nil {
		t.Errorf("missing file: no error")
	}
	if _, err := traces.ExpandPaths([]string{filepath.Join(dir, "*.parquet")}); err == nil {
		t.Errorf("pattern matching nothing: no error")
	}
}
