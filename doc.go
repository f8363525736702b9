// Package procwall contains network attacks by process lineage.
//
// A [Protector] keeps a live process tree (package proctree), knows which
// remote addresses every process initiated traffic to (package netassoc),
// and when a detector reports a process as risky it cuts that process's
// traffic — or, when the risky process hides inside a legitimate business
// process and has no traffic of its own, the traffic of that main process —
// with packet-filter rules (package enforce) that it releases again when the
// process is assessed safe (package risk). Every action it takes or declines
// to take is a decision record (spec/decisions.md) handed to a hook.
//
// # Data flow
//
//	sources ──events──▶ Protector ──▶ proctree (lineage, alive or recently exited)
//	(replay, procconn,      │     └─▶ netassoc (remote addresses per process)
//	 ftrace, sockdiag, …)   ├──▶ risk    (containment plan, release)
//	detector ──report──────▶│
//	                        └──▶ enforce (nft / iptables / dryrun) ──▶ decision records
//
// # Lifecycle
//
// New builds a Protector from options: sources, an enforcer (default: dry
// run), a record hook, a logger, and options for the tree, the index and
// containment. Run reads the sources until they are exhausted or the
// context ends, owning every goroutine it starts, and closes the sources
// and the enforcer before returning. Handle, Report and Assess feed events,
// risk reports and assessments directly — from an existing agent's own
// pipeline, or from tests. An agent that feeds everything through Handle
// and Report may run Run without sources: it then serves until its
// context ends (keeping an Assessor going) and shuts down as below; or it
// need not call Run at all, and closes its enforcer itself.
//
// Shutdown leaves the interception configuration consistent: blocks in
// force when Run returns stay in force (closing an enforcer releases
// nothing; a restarted agent finds them, see enforce/nft), and from then on
// Handle, Submit, Report, Assess and Release return ErrStopped rather than
// record a release that the closed enforcer would not carry out. Queries
// (Tree, Associations, ActiveBlocks, Metrics) keep working. When a source
// reports lost events, Run re-reads the running processes (WithResync)
// after applying the events that source delivered before the loss.
//
// # Concurrency
//
// A Protector is safe for concurrent use. Events, reports and assessments
// are applied one at a time; the record hook is called synchronously, in
// order, and must not call back into the Protector's Handle, Report or
// Assess.
//
// # Privileges
//
// The Protector itself needs none; live sources and real enforcers need
// root (CAP_NET_ADMIN, and for tracefs CAP_SYS_ADMIN). With recorded traces
// and the dry-run enforcer everything runs unprivileged, which is how
// `procwall replay` and unit tests use it.
package procwall
