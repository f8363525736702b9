// Package risk decides what to do about risky processes.
//
// # Containment (seed 000)
//
// [Containment] turns a detector's [Report] on a process R into a decision
// record ([Decision], spec/decisions.md):
//
//  1. R has associated addresses (remote IPs it initiated traffic to): block
//     those; the target is R ("risk_process").
//  2. Otherwise block the associated addresses of R's main process (see
//     proctree.Tree.MainProcess); the target is the main process
//     ("main_process"). WithScope(ScopeDescendants) widens this to the main
//     process's descendants.
//  3. Nothing to block: a "none" record saying why (unknown process, no
//     addresses, only protected addresses, below the blocking level).
//
// A report may name a process that already exited: the tree keeps exited
// processes resolvable for its retention period. An [Assessment] that says
// safe releases every active block whose target or risk process it names;
// an address stays blocked while another active block holds it, and the
// release record lists only the addresses no longer blocked.
//
// Containment only decides. The Protector applies a block decision with an
// enforce.Enforcer and calls Commit once the enforcer accepted it, so the
// ledger of active blocks never holds a block the packet filter refused.
//
// # Concurrency
//
// A Containment is not safe for concurrent use; the Protector serialises
// its calls. It needs no privilege and does no I/O.
package risk
