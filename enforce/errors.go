package enforce

import "strconv"

// OpError is the error an enforcer returns for a failed operation: which
// back-end, which operation, which block, and why. errors.Is and errors.As
// see through it to Err (ErrExists, ErrNotFound, ErrProtected,
// *ProtectedError, os.ErrClosed, a kernel error...).
type OpError struct {
	// Backend is the enforcer's Name.
	Backend string
	// Op is the operation: "block", "release", "blocks", "open", "close"...
	Op string
	// ID is the block concerned, if any.
	ID  string
	Err error
}

// Error implements error.
func (e *OpError) Error() string {
	s := e.Backend + ": " + e.Op
	if e.ID != "" {
		s += " " + strconv.Quote(e.ID)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *OpError) Unwrap() error { return e.Err }
