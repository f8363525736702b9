// Package netassoc is procwall's process ↔ remote address index: which
// remote addresses each process initiated traffic to (its associated
// addresses, seed 000), and which peers it accepted connections from, kept
// apart.
//
// Each association is keyed by the process identity ([source.ProcID]), the
// direction, the remote address and the IP protocol, and carries the
// remote ports seen (sorted, at most a bounded number), the first and last
// time it was seen and a count. A reverse index maps each outbound address
// to the processes that used it.
//
// # Bounds
//
// The index is bounded in memory: at most [WithMaxPerProcess] associations
// per process and [WithMaxTotal] overall. When a new association would
// exceed a cap, the oldest association (by Last, of the process or of the
// whole index) is evicted first. Evictions, and ports not kept because an
// association already holds its maximum, are counted in [Stats]. Memory is
// proportional to the associations held, not to the updates seen: about
// 0.4 KB per association, up to 0.8 KB after heavy eviction churn (measured
// on amd64 with 16 ports per association at most; see TestBoundsMillions).
//
// Updating an existing association does not allocate. A process's entry
// disappears with its last association, so processes that only ever held
// evicted associations cost nothing.
//
// # Identity
//
// The index keys by the exact ProcID it is given; it does not resolve a
// pid with Start 0 to a full identity. The caller (the Protector's process
// tree) resolves identities before calling Record, and calls Forget when a
// process is reaped.
//
// # Addresses
//
// IPv4-mapped IPv6 addresses are stored unmapped (::ffff:192.0.2.1 is
// 192.0.2.1) and zones are dropped, so that one remote host has one key.
//
// # Lifecycle, privileges and concurrency
//
// An [Index] is a plain data structure: it starts no goroutines, needs no
// privileges and is safe for concurrent use by multiple goroutines.
package netassoc
