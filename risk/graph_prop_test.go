package risk

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// checkGraph asserts the graph's internal links agree.
func checkGraph(t *testing.T, g *Graph) {
	t.Helper()
	n := 0
	for id, p := range g.procs {
		if p.id != id {
			t.Fatalf("procs[%v] holds %v", id, p.id)
		}
		for i, c := range p.children {
			if c.parent != p || int(c.ci) != i {
				t.Fatalf("child %v of %v: parent %v ci %d (at %d)", c.id, id, c.parent, c.ci, i)
			}
		}
		if p.parent != nil && (int(p.ci) >= len(p.parent.children) || p.parent.children[p.ci] != p) {
			t.Fatalf("%v not at its index in its parent's children", id)
		}
		for i, e := range p.assocs {
			if e.p != p || int(e.pi) != i || g.assocs[assocKey{p: e.p, a: e.a, inbound: e.inbound}] != e {
				t.Fatalf("association %v-%v out of step", id, e.a.addr)
			}
			n++
		}
		for i := 1; i < len(p.beh); i++ {
			if p.beh[i].t < p.beh[i-1].t {
				t.Fatalf("behaviours of %v out of order", id)
			}
		}
	}
	for a, an := range g.addrs {
		for i, e := range an.assocs {
			if e.a != an || int(e.ai) != i || an.addr != a {
				t.Fatalf("address %v association out of step", a)
			}
		}
	}
	if n != len(g.assocs) {
		t.Fatalf("%d associations on processes, %d in the index", n, len(g.assocs))
	}
	for pid, p := range g.live {
		if g.procs[p.id] != p || p.id.PID != pid {
			t.Fatalf("live[%d] = %v not in the graph", pid, p.id)
		}
	}
}

// TestGraphRandomTraces applies random (often inconsistent) event streams
// and checks that nothing panics, the graph's links stay consistent, and
// assessments and chains stay within their ranges.
func TestGraphRandomTraces(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 5
	}
	kinds := []source.Kind{source.KindFork, source.KindExec, source.KindExit, source.KindConnect,
		source.KindSend, source.KindAccept, source.KindRisk, source.KindAssess, source.KindDNS}
	for round := range rounds {
		rng := rand.New(rand.NewPCG(uint64(round), 77))
		g := NewGraph(WithGraphRetention(time.Duration(1+rng.IntN(120))*time.Minute), WithMaxAssocs(1+rng.IntN(200)), WithMaxBehaviours(1+rng.IntN(4)))
		wcfg := DefaultWarnConfig()
		wcfg.MaxRelated = 1 + rng.IntN(50)
		wcfg.MaxAddrFanout = rng.IntN(5)
		w, err := NewWarner(g, wcfg)
		if err != nil {
			t.Fatal(err)
		}
		ccfg := DefaultChainConfig()
		ccfg.MaxNodes = 1 + rng.IntN(40)
		c, err := NewChains(g, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		now := warnT0
		for i := range 600 {
			now = now.Add(time.Duration(rng.IntN(20)-2) * time.Second)
			ev := source.Event{Time: now, Kind: kinds[rng.IntN(len(kinds))], PID: 1 + rng.IntN(30), PPID: rng.IntN(30),
				Level: source.Level(rng.IntN(5)), Safe: rng.IntN(2) == 0, Query: "x",
				Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(12))}), 80)}
			if rng.IntN(4) == 0 {
				ev.Start = uint64(1 + rng.IntN(5))
				ev.PStart = uint64(rng.IntN(5))
			}
			if rng.IntN(10) == 0 {
				ev.GUID = string(rune('a' + rng.IntN(5)))
			}
			_ = g.Observe(ev) // invalid events are rejected, never panic
			if rng.IntN(20) == 0 {
				_ = g.Note(Behaviour{Time: now, Node: AddrNode(ev.Dst.Addr()), Kind: BehaviourKind(rng.IntN(5))})
			}
			if rng.IntN(30) == 0 {
				_, _ = c.Flag(ProcessNode(source.ProcID{PID: ev.PID}), now, "random")
			}
			if i%50 == 0 {
				checkGraph(t, g)
				for _, rec := range c.Window(now) {
					checkChain(t, rec, ccfg)
				}
				for pid := 1; pid <= 30; pid++ {
					rec, _, err := w.Assess(ProcessNode(source.ProcID{PID: pid}), now)
					if err != nil {
						continue
					}
					if rec.Probability < 0 || rec.Probability > 1 || rec.Threshold < 0 || rec.Threshold > 1 ||
						len(rec.Drivers) > wcfg.MaxDrivers || rec.Related > wcfg.MaxRelated || rec.Direct+rec.Indirect != rec.Related {
						t.Fatalf("round %d: assessment out of range: %+v", round, rec)
					}
				}
				_ = w.Around(AddrNode(ev.Dst.Addr()), now)
			}
		}
		g.Prune(now.Add(24 * time.Hour))
		checkGraph(t, g)
	}
}

func checkChain(t *testing.T, rec Chain, cfg ChainConfig) {
	t.Helper()
	labels := map[string]bool{}
	if len(rec.Nodes) == 0 || rec.Nodes[0].Role != RoleOrigin || len(rec.Nodes) > cfg.MaxNodes {
		t.Fatalf("chain %s: bad nodes %+v", rec.ID, rec.Nodes)
	}
	for _, n := range rec.Nodes {
		if n.From != "" && !labels[n.From] {
			t.Fatalf("chain %s: node %+v found from %q, not an earlier chain node", rec.ID, n, n.From)
		}
		if n.Confidence < 0 || n.Confidence > 1 || (n.Role == RoleDownstream && n.Confidence < cfg.MinConfidence) {
			t.Fatalf("chain %s: confidence out of range: %+v", rec.ID, n)
		}
		if n.Window > rec.Window || len(n.Evidence) == 0 {
			t.Fatalf("chain %s: node %+v joined after window %d or has no evidence", rec.ID, n, rec.Window)
		}
		if n.Node == "process" {
			if n.Name != "" {
				labels[n.Name+" ("+strconv.Itoa(n.PID)+")"] = true
			} else {
				labels["pid "+strconv.Itoa(n.PID)] = true
			}
		} else {
			labels[n.Addr] = true
		}
	}
}
