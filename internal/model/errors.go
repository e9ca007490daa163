package model

import "errors"

// Sentinel errors. Packages wrap them with the operation and the offending
// value (fmt.Errorf("...: %w", ErrX)); callers test them with errors.Is. The
// transport layer maps each one to a single gRPC / HTTP status.
var (
	// ErrInvalidVersion: a version string is not semver "v{major}.{minor}.{patch}".
	ErrInvalidVersion = errors.New("invalid version")
	// ErrVersionNotFound: no model with that version is registered or loaded.
	ErrVersionNotFound = errors.New("version not found")
	// ErrVersionExists: a model with that version is already registered.
	ErrVersionExists = errors.New("version already exists")
	// ErrChecksumMismatch: the model bytes do not hash to the manifest's sha256.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrInvalidModel: the model bytes or manifest are malformed or inconsistent.
	ErrInvalidModel = errors.New("invalid model")
	// ErrSignatureMismatch: the model's inputs/outputs differ from what this server serves.
	ErrSignatureMismatch = errors.New("model signature mismatch")
	// ErrGoldenMismatch: the model's answers to its golden rows differ from the manifest's.
	ErrGoldenMismatch = errors.New("golden rows mismatch")
	// ErrInvalidInput: a request's features, metrics or batch are out of bounds.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNoActiveVersion: no model is being served yet.
	ErrNoActiveVersion = errors.New("no active model version")
	// ErrInvalidData: a training data file is missing, truncated or has wrong shapes.
	ErrInvalidData = errors.New("invalid training data")
	// ErrQueueFull: the training job queue holds as many jobs as it may; retry
	// when one has finished, or cancel one.
	ErrQueueFull = errors.New("training queue full")
	// ErrJobNotFound: no training job has that id.
	ErrJobNotFound = errors.New("training job not found")
	// ErrShuttingDown: this server is stopping; the call may succeed on
	// another replica or once it is back.
	ErrShuttingDown = errors.New("server shutting down")
)

// Sentinels of release control and the registry.
var (
	// ErrActiveMismatch: an activation or rollback named the version it
	// expected to be active (compare-and-swap) and another one is.
	ErrActiveMismatch = errors.New("active version is not the expected one")
	// ErrVersionTooOld: a registration is older than every version retention
	// keeps for its major, so it would be deleted by the same change.
	ErrVersionTooOld = errors.New("version older than every version kept")
	// ErrStorageFull: the data directory has no space left (or is over
	// quota); nothing changed and what serves goes on serving.
	ErrStorageFull = errors.New("storage full")
	// ErrStorageReadOnly: the data directory cannot be written.
	ErrStorageReadOnly = errors.New("storage read-only")
)

// ErrAlreadyActive: an activation or rollback named the version that is
// already active. Release control answers it as a no-op, not a failure.
var ErrAlreadyActive = errors.New("version already active")
