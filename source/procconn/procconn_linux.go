//go:build linux

package procconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procfs"
)

// ackTimeout bounds the wait for the kernel's acknowledgement of a
// subscription. The kernel handles the request synchronously in sendmsg,
// so the acknowledgement is queued before Send returns; the timeout only
// matters on kernels that ignore the request.
const ackTimeout = 250 * time.Millisecond

// startSlack is how far a /proc start time may lie after the event's time
// and still be the same process (clock offset measurement error).
const startSlack = 20 * time.Millisecond

var errClosed = fmt.Errorf("procconn: %w", os.ErrClosed)

// Source is the proc connector event source: a blocking reader of the
// kernel's process events. Next must be called from one goroutine at a
// time; Close and Stats are safe from any goroutine.
type Source struct {
	cfg  config
	conn *netlink.Conn
	rc   syscall.RawConn
	fs   procfs.FS

	buf    []byte // one datagram
	off, n int    // the undecoded part of buf
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	wallBase int64 // wall ns = wallBase + monotonic ns
	members  map[int]bool
	roots    map[int]bool

	// After a Resync: events older than watermark (monotonic ns) that the
	// snapshot contradicts are stale; snapLive holds the snapshot's live pids.
	watermark uint64
	snapLive  map[int]bool

	// Without the kernel's filter: the next expected sequence number per
	// cpu (1<<32 | seq; 0: none seen yet); nil with the filter.
	seqs       []uint64
	seqChecked bool

	closed    atomic.Bool
	closeOnce sync.Once

	messages, events, overflows, malformed atomic.Uint64
	threads, filtered, gone, readFails     atomic.Uint64
	stale, gaps                            atomic.Uint64
	readBuffer                             int
	kernelFilter                           bool
}

// Open subscribes to the proc connector and returns the source. It needs
// CAP_NET_ADMIN in the initial user and pid namespaces.
func Open(opts ...Option) (*Source, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.events&EventAll == 0 {
		return nil, fmt.Errorf("procconn: open: event mask %#x selects no event", uint32(cfg.events))
	}
	if cfg.readBuffer <= 0 {
		return nil, fmt.Errorf("procconn: open: read buffer must be > 0, have %d", cfg.readBuffer)
	}
	s := &Source{cfg: cfg, buf: make([]byte, 64<<10)}
	if cfg.fs != nil {
		s.fs = *cfg.fs
	} else if (cfg.execDetails || cfg.forkStart) && !s.initFS() {
		return nil, fmt.Errorf("procconn: open: %w", errNoProc)
	}
	if len(cfg.roots) > 0 {
		s.members, s.roots = make(map[int]bool), make(map[int]bool)
		for _, p := range cfg.roots {
			if p <= 0 {
				return nil, fmt.Errorf("procconn: open: descendants of pid %d: pid must be > 0", p)
			}
			s.members[p], s.roots[p] = true, true
		}
	}
	s.readFn = s.readOnce
	conn, err := netlink.Dial(unix.NETLINK_CONNECTOR, &netlink.Config{Groups: cnIdxProc})
	if err != nil {
		return nil, &source.OpError{Op: "procconn: dial", Err: err}
	}
	s.conn = conn
	if err := conn.SetReadBuffer(cfg.readBuffer); err != nil {
		conn.Close()
		return nil, &source.OpError{Op: "procconn: set receive buffer", Err: err}
	}
	if n, err := conn.ReadBuffer(); err == nil {
		s.readBuffer = n
	}
	if s.rc, err = conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, &source.OpError{Op: "procconn: open", Err: err}
	}
	if err := s.subscribe(); err != nil {
		conn.Close()
		return nil, err
	}
	s.off, s.n = 0, 0
	if !s.kernelFilter {
		s.seqs = make([]uint64, runtime.NumCPU())
	}
	s.calibrate()
	return s, nil
}

var errNoProc = errors.New("/proc is not mounted")

func (s *Source) initFS() bool {
	fs, err := procfs.NewFS("")
	if err != nil {
		return false
	}
	s.fs = fs
	return true
}

// subscribe sends PROC_CN_MCAST_LISTEN. It first tries the proc_input form
// (Linux 6.6+: op and event filter); the kernel acknowledges it, older
// kernels ignore it silently, and then the plain op is sent.
func (s *Source) subscribe() error {
	if s.cfg.kernelFilter {
		ok, err := s.request(mcastListen, EventAll, true)
		if err != nil {
			return err
		}
		if ok {
			s.kernelFilter = true
			if s.cfg.events&EventAll != EventAll {
				// Acknowledgements pass the filter only for EventAll, so
				// this one is not waited for.
				if _, err := s.request(mcastListen, s.cfg.events, false); err != nil {
					return err
				}
			}
			return nil
		}
	}
	ok, err := s.request(mcastListen, 0, true)
	if err != nil {
		return err
	}
	if !ok {
		return &source.OpError{Op: "procconn: subscribe", Err: fmt.Errorf("no acknowledgement from the proc connector within %v: %w", ackTimeout, source.ErrNotSupported)}
	}
	return nil
}

