package model

import "errors"

// Publicer is implemented by errors that carry a message meant for the
// client, apart from their Error text, which is the full internal chain for
// the log. A public message says what was refused and why in words a client
// can act on; it never holds values computed from model bytes or stored data
// (forward-pass outputs, hashes, file contents) nor the internals of a
// library (ONNX Runtime's messages and source locations).
//
// A wrapper that adds context (a step, a version) implements Publicer too,
// building its message from PublicMessage of what it wraps, so the client
// reads the whole path: "load v1.9.0: golden rows: ...".
type Publicer interface {
	error
	PublicMessage() string
}

// Public returns an error whose Error text is err's (for the log) and whose
// PublicMessage is msg (for the client); errors.Is and errors.As see err
// through it. It returns nil for a nil err.
func Public(err error, msg string) error {
	if err == nil {
		return nil
	}
	return &publicError{err: err, msg: msg}
}

type publicError struct {
	err error
	msg string
}

func (e *publicError) Error() string         { return e.err.Error() }
func (e *publicError) Unwrap() error         { return e.err }
func (e *publicError) PublicMessage() string { return e.msg }

// PublicMessage returns the client-facing message of err: PublicMessage of
// the outermost error in err's chain that is a Publicer. ok is false when
// none is; then err's own text must not be shown as is unless its producer
// is known to put nothing computed in it.
func PublicMessage(err error) (msg string, ok bool) {
	var p Publicer
	if errors.As(err, &p) {
		return p.PublicMessage(), true
	}
	return "", false
}

// PublicOr is PublicMessage, with fallback when err carries no public
// message. Wrappers that implement Publicer use it for what they wrap.
func PublicOr(err error, fallback string) string {
	if msg, ok := PublicMessage(err); ok {
		return msg
	}
	return fallback
}
