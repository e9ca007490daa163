// Package registry is the durable store of model versions: the model bytes,
// their manifest, which version is active, and the history of every
// registration, prune, activation and rollback. It is the only package that
// imports bbolt; everything else sees model.Version, model.Manifest and the
// sentinel errors of package model (plus ErrRecordNotFound here).
//
// # Layout
//
// One bbolt file holds these top-level buckets:
//
//	models     key: version key (below)      value: the model bytes (ONNX), uninterpreted
//	manifests  key: the same version key     value: the manifest as JSON
//	meta       key: "active"                 value: the active version, "v1.2.3"
//	history    key: 8-byte big-endian seq    value: an Event as JSON; seq from NextSequence
//	records    one nested bucket per record kind (PutRecord), key → value
//
// A version key is 12 bytes: major, minor and patch as big-endian uint32, so
// bbolt's byte order is semver order (v1.0.9 < v1.0.10) and a cursor walks
// versions ascending. The bytes and the manifest of a version share the key
// and are written by the same transaction, together with the "register"
// event and any pruning; SetActive writes the pointer and its event in one
// transaction too. A crash therefore leaves either all of an operation or
// none of it: never bytes without a manifest, nor an activation without its
// event.
//
// # Retention
//
// Register keeps the newest Options.Keep versions by semver (default 5) and,
// in addition, the active version when it is older than those: at most
// Keep+1 versions remain. The others are deleted in the registering
// transaction, each with a "prune" event. Registering a version older than
// the Keep newest is allowed but, unless it is active, it is pruned by the
// same call: Register reports it among the pruned versions. SetActive never
// prunes: a formerly active version beyond retention goes at the next
// Register.
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
//   - bbolt maps the file read-only into memory; values are only valid inside
//     a transaction, so every read copies the bytes out. The store never hands
//     out memory that aliases the map, and callers may keep what they get.
//   - Writes are serialized by bbolt (one writer at a time) and each commit
//     fsyncs. That suits a registry written a few times a day; it is not a
//     store for per-request data.
//   - The history is append-only and never trimmed: a few hundred bytes per
//     event.
//
// A Store is safe for concurrent use by multiple goroutines.
package registry
