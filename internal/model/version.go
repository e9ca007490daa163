package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a model's semantic version, written "v{major}.{minor}.{patch}".
// Major changes mean another input/output format, minor another architecture,
// a significant retraining or new workload types, patch fixes and tuning.
type Version struct {
	Major, Minor, Patch int
}

// maxVersionNumber is the largest major, minor or patch number accepted.
const maxVersionNumber = 1_000_000

// ParseVersion parses "v1.2.3". A missing "v", pre-release or build suffixes,
// white space, non-digits, leading zeros, missing numbers or numbers above
// 1000000 give an error wrapping ErrInvalidVersion that says what was wrong
// and what is accepted.
func ParseVersion(s string) (Version, error) {
	bad := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("%w %q: %s; want v{major}.{minor}.{patch}, e.g. v1.0.0", ErrInvalidVersion, s, why)
	}
	if t := strings.TrimSpace(s); t != s {
		return bad("leading or trailing white space")
	}
	if !strings.HasPrefix(s, "v") {
		return bad("missing leading 'v'")
	}
	if strings.ContainsAny(s, "-+") {
		return bad("pre-release and build suffixes are not accepted")
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) != 3 {
		return bad(fmt.Sprintf("%d dot-separated numbers; need exactly three", len(parts)))
	}
	var n [3]int
	for i, p := range parts {
		if p == "" {
			return bad("empty number")
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return bad("non-digit " + strconv.QuoteRune(c))
			}
		}
		if len(p) > 1 && p[0] == '0' {
			return bad("leading zero")
		}
		v, err := strconv.Atoi(p)
		if err != nil || v > maxVersionNumber {
			return bad(fmt.Sprintf("number %s exceeds %d", p, maxVersionNumber))
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

// MustParseVersion is ParseVersion for constants; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns "v{major}.{minor}.{patch}".
func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// IsZero reports whether v is the zero Version (v0.0.0), used as "none".
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than o.
func (v Version) Compare(o Version) int {
	for _, d := range [3]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

// Bump returns the next version for a bump kind: "major", "minor" or "patch".
func (v Version) Bump(kind string) (Version, error) {
	switch kind {
	case "major":
		return Version{v.Major + 1, 0, 0}, nil
	case "minor":
		return Version{v.Major, v.Minor + 1, 0}, nil
	case "patch":
		return Version{v.Major, v.Minor, v.Patch + 1}, nil
	}
	return Version{}, fmt.Errorf("%w: bump %q; want major, minor or patch", ErrInvalidVersion, kind)
}

// MarshalText writes the version as "v1.2.3" (JSON manifests use it).
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses "v1.2.3".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
