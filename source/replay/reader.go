package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procwall/procwall/source"
)

const (
	defaultMaxLine = 8 << 20 // longest line (or multi-line XML event) accepted
	readBufSize    = 64 << 10
)

// Option configures a [Reader].
type Option func(*config)

type config struct {
	format  Format
	lenient bool
	maxLine int
}

func newConfig(opts []Option) config {
	c := config{format: FormatAuto, maxLine: defaultMaxLine}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// WithFormat sets the format of every input instead of detecting it
// ([FormatAuto], the default, detects each input's format on its own).
func WithFormat(f Format) Option { return func(c *config) { c.format = f } }

// WithLenient selects lenient mode: a bad line is counted and kept (see
// [Reader.Errors]) and reading goes on. The default, strict mode, makes Next
// return the first bad line's [*ParseError].
func WithLenient(lenient bool) Option { return func(c *config) { c.lenient = lenient } }

// withMaxLine sets the longest accepted line, for tests.
func withMaxLine(n int) Option { return func(c *config) { c.maxLine = n } }

// Stats counts what a [Reader] read.
type Stats struct {
	Events      int         // events returned by Next
	Lines       int         // physical lines read, including blank and comment lines
	OtherLines  int         // Sysmon format: syslog lines without a Sysmon <Event>, skipped
	Skipped     map[int]int // Sysmon format: events skipped, by event id (ids procwall does not map)
	ParseErrors int         // bad lines (in strict mode at most one)
	// OutOfOrder counts events whose ts is earlier than the previous event's
	// ts in the same input. They are returned in file order, not re-sorted.
	OutOfOrder int
	// Inputs holds the same counters per input, in input order, with the
	// input's name and (detected) format. It is nil inside an input's entry.
	Inputs []InputStats
}

// InputStats is one input's part of [Stats].
type InputStats struct {
	Name   string
	Format Format // FormatAuto until the input's first record was read
	Stats
}

// input is one trace with a look-ahead of one event.
type input struct {
	name    string
	lenient bool
	dec     decoder
	closer  io.Closer

	head    source.Event
	hasHead bool
	done    bool
	last    time.Time

	mu   sync.Mutex // guards st and errs
	st   InputStats
	errs []error
}

// decoder yields an input's events, a *ParseError for a bad record, io.EOF,
// or another (fatal) error.
type decoder interface {
	next() (source.Event, error)
}

// Reader reads events from one or more traces, merging them by time. It
// implements [source.Source]. Next must be called from one goroutine at a
// time; Close, Stats and Errors are safe from any goroutine.
type Reader struct {
	inputs []*input
	closed atomic.Bool
	err    error // sticky error that ended reading; Next's goroutine only

	mu    sync.Mutex
	fatal error // err when it is not a *ParseError, for Errors
}

var errClosed = fmt.Errorf("replay: %w", os.ErrClosed)

// New returns a Reader over one trace read from r; name names it in errors
// and in each event's Origin. The Reader does not close r.
func New(name string, r io.Reader, opts ...Option) *Reader {
	return &Reader{inputs: []*input{newInput(name, r, nil, newConfig(opts))}}
}

func newInput(name string, r io.Reader, closer io.Closer, c config) *input {
	in := &input{name: name, lenient: c.lenient, closer: closer}
	in.st.Name = name
	in.dec = newLineDecoder(in, r, c)
	return in
}

// Open opens the named trace files and returns a Reader that merges them by
// time (see [Merge]); each file's format is detected on its own unless
// [WithFormat] says otherwise. The path "-" is standard input. An error
// opening any file closes the others.
func Open(paths []string, opts ...Option) (*Reader, error) {
	if len(paths) == 0 {
		return nil, errors.New("replay: open: no trace files")
	}
	c := newConfig(opts)
	r := &Reader{}
	for _, p := range paths {
		if p == "-" {
			r.inputs = append(r.inputs, newInput("stdin", os.Stdin, nil, c))
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("replay: open: %w", err)
		}
		r.inputs = append(r.inputs, newInput(p, f, f, c))
	}
	return r, nil
}

// Merge returns a Reader that yields the events of rs merged by time: a
// streaming k-way merge holding one look-ahead event per input. Ties keep
// input order (rs in argument order, and each Reader's own inputs in
// theirs). Each input keeps its own format and strict/lenient mode. The
// merged Reader takes over rs: merge them before reading from them, use
// only the merged Reader afterwards; closing it closes them.
func Merge(rs ...*Reader) *Reader {
	m := &Reader{}
	for _, r := range rs {
		if r != nil {
			m.inputs = append(m.inputs, r.inputs...)
		}
	}
	return m
}

// Name implements source.Source; it returns "replay".
func (r *Reader) Name() string { return "replay" }

// Next returns the event with the earliest ts among the inputs' next events
// (ties: the earlier input), io.EOF when all inputs are exhausted, the first
// bad line's *ParseError in strict mode, or an error for which
// errors.Is(err, os.ErrClosed) holds after Close. After an error other than
// the closed one Next keeps returning it.
func (r *Reader) Next() (source.Event, error) {
	if r.closed.Load() {
		return source.Event{}, errClosed
	}
	if r.err != nil {
		return source.Event{}, r.err
	}
	var best *input
	for _, in := range r.inputs {
		if !in.hasHead && !in.done {
			if err := in.fill(); err != nil {
				if r.closed.Load() {
					return source.Event{}, errClosed
				}
				r.err = err
				var pe *ParseError
				if !errors.As(err, &pe) {
					r.mu.Lock()
					r.fatal = err
					r.mu.Unlock()
				}
				return source.Event{}, err
			}
		}
		if in.hasHead && (best == nil || in.head.Time.Before(best.head.Time)) {
			best = in
		}
	}
	if best == nil {
		return source.Event{}, io.EOF
	}
	ev := best.head
	best.head, best.hasHead = source.Event{}, false
	best.mu.Lock()
	best.st.Events++
	best.mu.Unlock()
	return ev, nil
}

// fill reads the input's next event into its look-ahead, or marks it done.
func (in *input) fill() error {
	for {
		ev, err := in.dec.next()
		if err == io.EOF {
			in.done = true
			return nil
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				in.done = true
				return &source.OpError{Op: "read", Err: fmt.Errorf("%s: %w", in.name, err)}
			}
			in.mu.Lock()
			in.st.ParseErrors++
			in.errs = append(in.errs, err)
			in.mu.Unlock()
			if in.lenient {
				continue
			}
			return err
		}
		if !in.last.IsZero() && ev.Time.Before(in.last) {
			in.mu.Lock()
			in.st.OutOfOrder++
			in.mu.Unlock()
		}
		in.last = ev.Time
		in.head, in.hasHead = ev, true
		return nil
	}
}