// request sends one multicast control message: the 4-byte op when mask is
// 0, else the 8-byte proc_input. With wait it waits for the acknowledgement
// and reports whether one came; events read meanwhile are discarded (they
// precede Open's return).
func (s *Source) request(op uint32, mask EventMask, wait bool) (bool, error) {
	ack := rand.Uint32() >> 1
	data := make([]byte, cnMsgLen, cnMsgLen+8)
	ne := binary.NativeEndian
	ne.PutUint32(data[0:], cnIdxProc)
	ne.PutUint32(data[4:], cnValProc)
	ne.PutUint32(data[8:], ack)
	ne.PutUint32(data[12:], ack)
	data = ne.AppendUint32(data, op)
	if mask != 0 {
		data = ne.AppendUint32(data, uint32(mask))
	}
	ne.PutUint16(data[16:], uint16(len(data)-cnMsgLen))
	msg := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(nlmsgDone)}, Data: data}
	if _, err := s.conn.Send(msg); err != nil {
		return false, &source.OpError{Op: "procconn: subscribe", Err: err}
	}
	if !wait {
		return true, nil
	}
	deadline := time.Now().Add(ackTimeout)
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return false, &source.OpError{Op: "procconn: subscribe", Err: err}
	}
	defer s.conn.SetReadDeadline(time.Time{})
	for {
		if err := s.rc.Read(s.readFn); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, nil
			}
			return false, &source.OpError{Op: "procconn: subscribe", Err: err}
		}
		if s.rerr != nil {
			if errors.Is(s.rerr, unix.ENOBUFS) {
				continue
			}
			return false, &source.OpError{Op: "procconn: subscribe", Err: s.rerr}
		}
		b := s.buf[:s.rn]
		for len(b) > 0 {
			var ev rawEvent
			k, err := decodeMessage(b, &ev)
			if k == 0 {
				break
			}
			b = b[k:]
			if err == nil && ev.What == 0 && ev.Ack == ack+1 {
				if ev.A != 0 {
					return false, &source.OpError{Op: "procconn: subscribe", Err: syscall.Errno(ev.A)}
				}
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}

// readOnce is the syscall.RawConn read callback: one read(2) of one
// datagram into s.buf. It is a method value made once, so reading does not
// allocate.
func (s *Source) readOnce(fd uintptr) bool {
	for {
		n, err := unix.Read(int(fd), s.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false
		}
		s.rn, s.rerr = n, err
		return true
	}
}

// calibrate measures the offset from CLOCK_MONOTONIC (the events'
// timestamps) to wall time.
func (s *Source) calibrate() {
	var ts unix.Timespec
	wall := time.Now().UnixNano()
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		s.wallBase = wall - ts.Nano()
	}
}

// bootOffset returns CLOCK_BOOTTIME - CLOCK_MONOTONIC now (the time spent
// suspended), to compare event times with /proc start times.
func bootOffset() int64 {
	var b, m unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &b) != nil || unix.ClockGettime(unix.CLOCK_MONOTONIC, &m) != nil {
		return 0
	}
	return b.Nano() - m.Nano()
}

// Name implements source.Source.
func (s *Source) Name() string { return "procconn" }

// Next implements source.Source: it blocks until the next event. After a
// socket overflow it returns an error wrapping source.ErrLost (the source
// stays usable: resync from /proc, see [Resync], then call Next again); a
// message that cannot be decoded is an error wrapping [ErrMalformed], and
// Next may be called again. After Close it returns an error wrapping
// os.ErrClosed.
func (s *Source) Next() (source.Event, error) {
	for {
		if s.closed.Load() {
			return source.Event{}, errClosed
		}
		if s.off >= s.n {
			if err := s.read(); err != nil {
				return source.Event{}, err
			}
			continue
		}
		var raw rawEvent
		k, err := decodeMessage(s.buf[s.off:s.n], &raw)
		if k == 0 {
			k = s.n - s.off
		}
		if err == nil && s.seqs != nil && !s.seqChecked {
			if lost := s.checkSeq(&raw); lost > 0 {
				// Report the loss before the event that revealed it,
				// which the next call decodes again.
				s.gaps.Add(uint64(lost))
				s.seqChecked = true
				return source.Event{}, &source.OpError{Op: "procconn: read", Err: fmt.Errorf("%w: %d events missing from the kernel's sequence on cpu %d", source.ErrLost, lost, raw.CPU)}
			}
		}
		s.seqChecked = false
		s.off += k
		s.messages.Add(1)
		if err != nil {
			s.malformed.Add(1)
			return source.Event{}, &source.OpError{Op: "procconn: decode", Err: err}
		}
		if ev, ok := s.convert(&raw); ok {
			s.events.Add(1)
			return ev, nil
		}
	}
}

