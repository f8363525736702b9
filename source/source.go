package source

import (
	"errors"
	"io"
)

// Source is a blocking reader of events.
//
// Next returns the next event. It blocks until one is available, the source
// is exhausted (io.EOF: a finished recording) or Close is called (an error
// for which errors.Is(err, os.ErrClosed) holds). Next is called from one
// goroutine at a time; Close may be called from any goroutine and unblocks a
// pending Next.
type Source interface {
	// Name is a short name for logs and metrics ("procconn", "replay").
	Name() string
	Next() (Event, error)
	Close() error
}

// ErrLost is wrapped by the error Next returns when a source knows it
// dropped events (a kernel buffer overflowed, a ring buffer was overrun).
// The source stays usable: the caller counts the loss and resynchronises its
// view (for processes, from a /proc snapshot), then calls Next again.
var ErrLost = errors.New("events lost")

// ErrNotSupported is returned (wrapped) by sources that need a kernel
// feature or operating system this machine does not have.
var ErrNotSupported = errors.New("not supported")

// Slice is a Source over a fixed list of events, for tests and for feeding
// events that were assembled in memory. It is not safe for concurrent use,
// except for Close.
type Slice struct {
	events []Event
	i      int
	closed chan struct{}
}

// FromSlice returns a Source that yields events in order and then io.EOF.
func FromSlice(events []Event) *Slice {
	return &Slice{events: events, closed: make(chan struct{})}
}

// Name implements Source.
func (s *Slice) Name() string { return "slice" }

// Next implements Source.
func (s *Slice) Next() (Event, error) {
	select {
	case <-s.closed:
		return Event{}, closedErr
	default:
	}
	if s.i >= len(s.events) {
		return Event{}, io.EOF
	}
	e := s.events[s.i]
	s.i++
	return e, nil
}

// Close implements Source.
func (s *Slice) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}
