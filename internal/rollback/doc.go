// Package rollback is release control: the one flow by which a model
// version becomes the one served, used by operator activations, rollbacks,
// training jobs and the automatic rollback.
//
// Activate and Rollback share it: read the bytes from the registry (sha256
// checked) → check the major version matches what this server's API serves →
// load and warm an ONNX Runtime session (I/O signature, golden rows) → swap
// it in atomically → record the move in the registry. A failure at any step
// leaves the previous version serving and the registry unchanged; the error
// (*StepError) names the step.
//
// After an activation the new version is on probation: its failure rate
// (Run errors, NaN or out-of-range outputs) is watched, the previous
// version's session is kept warm, and past a threshold the controller rolls
// back by itself and records why. Calls that change the active version are
// serialized by a mutex, so each sees a consistent before and after.
//
// Replicas sharing a registry (etcd) each run Follow: when the registry's
// active version of a major changes, by any replica, the replica runs the
// flow's read → load → swap without a registry write, keeping the previous
// version warm; a failed load leaves the current version serving, is
// reported (FollowStatus) and retried with backoff. Only the elected leader
// runs Lead, the probation watcher, which also watches versions activated
// through other replicas (judged on its own traffic); an automatic
// rollback is guarded by the version it judged, so it never undoes a change
// made elsewhere meanwhile.
package rollback
