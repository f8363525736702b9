package risk_test

import (
	"fmt"
	"time"

	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// A shell in a web server is reported; its parent is warned about, and the
// shell's later moves are followed as one attack chain.
func Example_warnAndChain() {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	b := replay.NewBuilder(t0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx").
		Fork(231, 100).Exec(231, "/bin/sh").
		Risk(231, "high", "reverse shell").
		At(t0.Add(70*time.Second)).Fork(300, 231).Exec(300, "/usr/bin/curl").
		Connect(300, "tcp", "203.0.113.9:80")

	g := risk.NewGraph()
	w, _ := risk.NewWarner(g, risk.DefaultWarnConfig())
	c, _ := risk.NewChains(g, risk.DefaultChainConfig())
	for _, ev := range b.Events() {
		_ = g.Observe(ev)
		if ev.Kind == source.KindRisk {
			for _, warn := range w.Around(risk.ProcessNode(ev.ID()), ev.Time) {
				fmt.Printf("warn %s (%d): P=%.2f θ=%.2f\n", warn.Name, warn.PID, warn.Probability, warn.Threshold)
			}
			_, _ = c.Flag(risk.ProcessNode(ev.ID()), ev.Time, ev.Reason)
		}
	}
	for _, ch := range c.Window(t0.Add(3 * time.Minute)) {
		fmt.Printf("chain window %d: %s\n", ch.Window, ch.Path)
	}
	// Output:
	// warn nginx (100): P=0.30 θ=0.53
	// chain window 0: pid 1 → nginx (100) → sh (231)
	// chain window 1: pid 1 → nginx (100) → sh (231) → curl (300) → 203.0.113.9
}
