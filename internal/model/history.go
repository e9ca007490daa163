package model

import (
	"fmt"
	"time"
)

// History event actions.
const (
	ActionRegister     = "register"      // To: the registered version
	ActionPrune        = "prune"         // From: the deleted version
	ActionActivate     = "activate"      // From: previous active ("" for none), To: new active
	ActionRollback     = "rollback"      // as activate, back to an earlier version
	ActionAutoRollback = "auto_rollback" // a rollback decided by the health watcher
	ActionUpgrade      = "upgrade"       // the registry file's layout was upgraded in place
)

// IsActivation reports whether action moves an active pointer.
func IsActivation(action string) bool {
	return action == ActionActivate || action == ActionRollback || action == ActionAutoRollback
}

// Event is one entry of the registry's history. For "register" To names the
// new version; for "prune" From names the deleted one; for "activate",
// "rollback" and "auto_rollback" From is the version active before ("" for
// none) and To the version active after.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // one of the Action constants
	// Major is the major version (I/O format) the event concerns; 0 for an
	// event about the whole registry (upgrade).
	Major  int    `json:"major,omitempty"`
	From   string `json:"from,omitempty"` // version strings, "" for none
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
	Actor  string `json:"actor,omitempty"`
}

// HistoryQuery selects a page of history, newest first. PageSize <= 0
// means DefaultHistoryPage; PageToken is the NextPageToken of the previous
// page ("" for the first). Major and Action, when set, keep only events of
// that major and action.
type HistoryQuery struct {
	PageSize  int
	PageToken string
	Major     int
	Action    string
}

// History page sizes.
const (
	DefaultHistoryPage = 100
	MaxHistoryPage     = 1000
)

// Entry is one registered version as a registry lists it.
type Entry struct {
	Manifest *Manifest
	Active   bool
}

// Change says how to make a release: why, who, and optionally which
// version the caller believes is active (compare-and-swap).
type Change struct {
	Reason, Actor string
	// Expected, when not nil, is the version the caller expects to be
	// active in the major concerned (the zero Version: none). On a mismatch
	// nothing changes and the error wraps ErrActiveMismatch naming
	// the actual active version.
	Expected *Version
}

// Release is what an activation or rollback did. Changed is false when the target was
// already active: nothing was loaded, swapped or recorded, and Event is
// zero; Note says so.
type Release struct {
	Event   Event
	Changed bool
	Active  Version
	Note    string
}

// ActiveMismatch returns the error of a compare-and-swap that lost: the
// caller expected expected (the zero Version: none) as major's active
// version and actual is (the zero Version: none). It wraps
// ErrActiveMismatch and its public message names both.
func ActiveMismatch(major int, expected, actual Version) error {
	name := func(v Version) string {
		if v.IsZero() {
			return "none"
		}
		return v.String()
	}
	msg := fmt.Sprintf("expected_active %s, but the active version of major %d is %s; nothing changed", name(expected), major, name(actual))
	return Public(fmt.Errorf("%w: %s", ErrActiveMismatch, msg), msg)
}
