package traces

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrMalformed marks a trace file that cannot be read: a bad number, a short
// row, a missing header, an empty file, a corrupt gzip stream. The error is a
// *ParseError naming the file and line.
var ErrMalformed = errors.New("malformed trace")

// ErrNoWindows: the traces hold no stretch long enough for one history
// window and the window after it.
var ErrNoWindows = errors.New("no complete history and following window in the traces")

// ParseError is a malformed trace: the file, the 1-based line and what is
// wrong with it (and what is accepted). It wraps ErrMalformed.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %v: %s", e.File, e.Line, ErrMalformed, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Format names a trace file format.
type Format string

const (
	// Generic is CSV with the columns container_id, timestamp, cpu_cores,
	// memory_bytes (in that order without a header, in any order with one);
	// timestamp is Unix seconds (decimals allowed) or RFC 3339. Many
	// containers may share a file, their rows interleaved.
	Generic Format = "generic"
	// Bitbrains is one VM per file of the GWA-T-12 trace (TU Delft Grid
	// Workloads Archive), as published: see ReadBitbrains.
	Bitbrains Format = "bitbrains"
)

// ParseFormat returns the Format named s ("generic" or "bitbrains").
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case Generic, Bitbrains:
		return f, nil
	}
	return "", fmt.Errorf("trace format %q; want generic or bitbrains", s)
}

// Sample is one row of a trace, in raw units. A NaN CPU or memory value is a
// missing sample (an empty generic cell, a Bitbrains VM not provisioned).
type Sample struct {
	UnixMilli int64
	CPU       float64 // cores used
	Mem       float64 // bytes of memory used
	CPUCap    float64 // provisioned CPU in cores; 0 = unknown (generic)
	MemCap    float64 // provisioned memory in bytes; 0 = unknown (generic)
}

// Container is one container's (or VM's) rows, in file order.
type Container struct {
	ID      string
	File    string // the file its first row came from
	Samples []Sample
}

// ReadFile reads one trace file in format f, gzipped or not (recognized by
// its first bytes, whatever its name). Errors in the content are *ParseError
// values naming path and the line (errors.Is(err, ErrMalformed)); a file that
// cannot be opened gives the os error.
func ReadFile(path string, f Format) ([]Container, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	defer fh.Close()
	return Read(fh, path, f)
}

// Read reads a trace in format f from r; name is used in errors and, for
// Bitbrains, as the VM's ID (its base name without .csv/.gz). gzip input is
// recognized by its magic bytes.
func Read(r io.Reader, name string, f Format) ([]Container, error) {
	lr, err := newLineReader(r, name)
	if err != nil {
		return nil, err
	}
	switch f {
	case Generic:
		return readGeneric(lr)
	case Bitbrains:
		c, err := readBitbrains(lr, bitbrainsID(name))
		if err != nil {
			return nil, err
		}
		return []Container{c}, nil
	}
	return nil, fmt.Errorf("read %s: trace format %q; want generic or bitbrains", name, f)
}

// bitbrainsID is a file's base name without .gz and .csv: "1" for 1.csv.gz.
func bitbrainsID(name string) string {
	b := filepath.Base(name)
	b = strings.TrimSuffix(b, ".gz")
	return strings.TrimSuffix(b, ".csv")
}

// lineReader yields lines and knows their numbers, for errors.
type lineReader struct {
	sc   *bufio.Scanner
	src  *errReader
	gzip bool
	file string
	line int
}

// errReader remembers the first error other than io.EOF its reader gave.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

const maxLine = 1 << 20

func newLineReader(r io.Reader, name string) (*lineReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	l := &lineReader{file: name, src: &errReader{r: br}}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &ParseError{File: name, Line: 1, Msg: fmt.Sprintf("corrupt gzip header: %v; want a gzip stream or plain CSV", err)}
		}
		l.src.r, l.gzip = zr, true
	}
	l.sc = bufio.NewScanner(l.src)
	l.sc.Buffer(make([]byte, 64<<10), maxLine)
	return l, nil
}

// next returns the next line without its line ending, or ok = false at the
// end; a read error (corrupt or truncated gzip, a line over 1 MiB) is a
// ParseError at the line it happened on.
func (l *lineReader) next() (line []byte, ok bool, err error) {
	if l.sc.Scan() {
		l.line++
		return bytes.TrimSuffix(l.sc.Bytes(), []byte{'\r'}), true, nil
	}
	if err := l.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, false, l.errorf(l.line+1, "line longer than %d bytes; want one row per line", maxLine)
		}
		return nil, false, l.errorf(l.line+1, "reading: %v", err)
	}
	return nil, false, nil
}

