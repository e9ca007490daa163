package trainer

// NumPy .npz files: a zip archive of .npy arrays (format version 1.0, see
// numpy.lib.format). This small codec writes exactly what np.savez writes
// for the three arrays and reads it back strictly, without trusting the
// header's sizes before the archive confirms them.

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"recommendation-api/internal/model"
)

// npzArray describes one array of the training file.
type npzArray struct {
	name  string // entry name without ".npy"
	descr string // numpy dtype string
	what  string // for messages
	width int    // columns; 0 = one-dimensional
}

var npzArrays = [3]npzArray{
	{"X", "<f4", "float32", model.NumFeatures},
	{"Y", "<f4", "float32", model.NumOutputs},
	{"workload", "<i4", "int32", 0},
}

// npzExpected is appended to messages about the file as a whole.
const npzExpected = "want an .npz holding X [N,12] (major 1) or [N,16] (major 2) float32, Y [N,5] float32 and workload [N] int32"

// WriteNPZ writes d to path as an uncompressed .npz (what numpy.savez
// writes) holding X [N,12] float32, Y [N,5] float32 and workload [N]
// int32. It creates path's directory if missing, writes a temporary file
// there and renames it over path, so a failure leaves no file behind and
// readers never see half a file. The same Dataset always gives the same bytes. A Dataset whose
// slices do not match N gives an error wrapping model.ErrInvalidData.
func WriteNPZ(path string, d *Dataset) (err error) {
	if d == nil || d.N < 1 || len(d.X) != d.N*d.FeatureWidth() || len(d.Y) != d.N*model.NumOutputs || len(d.Workload) != d.N {
		if d == nil {
			return fmt.Errorf("%w: write %s: no dataset", model.ErrInvalidData, path)
		}
		return fmt.Errorf("%w: write %s: dataset with N=%d has %d X, %d Y and %d workload values; want N ≥ 1 and N×12, N×5, N",
			model.ErrInvalidData, path, d.N, len(d.X), len(d.Y), len(d.Workload))
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: cannot create a temporary file beside it: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(bw)
	for _, a := range npzArrays {
		var werr error
		switch a.name {
		case "X":
			a.width = d.FeatureWidth()
			werr = npzWriteFloats(zw, a, d.N, d.X)
		case "Y":
			werr = npzWriteFloats(zw, a, d.N, d.Y)
		default:
			werr = npzWriteInts(zw, a, d.N, d.Workload)
		}
		if werr != nil {
			return fmt.Errorf("write %s: %w", path, werr)
		}
	}
	if err = zw.Close(); err == nil {
		if err = bw.Flush(); err == nil {
			if err = f.Chmod(0o644); err == nil {
				if err = f.Sync(); err == nil {
					err = f.Close()
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// npzHeader returns a .npy version 1.0 header: magic, version, length and a
// Python dict literal padded with spaces to a multiple of 64 bytes.
func npzHeader(a npzArray, n int) []byte {
	shape := fmt.Sprintf("(%d,)", n)
	if a.width > 0 {
		shape = fmt.Sprintf("(%d, %d)", n, a.width)
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", a.descr, shape)
	const pre = 10 // magic (6), version (2), header length (2)
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	h := make([]byte, 0, total)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(total-pre))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

func npzCreate(zw *zip.Writer, a npzArray, n int) (io.Writer, error) {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: a.name + ".npy", Method: zip.Store})
	if err != nil {
		return nil, err
	}
	_, err = w.Write(npzHeader(a, n))
	return w, err
}

func npzWriteFloats(zw *zip.Writer, a npzArray, n int, v []float32) error {
	w, err := npzCreate(zw, a, n)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for i, x := range v {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		if len(buf) == cap(buf) || i == len(v)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

func npzWriteInts(zw *zip.Writer, a npzArray, n int, v []int32) error {
	w, err := npzCreate(zw, a, n)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for i, x := range v {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(x))
		if len(buf) == cap(buf) || i == len(v)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// ReadNPZ reads a training file written by WriteNPZ or by numpy.savez with
// arrays X [N,12] float32, Y [N,5] float32 and workload [N] int32 (other
// arrays are ignored). A missing file, a truncated or corrupt archive, a
// missing array, a wrong dtype, shape or byte order, Fortran order, arrays
// of different N, N = 0, a NaN or a value outside [0,1] in X or Y, or a
// workload index outside 0..4 give a one-line error wrapping
// model.ErrInvalidData that names the file, what is wrong and what is
// expected.
func ReadNPZ(path string) (*Dataset, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{model.ErrInvalidData, path}, args...)...)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, bad("cannot open (%v); %s", err, npzExpected)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, bad("cannot stat (%v)", err)
	}
	if st.IsDir() {
		return nil, bad("is a directory; %s", npzExpected)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, bad("not a readable zip archive (%v): truncated or corrupt; %s", err, npzExpected)
	}
	entries := map[string]*zip.File{}
	var names []string
	for _, zf := range zr.File {
		entries[zf.Name] = zf
		names = append(names, strings.TrimSuffix(zf.Name, ".npy"))
	}

	d := &Dataset{N: -1}
	for _, a := range npzArrays {
		zf := entries[a.name+".npy"]
		if zf == nil {
			return nil, bad("no array %q (the archive holds %s); %s", a.name, npzList(names), npzExpected)
		}
		n, err := npzRead(zf, a, d)
		if err != nil {
			return nil, bad("array %s: %v", a.name, err)
		}
		if d.N >= 0 && n != d.N {
			return nil, bad("array %s has %d rows but X has %d; want the same N in X, Y and workload", a.name, n, d.N)
		}
		d.N = n
	}
	if err := npzCheckValues(d); err != nil {
		return nil, bad("%v", err)
	}
	return d, nil
}

func npzList(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

var (
	npzDescrRe   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npzFortranRe = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npzShapeRe   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// npzRead reads one array into d and returns its row count.
func npzRead(zf *zip.File, a npzArray, d *Dataset) (int, error) {
	want := "(N,)"
	if a.width > 0 {
		want = fmt.Sprintf("(N, %d)", a.width)
	}
	rc, err := zf.Open()
	if err != nil {
		return 0, fmt.Errorf("cannot open in the archive (%v)", err)
	}
	defer rc.Close()
	var pre [10]byte
	if _, err := io.ReadFull(rc, pre[:8]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return 0, fmt.Errorf("not a .npy array (bad magic); want a numpy .npy of %s %s", a.what, want)
	}
	var hlen int
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(rc, pre[8:10]); err != nil {
			return 0, fmt.Errorf("header truncated")
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(rc, b[:]); err != nil {
			return 0, fmt.Errorf("header truncated")
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return 0, fmt.Errorf(".npy format version %d.%d; want 1.0, 2.0 or 3.0", pre[6], pre[7])
	}
	if hlen > 1<<16 {
		return 0, fmt.Errorf("header of %d bytes; want a numpy header under 64 KiB", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(rc, hb); err != nil {
		return 0, fmt.Errorf("header truncated")
	}
	h := string(hb)
	descr, fortran, shape := npzDescrRe.FindStringSubmatch(h), npzFortranRe.FindStringSubmatch(h), npzShapeRe.FindStringSubmatch(h)
	if descr == nil || fortran == nil || shape == nil {
		return 0, fmt.Errorf("unreadable header %q; want a numpy .npy header with descr, fortran_order and shape", strings.TrimSpace(h))
	}
	if descr[1] != a.descr {
		return 0, fmt.Errorf("dtype %s; want %s (%s, little-endian)", descr[1], a.descr, a.what)
	}
	if fortran[1] == "True" {
		return 0, fmt.Errorf("stored in Fortran order; want C order (row-major)")
	}
	var dims []int
	for _, s := range strings.Split(shape[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("shape (%s) is not a list of sizes; want %s", shape[1], want)
		}
		dims = append(dims, v)
	}
	if a.name == "X" && len(dims) == 2 && dims[1] != a.width {
		// Any major's feature count: 12 (major 1), 16 (major 2).
		if _, err := MajorOfWidth(dims[1]); err == nil {
			a.width = dims[1]
			d.Width = dims[1]
			if a.width == model.NumFeatures {
				d.Width = 0
			}
		}
	}
	okShape := (a.width == 0 && len(dims) == 1) || (a.width > 0 && len(dims) == 2 && dims[1] == a.width)
	if !okShape {
		return 0, fmt.Errorf("shape (%s); want %s", shape[1], want)
	}
	n := dims[0]
	if n < 1 {
		return 0, fmt.Errorf("holds no samples; want N ≥ 1")
	}
	dataBytes := int64(zf.UncompressedSize64) - 8 - int64(npzLenBytes(pre[6])) - int64(hlen)
	if n > math.MaxInt32 || int64(n)*int64(max(a.width, 1))*4 != dataBytes {
		return 0, fmt.Errorf("holds %d data bytes; want %d×%d×4 for shape (%s) %s: truncated or padded",
			dataBytes, n, max(a.width, 1), shape[1], a.what)
	}
	// The sizes come from the archive's directory; a corrupt one could
	// claim gigabytes. Allocate as the bytes arrive, up to a first chunk.
	count := n * max(a.width, 1)
	prealloc := min(count, 1<<20)
	var put func(uint32)
	switch a.name {
	case "X", "Y":
		v := make([]float32, 0, prealloc)
		put = func(w uint32) { v = append(v, math.Float32frombits(w)) }
		defer func() {
			if a.name == "X" {
				d.X = v
			} else {
				d.Y = v
			}
		}()
	default:
		v := make([]int32, 0, prealloc)
		put = func(w uint32) { v = append(v, int32(w)) }
		defer func() { d.Workload = v }()
	}
	buf := make([]byte, 64<<10)
	for left := count * 4; left > 0; {
		m := min(left, len(buf))
		if _, err := io.ReadFull(rc, buf[:m]); err != nil {
			return 0, fmt.Errorf("data truncated or corrupt (%v) after %d of %d values", err, count-left/4, count)
		}
		for i := 0; i < m; i += 4 {
			put(binary.LittleEndian.Uint32(buf[i:]))
		}
		left -= m
	}
	// Reading to the end makes the zip reader check the CRC.
	if k, err := rc.Read(buf[:1]); k > 0 {
		return 0, fmt.Errorf("data longer than its shape (%s); want exactly %d values", shape[1], count)
	} else if err != io.EOF {
		return 0, fmt.Errorf("data corrupt (%v)", err)
	}
	return n, nil
}

// npzLenBytes is the size of the header-length field for a .npy major version.
func npzLenBytes(major byte) uint64 {
	if major == 1 {
		return 2
	}
	return 4
}

// npzCheckValues checks that features and labels are normalized and the
// workload indexes name a type.
func npzCheckValues(d *Dataset) error {
	for _, a := range [2]struct {
		name  string
		v     []float32
		width int
	}{{"X", d.X, d.FeatureWidth()}, {"Y", d.Y, model.NumOutputs}} {
		for i, x := range a.v {
			if !(x >= 0 && x <= 1) {
				return fmt.Errorf("%s[%d,%d] = %v; want normalized values in [0,1]", a.name, i/a.width, i%a.width, x)
			}
		}
	}
	for i, w := range d.Workload {
		if w < 0 || w >= NumWorkloads {
			return fmt.Errorf("workload[%d] = %d; want a workload type 0..%d (%s)", i, w, NumWorkloads-1, strings.Join(WorkloadNames[:], ", "))
		}
	}
	return nil
}
