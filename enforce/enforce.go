package enforce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// Block is one entry of the interception configuration: a set of remote
// addresses whose traffic is dropped, and why.
type Block struct {
	// ID names the block; it is unique among active blocks.
	ID string `json:"id"`
	// Addrs are the blocked addresses, sorted and without duplicates.
	Addrs []netip.Addr `json:"addrs"`
	// Reason is a sentence a person can read.
	Reason string `json:"reason,omitempty"`
	// Target is the process whose associated addresses are blocked.
	Target source.ProcID `json:"target"`
	// TargetKind says why the target was chosen: "risk_process" or
	// "main_process" (or empty for a block made by hand).
	TargetKind string `json:"target_kind,omitempty"`
	// Risk is the process reported as risky (equal to Target when
	// TargetKind is "risk_process"; zero for a block made by hand).
	Risk source.ProcID `json:"risk"`
	// Created is the event time the block was taken.
	Created time.Time `json:"created"`
	// Expires, when not zero, is when the block lapses by itself.
	Expires time.Time `json:"expires,omitzero"`
}

// Enforcer applies blocks to a packet filter. Implementations must be safe
// for concurrent use. procwall ships nft, iptables and dryrun back-ends; the
// enforcetest package checks a custom implementation against the contract.
//
// The contract:
//   - Block installs b. An address is dropped while at least one active
//     block holds it. A block whose ID is already active is an error
//     wrapping ErrExists. A block that holds a protected address is refused
//     whole with an error wrapping ErrProtected, and nothing is changed.
//   - Release removes the block with that ID; addresses that another active
//     block holds stay dropped. An unknown ID is an error wrapping
//     ErrNotFound.
//   - Blocks lists the active blocks, sorted by ID.
//   - After Close every method returns an error wrapping os.ErrClosed.
type Enforcer interface {
	// Name is the back-end's name as it appears in decision records:
	// "nft", "iptables", "dryrun" or a custom name.
	Name() string
	Block(ctx context.Context, b Block) error
	Release(ctx context.Context, id string) error
	Blocks(ctx context.Context) ([]Block, error)
	Close() error
}

// Errors an Enforcer wraps.
var (
	// ErrProtected: a block named an address that must never be blocked.
	ErrProtected = errors.New("address is protected")
	// ErrExists: a block with that ID is already active.
	ErrExists = errors.New("block already exists")
	// ErrNotFound: no active block has that ID.
	ErrNotFound = errors.New("no such block")
)

// ProtectedError names the protected addresses a block asked for.
type ProtectedError struct {
	Addrs []netip.Addr
	// Prefixes are the protected networks the addresses fell in, one per
	// address.
	Prefixes []netip.Prefix
}

// Error implements error.
func (e *ProtectedError) Error() string {
	var b strings.Builder
	b.WriteString("refusing to block protected address")
	if len(e.Addrs) > 1 {
		b.WriteString("es")
	}
	for i, a := range e.Addrs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (in %s)", a, e.Prefixes[i])
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrProtected) hold.
func (e *ProtectedError) Unwrap() error { return ErrProtected }

// Protected is a set of networks that are never blocked.
type Protected struct {
	prefixes []netip.Prefix
}

// DefaultProtected returns the networks protected by default: IPv4 and IPv6
// loopback and the unspecified addresses.
func DefaultProtected() *Protected {
	return NewProtected(
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("0.0.0.0/32"),
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("::ffff:127.0.0.0/104"),
	)
}

// NewProtected returns a set protecting the given networks.
func NewProtected(prefixes ...netip.Prefix) *Protected {
	p := &Protected{}
	p.Add(prefixes...)
	return p
}

// Add protects more networks. It is not safe to call concurrently with
// other methods.
func (p *Protected) Add(prefixes ...netip.Prefix) {
	for _, pf := range prefixes {
		p.prefixes = append(p.prefixes, pf.Masked())
	}
}

// Prefixes returns the protected networks.
func (p *Protected) Prefixes() []netip.Prefix { return slices.Clone(p.prefixes) }

// Contains reports whether a is protected, and by which network.
func (p *Protected) Contains(a netip.Addr) (netip.Prefix, bool) {
	if p == nil {
		return netip.Prefix{}, false
	}
	for _, pf := range p.prefixes {
		if pf.Contains(a) {
			return pf, true
		}
		// An IPv4-mapped IPv6 address is the IPv4 address on the wire.
		if a.Is4In6() && pf.Contains(a.Unmap()) {
			return pf, true
		}
	}
	return netip.Prefix{}, false
}

// Check returns a *ProtectedError naming every protected address in addrs,
// or nil.
func (p *Protected) Check(addrs []netip.Addr) error {
	var pe *ProtectedError
	for _, a := range addrs {
		if pf, ok := p.Contains(a); ok {
			if pe == nil {
				pe = &ProtectedError{}
			}
			pe.Addrs = append(pe.Addrs, a)
			pe.Prefixes = append(pe.Prefixes, pf)
		}
	}
	if pe == nil {
		return nil
	}
	return pe
}

// Split returns the addresses of addrs that are not protected and those
// that are.
func (p *Protected) Split(addrs []netip.Addr) (allowed, protected []netip.Addr) {
	for _, a := range addrs {
		if _, ok := p.Contains(a); ok {
			protected = append(protected, a)
		} else {
			allowed = append(allowed, a)
		}
	}
	return allowed, protected
}

// SortAddrs sorts addresses and removes duplicates in place, returning the
// shortened slice. IPv4-mapped IPv6 addresses are unmapped first, so that
// one host has one spelling.
func SortAddrs(addrs []netip.Addr) []netip.Addr {
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(addrs)
}
