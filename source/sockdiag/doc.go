// Package sockdiag finds which process owns which Internet socket, to
// recover associations (process → remote address) that other sources
// missed: sockets opened before procwall started, and traffic on kernels
// without the probes the tracing sources need.
//
// It dumps TCP and UDP sockets of both address families over
// NETLINK_SOCK_DIAG (inet_diag), and maps each socket's inode to the
// processes holding it by reading the links under /proc/<pid>/fd
// ("socket:[<inode>]"). Two caches keep this cheap without trusting stale
// data: a socket seen in an earlier snapshot (the same kernel cookie, which
// is never reused) keeps its holders while each holder still runs with the
// same start time, so a reused pid is not taken for the old process; and
// the inode → fd map from the last /proc scan is used only after the cached
// fd link is read again and still names the inode, so an inode the kernel
// reused after a close is not taken for the old socket. A new socket is
// looked for first among the fds of the processes that held the last ones
// found (a busy process opens many), then by one rescan of /proc. Start
// times are cached per process with a pidfd, which tells whether that very
// process still runs even after its pid was reused. Sockets without an inode (time-wait,
// orphaned) or whose holder cannot be found are counted in [Stats] and never
// guessed. Raw and ICMP sockets are not dumped: their inodes never enter the
// map of an Internet socket (the wrong attribution OpenSnitch users met,
// evilsocket/opensnitch #387, #929).
//
// # Events
//
// [Conn.Snapshot] turns sockets with a known remote end into events: an
// established (or connecting, or closing) TCP socket is KindConnect, or
// KindAccept when its local port is also a listening port; a connected UDP
// socket is KindSend. A socket held by several processes (inherited across
// fork) yields one event per holder. Events carry the snapshot time, the
// holder's identity (pid and start time: /proc/<pid>/stat field 22 in
// clock ticks × 10 ms, in nanoseconds since boot; 0 when unreadable), the
// socket's UID, and Origin "sockdiag".
//
// [Source] polls on an interval the caller chooses and reports each socket
// once (by its kernel cookie), so that it serves as a fallback source
// alongside live ones.
//
// # Lifecycle, privileges and concurrency
//
// [Dial] opens a netlink socket in the current network namespace, or in
// the one given with [WithNetNS]; Close releases it. Reading other users'
// /proc/<pid>/fd needs root (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH); the
// dump itself needs no privilege. A [Conn] is safe for concurrent use. A
// [Source] follows the source package's rules: Next from one goroutine,
// Close from any, no goroutines of its own.
//
// The package works on Linux only; elsewhere Dial and NewSource return an
// error wrapping source.ErrNotSupported.
package sockdiag
