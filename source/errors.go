package source

import (
	"fmt"
	"os"
)

// closedErr is what Next returns after Close.
var closedErr = fmt.Errorf("source: %w", os.ErrClosed)

// OpError is an error from a source operation on the kernel or a file.
type OpError struct {
	Op  string // "read", "subscribe", "parse", ...
	Err error
}

// Error implements error.
func (e *OpError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }
