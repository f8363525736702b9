package procconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/procwall/procwall/source"
)

// Wire constants of the proc connector (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc = 1 // CN_IDX_PROC: the connector index and multicast group
	cnValProc = 1 // CN_VAL_PROC

	mcastListen = 1 // PROC_CN_MCAST_LISTEN
	mcastIgnore = 2 // PROC_CN_MCAST_IGNORE

	nlmsgHdrLen = 16 // struct nlmsghdr
	cnMsgLen    = 20 // struct cn_msg without data
	evHdrLen    = 16 // what, cpu, timestamp_ns of struct proc_event

	nlmsgNoop  = 1 // NLMSG_NOOP
	nlmsgError = 2 // NLMSG_ERROR
	nlmsgDone  = 3 // NLMSG_DONE: the type the connector sends
)

// EventMask selects proc connector event kinds. Its bits are the kernel's
// enum proc_cn_event values, so a mask is also the per-socket filter the
// kernel applies (Linux 6.6 and later).
type EventMask uint32

// Event kinds of the proc connector.
const (
	EventFork     EventMask = 0x00000001
	EventExec     EventMask = 0x00000002
	EventUID      EventMask = 0x00000004
	EventGID      EventMask = 0x00000040
	EventSID      EventMask = 0x00000080
	EventPtrace   EventMask = 0x00000100
	EventComm     EventMask = 0x00000200
	EventCoredump EventMask = 0x40000000
	EventExit     EventMask = 0x80000000
	// EventNonzeroExit, as a filter bit without EventExit, asks the kernel
	// for exits with a non-zero exit status only. It is never an event's
	// kind.
	EventNonzeroExit EventMask = 0x20000000
	// EventAll is every kind.
	EventAll = EventFork | EventExec | EventUID | EventGID | EventSID | EventPtrace | EventComm | EventCoredump | EventExit | EventNonzeroExit
)

// String names the kinds in m, joined by "|".
func (m EventMask) String() string {
	if m == 0 {
		return "none"
	}
	names := []struct {
		bit  EventMask
		name string
	}{{EventFork, "fork"}, {EventExec, "exec"}, {EventUID, "uid"}, {EventGID, "gid"}, {EventSID, "sid"},
		{EventPtrace, "ptrace"}, {EventComm, "comm"}, {EventCoredump, "coredump"}, {EventExit, "exit"}, {EventNonzeroExit, "nonzero_exit"}}
	s := ""
	for _, n := range names {
		if m&n.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += n.name
			m &^= n.bit
		}
	}
	if m != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(m), 16)
	}
	return s
}

// ErrMalformed is wrapped by the errors of messages that cannot be decoded.
var ErrMalformed = errors.New("malformed proc connector message")

// rawEvent is one decoded proc connector event, before it becomes a
// source.Event. Decoding one never allocates.
type rawEvent struct {
	What EventMask // 0: no event (an acknowledgement, PROC_EVENT_NONE, or a no-op)
	CPU  uint32
	TS   uint64 // ns, CLOCK_MONOTONIC
	Seq  uint32 // cn_msg seq (per-cpu event counter)
	Ack  uint32 // cn_msg ack

	PID, TGID uint32 // the subject task (fork: the child)
	// Fork, coredump and exit: the parent; ptrace: the tracer.
	PPID, PTGID uint32
	// UID/GID: real and effective id; exit: exit_code and exit_signal;
	// ack: the error in A.
	A, B uint32
	Comm [16]byte
}

// payload sizes of the event_data union members.
func dataLen(what EventMask) (int, bool) {
	switch what {
	case 0:
		return 4, true // ack: err
	case EventFork, EventUID, EventGID, EventPtrace, EventCoredump:
		return 16, true
	case EventExec, EventSID:
		return 8, true
	case EventComm:
		return 24, true
	case EventExit:
		return 24, true
	}
	return 0, false
}

