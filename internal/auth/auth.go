package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"unicode"
)

// Role is what a token allows. Roles are ordered: a higher role may call what
// a lower one may (see Allows).
type Role int

// Roles, lowest first. Public marks a method that needs no token (health,
// reflection); no token carries it.
const (
	Public Role = iota
	Viewer
	Agent
	Operator
)

var roleNames = map[Role]string{Public: "public", Viewer: "viewer", Agent: "agent", Operator: "operator"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Allows reports whether a caller holding r may call a method that needs
// need.
func (r Role) Allows(need Role) bool { return r >= need }

// ParseRole parses "operator", "agent" or "viewer".
func ParseRole(s string) (Role, error) {
	switch s {
	case "operator":
		return Operator, nil
	case "agent":
		return Agent, nil
	case "viewer":
		return Viewer, nil
	}
	return 0, fmt.Errorf("unknown role %q; want operator, agent or viewer", s)
}

// MinTokenLength is the shortest token a token file may hold: 16 random
// characters is the least that makes guessing one impractical.
const MinTokenLength = 16

// MaxNameLength bounds a token's name, the actor recorded in the history.
const MaxNameLength = 128

// Reserved names a token may not carry: the history's actor of automatic
// actions and of calls made without authentication.
var reservedNames = []string{"system", "anonymous"}

// Principal is the caller of a checked call.
type Principal struct {
	// Name is the token's name, or "anonymous" when authentication is off.
	Name string
	// Role is the token's role; Operator when authentication is off.
	Role Role
	// Authenticated is true when the caller presented a valid token; false
	// when the server runs without authentication.
	Authenticated bool
}

// Anonymous is the principal of every call when authentication is off: an
// unauthenticated operator, allowed everything.
var Anonymous = Principal{Name: "anonymous", Role: Operator}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// entry is one token: its name, role and the SHA-256 of the token itself
// (the token is not kept).
type entry struct {
	name   string
	role   Role
	digest [sha256.Size]byte
}

// Set is a parsed token file. It is immutable; replace it to change tokens.
type Set struct {
	entries []entry
}

// Len returns the number of tokens.
func (s *Set) Len() int { return len(s.entries) }

// Lookup returns the principal of token, or false when no token of the set
// matches. It compares token with every token in constant time over SHA-256
// digests (so lengths do not matter either), whichever matches.
func (s *Set) Lookup(token string) (Principal, bool) {
	if s == nil || token == "" {
		return Principal{}, false
	}
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range s.entries {
		eq := subtle.ConstantTimeCompare(d[:], s.entries[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Principal{}, false
	}
	e := s.entries[found]
	return Principal{Name: e.name, Role: e.role, Authenticated: true}, true
}

// LineError is a parse error on one line of a token file. Its message names
// the line and what is wrong, never the token.
type LineError struct {
	File string // "" when parsed from a reader
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ErrNoTokens is returned for a token file without a token: a server that
// accepts no one is a mistake, not a configuration.
var ErrNoTokens = errors.New("no tokens: want lines of \"name role token\"")

// Parse reads a token file: one "name role token" per line, # comments and
// blank lines ignored. Errors are *LineError (the first bad line) or wrap
// ErrNoTokens; neither contains a token.
func Parse(r io.Reader) (*Set, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	s := &Set{}
	seen := map[[sha256.Size]byte]int{} // digest → line
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		bad := func(msg string) error { return &LineError{Line: line, Msg: msg} }
		if len(fields) != 3 {
			return nil, bad(fmt.Sprintf("%d fields; want 3: name role token", len(fields)))
		}
		name, roleText, token := fields[0], fields[1], fields[2]
		switch {
		case len(name) > MaxNameLength:
			return nil, bad(fmt.Sprintf("name is %d bytes; want at most %d", len(name), MaxNameLength))
		case strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
			return nil, bad("name has unprintable characters")
		}
		for _, r := range reservedNames {
			if strings.EqualFold(name, r) {
				return nil, bad(fmt.Sprintf("name %q is reserved; choose another", name))
			}
		}
		role, err := ParseRole(roleText)
		if err != nil {
			return nil, bad(err.Error())
		}
		if len(token) < MinTokenLength {
			return nil, bad(fmt.Sprintf("the token of %q is shorter than %d characters", name, MinTokenLength))
		}
		d := sha256.Sum256([]byte(token))
		if first, dup := seen[d]; dup {
			return nil, bad(fmt.Sprintf("the token of %q is the same as the token on line %d; every token must be unique", name, first))
		}
		seen[d] = line
		s.entries = append(s.entries, entry{name: name, role: role, digest: d})
	}
	if err := sc.Err(); err != nil {
		// bufio.ErrTooLong and read errors carry no file content.
		return nil, fmt.Errorf("after line %d: %w", line, err)
	}
	if len(s.entries) == 0 {
		return nil, ErrNoTokens
	}
	return s, nil
}

// ParseFile reads and parses the token file at path. Errors name the path,
// and the line for a bad line, never a token.
func ParseFile(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			le.File = path
			return nil, fmt.Errorf("token file %w", le)
		}
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return s, nil
}

// File is a token file that can be reloaded while it is in use: Lookup reads
// the current Set with one atomic load, Reload replaces it.
type File struct {
	path string
	set  atomic.Pointer[Set]
}

// OpenFile parses the token file at path. Errors are ParseFile's.
func OpenFile(path string) (*File, error) {
	s, err := ParseFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path}
	f.set.Store(s)
	return f, nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Lookup is Set.Lookup on the current set.
func (f *File) Lookup(token string) (Principal, bool) { return f.set.Load().Lookup(token) }

// Len returns the number of tokens of the current set.
func (f *File) Len() int { return f.set.Load().Len() }

// Reload parses the file again and, when it parses, makes it the current
// set. On error the current set stays and the error (ParseFile's) says why.
func (f *File) Reload() error {
	s, err := ParseFile(f.path)
	if err != nil {
		return err
	}
	f.set.Store(s)
	return nil
}
