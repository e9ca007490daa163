package model

import "time"

// History event actions.
const (
	ActionRegister     = "register"      // To: the registered version
	ActionPrune        = "prune"         // From: the deleted version
	ActionActivate     = "activate"      // From: previous active ("" for none), To: new active
	ActionRollback     = "rollback"      // as activate, back to an earlier version
	ActionAutoRollback = "auto_rollback" // a rollback decided by the health watcher
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
	Action string    `json:"action"`         // one of the Action constants
	From   string    `json:"from,omitempty"` // version strings, "" for none
	To     string    `json:"to,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Actor  string    `json:"actor,omitempty"`
}

// Entry is one registered version as a registry lists it.
type Entry struct {
	Manifest *Manifest
	Active   bool
}
