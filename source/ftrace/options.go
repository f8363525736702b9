package ftrace

import (
	"log/slog"
	"strconv"
)

// DefaultRoot is where tracefs is mounted (or gets mounted) by default.
const DefaultRoot = "/sys/kernel/tracing"

// Mode says which kernel events a Source uses for network attribution.
type Mode uint8

const (
	// ModeAuto uses kprobes when [FeatureKprobes] is supported, else
	// tracepoints.
	ModeAuto Mode = iota
	// ModeTracepoints uses sched/task tracepoints for processes,
	// sock/inet_sock_set_state for TCP connects and UDP output route
	// lookups (fib, fib6) for UDP sends, with the gaps the package
	// documentation lists.
	ModeTracepoints
	// ModeKprobes uses the same process tracepoints and kprobes on the TCP
	// and UDP connect paths and the UDP send path.
	ModeKprobes
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeTracepoints:
		return "tracepoints"
	case ModeKprobes:
		return "kprobes"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Feature is a kernel facility the source can use; see [Probe].
type Feature uint8

const (
	// FeatureTracepoints: tracefs instances and the sched, task and sock
	// tracepoints.
	FeatureTracepoints Feature = iota
	// FeatureKprobes: kprobe events (CONFIG_KPROBE_EVENTS, the
	// kprobe_events file) that can fetch function arguments ($argN).
	FeatureKprobes
)

// String returns the feature's name.
func (f Feature) String() string {
	switch f {
	case FeatureTracepoints:
		return "tracepoints"
	case FeatureKprobes:
		return "kprobes"
	}
	return "feature(" + strconv.Itoa(int(f)) + ")"
}

// Option configures [Open].
type Option func(*config)

type config struct {
	root     string
	proc     string
	mode     Mode
	log      *slog.Logger
	bufferKB int
	holdNS   int64
	udp      bool
}

func defaultConfig() config {
	return config{root: DefaultRoot, proc: "/proc", mode: ModeAuto, log: slog.New(slog.DiscardHandler), holdNS: 2e6, udp: true}
}

// WithRoot sets the tracefs mount point (default [DefaultRoot]). When no
// tracefs is mounted there, Open mounts one; Close unmounts it again,
// except at DefaultRoot, the machine's standard mount, which other tracers
// share.
func WithRoot(dir string) Option { return func(c *config) { c.root = dir } }

// WithMode chooses the mode instead of probing (default [ModeAuto]).
func WithMode(m Mode) Option { return func(c *config) { c.mode = m } }

// WithLogger sets the logger for set-up, clean-up and loss messages.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithBufferKB sets the per-CPU ring-buffer size of the source's instance
// in KiB (default: the kernel's default for new instances). A bigger
// buffer rides out longer bursts without loss.
func WithBufferKB(kb int) Option { return func(c *config) { c.bufferKB = kb } }

// WithUDP turns the tracepoint mode's UDP send events (from UDP output
// route lookups, see the package documentation) on or off (default on).
func WithUDP(on bool) Option { return func(c *config) { c.udp = on } }

// Stats are a Source's counters.
type Stats struct {
	Records      uint64 // ring-buffer records decoded
	Events       uint64 // events returned by Next
	Lost         uint64 // records lost: dropped by the kernel (overruns) or undecodable
	Undecodable  uint64 // of which records or pages the source could not decode
	LossReports  uint64 // times Next returned an ErrLost error
	Threads      uint64 // thread creations and exits folded into their thread group
	Skipped      uint64 // records that carry no reportable event (see Source.Next)
	Unattributed uint64 // records whose task's process could not be found in /proc
}
