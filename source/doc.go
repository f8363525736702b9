// Package source holds procwall's event model and the Source interface that
// every event source implements.
//
// An [Event] is one observation: a process was forked, executed an image,
// exited, initiated traffic to a remote address; or one report: a detector
// says a process is risky, an assessment says it is safe. Events carry event
// time, and process identity is the pair (pid, start time) — see [ProcID].
//
// # Sources
//
// Each sub-package is one source: replay (recorded traces), procfs (a
// snapshot of /proc), procconn (the kernel's netlink proc connector), ftrace
// (tracefs tracepoints), sockdiag (socket owners over NETLINK_SOCK_DIAG) and
// nflog (outbound flows via netfilter NFLOG). Users may write their own: a
// Source is a blocking reader with a Close.
//
// # Lifecycle and concurrency
//
// Sources start no goroutines of their own. Next blocks; Close unblocks it,
// after which Next returns an error for which errors.Is(err, os.ErrClosed)
// holds. A finished recording returns io.EOF. Next must be called from one
// goroutine at a time; Close is safe from any goroutine. The composing type
// (procwall.Protector) owns the goroutines that call Next.
//
// # Privileges
//
// This package needs none. Kernel sources document what they need.
package source
