//go:build !linux

package sockdiag

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/procwall/procwall/source"
)

var errNotSupported = fmt.Errorf("sockdiag: %w (needs linux)", source.ErrNotSupported)

// Conn is a NETLINK_SOCK_DIAG socket; it exists on Linux only.
type Conn struct{}

// Dial returns an error wrapping source.ErrNotSupported.
func Dial(opts ...Option) (*Conn, error) { return nil, errNotSupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// Sockets returns an error wrapping source.ErrNotSupported.
func (c *Conn) Sockets(protos ...source.Proto) ([]Socket, error) { return nil, errNotSupported }

// Find returns an error wrapping source.ErrNotSupported.
func (c *Conn) Find(proto source.Proto, local, remote netip.AddrPort) (Socket, error) {
	return Socket{}, errNotSupported
}

// Holders returns an error wrapping source.ErrNotSupported.
func (c *Conn) Holders(inode uint64) ([]source.ProcID, error) { return nil, errNotSupported }

// Snapshot returns an error wrapping source.ErrNotSupported.
func (c *Conn) Snapshot() ([]source.Event, error) { return nil, errNotSupported }

// Stats returns zero counters.
func (c *Conn) Stats() Stats { return Stats{} }

// Source is the polling sock_diag source; it exists on Linux only.
type Source struct{}

// NewSource returns an error wrapping source.ErrNotSupported.
func NewSource(interval time.Duration, opts ...Option) (*Source, error) { return nil, errNotSupported }

// Name implements source.Source.
func (s *Source) Name() string { return "sockdiag" }

// Conn returns nil.
func (s *Source) Conn() *Conn { return nil }

// Next returns an error wrapping source.ErrNotSupported.
func (s *Source) Next() (source.Event, error) { return source.Event{}, errNotSupported }

// Close does nothing.
func (s *Source) Close() error { return nil }
