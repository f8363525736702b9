// Package ftrace is a procwall event source over tracefs: process fork,
// exec and exit, and the remote address a process connects or sends to,
// at the moment it happens, without polling. It is
// seed 000's "hook on the send path that records the calling process and
// the receiver's address", built from the kernel's own trace events.
//
// # Modes and the events each covers
//
// Both modes trace processes with tracepoints:
//
//   - task/task_newtask (falls back to sched/sched_process_fork on kernels
//     without it): a new task. Its clone flags tell a new thread
//     (CLONE_THREAD) from a new process; threads are folded into their
//     thread group and produce no event. A new process yields a fork event
//     (PID = child, PPID = the creating task's thread group, or that
//     group's parent with CLONE_PARENT). sched_process_fork fires for
//     threads too and carries no flags; with it the source asks
//     /proc/<child>/status for the child's Tgid.
//   - sched/sched_process_exec: an exec event, Exe = the filename passed to
//     execve (as given, possibly relative), Argv from /proc/<pid>/cmdline
//     when the process is still there, else Gone is set.
//   - sched/sched_process_exit: an exit event when the thread group's last
//     task exits (the group_dead field; on kernels without it, when the
//     group leader exits). The tracepoint carries no exit code: HasCode is
//     false.
//
// ModeTracepoints (what these machines have: no CONFIG_KPROBES) adds:
//
//   - sock/inet_sock_set_state, filtered in the kernel to TCP_CLOSE ->
//     TCP_SYN_SENT. That transition happens in the connecting task's
//     context (tcp_v4_connect / tcp_v6_connect), so the task's pid is the
//     connector: a connect event with Proto tcp (MPTCP counts as tcp), Dst
//     = daddr:dport (IPv4, IPv6; v4-mapped IPv6 is unmapped) and Src = the
//     local address with port 0 — the kernel picks the source port right
//     after this transition.
//   - fib/fib_table_lookup and fib6/fib6_table_lookup, filtered in the
//     kernel to successful UDP output lookups (proto 17, err 0, iif
//     loopback) and in the source to task context (the trace entry's
//     hardirq/softirq/NMI flags clear). udp_sendmsg on an unconnected
//     socket and connect() of a UDP socket look the route up in the
//     calling task: a send event with Proto udp, Dst = dst:dport, Src when
//     the source address is chosen. connect()'s two lookups (without, then
//     with the source address), and repeated lookups of one socket to one
//     destination within 1 ms, are reported once. WithUDP(false) turns
//     this off.
//
// UDP gap without kprobes: sends on a connected UDP socket do no route
// lookup (its connect was reported), IPv6 sockets reuse a cached route for
// repeated sends to the same destination (the first is reported), and a
// task sending through a UDP tunnel device (VXLAN, GENEVE) in its own
// context is reported as sending to the tunnel's remote end. What a
// per-datagram view needs — which process sent each UDP flow — is covered
// by source/sockdiag (socket owners) and source/nflog (outbound flows via
// NFLOG). The syscalls/* tracepoints were considered: on these kernels
// sys_enter_connect and sys_enter_sendto record only the user pointer to
// the sockaddr, not the address, so they add no attribution and are not
// enabled.
//
// ModeKprobes (where kprobe_events exists and can fetch $argN) replaces
// inet_sock_set_state and the route lookups with kprobes on tcp_v4_connect, tcp_v6_connect
// (connect, tcp), ip4_datagram_connect, ip6_datagram_connect (connect,
// udp; raw and ping sockets also connect through these), udp_sendmsg and
// udpv6_sendmsg (send, udp, the destination of msg_name). The fetch
// arguments read the family, port and address of the struct sockaddr_in /
// sockaddr_in6 the function is passed — a user ABI layout, so no BTF or
// kernel headers are needed. Sends on connected UDP sockets carry no
// msg_name: they are counted in Stats.Skipped, the connect having been
// reported. sock_sendmsg, seed 000's hook, is deliberately not probed: it
// fires for every TCP write, Unix and netlink message; its UDP part with
// a per-datagram destination is exactly udp_sendmsg/udpv6_sendmsg.
//
// [Probe] answers whether a feature is there (nil), is not
// (source.ErrNotSupported), or cannot be told (another error); definitive
// answers are cached.
//
// # Reading: binary pages, not text
//
// The source reads per_cpu/cpuN/trace_pipe_raw ring-buffer pages and
// decodes records with the offsets of the events' `format` files, chosen
// over the text trace_pipe by measurement (2-core Debian 12 VM, kernel
// 6.18, go1.26; the package benchmarks):
//
//   - Kernel side (BenchmarkKernelRead, the same 2000 events per round):
//     text trace_pipe 0.63 M events/s — the kernel printf-formats every
//     line at read time — against 15.9 M events/s for raw pages read and
//     walked.
//   - Go side (BenchmarkParse vs BenchmarkParseText, per event): binary
//     58-112 ns/event (fork 58, exit 65, connect4 103, exec 104, connect6
//     112), 0 allocations; the minimal text parser 340-1360 ns/event, with
//     an allocation per connect (address parsing).
//
// Text also gives microsecond timestamps and a task column in which a
// comm may hold spaces and dashes; binary pages carry nanosecond
// timestamps and flag lost events in the page header. Records are merged
// across CPUs in timestamp order: a record is held back until every CPU
// has been read past its time (plus 2 ms for records reserved but not yet
// committed), so a child's exec never precedes its fork; the cost is that
// latency.
//
// # Identity
//
// PID is always the thread-group id (the process). Start is
// /proc/<pid>/stat field 22 in nanoseconds since boot (ticks × 1e9 /
// CLK_TCK), read as soon as the record is decoded and cached per process
// until its exit; it is 0 when the process was gone before it could be
// read. Event times are the trace clock "boot" converted to wall time.
//
// A record names the task (thread) it fired in; the source maps it to its
// thread group from the task-creation records it has seen, else from
// /proc/<tid>/status. A record of a thread that existed before Open and
// was gone from /proc before the record was read cannot be attributed: it
// is counted in Stats.Unattributed, never guessed.
//
// # Loss
//
// The instance's ring buffer overwrites its oldest pages when the reader
// falls behind. The kernel flags the next page read; the source then
// sums the CPU's overrun counters (per_cpu/cpuN/stats), adds them to
// [Source.Lost], and Next returns an error wrapping source.ErrLost once.
// The source stays usable; the caller resynchronises (from a /proc
// snapshot) and calls Next again.
//
// # Lifecycle
//
// Open mounts tracefs at /sys/kernel/tracing if nothing is mounted there,
// removes instances (instances/procwall-<pid>-<rand>) and kprobe groups
// (procwall_<pid>_<rand>) left by procwall processes that are dead — or
// whose pid now names a process started after the object was created —
// then creates its own instance, defines its kprobes (kprobe mode),
// enables only the events above and starts tracing. Close disables
// tracing and removes the instance and the kprobes. A tracefs Open mounted
// at /sys/kernel/tracing stays mounted (it is the machine's standard,
// shared mount); one mounted at another root (WithRoot) is unmounted.
//
// # Privileges
//
// Root (CAP_SYS_ADMIN) for tracefs and mounting it, and reads of
// /proc/<pid>/stat, status and cmdline. Trace events carry pids of the
// initial pid namespace: the source must run in it (a host agent, or a
// container sharing the host's pid namespace), or pids and /proc disagree.
//
// # Concurrency
//
// A Source starts no goroutines. Next blocks in epoll_wait on the per-CPU
// files and an eventfd; Close writes the eventfd, which unblocks Next,
// then tears down. Next must be called from one goroutine at a time;
// Close, Lost, Stats, Mode and Instance are safe from any goroutine.
package ftrace
