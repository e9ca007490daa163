package auth_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"recommendation-api/internal/auth"
)

// FuzzParse parses a fuzzed token file. It never panics; an error is a
// *LineError or wraps ErrNoTokens (or a read error), and never contains a
// token-sized field of the input (errors must not leak tokens); a file it
// accepts finds each of its tokens again by Lookup. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("alice operator 0123456789abcdef0123\n"))
	f.Add([]byte("# comment\n\nbob agent aaaaaaaaaaaaaaaaaaaa\ncarol viewer bbbbbbbbbbbbbbbbbbbb\n"))
	f.Add([]byte("system operator 0123456789abcdef0123\n"))
	f.Add([]byte("a b c d\n"))
	f.Add([]byte("x operator short\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := auth.Parse(bytes.NewReader(b))
		if err != nil {
			var le *auth.LineError
			if !errors.As(err, &le) && !errors.Is(err, auth.ErrNoTokens) && !strings.HasPrefix(err.Error(), "after line") {
				t.Fatalf("Parse error %v: want a *LineError, ErrNoTokens or a read error", err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if fs := strings.Fields(line); len(fs) == 3 && len(fs[2]) >= auth.MinTokenLength && strings.Contains(err.Error(), fs[2]) {
					t.Fatalf("Parse error %q contains the token %q", err, fs[2])
				}
			}
			return
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			text := strings.TrimSpace(line)
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			fs := strings.Fields(text)
			p, ok := s.Lookup(fs[2])
			if !ok || p.Name != fs[0] || p.Role.String() != fs[1] || !p.Authenticated {
				t.Fatalf("token of line %q: Lookup = %+v, %v", line, p, ok)
			}
			n++
		}
		if n != s.Len() {
			t.Fatalf("Len = %d; the file has %d token lines", s.Len(), n)
		}
	})
}
