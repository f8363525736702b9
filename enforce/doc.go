// Package enforce holds the Enforcer interface that turns containment
// decisions into packet-filter rules, and the interception configuration
// ([Config]) that every back-end shares: the declarative set of active
// blocks, persisted atomically and reconciled at start-up.
//
// # Back-ends
//
// Sub-packages implement Enforcer: dryrun (records what it would do; no
// privilege), nft (nftables over netlink) and iptables (the iptables
// command). enforcetest is a conformance suite for custom enforcers.
//
// # Semantics
//
// A [Block] holds a set of addresses. An address is dropped while any active
// block holds it, so releasing one block never unblocks an address another
// block still needs. Addresses in the [Protected] set (loopback and the
// unspecified addresses by default, plus configured networks such as the
// rule server's) are never blocked: a block naming one is refused whole with
// an error wrapping [ErrProtected].
//
// # Errors
//
// Back-ends return an [*OpError] naming the back-end, the operation and the
// block, wrapping [ErrExists], [ErrNotFound], a [*ProtectedError] (which
// wraps [ErrProtected]), os.ErrClosed or the packet filter's own error;
// test with errors.Is and errors.As.
//
// # Concurrency
//
// Enforcers are safe for concurrent use. [Config] and [Protected] are plain
// values: not safe for concurrent mutation.
package enforce
