package replay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/procwall/procwall/source"
)

// Builder assembles a trace in Go code, for unit tests of detection and
// containment logic:
//
//	b := replay.NewBuilder(t0)
//	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx", "-g", "daemon off;").
//		Connect(100, "tcp", "198.51.100.7:443").
//		After(5*time.Minute).Risk(231, "high", "reverse shell").
//		Assess(100, true, "clean")
//
// Each event gets the builder's current time, which then advances by one
// millisecond; [Builder.At] and [Builder.After] set the next event's time.
// Methods never panic: a bad argument (an address that does not parse, an
// event that fails (*source.Event).Validate) records an error that
// [Builder.Err] returns and [Builder.Source] and [Builder.WriteTo] report;
// the bad event is left out. Methods that change "the last event" do
// nothing when there is none (or the last call failed). A Builder is not
// safe for concurrent use.
type Builder struct {
	next    time.Time
	events  []source.Event
	errs    []error // *ParseError, File "builder", Line the call's number
	lastBad bool    // the last add failed: modifiers apply to nothing
}

// NewBuilder returns a Builder whose first event happens at t0.
func NewBuilder(t0 time.Time) *Builder { return &Builder{next: t0} }

func (b *Builder) add(ev source.Event) *Builder {
	ev.Time = b.next
	ev.Origin = "builder:" + strconv.Itoa(len(b.events)+len(b.errs)+1)
	if err := ev.Validate(); err != nil {
		return b.fail(err)
	}
	b.events = append(b.events, ev)
	b.lastBad = false
	b.next = ev.Time.Add(time.Millisecond)
	return b
}

func (b *Builder) fail(err error) *Builder {
	b.errs = append(b.errs, &ParseError{File: "builder", Line: len(b.events) + len(b.errs) + 1, Err: err})
	b.lastBad = true
	return b
}

// At sets the time of the next event.
func (b *Builder) At(t time.Time) *Builder {
	b.next = t
	return b
}

// After sets the next event's time to the last event's time plus d (or the
// start time plus d if there is no event yet).
func (b *Builder) After(d time.Duration) *Builder {
	if n := len(b.events); n > 0 {
		b.next = b.events[n-1].Time.Add(d)
	} else {
		b.next = b.next.Add(d)
	}
	return b
}

// Fork adds a fork of pid by ppid.
func (b *Builder) Fork(pid, ppid int) *Builder {
	return b.add(source.Event{Kind: source.KindFork, PID: pid, PPID: ppid})
}

// Exec adds an exec of exe by pid with the arguments argv (argv[0]
// included).
func (b *Builder) Exec(pid int, exe string, argv ...string) *Builder {
	return b.add(source.Event{Kind: source.KindExec, PID: pid, Exe: exe, Argv: argv})
}

// Exit adds the exit of pid with an exit code.
func (b *Builder) Exit(pid, code int) *Builder {
	return b.add(source.Event{Kind: source.KindExit, PID: pid, Code: code, HasCode: true})
}

// Connect adds a connection initiated by pid to dst ("ip:port" or
// "[v6]:port") over proto ("tcp", "udp", ...; "" for unknown).
func (b *Builder) Connect(pid int, proto, dst string) *Builder {
	return b.flow(source.KindConnect, pid, proto, "", dst, 0)
}

// Send adds a datagram of n bytes sent by pid to dst over proto.
func (b *Builder) Send(pid int, proto, dst string, n int64) *Builder {
	return b.flow(source.KindSend, pid, proto, "", dst, n)
}

// Accept adds a connection from the remote peer accepted by pid on the
// local listener address local ("" if unknown).
func (b *Builder) Accept(pid int, proto, local, peer string) *Builder {
	return b.flow(source.KindAccept, pid, proto, local, peer, 0)
}

func (b *Builder) flow(k source.Kind, pid int, proto, src, dst string, n int64) *Builder {
	ev := source.Event{Kind: k, PID: pid, Bytes: n}
	if proto != "" {
		p, err := source.ParseProto(proto)
		if err != nil {
			return b.fail(fmt.Errorf("%v: %w", k, err))
		}
		ev.Proto = p
	}
	var err error
	if ev.Dst, err = parseAddrPort("dst", dst); err != nil {
		return b.fail(fmt.Errorf("%v: %w", k, err))
	}
	if src != "" {
		if ev.Src, err = parseAddrPort("src", src); err != nil {
			return b.fail(fmt.Errorf("%v: %w", k, err))
		}
	}
	return b.add(ev)
}

