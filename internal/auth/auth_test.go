package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"recommendation-api/internal/auth"
)

const (
	aliceToken = "alice-token-0123456789abcdef"
	nodeToken  = "node-token-0123456789abcdef"
	bobToken   = "bob-token-0123456789abcdef"
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := "# who role token\nalice operator " + aliceToken + "\n\n\tnode-pool\tagent\t" + nodeToken + "\nbob viewer " + bobToken + "\n"
	s, err := auth.Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d; want 3", s.Len())
	}
	for _, c := range []struct {
		token string
		want  auth.Principal
		ok    bool
	}{
		{aliceToken, auth.Principal{Name: "alice", Role: auth.Operator, Authenticated: true}, true},
		{nodeToken, auth.Principal{Name: "node-pool", Role: auth.Agent, Authenticated: true}, true},
		{bobToken, auth.Principal{Name: "bob", Role: auth.Viewer, Authenticated: true}, true},
		{"", auth.Principal{}, false},
		{aliceToken[:len(aliceToken)-1], auth.Principal{}, false}, // a prefix
		{aliceToken + "x", auth.Principal{}, false},               // an extension
		{strings.ToUpper(aliceToken), auth.Principal{}, false},
	} {
		got, ok := s.Lookup(c.token)
		if ok != c.ok || got != c.want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, %v", c.token, got, ok, c.want, c.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value-0123456789"
	for _, c := range []struct {
		name, file string
		line       int
		want       string
	}{
		{"TooFewFields", "# c\nalice operator\n", 2, "2 fields; want 3"},
		{"TooManyFields", "alice operator " + secret + " # trailing\n", 1, "5 fields; want 3"},
		{"UnknownRole", "\nalice admin " + secret + "\n", 2, `unknown role "admin"; want operator, agent or viewer`},
		{"ShortToken", "alice operator shortsecret\n", 1, "shorter than 16 characters"},
		{"DuplicateToken", "alice operator " + secret + "\nbob viewer " + secret + "\n", 2, "same as the token on line 1"},
		{"ReservedName", "system operator " + secret + "\n", 1, `name "system" is reserved`},
		{"ReservedAnonymous", "Anonymous viewer " + secret + "\n", 1, "is reserved"},
		{"LongName", strings.Repeat("n", 129) + " viewer " + secret + "\n", 1, "want at most 128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.Parse(strings.NewReader(c.file))
			var le *auth.LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse = %v; want a *LineError", err)
			}
			if le.Line != c.line {
				t.Errorf("line %d; want %d (%v)", le.Line, c.line, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want it to contain %q", err, c.want)
			}
			for _, tok := range []string{secret, "shortsecret"} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error %q contains the token", err)
				}
			}
		})
	}
	t.Run("ErrNoTokens", func(t *testing.T) {
		t.Parallel()
		if _, err := auth.Parse(strings.NewReader("# nothing\n\n")); !errors.Is(err, auth.ErrNoTokens) {
			t.Errorf("Parse = %v; want ErrNoTokens", err)
		}
	})
}

func TestFileReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("alice operator " + aliceToken + "\n")
	f, err := auth.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Lookup(aliceToken); !ok {
		t.Fatal("alice's token refused")
	}

	// A bad reload keeps the old set and says which line is wrong.
	write("alice operator " + aliceToken + "\nbob viewer " + bobToken + "\ncarol nope " + nodeToken + "\n")
	err = f.Reload()
	if err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("Reload = %v; want an error naming %s:3", err, path)
	}
	if strings.Contains(err.Error(), nodeToken) {
		t.Errorf("Reload error %q contains a token", err)
	}
	if _, ok := f.Lookup(aliceToken); !ok {
		t.Error("after a bad reload alice's token is refused; want the old set kept")
	}
	if _, ok := f.Lookup(bobToken); ok {
		t.Error("after a bad reload bob's token is accepted; want the old set kept")
	}

	// A good reload replaces the set: alice's token is revoked, bob's added.
	write("bob viewer " + bobToken + "\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Lookup(aliceToken); ok {
		t.Error("revoked token still accepted after reload")
	}
	if p, ok := f.Lookup(bobToken); !ok || p.Name != "bob" || p.Role != auth.Viewer {
		t.Errorf("Lookup(bob) = %+v, %v after reload", p, ok)
	}

	// A missing file is an error naming the path.
	if _, err := auth.OpenFile(filepath.Join(t.TempDir(), "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("OpenFile(absent) = %v", err)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		have, need auth.Role
		want       bool
	}{
		{auth.Operator, auth.Agent, true},
		{auth.Operator, auth.Viewer, true},
		{auth.Agent, auth.Viewer, true},
		{auth.Agent, auth.Operator, false},
		{auth.Viewer, auth.Agent, false},
		{auth.Viewer, auth.Public, true},
	} {
		if got := c.have.Allows(c.need); got != c.want {
			t.Errorf("%v.Allows(%v) = %v; want %v", c.have, c.need, got, c.want)
		}
	}
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Role: auth.Operator, Authenticated: true})
	if p, ok := auth.FromContext(ctx); !ok || p.Name != "alice" {
		t.Errorf("FromContext = %+v, %v", p, ok)
	}
	if _, ok := auth.FromContext(context.Background()); ok {
		t.Error("FromContext(Background) found a principal")
	}
}
