package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/procwall/procwall/source"
)

// ErrMalformed is wrapped by errors about packets whose headers cannot be
// parsed.
var ErrMalformed = errors.New("malformed packet")

// Defaults.
const (
	DefaultGroup = 3140
	DefaultTable = "procwall_nflog"
	DefaultQueue = 4096
	// snaplen is how much of each packet is copied: enough for IPv6 with
	// a few extension headers and the transport ports.
	snaplen = 128
)

// Stats are counters of a [Source].
type Stats struct {
	Packets      uint64 // packets read from the NFLOG group
	Events       uint64 // events queued for Next
	Unattributed uint64 // packets whose sending socket or process was not found
	NoSocket     uint64 // packets without a UID attribute: sent by no socket (not attributed)
	UIDMismatch  uint64 // packets whose found socket had another UID (not attributed)
	Malformed    uint64 // packets whose headers could not be parsed
	Dropped      uint64 // events dropped because the queue was full
	Overruns     uint64 // kernel reports of a socket overflow (ENOBUFS): packets lost
}

// Option configures [Open].
type Option func(*config)

type config struct {
	group    uint16
	table    string
	netns    int
	queue    int
	procRoot string
	logger   *slog.Logger
}

func defaultConfig() config {
	return config{group: DefaultGroup, table: DefaultTable, queue: DefaultQueue, procRoot: "/proc",
		logger: slog.New(slog.DiscardHandler)}
}

// WithGroup sets the NFLOG group (default DefaultGroup). Nothing else on
// the host may use it.
func WithGroup(g uint16) Option { return func(c *config) { c.group = g } }

// WithTable sets the name of the inet table the source creates and deletes
// (default DefaultTable).
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// WithNetNS works in the network namespace open at fd instead of the
// current one: the table, the NFLOG socket and socket lookups. The caller
// keeps fd open until Open returns.
func WithNetNS(fd int) Option { return func(c *config) { c.netns = fd } }

// WithQueue sets how many events may wait for Next (default DefaultQueue,
// at least 1).
func WithQueue(n int) Option { return func(c *config) { c.queue = max(n, 1) } }

// WithProcRoot reads processes from root instead of /proc.
func WithProcRoot(root string) Option { return func(c *config) { c.procRoot = root } }

// WithLogger sets the logger for diagnostics (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// flow is what a logged packet says about its flow.
type flow struct {
	proto    source.Proto
	src, dst netip.AddrPort
}

// parsePacket reads the IP header and the ports of a TCP or UDP packet.
func parsePacket(b []byte) (flow, error) {
	if len(b) < 1 {
		return flow{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	var f flow
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return flow{}, fmt.Errorf("%w: IPv4 header of %d bytes", ErrMalformed, len(b))
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return flow{}, fmt.Errorf("%w: IPv4 header length %d of %d bytes", ErrMalformed, ihl, len(b))
		}
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return flow{}, fmt.Errorf("%w: IPv4 fragment without ports", ErrMalformed)
		}
		f.proto = source.Proto(b[9])
		f.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), 0)
		f.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), 0)
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return flow{}, fmt.Errorf("%w: IPv6 header of %d bytes", ErrMalformed, len(b))
		}
		next := b[6]
		f.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), 0)
		f.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), 0)
		rest := b[40:]
		// Skip extension headers (hop-by-hop, routing, destination
		// options; a fragment header only when it is the first fragment).
	exts:
		for range 8 {
			switch next {
			case 0, 43, 60:
				if len(rest) < 8 {
					return flow{}, fmt.Errorf("%w: truncated IPv6 extension header", ErrMalformed)
				}
				n := 8 + int(rest[1])*8
				if len(rest) < n {
					return flow{}, fmt.Errorf("%w: truncated IPv6 extension header", ErrMalformed)
				}
				next, rest = rest[0], rest[n:]
				continue
			case 44:
				if len(rest) < 8 {
					return flow{}, fmt.Errorf("%w: truncated IPv6 fragment header", ErrMalformed)
				}
				if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
					return flow{}, fmt.Errorf("%w: IPv6 fragment without ports", ErrMalformed)
				}
				next, rest = rest[0], rest[8:]
				continue
			default:
				break exts
			}
		}
		f.proto = source.Proto(next)
		l4 = rest
	default:
		return flow{}, fmt.Errorf("%w: IP version %d", ErrMalformed, b[0]>>4)
	}
	switch f.proto {
	case source.ProtoTCP, source.ProtoUDP:
	default:
		return flow{}, fmt.Errorf("%w: protocol %v is not tcp or udp", ErrMalformed, f.proto)
	}
	if len(l4) < 4 {
		return flow{}, fmt.Errorf("%w: %v header of %d bytes", ErrMalformed, f.proto, len(l4))
	}
	f.src = netip.AddrPortFrom(f.src.Addr(), binary.BigEndian.Uint16(l4[0:]))
	f.dst = netip.AddrPortFrom(f.dst.Addr(), binary.BigEndian.Uint16(l4[2:]))
	return f, nil
}