// Close closes the files Open opened and makes Next return an error for
// which errors.Is(err, os.ErrClosed) holds. It is safe to call more than
// once and from any goroutine.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, in := range r.inputs {
		if in.closer != nil {
			if err := in.closer.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Errors returns every bad line met so far (each a *ParseError), input by
// input, and any read error that ended reading. In strict mode that is at
// most the one Next returned.
func (r *Reader) Errors() []error {
	var out []error
	for _, in := range r.inputs {
		in.mu.Lock()
		out = append(out, in.errs...)
		in.mu.Unlock()
	}
	r.mu.Lock()
	if r.fatal != nil {
		out = append(out, r.fatal)
	}
	r.mu.Unlock()
	return out
}

// Stats returns the counters so far, summed over the inputs and per input.
func (r *Reader) Stats() Stats {
	var s Stats
	for _, in := range r.inputs {
		in.mu.Lock()
		is := in.st
		is.Skipped = maps.Clone(in.st.Skipped)
		in.mu.Unlock()
		s.Events += is.Events
		s.Lines += is.Lines
		s.OtherLines += is.OtherLines
		s.ParseErrors += is.ParseErrors
		s.OutOfOrder += is.OutOfOrder
		for id, n := range is.Skipped {
			if s.Skipped == nil {
				s.Skipped = make(map[int]int)
			}
			s.Skipped[id] += n
		}
		s.Inputs = append(s.Inputs, is)
	}
	return s
}

// lineDecoder reads a trace line by line and hands each record to the
// format's parser.
type lineDecoder struct {
	in      *input
	name    string
	br      *bufio.Reader
	format  Format
	maxLine int
	line    int
	buf     []byte
	queue   []item // results of the current line, oldest first
	qi      int
	sys     sysmonState
	pending []pendingLine // lines read before the format was detected
}

type item struct {
	ev  source.Event
	err error
}

func newLineDecoder(in *input, r io.Reader, c config) *lineDecoder {
	d := &lineDecoder{in: in, name: in.name, br: bufio.NewReaderSize(r, readBufSize), format: c.format, maxLine: c.maxLine}
	in.st.Format = c.format
	return d
}

func (d *lineDecoder) next() (source.Event, error) {
	for {
		if d.qi < len(d.queue) {
			it := d.queue[d.qi]
			d.queue[d.qi] = item{}
			d.qi++
			return it.ev, it.err
		}
		d.queue, d.qi = d.queue[:0], 0
		line, err := d.readLine()
		if err == io.EOF {
			if len(d.pending) > 0 {
				d.decide(FormatNative)
			}
			d.sysmonEOF()
			if len(d.queue) > 0 {
				continue
			}
			return source.Event{}, io.EOF
		}
		if err != nil {
			return source.Event{}, err
		}
		d.in.mu.Lock()
		d.in.st.Lines++
		d.in.mu.Unlock()
		if line == nil { // too long
			d.fail(d.line, fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, d.maxLine))
			continue
		}
		d.handle(line)
	}
}

