// Package auth holds the service's callers: the roles a bearer token may
// carry, the token file they are read from, and the Principal a checked call
// carries in its context. It imports no network package; internal/transport
// applies it to gRPC metadata and HTTP headers.
//
// Roles are ordered: viewer < agent < operator. A role may call what every
// lower role may call, so each method needs one minimum role:
//
//   - viewer reads: list and get versions, history, training jobs (get,
//     list, watch).
//   - agent adds Predict and DownloadVersion. An agent is also a viewer:
//     DownloadVersion already hands it every manifest, which is all a
//     viewer's reads reveal, so keeping reads from it would protect nothing.
//   - operator adds what changes the service: register, activate, roll
//     back, start and cancel training jobs.
//
// The token file has one token per line, "name role token", separated by
// spaces or tabs; blank lines and lines starting with # are ignored:
//
//	# who     role      token
//	alice     operator  3f9c0c5e2b1d4a7e8f6a9b0c1d2e3f40
//	node-pool agent     9a8b7c6d5e4f30211203f4e5d6c7b8a9
//
// A name is what the history records as the actor of the caller's changes;
// one name may hold several tokens (to rotate one without a gap), a token may
// appear once. Tokens are at least MinTokenLength characters. Parse errors
// name the line and the field, never the token.
//
// Lookup compares the presented token with every token of the set in
// constant time over SHA-256 digests, so neither the time it takes nor its
// result depends on how much of a token matched, nor on which token did.
package auth
