package main

// README.md documents every serve flag and every package; these tests keep
// it so. A flag added to parseServeFlags fails TestREADMEServeFlags until
// the table between the serve-flags markers is replaced by the one the
// failure prints.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	flagsBegin = "<!-- serve-flags:begin (generated from parseServeFlags; TestREADMEServeFlags prints it) -->"
	flagsEnd   = "<!-- serve-flags:end -->"
)

var envInUsage = regexp.MustCompile(`^(.*) \(env ([A-Z0-9_]+)\)$`)

// serveFlagTable renders fs as README's Markdown table.
func serveFlagTable(t *testing.T, fs *flag.FlagSet) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fs.VisitAll(func(f *flag.Flag) {
		m := envInUsage.FindStringSubmatch(f.Usage)
		if m == nil {
			t.Errorf("serve flag --%s has no environment variable: its usage %q does not end in (env NAME)", f.Name, f.Usage)
			m = []string{"", f.Usage, ""}
		}
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "none"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, m[2], cell(def), cell(m[1]))
	})
	return b.String()
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestREADMEServeFlags(t *testing.T) {
	t.Parallel()
	_, fs, err := parseServeFlags(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := serveFlagTable(t, fs)
	doc := readme(t)
	i, j := strings.Index(doc, flagsBegin), strings.Index(doc, flagsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no serve flag table between %q and %q; put this there:\n\n%s", flagsBegin, flagsEnd, want)
	}
	if got := strings.TrimSpace(doc[i+len(flagsBegin) : j]); got != strings.TrimSpace(want) {
		t.Errorf("README.md's serve flag table differs from the flags parseServeFlags defines; replace it with:\n\n%s", want)
	}
}

// TestREADMELayout: the layout section names every package under cmd/ and
// internal/.
func TestREADMELayout(t *testing.T) {
	t.Parallel()
	doc := readme(t)
	i := strings.Index(doc, "## Layout")
	if i < 0 {
		t.Fatal("README.md has no ## Layout section")
	}
	layout := doc[i:]
	root := filepath.Join("..", "..")
	for _, top := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || d.Name() == "testdata" {
				if d != nil && d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return err
			}
			gofiles, _ := filepath.Glob(filepath.Join(p, "*.go"))
			if len(gofiles) == 0 {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			if !strings.Contains(layout, filepath.ToSlash(rel)+"/ ") {
				t.Errorf("README.md's layout does not list %s/", filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