func (s *Source) read() error {
	s.off, s.n = 0, 0
	err := s.rc.Read(s.readFn)
	if s.closed.Load() {
		return errClosed
	}
	if err != nil {
		return &source.OpError{Op: "procconn: read", Err: err}
	}
	if s.rerr != nil {
		if errors.Is(s.rerr, unix.ENOBUFS) {
			s.overflows.Add(1)
			clear(s.seqs) // the gap is reported here
			return &source.OpError{Op: "procconn: read", Err: fmt.Errorf("%w: socket receive buffer overflowed (ENOBUFS)", source.ErrLost)}
		}
		return &source.OpError{Op: "procconn: read", Err: s.rerr}
	}
	s.n = s.rn
	s.calibrate()
	return nil
}

// convert turns a decoded event into a source.Event, folding threads,
// applying the filters and reading /proc where configured. It reports false
// for events that are not returned.
func (s *Source) convert(raw *rawEvent) (source.Event, bool) {
	if raw.What == 0 {
		return source.Event{}, false
	}
	if s.snapLive != nil && s.isStale(raw) {
		s.stale.Add(1)
		return source.Event{}, false
	}
	if !s.wanted(raw) {
		s.filtered.Add(1)
		return source.Event{}, false
	}
	switch raw.What {
	case EventFork, EventExit, EventUID, EventGID, EventComm, EventPtrace:
		if raw.thread() {
			s.threads.Add(1)
			return source.Event{}, false
		}
	}
	pid := int(raw.TGID)
	if s.members != nil {
		switch {
		case raw.What == EventFork && s.members[int(raw.PTGID)]:
			s.members[pid] = true
		case !s.members[pid]:
			s.filtered.Add(1)
			return source.Event{}, false
		case raw.What == EventExit && !s.roots[pid]:
			delete(s.members, pid)
		}
	}
	ev := raw.toEvent(time.Unix(0, s.wallBase+int64(raw.TS)))
	switch raw.What {
	case EventFork:
		if s.cfg.forkStart {
			s.forkStart(&ev, raw.TS)
		}
	case EventExec:
		if s.cfg.execDetails {
			s.execDetails(&ev, raw.TS)
		}
	}
	return ev, true
}

// wanted applies the event mask on arrival (the kernel may not have).
func (s *Source) wanted(raw *rawEvent) bool {
	m := s.cfg.events
	if raw.What == EventExit && m&EventExit == 0 {
		return m&EventNonzeroExit != 0 && raw.A != 0
	}
	return m&raw.What != 0
}

// sameProcess reports whether a /proc start time (ns since boot) can
// belong to the process an event at monotonic time ts is about: it must
// have started before the event.
func sameProcess(start, ts uint64) bool {
	limit := int64(ts) + bootOffset() + int64(startSlack)
	return int64(start) <= limit
}

func (s *Source) forkStart(ev *source.Event, ts uint64) {
	start, err := s.fs.StartTime(ev.PID)
	if err != nil {
		if errors.Is(err, procfs.ErrGone) {
			ev.Gone = true
			s.gone.Add(1)
		} else {
			s.readFails.Add(1)
		}
		return
	}
	if !sameProcess(start, ts) {
		ev.Gone = true
		s.gone.Add(1)
		return
	}
	ev.Start = start
}

// execDetails fills an exec event from /proc: parent, start time, exe,
// argv, comm, cwd, effective uid and cgroup (in Reason as "cgroup=PATH").
// If the process is gone (exited, a zombie, or its pid already reused)
// it sets Gone and fills nothing.
func (s *Source) execDetails(ev *source.Event, ts uint64) {
	p, err := s.fs.Process(ev.PID)
	if err != nil {
		if errors.Is(err, procfs.ErrGone) {
			ev.Gone = true
			s.gone.Add(1)
		} else {
			s.readFails.Add(1)
		}
		return
	}
	if p.Zombie() || !sameProcess(p.Start, ts) {
		ev.Gone = true
		s.gone.Add(1)
		return
	}
	d := p.Event(ev.Time)
	d.Origin = ev.Origin
	*ev = d
}

