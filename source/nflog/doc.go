// Package nflog reports outbound flows seen by netfilter, attributed to the
// process that sent them: the association source for UDP (and TCP) on
// kernels without kprobes.
//
// # How it works
//
// [Open] creates procwall's own nftables table (inet procwall_nflog, see
// [WithTable]) with an output chain whose rules log the first packet of
// every new TCP and UDP flow to an NFLOG group:
//
//	table inet procwall_nflog {
//		chain output {
//			type filter hook output priority mangle; policy accept;
//			meta l4proto tcp ct state new log group 3140 snaplen 128
//			meta l4proto udp ct state new log group 3140 snaplen 128
//		}
//	}
//
// It reads the group with github.com/florianl/go-nflog/v2, parses each
// packet's IP and transport headers, and finds the sending socket with
// sock_diag (an exact lookup by the flow's ends, then a dump that matches an
// unconnected UDP socket by its local port; see the sockdiag package). The
// socket's holders under /proc/<pid>/fd are the processes. Only a socket
// that can have sent the packet is taken (same local port, local address or
// wildcard, same remote or an unconnected UDP socket), and its UID must equal
// the packet's NFLOG UID attribute; a packet without that attribute was sent
// by no socket (the kernel's own) and is never attributed. Otherwise the
// packet is counted as unattributed rather than attributed to a stranger
// (the failure modes of evilsocket/opensnitch #387 and #929). Each attributed
// packet yields a KindConnect (TCP) or KindSend (UDP) event per holder, with
// Src and Dst from the packet, Origin "nflog", and the process's start time
// (/proc/<pid>/stat field 22 × 10 ms in ns since boot, 0 when unreadable).
//
// A flow whose sender exited before the lookup, or whose socket is gone
// (a single datagram from a short-lived socket), cannot be attributed; it
// is counted in [Stats].Unattributed, never guessed.
//
// # Loss
//
// The library delivers packets on a goroutine of its own; the source hands
// them to Next through a bounded queue ([WithQueue]). When the queue is
// full, or the kernel reports that the netlink socket overflowed (ENOBUFS),
// the loss is counted and the next call of Next returns an error wrapping
// source.ErrLost with the number lost; the source stays usable.
//
// # Lifecycle, privileges and concurrency
//
// Open needs CAP_NET_ADMIN in the network namespace it works in (the
// current one, or the one given with [WithNetNS]) and root to read other
// processes' /proc/<pid>/fd. Close stops the reader, waits for it, and
// deletes the table; a table left by a crashed run is replaced on Open. Next
// is called from one goroutine at a time; Close and Stats are safe from any
// goroutine. Apart from the reader goroutine go-nflog requires, which Close
// stops, the source starts no goroutines.
//
// The package works on Linux only; elsewhere Open returns an error wrapping
// source.ErrNotSupported.
package nflog
