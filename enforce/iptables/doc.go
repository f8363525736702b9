// Package iptables is the iptables back-end of procwall's enforcer, for
// hosts that manage their packet filter with iptables. It drives the
// iptables, ip6tables, iptables-restore and ip6tables-restore commands
// (github.com/coreos/go-iptables for queries and hooks).
//
// # What it installs
//
// In the filter table of IPv4 and IPv6, chains of procwall's own:
// PROCWALL-IN (jumped to from INPUT), PROCWALL-OUT (from OUTPUT), with
// WithForward PROCWALL-FWD (from FORWARD), and PROCWALL-DROP, which drops
// (after an NFLOG target with WithNFLOG). Each blocked address is one rule
// in PROCWALL-IN (-s ADDR) and one in PROCWALL-OUT (-d ADDR) jumping to
// PROCWALL-DROP, with the rule's counters. The jumps are inserted first in
// the built-in chains.
//
// Every change is one iptables-restore --noflush transaction per address
// family, committed atomically by the kernel: rules are appended and
// deleted by specification. Render writes the whole configuration as such a
// file; loading it flushes and refills procwall's chains only.
//
// # Cost at scale
//
// Rules are evaluated one after another: the per-packet cost grows
// linearly with the number of blocked addresses, and so does the time to
// delete a rule by specification (so a release of more than a few hundred
// addresses refills the chains from the configuration instead). ipset would avoid this but is not
// assumed to be installed. For more than a few thousand addresses use the
// nft back-end (hash sets).
//
// # Lifecycle
//
// New loads the state file (WithStateFile) and reconciles the kernel with
// it: procwall's chains are flushed and refilled from the configuration in
// one transaction, and exactly one jump from each built-in chain is left.
// Every successful Block and Release is persisted after the kernel accepted
// it. Close leaves the rules in place; Remove deletes them.
//
// # Network namespaces
//
// The iptables commands act on the network namespace of the process that
// runs them. With WithNetNS(path), every command is started from an OS
// thread that has entered that namespace (setns), and a child process
// inherits the namespace of the thread that forks it — so no "ip netns
// exec" wrapper is needed and the commands' output is read directly.
//
// # Privileges
//
// CAP_NET_ADMIN (root) and the Debian package iptables.
//
// # Concurrency
//
// An Enforcer is safe for concurrent use; operations are serialised.
//
// On systems other than Linux, New returns ErrNotSupported.
package iptables
