package procconn

import "github.com/procwall/procwall/source/procfs"

// DefaultReadBuffer is the socket receive buffer asked for by default: 64
// MiB, set with SO_RCVBUFFORCE (root ignores net.core.rmem_max), falling
// back to SO_RCVBUF. It holds on the order of 100k pending events.
const DefaultReadBuffer = 64 << 20

type config struct {
	readBuffer   int
	events       EventMask
	roots        []int
	execDetails  bool
	forkStart    bool
	kernelFilter bool
	fs           *procfs.FS
}

func defaultConfig() config {
	return config{readBuffer: DefaultReadBuffer, events: EventAll, execDetails: true, forkStart: true, kernelFilter: true}
}

// Option configures [Open].
type Option func(*config)

// WithReadBuffer sets the socket receive buffer size in bytes (default
// [DefaultReadBuffer]). A small buffer overflows sooner: tests use one to
// provoke loss.
func WithReadBuffer(bytes int) Option { return func(c *config) { c.readBuffer = bytes } }

// WithEvents selects the event kinds to report (default [EventAll]). Where
// the kernel supports a per-socket filter (Linux 6.6 and later) the others
// are not even queued on the socket; elsewhere they are dropped on
// arrival and counted in [Stats].Filtered.
func WithEvents(mask EventMask) Option { return func(c *config) { c.events = mask } }

// WithDescendantsOf reports only the given processes and the processes
// forked from them (learned from fork events) while the source runs. Other
// events are dropped and counted in [Stats].Filtered.
func WithDescendantsOf(pids ...int) Option {
	return func(c *config) { c.roots = append(c.roots, pids...) }
}

// WithExecDetails turns the reading of /proc on exec events on or off
// (default on). Off, an exec event carries only the pid and time.
func WithExecDetails(on bool) Option { return func(c *config) { c.execDetails = on } }

// WithForkStart turns on or off (default on) reading the child's start
// time from /proc/<pid>/stat on fork events, so that a fork carries the
// child's identity (pid, start). It costs one small file read per fork.
func WithForkStart(on bool) Option { return func(c *config) { c.forkStart = on } }

// WithKernelFilter allows (default) or forbids the kernel's per-socket
// event filter. Forbidden, every event is received and the mask applied on
// arrival, as on kernels older than 6.6.
func WithKernelFilter(on bool) Option { return func(c *config) { c.kernelFilter = on } }

// WithProcFS reads process details from fs instead of /proc.
func WithProcFS(fs procfs.FS) Option { return func(c *config) { c.fs = &fs } }

// Stats are a Source's counters. They only grow, except ReadBuffer and
// KernelFilter, which describe the socket.
type Stats struct {
	Messages  uint64 // netlink messages received and decoded
	Events    uint64 // events returned by Next
	Overflows uint64 // socket overflows (ENOBUFS): each lost an unknown number of events
	Malformed uint64 // messages that could not be decoded (each returned as an error)
	Threads   uint64 // events of threads folded into their thread group (not reported)
	Filtered  uint64 // events dropped by WithDescendantsOf or by the event mask on arrival
	Gone      uint64 // fork and exec events whose process was gone before /proc could be read
	ReadFails uint64 // /proc reads that failed for another reason than the process being gone
	Stale     uint64 // events from before a resync's snapshot that it contradicts (dropped)
	// Gaps counts events missing from the kernel's per-cpu sequence numbers:
	// dropped by the kernel without an ENOBUFS, or the events an overflow
	// already reported (the gap then shows again once the queue is read, and
	// is reported again: a loss is never under-reported). It is followed
	// only when the kernel does not filter events for this socket
	// (KernelFilter false).
	Gaps uint64
	// ReadBuffer is the socket receive buffer the kernel granted, in bytes.
	ReadBuffer int
	// KernelFilter reports whether the kernel filters events per socket.
	KernelFilter bool
}
