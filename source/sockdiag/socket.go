package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/procwall/procwall/source"
)

// ErrNotFound is returned (wrapped) by Find when the kernel has no socket
// for the flow.
var ErrNotFound = errors.New("socket not found")

// ErrMalformed is wrapped by errors about kernel replies that cannot be
// parsed.
var ErrMalformed = errors.New("malformed sock_diag message")

// State is a socket state as the kernel numbers TCP states (UDP sockets
// use Established when connected, Close otherwise).
type State uint8

// Socket states (include/net/tcp_states.h).
const (
	Established State = 1
	SynSent     State = 2
	SynRecv     State = 3
	FinWait1    State = 4
	FinWait2    State = 5
	TimeWait    State = 6
	Close       State = 7
	CloseWait   State = 8
	LastAck     State = 9
	Listen      State = 10
	Closing     State = 11
)

var stateNames = [...]string{"", "established", "syn-sent", "syn-recv", "fin-wait-1",
	"fin-wait-2", "time-wait", "close", "close-wait", "last-ack", "listen", "closing"}

// String returns the state's name as ss prints it.
func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// hasPeer reports whether a socket in this state has a remote end.
func (s State) hasPeer() bool {
	switch s {
	case Established, SynSent, FinWait1, FinWait2, CloseWait, LastAck, Closing:
		return true
	}
	return false
}

// Socket is one Internet socket as the kernel reports it.
type Socket struct {
	Proto  source.Proto
	State  State
	Src    netip.AddrPort // local end
	Dst    netip.AddrPort // remote end; invalid address for unconnected sockets
	UID    uint32
	Inode  uint64 // 0 for sockets no file refers to (time-wait, orphaned)
	Cookie uint64 // the kernel's socket cookie, unique while the socket lives
}

// Stats are counters of a [Conn].
type Stats struct {
	Dumps        uint64 // socket dumps made
	Sockets      uint64 // sockets seen in dumps
	Unattributed uint64 // sockets with a peer but no holder (no inode, or none found)
	ProcScans    uint64 // full scans of /proc/*/fd
	Verified     uint64 // cached holders re-checked and found valid
	Stale        uint64 // cached holders found stale (fd closed, inode reused)
	Cached       uint64 // sockets seen before whose holders were still running
	HotHits      uint64 // new sockets found among the fds of recent holders, without a full scan
}

// Option configures [Dial] and [NewSource].
type Option func(*config)

type config struct {
	netns    int
	procRoot string
	now      func() time.Time
	logger   *slog.Logger
}

func defaultConfig() config {
	return config{procRoot: "/proc", now: time.Now, logger: slog.New(slog.DiscardHandler)}
}

// WithNetNS makes the netlink socket in the network namespace open at fd
// (a file of /run/netns/<name> or /proc/<pid>/ns/net). The caller keeps fd
// open until Dial returns.
func WithNetNS(fd int) Option { return func(c *config) { c.netns = fd } }

// WithProcRoot reads processes' file descriptors from root instead of
// /proc (the proc mount of another pid namespace, or a test fixture).
func WithProcRoot(root string) Option { return func(c *config) { c.procRoot = root } }

// WithClock sets the clock that stamps snapshot events (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets the logger for diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Netlink constants of inet_diag (include/uapi/linux/inet_diag.h).
const (
	sockDiagByFamily = 20
	reqLen           = 56
	msgLen           = 72
	afInet           = 2
	afInet6          = 10
)

// sockID is struct inet_diag_sockid.
type sockID struct {
	src, dst netip.AddrPort
	ifindex  uint32
	cookie   uint64
}

// noCookie is INET_DIAG_NOCOOKIE: do not match on the cookie.
const noCookie = ^uint64(0)

// marshalReq encodes struct inet_diag_req_v2.
func marshalReq(family uint8, proto source.Proto, states uint32, id sockID) []byte {
	b := make([]byte, reqLen)
	b[0] = family
	b[1] = uint8(proto)
	binary.NativeEndian.PutUint32(b[4:], states)
	putID(b[8:], family, id)
	return b
}

