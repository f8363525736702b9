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

// buildHost builds a host graph of procs processes (a tree of fan-out 8)
// and assocs associations over addrs addresses within one day; 1% of the
// processes and 0.5% of the addresses have behaviours.
func buildHost(procs, assocs, addrs int) (*Graph, time.Time) {
	rng := rand.New(rand.NewPCG(9, 9))
	g := NewGraph(WithMaxAssocs(2 * assocs))
	start := warnT0
	obs := func(ev source.Event) {
		if err := g.Observe(ev); err != nil {
			panic(err)
		}
	}
	for i := 2; i < procs+2; i++ {
		obs(source.Event{Time: start, Kind: source.KindFork, PID: i, PPID: max(1, i/8)})
	}
	day := int64(24 * time.Hour)
	for i := range assocs {
		pid := 2 + i%procs
		t := start.Add(time.Duration(rng.Int64N(day)))
		obs(source.Event{Time: t, Kind: source.KindConnect, PID: pid, Dst: netip.AddrPortFrom(benchAddr(rng.IntN(addrs)), 443)})
	}
	for range procs / 100 {
		t := start.Add(time.Duration(rng.Int64N(day)))
		obs(source.Event{Time: t, Kind: source.KindRisk, PID: 2 + rng.IntN(procs), Level: source.Level(1 + rng.IntN(4))})
	}
	for range addrs / 200 {
		t := start.Add(time.Duration(rng.Int64N(day)))
		if err := g.Note(Behaviour{Time: t, Node: AddrNode(benchAddr(rng.IntN(addrs))), Kind: BehaviourBlock}); err != nil {
			panic(err)
		}
	}
	return g, start.Add(24 * time.Hour)
}

// hostGraph builds (once) the 100k-process, 1M-association host graph:
// lineages about six deep, five users per address on average.
func hostGraph(tb testing.TB) (*Graph, time.Time) {
	tb.Helper()
	benchOnce.Do(func() { benchGraph, benchNow = buildHost(benchProcs, benchAssocs, benchAddrs) })
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
	benchAssess(b, g, now, benchProcs)
}

// BenchmarkAssessSmall is the baseline: the same assessment on a host
// graph a hundred times smaller with the same degrees (1k processes, 10k
// associations), so that the difference is the cost of the graph's size.
func BenchmarkAssessSmall(b *testing.B) {
	g, now := buildHost(benchProcs/100, benchAssocs/100, benchAddrs/100)
	runtime.GC()
	benchAssess(b, g, now, benchProcs/100)
}

func benchAssess(b *testing.B, g *Graph, now time.Time, procs int) {
	w, err := NewWarner(g, DefaultWarnConfig())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pids := make([]Node, 1024)
	for i := range pids {
		pids[i] = procNode(2 + rng.IntN(procs))
	}
	related := 0
	b.ReportAllocs()
	i := 0
	cpu0, cpuOK := cpuNanos()
	for b.Loop() {
		rec, _, err := w.Assess(pids[i%len(pids)], now)
		if err != nil {
			b.Fatal(err)
		}
		related += rec.Related
		i++
	}
	b.ReportMetric(float64(related)/float64(i), "related/op")
	// CPU time per assessment (the process's user+system time, GC
	// included): on a loaded machine wall time per op overstates the cost.
	if cpu1, ok := cpuNanos(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(i), "cpu-ns/op")
	}
	// The heap holding the graph (metrics reported before the loop would
	// be reset by it).
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap")
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
