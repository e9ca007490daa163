// Package etcdstore is the model registry of several replicas: a
// model.Registry kept in etcd with the semantics of the single-replica
// bbolt store (package registry) — one active version and one rollback
// index per major, retention per major that never deletes a protected
// version, a bounded paged history, records — so replicas share one
// registry, watch its active pointers to hot-swap, and elect the one that
// runs the singletons. It and package registry are the only packages that
// import the etcd client.
//
// # Layout
//
// Every key lives under Options.Prefix (default DefaultPrefix):
//
//	<prefix>/meta/layout          "1" (Layout), written by the first Open
//	<prefix>/meta/history_seq     the last event's sequence number, decimal
//	<prefix>/models/<vk>          the model bytes
//	<prefix>/manifests/<vk>       the manifest as JSON
//	<prefix>/active/<major>       that major's active version, "v1.2.3"
//	<prefix>/lineage/<major>      that major's rollback index (model.Lineage, JSON)
//	<prefix>/history/<seq>        an event as JSON; seq zero-padded to 20 digits
//	<prefix>/records/<bucket>/<k> a record; bucket path-escaped, key as given
//	<prefix>/leader/<lease>       election candidates (Elector)
//
// A version key <vk> is major, minor and patch zero-padded to 10 digits
// ("0000000001.0000000000.0000000010"), and a major "0000000001", so key
// order is semver order and a major's versions share a prefix.
//
// # Changes
//
// Every change is one etcd transaction: a registration writes the bytes,
// the manifest, the "register" event, the retention of its major (deleted
// versions, "prune" events, the rollback index) and the history sequence
// together; an activation the pointer, the rollback index and its event.
// A change reads what it depends on at one revision, computes, and commits
// only if nothing it read changed since (Compare on ModRevision of each key
// read, CreateRevision 0 for each key read absent, no key under each prefix
// read newer than the read); every deletion appends an event, so the
// history sequence, which every change reads, also catches a deletion.
// When the comparison fails the change is recomputed from a fresh read, at
// most MaxAttempts times, then refused with model.ErrConcurrentChange. So
// two replicas racing never leave half a change nor apply one twice; of two
// registering the same version, one stores it and the other gets
// model.ErrVersionExists; two activations are both recorded, in commit
// order, each with the From the other left.
//
// A call that fails in transit (a member died mid-call) is not retried by
// the store: it may or may not have been applied, and the caller retrying
// learns which (model.ErrVersionExists, model.ErrAlreadyActive) without a
// double change.
//
// # Limits and caveats
//
//   - Model bytes are at most MaxModelBytes (512 KiB) and manifests
//     MaxManifestBytes (256 KiB), refused with model.ErrInvalidModel naming
//     the limit: a registration must fit etcd's default request limit
//     (--max-request-bytes, 1.5 MiB). The models this project trains are
//     under 100 KB.
//   - A transaction holds at most etcd's --max-txn-ops (default 128)
//     operations: a registration that would prune more than about 40
//     versions at once (Keep lowered a lot) is refused by etcd, changing
//     nothing.
//   - etcd keeps every revision until it is compacted; run it with
//     --auto-compaction-retention so deleted models free their space, and
//     defragment now and then. Out of space (the NOSPACE alarm) is
//     model.ErrStorageFull; Check reports alarms.
//   - Every replica must use the same Keep; a replica with a smaller one
//     prunes more on its registrations.
//   - Load re-hashes the bytes on every read and refuses a mismatch with
//     model.ErrChecksumMismatch.
//   - Calls take no context; each is bounded by Options.RequestTimeout.
//
// A Store is safe for concurrent use by multiple goroutines and by many
// processes at once.
package etcdstore
