package sockdiag

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
)

// allStates asks for sockets in every state but time-wait (which has no
// inode and no owner).
const allStates = ^uint32(0) &^ (1 << uint32(TimeWait)) &^ (1 << uint32(SynRecv))

// Conn is a NETLINK_SOCK_DIAG socket with a cache of socket holders. It is
// safe for concurrent use.
type Conn struct {
	mu     sync.Mutex
	nl     *netlink.Conn
	cfg    config
	own    *owners
	starts map[int]uint64 // per call
	// byCookie remembers the holders found for each socket of the last
	// snapshot. A socket cookie is never reused while the system runs, so
	// a socket seen again keeps its holders as long as each holder is
	// alive with the same start time (one stat read per process, not one
	// fd link per socket).
	byCookie map[uint64][]source.ProcID
	pids     map[int]pidEntry // see start
	stats    Stats
}

// Dial opens a sock_diag netlink socket.
func Dial(opts ...Option) (*Conn, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	nl, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: cfg.netns})
	if err != nil {
		return nil, &source.OpError{Op: "dial sock_diag", Err: err}
	}
	return &Conn{nl: nl, cfg: cfg, own: newOwners(cfg.procRoot), byCookie: map[uint64][]source.ProcID{}}, nil
}

// Close releases the netlink socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	for pid, pe := range c.pids {
		unix.Close(pe.fd)
		delete(c.pids, pid)
	}
	c.mu.Unlock()
	if err := c.nl.Close(); err != nil {
		return &source.OpError{Op: "close sock_diag", Err: err}
	}
	return nil
}

// execute sends one request and parses the inet_diag_msg replies.
func (c *Conn) execute(family uint8, proto source.Proto, states uint32, id sockID, dump bool) ([]Socket, error) {
	flags := netlink.Request
	if dump {
		flags |= netlink.Dump
	}
	msgs, err := c.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: flags},
		Data:   marshalReq(family, proto, states, id),
	})
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil, fmt.Errorf("sock_diag: %w", os.ErrClosed)
		}
		return nil, err
	}
	out := make([]Socket, 0, len(msgs))
	for _, m := range msgs {
		s, err := parseMsg(m.Data, proto)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Sockets dumps the sockets of the given protocols (TCP and UDP when none
// are given) in both address families, in every state but time-wait and
// syn-recv.
func (c *Conn) Sockets(protos ...source.Proto) ([]Socket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sockets(protos)
}

func (c *Conn) sockets(protos []source.Proto) ([]Socket, error) {
	if len(protos) == 0 {
		protos = []source.Proto{source.ProtoTCP, source.ProtoUDP}
	}
	var all []Socket
	for _, p := range protos {
		if p != source.ProtoTCP && p != source.ProtoUDP {
			return nil, &source.OpError{Op: "dump sockets", Err: fmt.Errorf("protocol %v: only tcp and udp are supported", p)}
		}
		for _, fam := range []uint8{afInet, afInet6} {
			ss, err := c.execute(fam, p, allStates, sockID{cookie: noCookie}, true)
			if err != nil {
				return nil, &source.OpError{Op: fmt.Sprintf("dump %v sockets (family %d)", p, fam), Err: err}
			}
			all = append(all, ss...)
		}
	}
	c.stats.Dumps++
	c.stats.Sockets += uint64(len(all))
	return all, nil
}

// Find returns the socket of a flow given by its local and remote ends, as
// a packet leaving this host shows them. It asks the kernel for the exact
// socket first (in the flow's family, then IPv4-mapped in IPv6 for
// dual-stack sockets) and falls back to a dump matched in user space, where
// an unconnected UDP socket bound to the local port (or the wildcard
// address) matches. It returns an error wrapping ErrNotFound when no socket
// matches.
func (c *Conn) Find(proto source.Proto, local, remote netip.AddrPort) (Socket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.find(proto, local, remote)
}

func (c *Conn) find(proto source.Proto, local, remote netip.AddrPort) (Socket, error) {
	if proto != source.ProtoTCP && proto != source.ProtoUDP {
		return Socket{}, &source.OpError{Op: "find socket", Err: fmt.Errorf("protocol %v: only tcp and udp are supported", proto)}
	}
	local, remote = unmapAP(local), unmapAP(remote)
	type try struct {
		fam      uint8
		src, dst netip.AddrPort
	}
	var tries []try
	if local.Addr().Is4() {
		tries = append(tries, try{afInet, local, remote})
		m := func(ap netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
		}
		tries = append(tries, try{afInet6, m(local), m(remote)})
	} else {
		tries = append(tries, try{afInet6, local, remote})
	}
	for _, t := range tries {
		ids := []sockID{{src: t.src, dst: t.dst, cookie: noCookie}}
		if proto == source.ProtoUDP {
			// The kernel's UDP lookup reads the id with source and
			// destination swapped; ask both ways.
			ids = append(ids, sockID{src: t.dst, dst: t.src, cookie: noCookie})
		}
		for _, id := range ids {
			ss, err := c.execute(t.fam, proto, allStates, id, false)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return Socket{}, &source.OpError{Op: "find socket", Err: err}
				}
				continue // ENOENT and friends: try the next form
			}
			for i := range ss {
				// The kernel may answer with a socket that only shares
				// the local port (a listener): take exact matches only.
				if matchFlow(&ss[i], local, remote) {
					return ss[i], nil
				}
			}
		}
	}
	all, err := c.sockets([]source.Proto{proto})
	if err != nil {
		return Socket{}, err
	}
	var best *Socket
	for i := range all {
		s := &all[i]
		if !matchFlow(s, local, remote) {
			continue
		}
		if !s.peerless() {
			return *s, nil // connected to this remote: the best match
		}
		if best == nil || best.Src.Addr().IsUnspecified() && !s.Src.Addr().IsUnspecified() {
			best = s // bound to the local address beats the wildcard
		}
	}
	if best != nil {
		return *best, nil
	}
	return Socket{}, &source.OpError{Op: "find socket", Err: fmt.Errorf("%v %v -> %v: %w", proto, local, remote, ErrNotFound)}
}