// errorf returns a ParseError at line. When reading failed underneath (a
// corrupt or truncated gzip stream hands the scanner a partial last line),
// the read error is what is wrong, whatever the caller saw in the line.
func (l *lineReader) errorf(line int, format string, args ...any) error {
	if err := l.src.err; err != nil {
		what := "reading"
		if l.gzip {
			what = "corrupt or truncated gzip stream"
		}
		return &ParseError{File: l.file, Line: line, Msg: fmt.Sprintf("%s: %v", what, err)}
	}
	return &ParseError{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// splitFields splits a row at sep and trims spaces and tabs around fields.
// The fields alias line.
func splitFields(line []byte, sep byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for {
		i := bytes.IndexByte(line, sep)
		if i < 0 {
			return append(dst, bytes.TrimSpace(line))
		}
		dst = append(dst, bytes.TrimSpace(line[:i]))
		line = line[i+1:]
	}
}

// number parses a finite number ≥ 0.
func number(s []byte) (float64, bool) {
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || !(v >= 0) || math.IsInf(v, 1) {
		return 0, false
	}
	return v, true
}

// Bitbrains columns (0-based) the reader uses.
const (
	bbTimestamp = 0
	bbCores     = 1
	bbCapMHz    = 2
	bbUsageMHz  = 3
	bbMemCapKB  = 5
	bbMemKB     = 6
	bbMinFields = 7
)

// msThreshold tells seconds from milliseconds: 1e11 seconds is the year 5138.
const msThreshold = 1e11

// readBitbrains reads one GWA-T-12 VM file as published:
//
//   - fields separated by ';' (followed by a tab); the first line is the
//     header, which must start with "Timestamp" and name at least 7 columns;
//     every row has as many fields as the header;
//   - the header says "Timestamp [ms]" but the values are Unix seconds:
//     values below 1e11 are read as seconds, larger ones as milliseconds;
//   - CPU cores used = CPU usage [MHz] / (CPU capacity provisioned [MHz] /
//     CPU cores); memory bytes = memory usage [KB] × 1024; the provisioned
//     capacity (cores, memory capacity [KB] × 1024) is kept for the CPU
//     limit feature and the "provisioned" recommender;
//   - usage above the provisioned capacity is kept (it happens: the host
//     lends spare cycles);
//   - rows with 0 cores or 0 MHz provisioned (a VM switched off or not yet
//     created) are missing samples;
//   - a memory usage of 0 KB in a running VM is a missing memory sample: a
//     sampling gap, isolated zeros between ordinary values (19% of the
//     July rows, 11% of the August ones), not an idle VM;
//   - repeated timestamps are not dropped here but by Resample (the first
//     row of a timestamp wins).
//
// A value that is not a finite number ≥ 0 is an error.
func readBitbrains(l *lineReader, id string) (Container, error) {
	c := Container{ID: id, File: l.file}
	head, ok, err := l.next()
	if err != nil {
		return c, err
	}
	if !ok {
		return c, l.errorf(1, "empty file; want the GWA-T-12 header line \"Timestamp [ms];\\tCPU cores;...\" and rows")
	}
	fields := splitFields(head, ';', nil)
	if !bytes.HasPrefix(bytes.ToLower(bytes.TrimPrefix(fields[0], []byte("\ufeff"))), []byte("timestamp")) || len(fields) < bbMinFields {
		return c, l.errorf(1, "header %q; want the GWA-T-12 header: Timestamp [ms]; CPU cores; CPU capacity provisioned [MHZ]; CPU usage [MHZ]; CPU usage [%%]; Memory capacity provisioned [KB]; Memory usage [KB]; ...",
			truncate(string(head)))
	}
	width := len(fields)
	for {
		line, ok, err := l.next()
		if err != nil {
			return c, err
		}
		if !ok {
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fields = splitFields(line, ';', fields)
		if len(fields) != width {
			return c, l.errorf(l.line, "%d fields; want %d separated by \";\" as in the header", len(fields), width)
		}
		var v [bbMinFields]float64
		for _, col := range [...]int{bbTimestamp, bbCores, bbCapMHz, bbUsageMHz, bbMemCapKB, bbMemKB} {
			x, ok := number(fields[col])
			if !ok {
				return c, l.errorf(l.line, "column %d (%s) is %q; want a finite number ≥ 0", col+1, bitbrainsColumn[col], truncate(string(fields[col])))
			}
			v[col] = x
		}
		ms := int64(v[bbTimestamp] * 1000)
		if v[bbTimestamp] >= msThreshold {
			ms = int64(v[bbTimestamp])
		}
		s := Sample{UnixMilli: ms, CPU: math.NaN(), Mem: math.NaN()}
		if v[bbCores] > 0 && v[bbCapMHz] > 0 {
			s.CPU = v[bbUsageMHz] / (v[bbCapMHz] / v[bbCores])
			if v[bbMemKB] > 0 {
				s.Mem = v[bbMemKB] * 1024
			}
			s.CPUCap = v[bbCores]
			s.MemCap = v[bbMemCapKB] * 1024
		}
		c.Samples = append(c.Samples, s)
	}
	if len(c.Samples) == 0 {
		return c, l.errorf(l.line+1, "no rows after the header; want one row per 5 minutes")
	}
	return c, nil
}

var bitbrainsColumn = map[int]string{
	bbTimestamp: "timestamp", bbCores: "CPU cores", bbCapMHz: "CPU capacity provisioned [MHz]",
	bbUsageMHz: "CPU usage [MHz]", bbMemCapKB: "memory capacity provisioned [KB]", bbMemKB: "memory usage [KB]",
}

// Generic columns by name.
var genericColumns = [4]string{"container_id", "timestamp", "cpu_cores", "memory_bytes"}

// readGeneric reads CSV rows container_id,timestamp,cpu_cores,memory_bytes.
// A first line whose first field is not a timestamp-bearing row but a
// column name is a header; with it the columns may come in any order and
// extra columns are ignored. An empty cpu_cores or memory_bytes cell is a
// missing sample.
func readGeneric(l *lineReader) ([]Container, error) {
	col := [4]int{0, 1, 2, 3}
	width := 4 // fields per row (exact without a header, at least with one)
	exact := true
	byID := map[string]int{}
	var out []Container
	var fields [][]byte
	first := true
	for {
		line, ok, err := l.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fields = splitFields(line, ',', fields)
		if first {
			first = false
			if isGenericHeader(fields) {
				var err error
				if col, width, err = genericHeader(fields); err != nil {
					return nil, l.errorf(l.line, "%v", err)
				}
				exact = false
				continue
			}
		}
		if len(fields) < width || (exact && len(fields) != width) {
			return nil, l.errorf(l.line, "%d fields; want %d: container_id,timestamp,cpu_cores,memory_bytes", len(fields), width)
		}
		idb := fields[col[0]]
		if len(idb) == 0 {
			return nil, l.errorf(l.line, "empty container_id; want a name for the container")
		}
		ms, err := parseTimestamp(string(fields[col[1]]))
		if err != nil {
			return nil, l.errorf(l.line, "timestamp %q: %v", truncate(string(fields[col[1]])), err)
		}
		s := Sample{UnixMilli: ms}
		for k, p := range [2]*float64{&s.CPU, &s.Mem} {
			f := fields[col[2+k]]
			if len(f) == 0 {
				*p = math.NaN()
				continue
			}
			v, ok := number(f)
			if !ok {
				return nil, l.errorf(l.line, "%s is %q; want a finite number ≥ 0 (or empty for no sample)", genericColumns[2+k], truncate(string(f)))
			}
			*p = v
		}
		i, seen := byID[string(idb)]
		if !seen {
			i = len(out)
			byID[string(idb)] = i
			out = append(out, Container{ID: string(idb), File: l.file})
		}
		out[i].Samples = append(out[i].Samples, s)
	}
	if l.line == 0 {
		return nil, l.errorf(1, "empty file; want CSV rows container_id,timestamp,cpu_cores,memory_bytes")
	}
	if len(out) == 0 {
		return nil, l.errorf(l.line+1, "no data rows; want CSV rows container_id,timestamp,cpu_cores,memory_bytes")
	}
	return out, nil
}

// isGenericHeader reports whether a first row names columns rather than
// holding data: its fields include "timestamp".
func isGenericHeader(fields [][]byte) bool {
	for _, f := range fields {
		if strings.EqualFold(strings.TrimPrefix(string(f), "\ufeff"), "timestamp") {
			return true
		}
	}
	return false
}

func genericHeader(fields [][]byte) (col [4]int, width int, err error) {
	for k := range col {
		col[k] = -1
	}
	names := make([]string, len(fields))
	for i, fb := range fields {
		names[i] = string(fb)
		f := strings.ToLower(strings.TrimPrefix(names[i], "\ufeff"))
		for k, name := range genericColumns {
			if f == name {
				if col[k] >= 0 {
					return col, 0, fmt.Errorf("header names column %s twice", name)
				}
				col[k] = i
			}
		}
	}
	for k, name := range genericColumns {
		if col[k] < 0 {
			return col, 0, fmt.Errorf("header %q has no column %s; want container_id,timestamp,cpu_cores,memory_bytes", truncate(strings.Join(names, ",")), name)
		}
		width = max(width, col[k]+1)
	}
	return col, width, nil
}

// parseTimestamp reads Unix seconds (decimals allowed) or RFC 3339 and
// returns Unix milliseconds.
func parseTimestamp(s string) (int64, error) {
	if strings.ContainsAny(s, "T:") {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, errors.New("want Unix seconds or RFC 3339 (2006-01-02T15:04:05Z)")
		}
		return t.UnixMilli(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, errors.New("want Unix seconds or RFC 3339 (2006-01-02T15:04:05Z)")
	case v < 0:
		return 0, errors.New("before 1970; want Unix seconds ≥ 0")
	case v >= msThreshold:
		return 0, errors.New("too large for Unix seconds (milliseconds?); want Unix seconds or RFC 3339")
	}
	return int64(math.Round(v * 1000)), nil
}

func truncate(s string) string {
	const n = 60
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
