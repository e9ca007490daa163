// Package jobs runs training jobs inside the server: an operator starts a
// job, watches it, and its result becomes a new registered model version,
// activated when its policy says so.
//
// A job goes QUEUED → RUNNING → SUCCEEDED, FAILED or CANCELLED. Running, it
// passes through these phases:
//
//	generating   trainer.Generate simulates Request.Samples containers
//	training     trainer.Train fits, quantizes and calibrates the network,
//	             reporting every epoch
//	evaluating   trainer.GenerateEval simulates Options.EvalSamples held-out
//	             containers (same workload mix, seed HeldOutSeed(seed)); the
//	             new int8 model, the active version (its ONNX bytes decoded
//	             from the registry and run with the pure-Go forward pass) and
//	             the VPA-style baseline are scored on that same data
//	registering  the model is encoded, described by a full manifest (parent =
//	             the active version evaluated, data description,
//	             hyperparameters, duration, metrics) and handed to
//	             rollback.Controller.Register, which verifies it with ONNX
//	             Runtime and stores it in one registry transaction
//	activating   per the policy, rollback.Controller.Activate: the same
//	             release flow as an operator's activation (verification,
//	             warm-up, probation)
//
// # Activation policies
//
// PolicyNever registers only. PolicyAlways activates whatever the scores.
// PolicyIfBetter activates when the new model is better than the active one
// on the same held-out data, defined as: an OOM rate no higher than the
// active model's AND a strictly lower mean of the CPU-limit and memory-limit
// relative slacks ((cpu_limit_slack + mem_limit_slack)/2). OOM kills are
// what a limit must avoid, so a model that trades them for slack never wins;
// among models that OOM no more, the one that wastes less wins. When no
// version is active the new one is activated; when the active one cannot be
// evaluated (its bytes do not decode, or its manifest computes the
// features otherwise than the job's major does: other features, another
// normalization or another history window) it is not. The active version
// compared is the one of the job's major. The numbers, the VPA baseline's, the decision and
// its reason are kept in the job (Job.Evaluation, Job.Activation) whatever
// the policy.
//
// # Versions
//
// The version a job produces is fixed when it is queued: an explicit one, or
// the newest registered version — or the highest a queued or running job
// will produce, when higher — bumped by "patch" or "minor". It must be new,
// higher than every registered and reserved version of its major, and of
// the major the job trains: Request.Major, or when 0 the newest major with
// an active version (rollback.ServedMajor when none has). It is checked again when
// the job starts running, in case a version was registered meanwhile.
//
// # Durability
//
// Every state and phase change is written to the registry's bbolt file
// (registry.Store.PutRecord, bucket "jobs", key = the job id) before it is
// visible to readers. When Run's context ends (the server stops), the
// running job and the queued ones become FAILED with an error starting
// "interrupted:"; New does the same to jobs the file holds as QUEUED or
// RUNNING, which a process that died left behind. Registration is one registry transaction,
// so a crash never leaves a half-registered version: the version is there
// with its manifest, or not at all. A crash after registration began is
// resolved against the registry when New reads the job back, since the
// process may have died after a registry commit and before the job's record
// said so: a version registered and not active leaves the job FAILED with
// "interrupted after registering vX.Y.Z; not activated", Registered true and
// Activation.Activated false; a version also activated says so
// (InterruptedAfterActivating, Activation.Activated true).
//
// # Several replicas
//
// With Options.Shared the manager is one of several replicas sharing the
// registry (etcd). The records are the truth: Get, List and Watch read
// them (Follow re-reads them every Shared.Poll, so a watch on a replica
// that does not run the job follows it), Start on any replica writes a
// QUEUED record, and only the replica running Lead — the elected leader —
// runs jobs, adopting queued records in id order. Cancel on another
// replica writes a request (bucket CancelBucket) the leader applies. The
// runner records its name and renews a heartbeat in the job's record every
// third of Shared.RunnerTTL; a leader that sees a RUNNING job's heartbeat
// unchanged for RunnerTTL (by its own clock, so clocks need not agree)
// marks it FAILED with InterruptedRunnerLost, resolved against the
// registry as a restart does. A leader that stops leaves the queue for the
// next one. Ids carry a random per-process suffix (job-00000012-k3f9qz),
// since two replicas may take the same sequence number at once; two
// replicas reserving the same version at once is caught when the job
// registers (model.ErrVersionExists).
//
// # Cancellation and CPU
//
// Cancel takes a queued job out of the queue at once; a running one has its
// context cancelled, which the generator checks every 128 containers and the
// trainer between batches, so it stops within one epoch and registers
// nothing. Once registration has begun a job can no longer be cancelled.
// Jobs run one at a time; Options.Workers (default 1) bounds the goroutines
// the generator and the trainer use, so a job leaves the other cores to
// Predict. The model a job produces does not depend on Workers.
//
// # Caveats
//
// Job records are never deleted (a few KB each). Progress within a phase
// (the epoch, the losses) is kept in memory and written at the next phase
// change, so after a crash a job's record shows the phase it died in but
// maybe not its last epoch. Watch coalesces events for a slow reader: it may
// skip epochs, never the final event.
package jobs
