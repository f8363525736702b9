// Package rules is procwall's layered real-time protection rule engine
// (seed 001): rules fetched from a server and updated live, applied in a
// server-given order per monitor-point type with signature, digest, process
// and destination filters; a person is asked only about what no rule
// decides, with a risk level to help, and "always allow/deny" answers
// become remembered user rules.
//
// # Bundles
//
// Rules travel as bundles: JSON documents described by [Schema] (format 1)
// and parsed by [ParseBundle] with precise errors ([BundleError] names the
// field, e.g. "rules[3] (r-ssh).match.md5[0]"). A bundle holds a version,
// the rules, per monitor-point type ("general", "self_protection") the
// execution order of the filter layers (user, signature, md5, sha256,
// process, destination, target), named lists referenced from rules as
// "@name" (inline items, or a file by path, version and sha256), the
// self-protection paths and the persistence locations to watch. Within a
// layer rules run by descending priority, then file order; the first
// matching rule wins. Published bundles are signed envelopes ([Sign],
// [OpenSigned]): ed25519 over the payload; a signed bundle must pin every
// referenced list file with its sha256. testdata/example-bundle.json in
// this package is a complete example.
//
// # Judging
//
// [Engine.Decide] evaluates a [Request] (made from a source event with
// [FromEvent], or by a permission source such as source/fanotify) against
// the active bundle and returns a [Verdict]: allow, deny, or ask when no
// rule matches. Rules are indexed by exact executable path, name, target
// path, digest, signer and destination prefix, so a decision looks at a
// handful of candidates, not every rule. Digests (MD5 and SHA-256) are
// computed once per file content and cached by (device, inode, size,
// mtime, ctime) in a [DigestCache] — a changed file is rehashed; events
// of a running process whose identity (pid, start) is known reuse the
// digests of the image it runs without a stat, since a running image
// cannot change under it. Signers come from [Verifier]s:
// [Debian] (package provenance through the dpkg database → signer
// "debian:<package>") and [Ed25519] (detached signatures and signed
// manifests → "ed25519:<key>"). [Engine.Judge] completes the decision: it
// scores the executable's risk ([RiskScorer], default [ExeRisk]), asks the
// [Decider] within a timeout and applies the default action when nobody
// answers. [Terminal] is an interactive decider.
//
// # Decision records
//
// Every Judge produces a [Record] for procwall's decision stream
// (spec/decisions.md), one JSON object per line:
//
//	field    type        meaning
//	ts       RFC 3339    event time of the request
//	action   string      allow, deny (ask never reaches the stream: Judge resolves it)
//	pid      int         the process that acts
//	start    uint64      its start time, when known (identity is pid+start)
//	exe      string      the executable judged (for exec: the program started)
//	point    string      general or self_protection
//	op       string      exec, connect, open or write
//	target   string      the target file (exec, open, write)
//	dst      "ip:port"   the destination (connect)
//	rule     string      the deciding rule id; "user:<id>" for a remembered decision
//	by       string      rule, user, decider, timeout or default
//	reason   string      the rule's description, or why nothing matched, with risk reasons
//	level    string      risk level of the executable when a person was asked: low … critical
//	version  string      the active bundle version
//
// Example:
//
//	{"ts":"2026-11-22T10:00:00Z","action":"deny","pid":4242,"exe":"/tmp/x","point":"general","op":"exec","target":"/tmp/x","rule":"bad-md5","by":"rule","reason":"known miner","version":"2026.11.22-1"}
//
// # Live update
//
// An [Updater] verifies and loads bundles from a [Fetcher] — [HTTPSource]
// (conditional GET with ETag / If-None-Match) or [FileSource] — once
// ([Updater.Update]) or in a loop with backoff ([Updater.Poll]). A bad,
// unsigned or tampered bundle is rejected with an error and the last good
// bundle stays in force; [Engine.Version] and [Updater.Status] report the
// active one. With [Updater.CacheDir] the last good bundle and its list
// files also survive a restart: [Updater.UpdateOrCache] starts from them
// when the source is down, slow or bad, verifying them like a fetch.
//
// # Lifecycle, privileges, concurrency
//
// An Engine is created with [New] and needs no cleanup; all its methods
// are safe for concurrent use and a bundle swap is atomic. Judge runs the
// decider in a goroutine of its own so that a decider ignoring its
// context cannot hold a verdict past the timeout; Poll blocks its caller
// until the context ends. No privilege is needed; reading executables
// and the dpkg database needs the usual read permissions.
package rules
