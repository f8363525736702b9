package replay

import (
	"errors"
	"strconv"
)

// Sentinel errors wrapped by a [ParseError]'s cause; test with errors.Is.
var (
	// ErrMalformed: the line is not well-formed JSON or XML.
	ErrMalformed = errors.New("malformed record")
	// ErrInvalid: the record is well formed but a field is missing, has a
	// bad value, or the event fails (*source.Event).Validate.
	ErrInvalid = errors.New("invalid event")
	// ErrLineTooLong: a line (or a Sysmon XML event spanning lines) is
	// longer than the reader's limit.
	ErrLineTooLong = errors.New("line too long")
)

// ParseError is the error for one bad line of a trace: File and Line (1-based)
// name where, Err what was wrong. Err wraps [ErrMalformed], [ErrInvalid] or
// [ErrLineTooLong]; for a bad field it is a [*FieldError].
type ParseError struct {
	File string
	Line int
	Err  error
}

// Error formats the error as "file:line: cause".
func (e *ParseError) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Err.Error()
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// FieldError says which field of a record is missing or has a bad value.
// errors.Is(err, ErrInvalid) holds for it.
type FieldError struct {
	Field string // the field's name as written in the format ("dst", "ProcessId")
	Msg   string // what is wrong, with the bad value quoted
}

// Error formats the error as "field F: msg".
func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Msg }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, msg string) error { return &FieldError{Field: field, Msg: msg} }

// invalidError wraps an error from (*source.Event).Validate so that it also
// matches ErrInvalid.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }

// malformedError wraps a syntax error so that it also matches ErrMalformed.
type malformedError struct {
	what string // "JSON", "XML"
	err  error
}

func (e *malformedError) Error() string   { return "malformed " + e.what + ": " + e.err.Error() }
func (e *malformedError) Unwrap() []error { return []error{ErrMalformed, e.err} }
