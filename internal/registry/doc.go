// Package registry is the durable store of model versions: the model bytes,
// their manifest, which version is active, and the history of every
// registration, prune, activation and rollback. It is the only package that
// imports bbolt; everything else sees model.Version, model.Manifest and the
// sentinel errors of package model (plus ErrRecordNotFound here).
//
// # Layout
//
// One bbolt file holds these top-level buckets (layout 2):
//
//	models     key: version key (below)      value: the model bytes (ONNX), uninterpreted
//	manifests  key: the same version key     value: the manifest as JSON
//	active     key: major, 4-byte big-endian value: that major's active version, "v1.2.3"
//	lineage    key: major, 4-byte big-endian value: that major's rollback index (JSON)
//	meta       key: "layout"                 value: "2"; "history_first": oldest kept seq
//	history    key: 8-byte big-endian seq    value: an Event as JSON; seq from NextSequence
//	records    one nested bucket per record kind (PutRecord), key → value
//
// A version key is 12 bytes: major, minor and patch as big-endian uint32, so
// bbolt's byte order is semver order (v1.0.9 < v1.0.10), a cursor walks
// versions ascending, and a major's versions share a 4-byte prefix. The
// bytes and the manifest of a version share the key and are written by the
// same transaction, together with the "register" event and any pruning;
// SetActive writes the pointer, the rollback index and the event in one
// transaction too. A crash therefore leaves either all of an operation or
// none of it: never bytes without a manifest, nor an activation without its
// event.
//
// Layout 1 (one active pointer, meta/active) is upgraded in place by Open,
// in one transaction that also builds each major's rollback index from the
// history and records an "upgrade" event; a crash midway leaves layout 1.
//
// # Retention
//
// Each major keeps its newest Options.Keep versions by semver (default 5).
// Retention never deletes a protected version: the active version of every
// major, each major's rollback target, and the versions the caller says it
// still serves from memory (RegisterOptions.Protect). So at most Keep plus
// the protected versions remain (Keep+2 with nothing loaded beyond the
// active version and its rollback target). The others are deleted in the
// registering transaction, each with a "prune" event, and leave the
// rollback index. A registration older than every version its major keeps
// is refused (model.ErrVersionTooOld) instead of being stored and pruned by
// the same call. SetActive never prunes.
//
// # History and rollback targets
//
// Every registration, prune, activation and rollback is an Event naming its
// major. The history keeps the newest Options.HistoryKeep events (default
// 10,000); older ones are deleted as new ones are appended. HistoryPage
// reads it newest first, a page at a time. Rollback targets never come from
// a replay of the history: each major has a rollback index (lineage.go),
// updated by every activation, so finding a target is one read whatever
// the history's length, and trimming the history loses none.
//
// # Integrity
//
// Load re-hashes the bytes on every read and refuses a mismatch with the
// manifest's sha256 (model.ErrChecksumMismatch): bbolt checks its own page
// structure, not the values, so a flipped bit in a stored model would
// otherwise be served. Check runs bbolt's consistency check of the whole file
// plus the registry's own invariants.
//
// # Caveats
//
//   - One process at a time: Open takes an exclusive lock on the file and
//     waits at most Options.Timeout for it; a second server (or the bbolt CLI)
//     pointed at the same file gets an error naming the path.
//   - bbolt maps the file read-only into memory, once, at 1 GiB of address
//     space (256 MiB on 32-bit platforms), so that a write the file system
//     refuses never leaves the store without a map; values are only valid
//     inside a transaction, so every read copies the bytes out. The store never hands
//     out memory that aliases the map, and callers may keep what they get.
//   - Writes are serialized by bbolt (one writer at a time) and each commit
//     fsyncs. That suits a registry written a few times a day; it is not a
//     store for per-request data.
//   - Disk full, over quota and read-only file systems are reported as
//     model.ErrStorageFull and model.ErrStorageReadOnly naming the data
//     directory; nothing changes and reads go on.
//
// A Store is safe for concurrent use by multiple goroutines.
package registry
