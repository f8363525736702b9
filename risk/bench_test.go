package risk

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

const (
	benchProcs  = 100_000
	benchAssocs = 1_000_000
	benchAddrs  = 200_000
)

var (
	benchOnce  sync.Once
	benchGraph *Graph
	benchNow   time.Time
)

// hostGraph builds (once) a host graph of 100k processes (a tree of
// fan-out 8, so lineages are about six deep) and 1M associations with
// 200k remote addresses (five users per address on average), within one
// day; 1% of the processes and 0.5% of the addresses have behaviours.
func hostGraph(tb testing.TB) (*Graph, time.Time) {
	tb.Helper()
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(9, 9))
		g := NewGraph(WithMaxAssocs(2 * benchAssocs))
		start := t0
		obs := func(ev source.Event) {
			if err := g.Observe(ev); err != nil {
				panic(err)
			}
		}
		for i := 2; i < benchProcs+2; i++ {
			obs(source.Event{Time: start, Kind: source.KindFork, PID: i, PPID: max(1, i/8)})
		}
		addrs := make([]netip.AddrPort, benchAddrs)
		for i := range addrs {
			addrs[i] = netip.AddrPortFrom(benchAddr(i), 443)
		}
		day := int64(24 * time.Hour)
		for i := range benchAssocs {
			pid := 2 + i%benchProcs
			t := start.Add(time.Duration(rng.Int64N(day)))
			obs(source.Event{Time: t, Kind: source.KindConnect, PID: pid, Dst: addrs[rng.IntN(benchAddrs)]})
		}
		benchNow = start.Add(24 * time.Hour)
		for range benchProcs / 100 {
			t := start.Add(time.Duration(rng.Int64N(day)))
			obs(source.Event{Time: t, Kind: source.KindRisk, PID: 2 + rng.IntN(benchProcs), Level: source.Level(1 + rng.IntN(4))})
		}
		for range benchAddrs / 200 {
			t := start.Add(time.Duration(rng.Int64N(day)))
			if err := g.Note(Behaviour{Time: t, Node: AddrNode(addrs[rng.IntN(benchAddrs)].Addr()), Kind: BehaviourBlock}); err != nil {
				panic(err)
			}
		}
		benchGraph = g
	})
	// Settle the garbage of the build so that it does not run in the
	// timed loop.
	runtime.GC()
	return benchGraph, benchNow
}

// benchAddr is the i-th address of 2001:db8::/32 (documentation range;
// graph data only, never traffic).
func benchAddr(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

// BenchmarkAssess is one early-warning assessment of a process on a host
// graph of 100k processes and 1M associations (goal: ≤ 1 ms).
func BenchmarkAssess(b *testing.B) {
	g, now := hostGraph(b)
	if s := g.Stats(); s.Processes < benchProcs || s.Assocs < benchAssocs*9/10 {
		b.Fatalf("graph too small: %+v", s)
	}
	w, err := NewWarner(g, DefaultWarnConfig())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pids := make([]Node, 1024)
	for i := range pids {
		pids[i] = proc(2 + rng.IntN(benchProcs))
	}
	related := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec, _, err := w.Assess(pids[i%len(pids)], now)
		if err != nil {
			b.Fatal(err)
		}
		related += rec.Related
		i++
	}
	b.ReportMetric(float64(related)/float64(i), "related/op")
}

// BenchmarkAssessAddr is one assessment of an address on the same graph.
func BenchmarkAssessAddr(b *testing.B) {
	g, now := hostGraph(b)
	w, err := NewWarner(g, DefaultWarnConfig())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 3))
	nodes := make([]Node, 0, 1024)
	for len(nodes) < cap(nodes) {
		if a := benchAddr(rng.IntN(benchAddrs)); g.addrs[a] != nil {
			nodes = append(nodes, AddrNode(a))
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := w.Assess(nodes[i%len(nodes)], now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGraphObserve is the cost of one connect event on that graph
// (the baseline the assessment compares with).
func BenchmarkGraphObserve(b *testing.B) {
	g, now := hostGraph(b)
	rng := rand.New(rand.NewPCG(1, 4))
	b.ReportAllocs()
	for b.Loop() {
		j := rng.IntN(benchAddrs)
		ev := source.Event{Time: now, Kind: source.KindConnect, PID: 2 + rng.IntN(benchProcs),
			Dst: netip.AddrPortFrom(benchAddr(j), 443)}
		if err := g.Observe(ev); err != nil {
			b.Fatal(err)
		}
	}
}
