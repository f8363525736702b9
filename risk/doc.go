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
// # Host graph
//
// [Graph] holds processes (with their lineage), remote addresses, the
// associations between them (outbound: connect, send; inbound: accept) with
// the first and last time each was seen, and each node's behaviours: risk
// reports (with level), rule denials and blocks. Everything is in event
// time; what is older than the graph's retention is forgotten.
//
// # Early warning (seed 004)
//
// A [Warner] assesses one node N (a process or an address) at time now for
// a [WarnTarget] (period T, the behaviour kinds that count, the lowest risk
// level that counts). With the [WarnConfig] weights:
//
//  1. Related nodes, each with a relation active within [now − T, now]:
//     for a process, its parent and children (direct), further ancestors
//     and descendants up to LineageDepth (indirect), the addresses it used
//     (direct) and the other processes that used those addresses
//     (indirect; an address with more than MaxAddrFanout users is not
//     followed); for an address, the processes that used it (direct) and
//     their ancestors (indirect). A node reached both ways is direct. At
//     most MaxRelated nodes ("truncated" says when the cap was hit).
//  2. The safety probability of a related node at time t from its counted
//     behaviours b in a window [s, t], each with a fresh safety probability
//     q_b (RiskProbability by level, DenyProbability, BlockProbability) and
//     age a_b = t − t_b:
//     p = Π_b (1 − (1 − q_b)·2^(−a_b/HalfLife)).
//     Older behaviour weighs less; a node without behaviour has p = 1. A
//     safe assessment of a process (an assess event with safe) resolves its
//     behaviours. The security level is the number of LevelBounds at or
//     below p (0 is the least safe); a node at WarningLevel or below is a
//     warning node.
//  3. Trend: the period is cut into Buckets equal buckets; each warning
//     node (judged at the time of its latest counted behaviour, so that age
//     decay does not fake a rising trend) counts in the bucket of that
//     behaviour. With counts N_1..N_B (oldest first), the trend r is the
//     least-squares slope of N over the bucket index divided by max(1,
//     mean N), clamped to ±MaxTrend (for three buckets: (N_3 − N_1)/2 over
//     max(1, mean)). [Trend] computes it.
//  4. Per calculation window j (Windows: span S_j, weight τ_j), over the
//     related nodes whose relation was active within the last S_j and their
//     behaviours within it, the reference probability is the weighted
//     product Pref_j = Π_i p_i^(w_i), w_i = DirectWeight or IndirectWeight
//     (the probability that no related node compromises N, each doing so
//     with probability 1 − p_i^(w_i)). Clean nodes do not lower it; every
//     more risky neighbour does. It is corrected by the trend:
//     P_j = min(1, Pref_j·exp(−TrendGain·r)) ([Correct]).
//  5. P = Σ τ_j·P_j / Σ τ_j. The threshold moves with the trend:
//     θ = clamp(BaseThreshold + r·ThresholdUnit, 0, 1) ([Threshold]): a
//     rising count of warning nodes raises it (an earlier warning), a
//     falling one lowers it. N is warned about when P < θ.
//
// The seed's own formulas are garbled in its text; these keep its
// properties, which the tests check over generated inputs: more warning
// neighbours give a lower probability, a rising trend warns earlier, and
// older behaviour weighs less.
//
// # The warn record
//
// [Warner.Assess] returns a [Warning]; its JSON form (action "warn") is a
// record in the Protector's stream:
//
//	ts             RFC 3339   the assessment's event time
//	action         "warn"
//	target         string     the warning target's name
//	node           string     "process" or "addr": what was assessed
//	pid, start     int        the assessed process (start only when a source reported it)
//	name           string     its image name
//	addr           string     the assessed address (node "addr")
//	probability    number     P, the node's safety probability (4 decimals)
//	threshold      number     θ, the threshold after the trend moved it
//	trend          number     r, the warning-node trend
//	period_s       int        the target period T in seconds
//	buckets        [int]      warning nodes per time bucket of T, oldest first
//	windows        [object]   per calculation window: span_s, weight,
//	                          related (nodes active in it), warning_nodes,
//	                          reference (Pref_j), probability (P_j)
//	related        int        related nodes found (direct + indirect)
//	direct         int        of them directly related
//	indirect       int        of them indirectly related
//	warning_nodes  int        related nodes that are warning nodes
//	common_addrs   int        addresses not followed (more users than MaxAddrFanout); omitted when 0
//	truncated      bool       the related nodes were capped at MaxRelated; omitted when false
//	drivers        [object]   the related nodes that lowered P most (at most
//	                          MaxDrivers, largest w·(−ln p) first): node
//	                          ("process"/"addr"), pid, start, name, addr,
//	                          relation ("direct"/"indirect"), via ("parent",
//	                          "child", "ancestor", "descendant", "addr",
//	                          "shares_addr", "user", "user_ancestor"),
//	                          via_addr (the shared address), probability
//	                          (p over T), level, behaviours ([{ts, kind
//	                          "risk"/"deny"/"block", level}])
//	reason         string     a sentence naming P, θ, the trend and the drivers
//
// Example:
//
//	{"ts":"2026-11-22T10:00:00.004Z","action":"warn","target":"default","node":"process","pid":100,"name":"nginx",
//	 "probability":0.1966,"threshold":0.7,"trend":1,"period_s":86400,"buckets":[0,1],
//	 "windows":[{"span_s":86400,"weight":1,"related":2,"warning_nodes":1,"reference":0.3241,"probability":0.1966}],
//	 "related":2,"direct":2,"indirect":0,"warning_nodes":1,
//	 "drivers":[{"node":"process","pid":231,"name":"sh","relation":"direct","via":"child","probability":0.2,"level":0,
//	   "behaviours":[{"ts":"2026-11-22T10:00:00.004Z","kind":"risk","level":"high"}]}],
//	 "reason":"safety probability 0.20 is below the threshold 0.70 (base 0.50, trend +1.00); 1 of 2 related nodes are warning nodes; driven by sh (231) (direct, child)"}
//
// # Composing them
//
// procwall.WithWarning and procwall.WithChains make the Protector do all of
// the following; this is what an agent composing the pieces itself does.
// One [Graph] feeds both components; all three are driven by event time,
// start no goroutines and are not safe for concurrent use (call them under
// the Protector's lock, as Containment):
//
//		g := risk.NewGraph(risk.WithGraphRetention(period))   // ≥ WarnTarget.Period
//		w, err := risk.NewWarner(g, risk.DefaultWarnConfig())
//		c, err := risk.NewChains(g, risk.DefaultChainConfig())
//
//	 1. Every event, of every kind, before anything else acts on it:
//	    g.Observe(ev) (it rejects, and counts, invalid events).
//	 2. Behaviours that are not events: for a committed block decision,
//	    g.Note(Behaviour{Kind: BehaviourBlock}) on its target process and on
//	    each blocked address; for a rule-engine denial, BehaviourDeny on the
//	    process (and on the address, if the verdict names one).
//	 3. After a risk event, a block or a denial on node n: emit every record
//	    of w.Around(n, ev.Time) (the related processes that now cross their
//	    threshold, deduplicated by Cooldown/RewarnDelta).
//	 4. On a risk report at or above the blocking level (or a block, or a
//	    warning the caller wants followed): c.Flag(n, ev.Time, reason);
//	    ErrTooManyChains and ErrUnknownNode are worth a log line only.
//	 5. As event time advances (on every event, or on the reap tick): emit
//	    every record of c.Window(ev.Time).
//	 6. After the tree is seeded at start-up or resynced after lost events:
//	    g.SyncTree(tree.Snapshot(), now), so that the graph has the lineage
//	    the events did not show, under the tree's identities (the graph
//	    synthesises unknown start times exactly as the tree does).
//
// *Warning and *Chain implement the Protector's record interface
// (RecordAction) and marshal to the records above.
//
// # Attack chains across windows (seed 003)
//
// [Chains] follows a flagged target (a process or an address: [Chains.Flag]
// on a risk report, a block, a warning) across successive event windows of
// ChainConfig.Window, aligned on multiples of Window since the Unix epoch.
//
//   - Baseline (the window where the target was flagged): the origin
//     (confidence 1), its ancestors up to UpstreamDepth as upstream nodes
//     (confidence UpstreamWeight^k for the k-th), and the peers the origin
//     and those ancestors accepted connections from in the last Lookback+1
//     windows (upstream, "accepted_from": where the attack may have come in).
//   - Each window k: the query set is the baseline nodes plus the chain
//     nodes that joined in the last Lookback windows or were active in
//     them (the chain as found in the previous windows). Around each
//     query node it looks for: children forked in k ("child",
//     ChildWeight), addresses first used in k ("connected"/"accepted",
//     AddrWeight), and for a chain address, processes that first used it
//     in k — "took_over" (TakeoverWeight) when every chain process using
//     it had exited by then, else "shared_addr" (SharedWeight). A
//     candidate's confidence is 1 − Π(1 − c_e) over its evidence, with c_e
//     = (confidence of the node it was found from) × weight, then boosted
//     the same way by a risk report in k (RiskBoost) and by running the
//     image of a baseline process (SameImageBoost). Candidates at or above
//     MinConfidence join (at most MaxNodes); the newcomers are looked
//     around again in the same window until nothing joins.
//   - [Chains.Window] closes the windows that ended by now and returns a
//     record for each chain's baseline window and for every later window
//     in which it grew. A chain that has not grown for IdleWindows windows
//     is dropped.
//
// A multi-stage attack that hops across processes — a shell in a web
// server runs a downloader that exits, and later an unrelated process
// takes over the downloader's address — is one chain:
// "nginx (100) → sh (231) → curl (300) → 203.0.113.9 → python3 (400)".
//
// # The chain record
//
//	ts            RFC 3339  the end of the window (event time)
//	action        "chain"
//	chain         string    the chain's ID ("chain-1"), stable across its records
//	origin        string    the flagged node ("sh (231)", or an address)
//	flagged       RFC 3339  when it was flagged
//	reason        string    why it was flagged (the Flag reason)
//	window        int       windows since the baseline (0: the baseline window)
//	window_start  RFC 3339  the window's start
//	window_end    RFC 3339  the window's end (= ts)
//	added         int       nodes that joined in this window
//	path          string    upstream → origin → the longest downstream path
//	nodes         [object]  every node of the chain so far, in joining order:
//	  node        string    "process" or "addr"
//	  pid, start  int       the process (start only when a source reported it)
//	  name        string    its image name
//	  addr        string    the address (node "addr")
//	  role        string    "origin", "upstream" or "downstream"
//	  hop         int       distance from the origin along "from"
//	  from        string    the chain node it was found from
//	  window      int       the window it joined (0: baseline)
//	  confidence  number    in [0, 1], 4 decimals
//	  evidence    [object]  kind ("flagged", "ancestor", "accepted_from",
//	                        "child", "connected", "accepted", "took_over",
//	                        "shared_addr", "risk", "same_image"), ts, from,
//	                        detail (a sentence)
//
// Example (window 1 of a shell that ran curl):
//
//	{"ts":"2026-11-22T10:02:00Z","action":"chain","chain":"chain-1","origin":"sh (231)","flagged":"2026-11-22T10:00:02Z",
//	 "reason":"reverse shell","window":1,"window_start":"2026-11-22T10:01:00Z","window_end":"2026-11-22T10:02:00Z","added":1,
//	 "path":"nginx (100) → sh (231) → curl (300)","nodes":[
//	 {"node":"process","pid":231,"name":"sh","role":"origin","hop":0,"window":0,"confidence":1,"evidence":[{"kind":"flagged","ts":"2026-11-22T10:00:02Z","detail":"reverse shell"}]},
//	 {"node":"process","pid":100,"name":"nginx","role":"upstream","hop":1,"from":"sh (231)","window":0,"confidence":0.8,"evidence":[{"kind":"ancestor","ts":"2026-11-22T10:00:00Z","from":"sh (231)","detail":"parent of sh (231)"}]},
//	 {"node":"process","pid":300,"name":"curl","role":"downstream","hop":1,"from":"sh (231)","window":1,"confidence":0.9,"evidence":[{"kind":"child","ts":"2026-11-22T10:01:01Z","from":"sh (231)","detail":"forked by sh (231)"}]}]}
//
// # Concurrency
//
// Containment, Graph, Warner and Chains are not safe for concurrent use;
// the Protector serialises their calls (procwall.WithWarning,
// procwall.WithChains turn the last three on). They need no privilege, do no
// I/O and start no goroutines.
package risk
