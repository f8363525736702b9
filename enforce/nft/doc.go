// Package nft is the nftables back-end of procwall's enforcer: it talks to
// the kernel over netlink (github.com/google/nftables), without the nft
// command.
//
// # What it installs
//
// One table of procwall's own, "inet procwall" by default (WithTable),
// holding two hash sets of addresses, blocked4 (ipv4_addr) and blocked6
// (ipv6_addr),
// and base chains that drop traffic to (output, daddr) and from (input,
// saddr) the addresses in the sets, with a counter per rule and, with
// WithNFLOG, an NFLOG group on every drop so that blocked packets can be
// seen (source/nflog). WithForward adds a forward chain. WithTimeouts gives
// the elements kernel timeouts from the blocks' Expires, so that a block
// lapses even while procwall is down. Blocking and
// releasing add and delete set elements — never rewrite rules — and every
// change is one netlink batch, committed atomically by the kernel. Render
// writes the same table as an `nft -f` script.
//
// # Lifecycle
//
// New opens a netlink connection (in the namespace of WithNetNSFd, or the
// caller's), loads the interception configuration from the state file
// (WithStateFile) and reconciles the kernel with it: in one batch the table
// is deleted and rebuilt with exactly the configured addresses, so that
// after a crash nothing is lost, nothing stale is left and nothing is
// duplicated (the rebuild resets the counters). Every successful Block and
// Release is persisted to the state file (written, synced, renamed) after
// the kernel accepted it; a failure on either side is rolled back. Close
// releases the connection and leaves the table in place: blocks outlive the
// process. Remove deletes the table.
//
// # Privileges
//
// CAP_NET_ADMIN in the network namespace used, and a kernel with nf_tables
// (and nfnetlink_log for WithNFLOG).
//
// # Cost
//
// The state file is rewritten on every change: its cost grows with the
// number of blocked addresses. Set lookups are hashed, so the per-packet
// cost does not grow with the number of addresses.
//
// # Concurrency
//
// An Enforcer is safe for concurrent use; operations are serialised.
//
// On systems other than Linux, New returns ErrNotSupported.
package nft