// readLine returns the next line without its line ending. It returns a nil
// slice (and no error) for a line longer than maxLine, which it skips.
func (d *lineDecoder) readLine() ([]byte, error) {
	chunk, err := d.br.ReadSlice('\n')
	if err == nil {
		d.line++
		if len(chunk) > d.maxLine+1 {
			return nil, nil
		}
		return trimEOL(chunk), nil
	}
	d.buf = d.buf[:0]
	tooLong := false
	for {
		if !tooLong {
			if len(d.buf)+len(chunk) > d.maxLine+1 {
				tooLong, d.buf = true, d.buf[:0]
			} else {
				d.buf = append(d.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			chunk, err = d.br.ReadSlice('\n')
			continue
		}
		break
	}
	if err == io.EOF {
		if len(d.buf) == 0 && !tooLong {
			return nil, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	d.line++
	if tooLong {
		return nil, nil
	}
	return trimEOL(d.buf), nil
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// handle parses one line.
func (d *lineDecoder) handle(line []byte) {
	if !d.sys.accumulating() {
		t := trimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			return
		}
		if d.format == FormatAuto {
			f, decisive := detect(t)
			if !decisive && len(d.pending) < maxPending {
				d.pending = append(d.pending, pendingLine{d.line, bytes.Clone(line)})
				return
			}
			d.decide(f)
		}
	}
	d.process(line)
}

// maxPending is how many undecisive lines (syslog lines of other programs)
// format detection looks past before it settles on native.
const maxPending = 256

type pendingLine struct {
	n    int
	text []byte
}

// decide sets the input's format and processes the lines held back while
// it was not known.
func (d *lineDecoder) decide(f Format) {
	d.format = f
	d.in.mu.Lock()
	d.in.st.Format = f
	d.in.mu.Unlock()
	cur := d.line
	for _, p := range d.pending {
		d.line = p.n
		d.process(p.text)
	}
	d.line = cur
	d.pending = nil
}

// process parses one line in the input's (known) format.
func (d *lineDecoder) process(line []byte) {
	switch d.format {
	case FormatSysmon:
		d.sysmonLine(line)
	default:
		ev, err := parseNative(trimSpace(line))
		if err != nil {
			d.fail(d.line, err)
			return
		}
		ev.Origin = d.origin(d.line)
		d.queue = append(d.queue, item{ev: ev})
	}
}

func (d *lineDecoder) origin(line int) string { return d.name + ":" + strconv.Itoa(line) }

// fail queues a *ParseError for line.
func (d *lineDecoder) fail(line int, err error) {
	d.queue = append(d.queue, item{err: &ParseError{File: d.name, Line: line, Err: err}})
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' || b[0] == '\f' || b[0] == '\v') {
		b = b[1:]
	}
	for len(b) > 0 {
		c := b[len(b)-1]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v' {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}
