// Package provenance simplifies a process provenance tree around one alert,
// after seed 002: a full tree is far too large to read, so it keeps what
// matters for the alert and merges repeats into a graph of the key
// resources and how they relate, then exports the graph's features as a
// rule that other hosts load to alert on the same pattern.
//
// # Steps
//
// A [Tree] is built from events ([Tree.Add], [Tree.ReadFrom] with any
// source.Source, such as source/replay over native or Sysmon/seed-002
// records). Processes are keyed by GUID (Sysmon's ProcessGuid, seed 002's
// nodeid) when present, else by (pid, start); without a start time a pid
// names its most recent process and a new fork of a pid whose process
// exited starts a new node, so reused pids stay apart. A parent known only
// by the child's ParentExe/ParentArgv becomes a placeholder node.
//
// [Tree.Simplify] then runs the seed's steps:
//
//  1. From the alert's process (named by node id/GUID, pid, or
//     pid@start: [Tree.Resolve]) keep all its ancestors and all its
//     descendants, nothing else.
//  2. Drop processes of no interest by [Rule] patterns (default
//     [DefaultRules]: images bash and su, as in the seed), re-linking their
//     children to the nearest kept ancestor so that no path is lost. A
//     dropped process's resources are hoisted to that ancestor unless the
//     rule says "discard". The alert's own process is never dropped.
//  3. Split every command line into resources with a shell-aware
//     tokenizer ([ParseShell], [Extractor]): URLs, domains, IP addresses
//     and ports, file paths and names, download targets (wget -O, curl
//     -o/-O, redirections of a download), written and read files
//     (redirections, cp/mv/dd/tee), executed scripts (sh x.sh, ./x.sh,
//     python x.py, source), pipes into a shell (curl URL | sh executes
//     the URL), nested sh -c '...', su -c, $(...), `...`, socat EXEC:,
//     nc -c, /dev/tcp/HOST/PORT; plus the processes' file, DNS and
//     connection events.
//  4. Merge resources of the same type and name into one node each (one
//     node per file, URL, domain, address) and identical sibling
//     processes into one node with a count; edges say what happened.
//
// Simplify costs time linear in the alert's ancestors and descendants,
// not in the size of the tree. Step 5, [DeriveRule], turns the graph into
// a [FeatureRule]; a [Matcher] on another host raises a [Match] when its
// own events show the rule's pattern.
//
// The preservation property holds by construction and is tested on
// generated trees: for every process among the alert's ancestors and
// descendants and every resource its command lines or events name, the
// graph holds the chain of kept processes between the alert and that
// process (or its nearest kept ancestor, when dropped) linked by spawned
// edges, and an edge of the same kind to the resource's node. Only the
// resources of processes dropped by a "discard" rule are left out.
//
// # Graph JSON schema (version 1)
//
// [Graph.WriteJSON] writes one object:
//
//	{
//	  "version": 1,
//	  "alert": "n2",                 // node id of the alert's process
//	  "alert_id": "n5",              // its alert ID (GUID, pid@start or pid)
//	  "alert_process": {ProcessInfo},
//	  "nodes": [{
//	    "id": "n0",                  // n0, n1, ... in a deterministic order
//	    "type": "process",           // process | file | url | domain | address
//	    "name": "wget",              // process: image base name; file: path;
//	                                 // url; domain (lower case); address (IP)
//	    "role": "descendant",        // process only: ancestor | alert | descendant
//	    "depth": 1,                  // process only: generations below the alert
//	                                 // in the full tree (ancestors negative)
//	    "count": 1,                  // process only: processes merged here
//	    "processes": [{              // process only: up to 8 of them
//	      "pid": 741, "start": 0, "guid": "n6", "exe": "/usr/bin/wget",
//	      "argv": ["wget", "..."], "cwd": "/tmp", "ppid": 740,
//	      "time": "RFC 3339", "exited": "RFC 3339", "placeholder": false
//	    }]
//	  }],
//	  "edges": [{
//	    "from": "n7", "to": "n5",
//	    "kind": "downloaded",        // see below
//	    "count": 2,                  // observations merged into the edge
//	    "ports": [80]                // remote ports, when known
//	  }],
//	  "stats": {"tree_processes", "ancestors", "descendants", "dropped",
//	            "merged", "process_nodes", "resource_nodes",
//	            "resource_finds", "edges", "unparsed_command"},
//	  "rules": [Rule]                // the drop rules applied
//	}
//
// Edge kinds (from a process unless noted): spawned (→ child process),
// executed (→ file run, or → URL piped into a shell), downloaded (→ file
// saved by a download), fetched (→ URL requested), wrote, read, deleted
// (→ file), accessed (→ resource named with no known role), connected
// (→ address or domain), accepted (→ address), resolved (→ domain),
// resolves_to (domain → address, a DNS answer), host (URL → its domain or
// address).
//
// DOT ([Graph.WriteDOT]), Mermaid ([Graph.WriteMermaid]) and a
// self-contained HTML page ([Graph.WriteHTML]: the graph's JSON and a
// script that lays it out and draws it as SVG, no network access needed)
// render the same graph.
//
// # Drop rules
//
// [ParseRules] and [LoadRules] read {"drop": [Rule, ...]} (or a bare
// array). A [Rule] has "name", "image" (glob on the image base name, or on
// the path when it holds a '/'; alternatives separated by '|'),
// "commandline" (RE2 searched in argv joined by spaces; with image, both
// must match) and "resources" ("hoist", the default, or "discard").
//
// # Feature rule schema (procwall.provenance.rule/v1)
//
// [DeriveRule] writes, and [ParseFeatureRule] reads and validates:
//
//	{
//	  "schema": "procwall.provenance.rule/v1",
//	  "name": "seed002-download-and-run",
//	  "description": "...",
//	  "level": "high",               // low | medium | high | critical
//	  "created": "RFC 3339",         // optional
//	  "alert": "n5",                 // alert ID on the origin host
//	  "within": 3,                   // generations below the anchor (0..64)
//	  "min_match": 8,                // distinct features needed (default all)
//	  "simplify": [Rule],            // drop rules of the origin graph
//	  "features": [{                 // 1 to 64
//	    "process": "curl",           // wildcard on the acting image; "" any
//	    "kind": "downloaded",        // an edge kind
//	    "type": "file",              // file | url | domain | address
//	    "value": ".b.sh",            // wildcard ('*', '?'): file base name,
//	                                 // URL, domain, IP or CIDR prefix
//	    "port": 0                    // 0: any
//	  }]
//	}
//
// DeriveRule keeps one feature per distinct (kind, resource, port) among
// the graph's edges of kinds executed, downloaded, fetched, connected and
// resolved (files by base name, since directories differ between hosts;
// the process is left empty when several images did it). A [Matcher]
// extracts the same findings from another host's events; a finding made
// by a process the rule's simplify rules drop counts for its nearest kept
// ancestor, as on the origin host. Each finding sets the feature's bit on
// the acting process and its ancestors up to "within" generations; the
// first process whose bits reach "min_match" is the anchor of a [Match]
// (a downloaded feature also matches a file-creation event). The rules
// engine can carry these documents in its bundles; this package needs
// nothing from it.
//
// # Live trees
//
// The seam for the live process tree (package proctree) is
// [Tree.AddProcess]: copy each live process (parents first) as a
// [Process], then its associations as connect/file/dns events with
// [Tree.Add], and call Simplify.
//
// # Lifecycle, privileges, concurrency
//
// Everything here is plain computation on memory: no privileges, no
// goroutines, no files except LoadRules/LoadFeatureRule. A [Tree] and a
// [Matcher] are not safe for concurrent use; a [Graph] is a value that may
// be read concurrently. Bad input is an error wrapping [ErrBadEvent],
// [ErrBadRule], [ErrNotFound], [ErrBadGraph], [ErrSyntax] or [ErrTooLong]
// inside an [OpError]; nothing panics. A command line with a syntax error
// is still mined as far as it parses and counted in Stats.UnparsedCommand.
package provenance