// Holders returns the processes that hold the socket with the given inode
// (several after a fork), or none when no process does (any more).
func (c *Conn) Holders(inode uint64) ([]source.ProcID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts = map[int]uint64{}
	m, err := c.own.resolve([]uint64{inode})
	c.syncOwnerStats()
	if err != nil {
		return nil, err
	}
	return c.ids(m[inode]), nil
}

// maxPidfds bounds the pidfds kept to validate cached start times.
const maxPidfds = 256

// pidEntry is a process's start time and a pidfd that says whether that
// very process still runs.
type pidEntry struct {
	start uint64
	fd    int
}

// start returns a process's start time, memoised per call in c.starts and
// across calls in c.pids: reading /proc/<pid>/stat costs tens of
// microseconds (the kernel sums the thread group's statistics), while a
// pidfd answers "is this the same process" with one syscall, even after
// the pid was reused. Only for the host's /proc (pidfds name processes of
// our pid namespace).
func (c *Conn) start(pid int) uint64 {
	if st, ok := c.starts[pid]; ok {
		return st
	}
	useFD := c.cfg.procRoot == "/proc"
	if pe, ok := c.pids[pid]; ok {
		if pidfdAlive(pe.fd) {
			c.starts[pid] = pe.start
			return pe.start
		}
		unix.Close(pe.fd)
		delete(c.pids, pid)
	}
	fd := -1
	if useFD && len(c.pids) < maxPidfds {
		if f, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK); err == nil {
			fd = f
		}
	}
	st := startTime(c.cfg.procRoot, pid)
	// The stat read belongs to the pidfd's process if it still runs now
	// (a pid is not reused while its process lives).
	if fd >= 0 {
		if st != 0 && pidfdAlive(fd) {
			if c.pids == nil {
				c.pids = map[int]pidEntry{}
			}
			c.pids[pid] = pidEntry{start: st, fd: fd}
		} else {
			unix.Close(fd)
		}
	}
	c.starts[pid] = st
	return st
}

