package risk

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// TestPropertyChainFollowsHops generates multi-stage attacks — each stage
// a child process, a new address, or an unrelated process taking over an
// address after its user exited, each in the same window as the stage
// before it or up to Lookback windows later — among unrelated noise, and
// checks that the chain holds every stage and no noise, that each stage
// is found from the one before it, and that confidence never rises along
// the path.
func TestPropertyChainFollowsHops(t *testing.T) {
	cfg := DefaultChainConfig()
	cfg.MinConfidence = 1e-9 // completeness is about finding, not the cut
	win := cfg.Window
	for round := range 200 {
		rng := rand.New(rand.NewPCG(uint64(round), 31))
		g := NewGraph()
		now := warnT0.Add(5 * time.Second)
		obs := func(ev source.Event) {
			ev.Time = now
			if err := g.Observe(ev); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			now = now.Add(time.Millisecond)
		}
		nextPID, nextAddr := 100, 1
		newAddr := func() netip.AddrPort {
			nextAddr++
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(nextAddr)}), 80)
		}
		noiseAddr := func() netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(250))}), 80)
		}
		noise := map[int]bool{}
		addNoise := func() {
			for range rng.IntN(3) {
				nextPID++
				noise[nextPID] = true
				obs(source.Event{Kind: source.KindFork, PID: nextPID, PPID: 1})
				obs(source.Event{Kind: source.KindConnect, PID: nextPID, Dst: noiseAddr()})
			}
		}
		// The origin.
		nextPID++
		origin := nextPID
		obs(source.Event{Kind: source.KindFork, PID: origin, PPID: 1})
		flagged := now
		type stage struct {
			label string
			from  string
		}
		var stages []stage
		curProc, curAddr := origin, netip.AddrPort{}
		label := func(pid int) string { return "pid " + fmt.Sprint(pid) }
		hops := 1 + rng.IntN(7)
		for range hops {
			// Advance 0..Lookback windows.
			if gap := rng.IntN(cfg.Lookback + 1); gap > 0 {
				now = now.Truncate(win).Add(time.Duration(gap)*win + time.Second)
			}
			addNoise()
			switch {
			case curAddr.IsValid(): // take the address over
				nextPID++
				obs(source.Event{Kind: source.KindFork, PID: nextPID, PPID: 1})
				obs(source.Event{Kind: source.KindConnect, PID: nextPID, Dst: curAddr})
				stages = append(stages, stage{label(nextPID), curAddr.Addr().String()})
				curProc, curAddr = nextPID, netip.AddrPort{}
			case rng.IntN(2) == 0: // a child
				nextPID++
				obs(source.Event{Kind: source.KindFork, PID: nextPID, PPID: curProc})
				stages = append(stages, stage{label(nextPID), label(curProc)})
				curProc = nextPID
			default: // a new address; its user exits so the next hop takes it over
				a := newAddr()
				obs(source.Event{Kind: source.KindConnect, PID: curProc, Dst: a})
				obs(source.Event{Kind: source.KindExit, PID: curProc})
				stages = append(stages, stage{a.Addr().String(), label(curProc)})
				curAddr = a
			}
		}
		addNoise()
		c, err := NewChains(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Flag(procNode(origin), flagged, "generated"); err != nil {
			t.Fatal(err)
		}
		recs := c.Window(now.Add(time.Hour))
		if len(recs) == 0 {
			t.Fatalf("round %d: no records", round)
		}
		final := recs[len(recs)-1]
		byLabel := map[string]ChainNode{}
		for _, n := range final.Nodes {
			l := n.Addr
			if n.Node == "process" {
				l = label(n.PID)
				if noise[n.PID] {
					t.Fatalf("round %d: noise process %d in the chain: %+v", round, n.PID, n)
				}
			}
			byLabel[l] = n
		}
		conf := 1.0
		for i, s := range stages {
			n, ok := byLabel[s.label]
			if !ok {
				t.Fatalf("round %d: stage %d (%s from %s) missing; chain %s", round, i, s.label, s.from, final.Path)
			}
			if n.From != s.from || n.Role != RoleDownstream || n.Hop != i+1 {
				t.Fatalf("round %d: stage %d = %+v, want from %s at hop %d", round, i, n, s.from, i+1)
			}
			if n.Confidence > conf+1e-9 {
				t.Fatalf("round %d: confidence rose along the path at stage %d: %v > %v", round, i, n.Confidence, conf)
			}
			conf = n.Confidence
		}
		if got, want := len(final.Nodes), 1+1+len(stages); got != want { // origin, pid 1 upstream, stages
			t.Fatalf("round %d: %d nodes, want %d: %s", round, got, want, final.Path)
		}
	}
}
