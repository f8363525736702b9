// Package procconn is procwall's process event source on the kernel's
// netlink proc connector: fork, exec, exit (with code and signal) and the
// attribute changes uid, gid, sid, ptrace, comm and coredump, as
// source.Event values in event time.
//
// # Lifecycle
//
// [Open] dials NETLINK_CONNECTOR, joins the CN_IDX_PROC multicast group,
// sets a large receive buffer (SO_RCVBUFFORCE, [DefaultReadBuffer]) and
// sends PROC_CN_MCAST_LISTEN. It first offers the kernel the proc_input
// form of the request, which carries a per-socket event filter (Linux 6.6
// and later): the kernel acknowledges it, and only the selected kinds
// ([WithEvents]) are queued on the socket. An older kernel ignores that
// form; Open notices the missing acknowledgement, subscribes the old way
// and filters on arrival. [Stats].KernelFilter says which happened.
//
// [Source.Next] blocks in read(2) on the socket (through the Go runtime's
// poller, via mdlayher/netlink's raw connection), decodes one message into
// a fixed-size record without allocating, and converts it. Close sends
// PROC_CN_MCAST_IGNORE, closes the socket and so unblocks a pending Next,
// which then returns an error wrapping os.ErrClosed. The source starts no
// goroutine.
//
// # What the events carry
//
//   - fork: KindFork, PID the child's thread-group id, PPID the parent's
//     (the real parent, tgid), Start the child's start time read from
//     /proc/<pid>/stat ([WithForkStart]; Gone when the child was already gone
//     or its pid reused).
//   - exec: KindExec enriched from /proc at once: PPID, Start, Exe, Argv,
//     Comm, Cwd, effective UID and the cgroup path in Reason as
//     "cgroup=PATH" ([WithExecDetails]). If the process exited (or is a
//     zombie, or its pid was already reused: its start time is after the
//     event) before it could be read, Gone is set and these fields are
//     left empty: they are never guessed. A process that execs twice
//     before its first exec is read shows the second image.
//   - exit: KindExit; the kernel's exit_code is a wait status: a normal exit
//     sets HasCode and Code, a killing signal sets Signal (and Reason "core
//     dumped" when it dumped core). exit_signal, the signal the parent gets
//     (SIGCHLD), is not reported.
//   - uid and gid: KindAttr; UID/HasUID is the new effective uid, Reason
//     "ruid=R euid=E" or "rgid=R egid=E". sid: Reason "setsid". ptrace:
//     Reason "ptrace attach tracer=TGID" or "ptrace detach". comm: Comm is
//     the new task name. coredump: Reason "coredump".
//
// Start times follow procwall's convention: field 22 of /proc/<pid>/stat in
// nanoseconds since boot (see source/procfs). Exits and attribute events
// carry Start 0 (the live process with that pid). Event times are the
// kernel's CLOCK_MONOTONIC timestamps converted to wall time with an offset
// measured at every read.
//
// # Threads
//
// The connector reports every task. A fork whose child pid differs from
// its tgid creates a thread, not a process: it is folded into its thread
// group and not reported, like the exits, uid, gid, comm and ptrace events
// of threads other than the group leader; [Stats].Threads counts them. An
// exec is reported for the thread group (the kernel makes the exec'ing
// thread the leader). If a leader thread exits before the other threads,
// its exit is reported then, as the process's.
//
// # Loss and resync
//
// When events come faster than they are read, the kernel drops them and the
// next read fails with ENOBUFS. Next then returns an error wrapping
// source.ErrLost and counts it in [Stats].Overflows; the source stays
// usable. The caller resyncs: [Source.Resync] (or [Resync] with a snapshot
// of its own) compares the processes it knew with /proc and returns a
// [Diff] (added, vanished) and [Diff.Events] turns it into events. After a
// resync, events queued from before the snapshot that contradict it are
// dropped ([Stats].Stale), so the caller's view converges to /proc.
//
// The kernel also drops an event silently, for every listener, when it
// cannot allocate the message. Without the kernel's per-socket filter every
// event reaches the socket, and the source follows the kernel's per-cpu
// sequence numbers: a gap is reported like an overflow (ErrLost, counted
// in [Stats].Gaps). With the filter, filtered events leave gaps too, so
// this check is off.
//
// # Filtering
//
// [WithEvents] selects kinds (in the kernel where it can). With
// [WithDescendantsOf] only the given processes and their descendants (as
// forked while the source runs, and through resync snapshots) are reported;
// other events count in [Stats].Filtered.
//
// # Privileges
//
// Binding to the proc connector's multicast group needs CAP_NET_ADMIN, and
// the kernel answers only requests from the initial user and pid
// namespaces. Reading another user's /proc/<pid>/exe and cwd needs root
// (CAP_SYS_PTRACE); without it those fields stay empty.
//
// # Concurrency
//
// Next and Resync must be called from one goroutine at a time (the Protector
// owns it); Close and Stats are safe from any goroutine. On other systems
// than Linux, Open returns an error wrapping source.ErrNotSupported.
package procconn
