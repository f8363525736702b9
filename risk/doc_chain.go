package risk

// This file documents attack-chain tracking (seed 003) and its record
// schema. The lead merges a summary into doc.go.
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
