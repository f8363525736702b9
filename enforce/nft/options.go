package nft

import (
	"errors"

	"github.com/procwall/procwall/enforce"
)

// ErrNotSupported is returned by New on systems without nftables.
var ErrNotSupported = errors.New("nft: not supported on this system")

// DefaultTable is the name of the inet table procwall owns.
const DefaultTable = "procwall"

// Option configures an Enforcer (and Render).
type Option func(*options)

type options struct {
	state    string
	prot     *enforce.Protected
	netnsFd  int
	table    string
	forward  bool
	nflog    bool
	group    uint16
	prefix   string
	chunk    int
	priority int32
	timeouts bool
}

func newOptions(opts []Option) options {
	o := options{
		prot:     enforce.DefaultProtected(),
		netnsFd:  -1,
		table:    DefaultTable,
		prefix:   "procwall drop ",
		chunk:    1024,
		priority: -10,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithStateFile persists the interception configuration in path and
// reconciles the kernel with it at start-up. Without it the configuration
// lives only in memory and New starts from an empty table.
func WithStateFile(path string) Option { return func(o *options) { o.state = path } }

// WithProtected replaces the protected networks (default:
// enforce.DefaultProtected()).
func WithProtected(p *enforce.Protected) Option { return func(o *options) { o.prot = p } }

// WithNetNSFd makes the enforcer work in the network namespace that fd
// refers to (for example an open /run/netns/NAME). The caller keeps fd
// open until Close.
func WithNetNSFd(fd int) Option { return func(o *options) { o.netnsFd = fd } }

// WithTable names the inet table (default DefaultTable).
func WithTable(name string) Option { return func(o *options) { o.table = name } }

// WithForward also drops forwarded traffic to and from blocked addresses.
func WithForward() Option { return func(o *options) { o.forward = true } }

// WithNFLOG sends every dropped packet to NFLOG group group, with the log
// prefix "procwall drop ".
func WithNFLOG(group uint16) Option {
	return func(o *options) { o.nflog, o.group = true, group }
}

// WithTimeouts gives set elements kernel timeouts: an address whose every
// holding block has an Expires stops being dropped by the kernel itself at
// the latest of them, even if procwall is not running to release it. The
// blocks stay in the configuration until released (see
// enforce.Config.Expired). Deleting elements then tolerates ones the kernel
// already timed out, and start-up always rebuilds the table. Each change
// costs time proportional to the whole configuration.
func WithTimeouts() Option { return func(o *options) { o.timeouts = true } }

// withChunk sets how many set elements go in one netlink message. A
// message's element list is one netlink attribute, whose length field has
// 16 bits: 1024 IPv6 elements (28 bytes each) stay well below 64 KiB.
func withChunk(n int) Option { return func(o *options) { o.chunk = n } }
