package traces

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ExpandPaths turns trace arguments into files: a directory stands for its
// *.csv and *.csv.gz files, a pattern with * ? or [ for its matches; each
// group is sorted in natural order (2.csv.gz before 10.csv.gz). A path that
// does not exist, or a directory or pattern that matches nothing, is an
// error.
func ExpandPaths(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		var group []string
		switch st, err := os.Stat(a); {
		case err == nil && st.IsDir():
			for _, pat := range []string{"*.csv", "*.csv.gz"} {
				m, _ := filepath.Glob(filepath.Join(a, pat))
				group = append(group, m...)
			}
			if len(group) == 0 {
				return nil, fmt.Errorf("trace directory %s holds no *.csv or *.csv.gz files", a)
			}
		case err == nil:
			group = []string{a}
		case strings.ContainsAny(a, "*?["):
			m, gerr := filepath.Glob(a)
			if gerr != nil || len(m) == 0 {
				return nil, fmt.Errorf("trace pattern %q matches no files", a)
			}
			group = m
		default:
			return nil, fmt.Errorf("trace %s: %w", a, err)
		}
		slices.SortFunc(group, naturalCompare)
		out = append(out, group...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no trace files given")
	}
	return out, nil
}

// naturalCompare orders strings with digit runs compared as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// DetectFormat guesses a trace file's format from its first line: a
// GWA-T-12 header ("Timestamp [ms];...") means Bitbrains, anything else
// generic.
func DetectFormat(path string) (Format, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read trace: %w", err)
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Generic, nil // let the reader report it with a line number
		}
		defer zr.Close()
		r = zr
	}
	line, _ := bufio.NewReader(r).ReadSlice('\n')
	line = bytes.TrimPrefix(line, []byte("\ufeff"))
	if bytes.HasPrefix(bytes.ToLower(line), []byte("timestamp")) && bytes.IndexByte(line, ';') > 0 {
		return Bitbrains, nil
	}
	return Generic, nil
}
