// Package proctree is procwall's concurrent process tree store.
//
// # Identity
//
// A process is identified by (pid, start time) — [ID]. A pid alone is reused
// by the kernel, so every query that outlives a process takes an ID; an ID
// with Start 0 names the live process with that pid, or else the most recent
// exited one. When no source reports a start time the tree synthesises one
// from event time (Process.StartKnown is then false), so identities stay
// unique; a GUID (Sysmon's ProcessGuid) also tells reused pids apart.
//
// # Events
//
// [Tree.Apply] takes source events: fork links a child under its parent,
// exec records a new image (the node keeps its exec history), exit marks the
// process exited with its code. Threads are folded into their thread group
// by the sources (Event.PID is a thread-group id). Inconsistent input —
// exit before fork, exec of an unknown pid, a parent that is not there,
// duplicate forks, parentage that would form a cycle, pid 0 — has
// documented behaviour (see Apply) and is reported as an *AnomalyError;
// it never panics and never leaves a cycle.
//
// # Lineage, exits and reaping
//
// The tree edge is the lineage parent (the process that forked the child).
// An exited process stays in the tree, keeping its descendants' lineage
// intact, for a retention period of event time (default 5 minutes); the
// process the kernel re-parented each orphan to (the nearest living
// subreaper ancestor, else pid 1) is recorded. [Tree.Reap] collects exited
// processes in two passes — one marks, the next removes — driven by the
// caller's clock, so tests drive time instead of sleeping. Removing an
// exited process moves its remaining children under their reaper. A hard
// cap on exited processes (WithMaxExited) bounds memory under churn.
//
// # Main process
//
// [Tree.MainProcess] walks from a process towards the root and stops before
// the first boundary process: pid 1, kthreadd (pid 2) and kernel threads,
// and executables whose base name matches the boundary patterns (default
// systemd, init, containerd-shim*, conmon). The last process reached is the
// main process. MainNearestWithTraffic is offered as an alternative policy.
//
// # Resync
//
// [Tree.Resync] converges the tree to a snapshot of /proc (source/procfs)
// after lost events or at start-up, and reports what changed.
//
// # Concurrency
//
// A Tree is safe for concurrent use by many readers and writers. One mutex
// guards it (writes — every event — far outnumber queries in an agent, and
// a plain mutex costs a writer less than a reader/writer lock); queries are
// short and return copies ([Process]); iteration ([Tree.All],
// [Tree.Descendants]) yields from a consistent snapshot taken when it
// starts, so no caller holds the lock while it works. Leaf package: it
// starts no goroutines and needs no privilege.
package proctree