// decodeMessage decodes the first netlink message in b into ev and returns
// the number of bytes it took (aligned), so that a datagram holding several
// messages can be walked. It never panics and never allocates except for
// its errors.
func decodeMessage(b []byte, ev *rawEvent) (int, error) {
	if len(b) < nlmsgHdrLen {
		return 0, fmt.Errorf("%w: %d bytes, shorter than a netlink header", ErrMalformed, len(b))
	}
	ne := binary.NativeEndian
	l := int(ne.Uint32(b[0:4]))
	typ := ne.Uint16(b[4:6])
	if l < nlmsgHdrLen || l > len(b) {
		return 0, fmt.Errorf("%w: netlink length %d, have %d bytes", ErrMalformed, l, len(b))
	}
	n := (l + 3) &^ 3
	if n > len(b) {
		n = len(b)
	}
	switch typ {
	case nlmsgNoop:
		*ev = rawEvent{}
		return n, nil
	case nlmsgError:
		if l >= nlmsgHdrLen+4 {
			if code := int32(ne.Uint32(b[16:20])); code != 0 {
				return n, fmt.Errorf("%w: netlink error %d", ErrMalformed, -code)
			}
		}
		*ev = rawEvent{}
		return n, nil
	}
	p := b[nlmsgHdrLen:l]
	if len(p) < cnMsgLen {
		return n, fmt.Errorf("%w: %d bytes of connector header, need %d", ErrMalformed, len(p), cnMsgLen)
	}
	idx, val := ne.Uint32(p[0:4]), ne.Uint32(p[4:8])
	if idx != cnIdxProc || val != cnValProc {
		return n, fmt.Errorf("%w: connector id %d:%d, not the proc connector", ErrMalformed, idx, val)
	}
	seq, ack := ne.Uint32(p[8:12]), ne.Uint32(p[12:16])
	dl := int(ne.Uint16(p[16:18]))
	p = p[cnMsgLen:]
	if dl > len(p) {
		return n, fmt.Errorf("%w: connector length %d, have %d bytes", ErrMalformed, dl, len(p))
	}
	p = p[:dl]
	if len(p) < evHdrLen {
		return n, fmt.Errorf("%w: %d bytes of event, need %d", ErrMalformed, len(p), evHdrLen)
	}
	what := EventMask(ne.Uint32(p[0:4]))
	need, ok := dataLen(what)
	if !ok {
		return n, fmt.Errorf("%w: unknown event type %#x", ErrMalformed, uint32(what))
	}
	d := p[evHdrLen:]
	if len(d) < need {
		return n, fmt.Errorf("%w: %v event with %d data bytes, need %d", ErrMalformed, what, len(d), need)
	}
	*ev = rawEvent{What: what, CPU: ne.Uint32(p[4:8]), TS: ne.Uint64(p[8:16]), Seq: seq, Ack: ack}
	u := func(i int) uint32 { return ne.Uint32(d[4*i : 4*i+4]) }
	switch what {
	case 0:
		ev.A = u(0)
	case EventFork:
		ev.PPID, ev.PTGID, ev.PID, ev.TGID = u(0), u(1), u(2), u(3)
	case EventExec, EventSID:
		ev.PID, ev.TGID = u(0), u(1)
	case EventUID, EventGID:
		ev.PID, ev.TGID, ev.A, ev.B = u(0), u(1), u(2), u(3)
	case EventPtrace, EventCoredump:
		ev.PID, ev.TGID, ev.PPID, ev.PTGID = u(0), u(1), u(2), u(3)
	case EventComm:
		ev.PID, ev.TGID = u(0), u(1)
		copy(ev.Comm[:], d[8:24])
	case EventExit:
		ev.PID, ev.TGID, ev.A, ev.B, ev.PPID, ev.PTGID = u(0), u(1), u(2), u(3), u(4), u(5)
	}
	return n, nil
}

// thread reports whether the event's subject is a thread that is not its
// group's leader.
func (ev *rawEvent) thread() bool { return ev.PID != ev.TGID }

// origin is the Origin of every event of this source.
const origin = "procconn"

// toEvent converts a decoded event to a source.Event with wall time t. It
// does not read /proc: exec enrichment and fork start times are added by
// the Source. Comm events allocate their name; no other kind allocates.
func (ev *rawEvent) toEvent(t time.Time) source.Event {
	e := source.Event{Time: t, PID: int(ev.TGID), Origin: origin}
	switch ev.What {
	case EventFork:
		e.Kind = source.KindFork
		e.PPID = int(ev.PTGID)
	case EventExec:
		e.Kind = source.KindExec
	case EventExit:
		e.Kind = source.KindExit
		// exit_code is a wait status: the exit code in bits 8-15 or the
		// terminating signal in bits 0-6 (bit 7: core dumped).
		status := ev.A
		if sig := status & 0x7f; sig != 0 {
			e.Signal = int(sig)
			if status&0x80 != 0 {
				e.Reason = "core dumped"
			}
		} else {
			e.Code, e.HasCode = int(status>>8&0xff), true
		}
	case EventUID:
		e.Kind = source.KindAttr
		e.UID, e.HasUID = int(ev.B), true
		e.Reason = "ruid=" + strconv.FormatUint(uint64(ev.A), 10) + " euid=" + strconv.FormatUint(uint64(ev.B), 10)
	case EventGID:
		e.Kind = source.KindAttr
		e.Reason = "rgid=" + strconv.FormatUint(uint64(ev.A), 10) + " egid=" + strconv.FormatUint(uint64(ev.B), 10)
	case EventSID:
		e.Kind = source.KindAttr
		e.Reason = "setsid"
	case EventPtrace:
		e.Kind = source.KindAttr
		if ev.PTGID == 0 {
			e.Reason = "ptrace detach"
		} else {
			e.Reason = "ptrace attach tracer=" + strconv.FormatUint(uint64(ev.PTGID), 10)
		}
	case EventComm:
		e.Kind = source.KindAttr
		c := ev.Comm[:]
		for i, b := range c {
			if b == 0 {
				c = c[:i]
				break
			}
		}
		e.Comm = string(c)
	case EventCoredump:
		e.Kind = source.KindAttr
		e.Reason = "coredump"
	}
	return e
}