// staleHorizon is how long after a resync's snapshot the source keeps
// checking events against it (events from different CPUs arrive slightly
// out of order).
const staleHorizon = uint64(2 * time.Second)

// isStale reports whether an event queued before the last resync's
// snapshot contradicts it: the fork or exec of a process that was no longer
// live in the snapshot (its exit may have been lost), or the exit of a pid
// that the snapshot shows live (a reused pid: the exit was the old
// process's).
func (s *Source) isStale(raw *rawEvent) bool {
	if raw.TS >= s.watermark {
		if raw.TS > s.watermark+staleHorizon {
			s.snapLive = nil
		}
		return false
	}
	if raw.thread() && raw.What != EventExec {
		return false
	}
	pid := int(raw.TGID)
	switch raw.What {
	case EventFork, EventExec:
		return !s.snapLive[pid]
	case EventExit:
		return s.snapLive[pid]
	}
	return false
}

// Resync takes a /proc snapshot after Next reported a loss (an error
// wrapping source.ErrLost) and returns how it differs from the live
// processes the caller knows (see [Resync] and [Diff.Events]); with
// [WithDescendantsOf], only processes of the followed subtrees are added.
// Events still queued from before the snapshot that it contradicts are
// then dropped by Next and counted in [Stats].Stale, so that applying the
// diff and then the following events converges to /proc. Call Resync from
// the goroutine that calls Next.
func (s *Source) Resync(known iter.Seq[source.ProcID]) (Diff, error) {
	if s.closed.Load() {
		return Diff{}, errClosed
	}
	fs := s.fs
	if fs.Root() == "" {
		if !s.initFS() {
			return Diff{}, fmt.Errorf("procconn: resync: %w", errNoProc)
		}
		fs = s.fs
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return Diff{}, &source.OpError{Op: "procconn: resync", Err: err}
	}
	snap, err := fs.Processes()
	if snap == nil && err != nil {
		return Diff{}, &source.OpError{Op: "procconn: resync", Err: err}
	}
	if s.members != nil {
		// Follow the subtrees through the snapshot, parents first.
		var keep []procfs.Process
		in := maps.Clone(s.roots)
		for _, p := range procfs.ParentsFirst(snap) {
			if in[p.PID] || in[p.PPID] {
				in[p.PID] = true
				keep = append(keep, p)
			}
		}
		snap = keep
		for pid := range s.members {
			if !in[pid] && !s.roots[pid] {
				delete(s.members, pid)
			}
		}
		for pid := range in {
			s.members[pid] = true
		}
	}
	s.watermark = uint64(ts.Nano())
	s.snapLive = make(map[int]bool, len(snap))
	for i := range snap {
		if !snap[i].Zombie() {
			s.snapLive[snap[i].PID] = true
		}
	}
	return Resync(known, snap), nil
}

// checkSeq follows the kernel's per-cpu event sequence numbers (cn_msg
// seq, incremented for every proc event the kernel sends) and returns how
// many are missing before raw. It is used only when the kernel does not
// filter events for this socket (then every event reaches it), and finds
// events the kernel dropped without an ENOBUFS: a failed allocation in the
// connector drops an event for every listener silently.
func (s *Source) checkSeq(raw *rawEvent) uint32 {
	cpu := int(raw.CPU)
	if cpu >= 1<<16 {
		return 0
	}
	if cpu >= len(s.seqs) {
		s.seqs = append(s.seqs, make([]uint64, cpu+1-len(s.seqs))...)
	}
	prev := s.seqs[cpu]
	s.seqs[cpu] = 1<<32 | uint64(raw.Seq+1)
	if prev == 0 {
		return 0 // the first event seen from this cpu
	}
	gap := raw.Seq - uint32(prev)
	if gap == 0 || gap >= 1<<31 {
		return 0 // in order, or older than expected (not a loss)
	}
	return gap
}

// Close unsubscribes and closes the socket, unblocking a pending Next.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		// Best effort: tell the kernel this listener is gone, so that
		// kernels that count listeners stop generating events for it.
		s.request(mcastIgnore, 0, false)
		err = s.conn.Close()
	})
	return err
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	return Stats{
		Messages: s.messages.Load(), Events: s.events.Load(), Overflows: s.overflows.Load(),
		Malformed: s.malformed.Load(), Threads: s.threads.Load(), Filtered: s.filtered.Load(),
		Gone: s.gone.Load(), ReadFails: s.readFails.Load(), Stale: s.stale.Load(), Gaps: s.gaps.Load(),
		ReadBuffer: s.readBuffer, KernelFilter: s.kernelFilter,
	}
}