// Risk adds a detector's report that pid is risky at level ("low",
// "medium", "high", "critical").
func (b *Builder) Risk(pid int, level, reason string) *Builder {
	l, err := source.ParseLevel(level)
	if err != nil {
		return b.fail(fmt.Errorf("risk: %w", err))
	}
	return b.add(source.Event{Kind: source.KindRisk, PID: pid, Level: l, Reason: reason})
}

// Assess adds a risk assessment of pid; safe releases blocks taken because
// of it.
func (b *Builder) Assess(pid int, safe bool, reason string) *Builder {
	return b.add(source.Event{Kind: source.KindAssess, PID: pid, Safe: safe, Reason: reason})
}

// File adds a file operation ("create", "write" or "delete") by pid on
// path.
func (b *Builder) File(pid int, op, path string) *Builder {
	switch op {
	case "create", "write", "delete", "":
	default:
		return b.fail(fmt.Errorf("file: op %q is not create, write or delete", op))
	}
	return b.add(source.Event{Kind: source.KindFile, PID: pid, Op: op, Path: path})
}

// DNS adds a name lookup by pid with its answers (IP addresses).
func (b *Builder) DNS(pid int, query string, answers ...string) *Builder {
	ev := source.Event{Kind: source.KindDNS, PID: pid, Query: query}
	for _, a := range answers {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return b.fail(fmt.Errorf("dns: answer %q is not an IP address", a))
		}
		ev.Answers = append(ev.Answers, ip)
	}
	return b.add(ev)
}

// Set calls fn on the last event, to set any field; the event is
// validated again afterwards (a failure records an error and removes the
// event).
func (b *Builder) Set(fn func(*source.Event)) *Builder {
	n := len(b.events)
	if n == 0 || b.lastBad || fn == nil {
		return b
	}
	ev := &b.events[n-1]
	fn(ev)
	if err := ev.Validate(); err != nil {
		b.events = b.events[:n-1]
		return b.fail(err)
	}
	return b
}

// Start sets the last event's process start time (ns on a per-boot
// monotonic clock), making its identity (pid, start).
func (b *Builder) Start(ns uint64) *Builder {
	return b.Set(func(e *source.Event) { e.Start = ns })
}

// Parent sets the last event's parent (for fork and exec): ppid and its
// start time.
func (b *Builder) Parent(ppid int, start uint64) *Builder {
	return b.Set(func(e *source.Event) { e.PPID, e.PStart = ppid, start })
}

// GUID sets the last event's process GUID.
func (b *Builder) GUID(guid string) *Builder {
	return b.Set(func(e *source.Event) { e.GUID = guid })
}

// UID sets the last event's user id.
func (b *Builder) UID(uid int) *Builder {
	return b.Set(func(e *source.Event) { e.UID, e.HasUID = uid, true })
}

// Cwd sets the last event's working directory.
func (b *Builder) Cwd(dir string) *Builder {
	return b.Set(func(e *source.Event) { e.Cwd = dir })
}

// Err returns the errors recorded by bad calls, joined, or nil.
func (b *Builder) Err() error { return errors.Join(b.errs...) }

// Events returns a copy of the events built so far (bad calls left out;
// see [Builder.Err]).
func (b *Builder) Events() []source.Event {
	out := make([]source.Event, len(b.events))
	copy(out, b.events)
	return out
}

// Source returns a Reader over the events built so far, as if replayed
// from a trace named "builder" (events in builder order, not re-sorted by
// time). If a call failed, Next returns its *ParseError (File "builder",
// Line the number of the call among the event-adding calls) first, like a
// bad line of a trace.
func (b *Builder) Source() *Reader {
	var err error
	if len(b.errs) > 0 {
		err = b.errs[0]
	}
	in := &input{name: "builder", dec: &sliceDecoder{events: b.Events(), err: err}}
	in.st.Name, in.st.Format = "builder", FormatNative
	return &Reader{inputs: []*input{in}}
}

// WriteTo writes the events in the native JSON-lines format. Fields the
// native format has no place for (GUID, Comm, PStart, ...) are not
// written. It fails without writing if a builder call failed.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	if err := b.Err(); err != nil {
		return 0, err
	}
	cw := &countWriter{w: w}
	jw := NewWriter(cw)
	for i := range b.events {
		if _, err := jw.Write(&b.events[i]); err != nil {
			return cw.n, err
		}
	}
	err := jw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sliceDecoder yields a fixed list of events, after err if set.
type sliceDecoder struct {
	events []source.Event
	err    error
	i      int
}

func (s *sliceDecoder) next() (source.Event, error) {
	if s.err != nil {
		err := s.err
		s.err = nil
		return source.Event{}, err
	}
	if s.i >= len(s.events) {
		return source.Event{}, io.EOF
	}
	ev := s.events[s.i]
	s.i++
	return ev, nil
}
