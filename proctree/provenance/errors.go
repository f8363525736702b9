package provenance

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (or a
// parse error) in an [OpError]; test with errors.Is.
var (
	// ErrNotFound: the alert ID names no process of the tree.
	ErrNotFound = errors.New("process not found")
	// ErrBadRule: a simplification or feature rule is malformed.
	ErrBadRule = errors.New("bad rule")
	// ErrBadEvent: an event lacks a field its kind needs.
	ErrBadEvent = errors.New("bad event")
	// ErrBadGraph: a graph handed to a renderer or to DeriveRule is
	// inconsistent (an edge names a missing node).
	ErrBadGraph = errors.New("bad graph")
	// ErrTooLong: a command line exceeds MaxCommandLine and was parsed
	// only up to that length.
	ErrTooLong = errors.New("command line too long")
	// ErrSyntax: a command line is not well formed (an unterminated
	// quote or substitution); what could be parsed is still returned.
	ErrSyntax = errors.New("shell syntax")
)

// OpError is the error type of this package: the operation that failed
// and why.
type OpError struct {
	Op  string // "add", "resolve", "simplify", "rule", "parse", ...
	Err error
}

// Error implements error.
func (e *OpError) Error() string { return "provenance: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }
