// Package registry is the registry side of Airlock: the storage and release
// logic of a gate that holds every npm publish until a threshold of offline
// signatures approves its exact bytes.
//
// A staged version moves staged → approved → published (or staged →
// rejected). Approval is one store transaction under the repository writer
// lock (BEGIN IMMEDIATE on SQLite, a transaction-scoped advisory lock plus a
// row lock on PostgreSQL): the submission is verified against the request
// the gate made (threshold by distinct keys, approval groups, exact length
// and hashes, a role version exactly one above the stored one), the role,
// snapshot, timestamp and target bytes are written, and the whole new
// repository is checked with tuf.Client before the transaction commits. A
// crash at any moment leaves either the old state or the new one; nothing
// unverified is ever written.
//
// Store implementations are safe for concurrent use. The TUF operations sit
// behind Releaser so that the TUF client can be replaced.
package registry