func putID(b []byte, family uint8, id sockID) {
	binary.BigEndian.PutUint16(b[0:], id.src.Port())
	binary.BigEndian.PutUint16(b[2:], id.dst.Port())
	putAddr(b[4:20], family, id.src.Addr())
	putAddr(b[20:36], family, id.dst.Addr())
	binary.NativeEndian.PutUint32(b[36:], id.ifindex)
	binary.NativeEndian.PutUint32(b[40:], uint32(id.cookie))
	binary.NativeEndian.PutUint32(b[44:], uint32(id.cookie>>32))
}

func putAddr(b []byte, family uint8, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if family == afInet {
		v4 := a.Unmap().As4()
		copy(b, v4[:])
		return
	}
	v6 := a.As16()
	copy(b, v6[:])
}

// parseMsg decodes struct inet_diag_msg (attributes after it are ignored).
func parseMsg(b []byte, proto source.Proto) (Socket, error) {
	if len(b) < msgLen {
		return Socket{}, fmt.Errorf("%w: inet_diag_msg of %d bytes, want %d", ErrMalformed, len(b), msgLen)
	}
	family := b[0]
	var src, dst netip.Addr
	switch family {
	case afInet:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	case afInet6:
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return Socket{}, fmt.Errorf("%w: address family %d", ErrMalformed, family)
	}
	s := Socket{
		Proto:  proto,
		State:  State(b[1]),
		Src:    netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[4:])),
		UID:    binary.NativeEndian.Uint32(b[64:]),
		Inode:  uint64(binary.NativeEndian.Uint32(b[68:])),
		Cookie: uint64(binary.NativeEndian.Uint32(b[44:])) | uint64(binary.NativeEndian.Uint32(b[48:]))<<32,
	}
	dport := binary.BigEndian.Uint16(b[6:])
	if !dst.IsUnspecified() || dport != 0 {
		s.Dst = netip.AddrPortFrom(dst, dport)
	}
	return s, nil
}

// peerless reports whether the socket has no remote end.
func (s *Socket) peerless() bool { return !s.Dst.Addr().IsValid() }

// listenKey identifies a listening port for telling accepted sockets from
// connected ones.
type listenKey struct {
	proto source.Proto
	port  uint16
}

// classify returns the event kind for a socket with a peer, given the
// local listening endpoints, or KindUnknown when the socket reports no
// association.
func classify(s *Socket, listeners map[listenKey][]netip.Addr) source.Kind {
	if s.peerless() || s.Inode == 0 {
		return source.KindUnknown
	}
	switch s.Proto {
	case source.ProtoTCP:
		if !s.State.hasPeer() {
			return source.KindUnknown
		}
		if s.State != SynSent {
			for _, a := range listeners[listenKey{s.Proto, s.Src.Port()}] {
				if a.IsUnspecified() || a.Unmap() == s.Src.Addr().Unmap() {
					return source.KindAccept
				}
			}
		}
		return source.KindConnect
	case source.ProtoUDP:
		if s.State != Established {
			return source.KindUnknown
		}
		return source.KindSend
	}
	return source.KindUnknown
}

// matchFlow reports whether socket s can be the sender of a packet from
// local to remote (both unmapped): the local port equal, the local address
// equal or the wildcard, and the remote equal — or, for UDP only, no remote
// (an unconnected socket). A TCP socket without a remote is a listener and
// never sends a flow's first packet.
func matchFlow(s *Socket, local, remote netip.AddrPort) bool {
	src := unmapAP(s.Src)
	if src.Port() != local.Port() || (!src.Addr().IsUnspecified() && src.Addr() != local.Addr()) {
		return false
	}
	if s.peerless() {
		return s.Proto == source.ProtoUDP && s.State != Listen
	}
	return unmapAP(s.Dst) == remote
}

// unmapAP unmaps an IPv4-mapped address in an address and port.
func unmapAP(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}