// pidfdAlive reports whether the process a pidfd refers to still runs
// (EPERM: it runs, we may not signal it).
func pidfdAlive(fd int) bool {
	err := unix.PidfdSendSignal(fd, 0, nil, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// ids turns pids into identities with start times (memoised per call). with start times (memoised per call).
func (c *Conn) ids(pids []int) []source.ProcID {
	out := make([]source.ProcID, len(pids))
	for i, pid := range pids {
		out[i] = source.ProcID{PID: pid, Start: c.start(pid)}
	}
	return out
}

// Snapshot dumps TCP and UDP sockets and returns one event per holder of
// each socket with a remote end (see the package documentation for the
// kinds). Sockets with a remote end but no holder are counted in
// Stats.Unattributed.
func (c *Conn) Snapshot() ([]source.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	evs, _, err := c.snapshot(nil)
	return evs, err
}

// snapshot is Snapshot; when seen is non-nil, associations in it are
// skipped, and the returned set holds every association reported by this
// dump or an earlier one that is still present.
// seenKey identifies a reported association of a socket (a UDP socket may
// be connected again to another peer).
type seenKey struct {
	cookie uint64
	dst    netip.AddrPort
}

func (c *Conn) snapshot(seen map[seenKey]struct{}) ([]source.Event, map[seenKey]struct{}, error) {
	now := c.cfg.now()
	all, err := c.sockets(nil)
	if err != nil {
		return nil, nil, err
	}
	listeners := map[listenKey][]netip.Addr{}
	for i := range all {
		if all[i].State == Listen && all[i].Proto == source.ProtoTCP {
			k := listenKey{all[i].Proto, all[i].Src.Port()}
			listeners[k] = append(listeners[k], all[i].Src.Addr())
		}
	}
	var cur map[seenKey]struct{}
	if seen != nil {
		cur = make(map[seenKey]struct{}, len(seen))
	}
	type cand struct {
		s    *Socket
		kind source.Kind
	}
	var cands []cand
	for i := range all {
		s := &all[i]
		if s.peerless() || !(s.Proto == source.ProtoTCP && s.State.hasPeer() || s.Proto == source.ProtoUDP && s.State == Established) {
			continue
		}
		if cur != nil {
			k := seenKey{s.Cookie, s.Dst}
			if _, ok := seen[k]; ok {
				cur[k] = struct{}{}
				continue
			}
		}
		k := classify(s, listeners)
		if k == source.KindUnknown {
			// A peer but no inode: time-wait leftovers, orphans.
			c.stats.Unattributed++
			continue
		}
		cands = append(cands, cand{s, k})
	}
	c.starts = map[int]uint64{}
	known := make(map[uint64][]source.ProcID, len(cands))
	var inodes []uint64
	for _, cd := range cands {
		if ids, ok := c.byCookie[cd.s.Cookie]; ok && c.alive(ids) {
			known[cd.s.Cookie] = ids
			c.stats.Cached++
			continue
		}
		inodes = append(inodes, cd.s.Inode)
	}
	var holders map[uint64][]int
	if len(inodes) > 0 {
		holders, err = c.own.resolve(inodes)
		c.syncOwnerStats()
		if err != nil {
			return nil, nil, err
		}
	}
	evs := make([]source.Event, 0, len(cands))
	for _, cd := range cands {
		ids, ok := known[cd.s.Cookie]
		if !ok {
			ids = c.ids(holders[cd.s.Inode])
			known[cd.s.Cookie] = ids
		}
		if len(ids) == 0 {
			// Not marked seen: the next dump tries again.
			c.stats.Unattributed++
			continue
		}
		if cur != nil {
			cur[seenKey{cd.s.Cookie, cd.s.Dst}] = struct{}{}
		}
		for _, id := range ids {
			evs = append(evs, source.Event{
				Time:   now,
				Kind:   cd.kind,
				PID:    id.PID,
				Start:  id.Start,
				Proto:  cd.s.Proto,
				Src:    unmapAP(cd.s.Src),
				Dst:    unmapAP(cd.s.Dst),
				UID:    int(cd.s.UID),
				HasUID: true,
				Origin: "sockdiag",
			})
		}
	}
	// Keep holders of this dump's sockets only.
	for k, ids := range known {
		if len(ids) == 0 {
			delete(known, k)
		}
	}
	c.byCookie = known
	return evs, cur, nil
}

// alive reports whether every process is running with the start time
// given (memoised per call in c.starts).
func (c *Conn) alive(ids []source.ProcID) bool {
	for _, id := range ids {
		if st := c.start(id.PID); st == 0 || st != id.Start {
			return false
		}
	}
	return len(ids) > 0
}

func (c *Conn) syncOwnerStats() {
	c.stats.ProcScans = c.own.scans
	c.stats.Verified = c.own.verified
	c.stats.Stale = c.own.stale
	c.stats.HotHits = c.own.hotHits
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Source reports associations from periodic socket dumps. Each socket is
// reported once, on the first dump that finds it with a holder.
type Source struct {
	c        *Conn
	interval time.Duration
	seen     map[seenKey]struct{}
	queue    []source.Event
	first    bool
	closed   chan struct{}
	once     sync.Once
}

// NewSource opens a sock_diag source that dumps sockets at once and then
// every interval (which must be > 0).
func NewSource(interval time.Duration, opts ...Option) (*Source, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("sockdiag: interval must be > 0, have %v", interval)
	}
	c, err := Dial(opts...)
	if err != nil {
		return nil, err
	}
	return &Source{c: c, interval: interval, seen: map[seenKey]struct{}{}, first: true, closed: make(chan struct{})}, nil
}

// Name implements source.Source.
func (s *Source) Name() string { return "sockdiag" }

// Conn returns the source's connection, for Stats and lookups.
func (s *Source) Conn() *Conn { return s.c }

// Next implements source.Source: it returns the next new association,
// waiting for the next dump when none is queued.
func (s *Source) Next() (source.Event, error) {
	for len(s.queue) == 0 {
		if !s.first {
			t := time.NewTimer(s.interval)
			select {
			case <-s.closed:
				t.Stop()
				return source.Event{}, fmt.Errorf("sockdiag: %w", os.ErrClosed)
			case <-t.C:
			}
		}
		select {
		case <-s.closed:
			return source.Event{}, fmt.Errorf("sockdiag: %w", os.ErrClosed)
		default:
		}
		s.first = false
		s.c.mu.Lock()
		evs, cur, err := s.c.snapshot(s.seen)
		s.c.mu.Unlock()
		if err != nil {
			select {
			case <-s.closed:
				return source.Event{}, fmt.Errorf("sockdiag: %w", os.ErrClosed)
			default:
			}
			return source.Event{}, err
		}
		s.seen = cur
		s.queue = evs
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	return ev, nil
}

// Close stops the source and unblocks Next.
func (s *Source) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.c.Close()
	})
	return err
}
