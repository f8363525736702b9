package netassoc

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

var t0 = time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestRecordAndQuery(t *testing.T) {
	x := New()
	p1 := source.ProcID{PID: 100, Start: 5}
	p2 := source.ProcID{PID: 200, Start: 7}
	x.Record(p1, Outbound, source.ProtoTCP, ap("198.51.100.7:443"), at(3))
	x.Record(p1, Outbound, source.ProtoTCP, ap("198.51.100.7:80"), at(1))
	x.Record(p1, Outbound, source.ProtoTCP, ap("198.51.100.7:443"), at(2))
	x.Record(p1, Outbound, source.ProtoUDP, ap("198.51.100.7:53"), at(4))
	x.Record(p1, Outbound, source.ProtoUDP, ap("[2001:db8::1]:53"), at(5))
	x.Record(p1, Outbound, source.ProtoTCP, ap("[::ffff:192.0.2.9]:22"), at(6))
	x.Record(p1, Inbound, source.ProtoTCP, ap("203.0.113.5:40000"), at(7))
	x.Record(p2, Outbound, source.ProtoTCP, ap("198.51.100.7:443"), at(8))

	got := x.Outbound(p1)
	want := []Assoc{
		{Addr: netip.MustParseAddr("192.0.2.9"), Proto: source.ProtoTCP, Ports: []uint16{22}, First: at(6), Last: at(6), Count: 1},
		{Addr: netip.MustParseAddr("198.51.100.7"), Proto: source.ProtoTCP, Ports: []uint16{80, 443}, First: at(1), Last: at(3), Count: 3},
		{Addr: netip.MustParseAddr("198.51.100.7"), Proto: source.ProtoUDP, Ports: []uint16{53}, First: at(4), Last: at(4), Count: 1},
		{Addr: netip.MustParseAddr("2001:db8::1"), Proto: source.ProtoUDP, Ports: []uint16{53}, First: at(5), Last: at(5), Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("Outbound(p1) = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Addr != w.Addr || g.Proto != w.Proto || !slices.Equal(g.Ports, w.Ports) ||
			!g.First.Equal(w.First) || !g.Last.Equal(w.Last) || g.Count != w.Count {
			t.Errorf("Outbound(p1)[%d] = %+v, want %+v", i, g, w)
		}
	}
	in := x.Inbound(p1)
	if len(in) != 1 || in[0].Addr != netip.MustParseAddr("203.0.113.5") || !slices.Equal(in[0].Ports, []uint16{40000}) {
		t.Errorf("Inbound(p1) = %+v", in)
	}
	if got, want := x.Addrs(p1), addrs("192.0.2.9", "198.51.100.7", "2001:db8::1"); !slices.Equal(got, want) {
		t.Errorf("Addrs(p1) = %v, want %v (inbound peers must not appear)", got, want)
	}
	if got := x.Procs(netip.MustParseAddr("198.51.100.7")); !slices.Equal(got, []source.ProcID{p1, p2}) {
		t.Errorf("Procs(198.51.100.7) = %v", got)
	}
	if got := x.Procs(netip.MustParseAddr("::ffff:192.0.2.9")); !slices.Equal(got, []source.ProcID{p1}) {
		t.Errorf("Procs(mapped 192.0.2.9) = %v", got)
	}
	if got := x.Procs(netip.MustParseAddr("203.0.113.5")); len(got) != 0 {
		t.Errorf("Procs(inbound peer) = %v, want none", got)
	}
	union := x.AddrsOf(slices.Values([]source.ProcID{p1, p2, {PID: 999}}))
	if want := addrs("192.0.2.9", "198.51.100.7", "2001:db8::1"); !slices.Equal(union, want) {
		t.Errorf("AddrsOf = %v, want %v", union, want)
	}
	// Identity is the exact ProcID: a different start is another process.
	if got := x.Addrs(source.ProcID{PID: 100}); len(got) != 0 {
		t.Errorf("Addrs(pid 100 start 0) = %v, want none", got)
	}
	if got := x.Processes(); !slices.Equal(got, []source.ProcID{p1, p2}) {
		t.Errorf("Processes = %v", got)
	}
	st := x.Stats()
	if st.Processes != 2 || st.Associations != 6 || st.Evictions != 0 {
		t.Errorf("Stats = %+v", st)
	}

	x.Forget(p1)
	if got := x.Outbound(p1); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
	if got := x.Procs(netip.MustParseAddr("198.51.100.7")); !slices.Equal(got, []source.ProcID{p2}) {
		t.Errorf("after Forget Procs = %v", got)
	}
	if got := x.Procs(netip.MustParseAddr("2001:db8::1")); len(got) != 0 {
		t.Errorf("after Forget Procs(2001:db8::1) = %v", got)
	}
	if st := x.Stats(); st.Processes != 1 || st.Associations != 1 || st.Evictions != 0 {
		t.Errorf("after Forget Stats = %+v", st)
	}
}

func TestReturnedPortsAreCopies(t *testing.T) {
	x := New()
	id := source.ProcID{PID: 1}
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.1:80"), at(1))
	a := x.Outbound(id)
	a[0].Ports[0] = 9
	if b := x.Outbound(id); b[0].Ports[0] != 80 {
		t.Fatalf("caller's change leaked into the index: %v", b[0].Ports)
	}
}

func TestRejected(t *testing.T) {
	x := New()
	x.Record(source.ProcID{PID: 1}, Outbound, source.ProtoTCP, netip.AddrPort{}, at(1))
	x.Record(source.ProcID{PID: 1}, Direction(7), source.ProtoTCP, ap("192.0.2.1:1"), at(1))
	if st := x.Stats(); st.Rejected != 2 || st.Associations != 0 {
		t.Fatalf("Stats = %+v, want 2 rejected, nothing held", st)
	}
}

func TestPortsSpill(t *testing.T) {
	x := New(WithMaxPorts(6))
	id := source.ProcID{PID: 1}
	var want []uint16
	for _, p := range []uint16{90, 10, 70, 30, 10, 50, 20, 90, 80, 60, 5} {
		x.Record(id, Outbound, source.ProtoUDP, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), p), at(1))
		if !slices.Contains(want, p) && len(want) < 6 {
			want = append(want, p)
		}
		slices.Sort(want)
		if got := x.Outbound(id)[0].Ports; !slices.Equal(got, want) {
			t.Fatalf("after port %d: ports %v, want %v", p, got, want)
		}
	}
	if st := x.Stats(); st.PortsDropped != 3 {
		t.Fatalf("PortsDropped = %d, want 3 (80, 60, 5)", st.PortsDropped)
	}
	// Recycled entries start empty.
	y := New(WithMaxTotal(1), WithMaxPorts(8))
	for i := range 3 {
		for p := range uint16(6) {
			y.Record(id, Outbound, source.ProtoTCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 100*uint16(i)+p+1), at(i))
		}
	}
	if got := y.Outbound(id); len(got) != 1 || !slices.Equal(got[0].Ports, []uint16{201, 202, 203, 204, 205, 206}) {
		t.Fatalf("recycled entry: %+v", got)
	}
}

func TestPortsBounded(t *testing.T) {
	x := New(WithMaxPorts(3))
	id := source.ProcID{PID: 1}
	for _, p := range []uint16{50, 10, 40, 10, 30, 0} {
		x.Record(id, Outbound, source.ProtoTCP, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), p), at(1))
	}
	a := x.Outbound(id)
	if !slices.Equal(a[0].Ports, []uint16{10, 40, 50}) || a[0].Count != 6 {
		t.Fatalf("assoc = %+v", a[0])
	}
	if st := x.Stats(); st.PortsDropped != 1 {
		t.Fatalf("PortsDropped = %d, want 1 (port 30; port 0 is not a port)", st.PortsDropped)
	}
}

func TestEvictPerProcessOldestByLast(t *testing.T) {
	x := New(WithMaxPerProcess(3))
	id := source.ProcID{PID: 1, Start: 1}
	other := source.ProcID{PID: 2, Start: 1}
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.1:1"), at(10))
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.2:1"), at(20))
	x.Record(id, Inbound, source.ProtoTCP, ap("192.0.2.3:1"), at(30))
	x.Record(other, Outbound, source.ProtoTCP, ap("192.0.2.9:1"), at(1))
	// Refresh .1: now .2 is the oldest of id.
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.1:1"), at(40))
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.4:1"), at(50))
	if got, want := x.Addrs(id), addrs("192.0.2.1", "192.0.2.4"); !slices.Equal(got, want) {
		t.Fatalf("Addrs = %v, want %v", got, want)
	}
	if len(x.Inbound(id)) != 1 {
		t.Fatalf("inbound .3 (t=30) evicted before outbound .2 (t=20)")
	}
	if got := x.Procs(netip.MustParseAddr("192.0.2.2")); len(got) != 0 {
		t.Fatalf("reverse index keeps evicted association: %v", got)
	}
	if got := x.Addrs(other); len(got) != 1 {
		t.Fatalf("other process lost its association to a per-process cap: %v", got)
	}
	// Out of order: an association older than all others is itself the
	// oldest and is evicted at once.
	x.Record(id, Outbound, source.ProtoTCP, ap("192.0.2.5:1"), at(5))
	if got, want := x.Addrs(id), addrs("192.0.2.1", "192.0.2.4"); !slices.Equal(got, want) {
		t.Fatalf("Addrs after old record = %v, want %v", got, want)
	}
	if st := x.Stats(); st.Evictions != 2 || st.Associations != 4 {
		t.Fatalf("Stats = %+v, want 2 evictions, 4 associations", st)
	}
}

func TestEvictTotal(t *testing.T) {
	x := New(WithMaxTotal(4))
	for i := range 10 {
		id := source.ProcID{PID: i%3 + 1}
		// Times out of order within a window.
		s := i*10 + (i%2)*15
		x.Record(id, Outbound, source.ProtoUDP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 53), at(s))
	}
	st := x.Stats()
	if st.Associations != 4 || st.Evictions != 6 {
		t.Fatalf("Stats = %+v, want 4 held, 6 evicted", st)
	}
	// Times were 0,25,20,45,40,65,60,85,80,105: the newest four are kept.
	var kept []netip.Addr
	for pid := 1; pid <= 3; pid++ {
		kept = append(kept, x.Addrs(source.ProcID{PID: pid})...)
	}
	slices.SortFunc(kept, netip.Addr.Compare)
	if want := addrs("192.0.2.5", "192.0.2.7", "192.0.2.8", "192.0.2.9"); !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	x.checkInvariants(t)
}

// checkInvariants verifies the lists, counts and reverse index.
func (x *Index) checkInvariants(t *testing.T) {
	t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	var prev *entry
	for e := x.head; e != nil; e = e.gnext {
		if e.gprev != prev {
			t.Fatalf("global list: broken back link")
		}
		if (prev != nil && prev.gpos > e.gpos) || e.gpos > e.last {
			t.Fatalf("global list not sorted by position, or a position ahead of last")
		}
		if x.m[e.k] != e {
			t.Fatalf("global list holds an entry not in the map")
		}
		prev = e
		n++
	}
	if n != len(x.m) || prev != x.tail {
		t.Fatalf("global list has %d entries, map %d", n, len(x.m))
	}
	total := 0
	for id, p := range x.procs {
		c := 0
		var pp *entry
		for e := p.head; e != nil; e = e.pnext {
			if e.pprev != pp || e.k.id != id || (pp != nil && pp.ppos > e.ppos) || e.ppos > e.last {
				t.Fatalf("process list of %v broken", id)
			}
			pp = e
			c++
		}
		if c != p.n || c == 0 || pp != p.tail {
			t.Fatalf("process %v: count %d, list %d", id, p.n, c)
		}
		total += c
	}
	if total != len(x.m) {
		t.Fatalf("process lists hold %d, map %d", total, len(x.m))
	}
	out := 0
	for e := range x.m {
		if e.dir == Outbound {
			out++
		}
	}
	rev := 0
	for _, l := range x.rev {
		if l.one.n <= 0 {
			t.Fatalf("reverse index: empty list kept")
		}
		rev += l.one.n
		for _, it := range l.more {
			if it.n <= 0 {
				t.Fatalf("reverse index: empty item kept")
			}
			rev += it.n
		}
	}
	if rev != out {
		t.Fatalf("reverse index counts %d, outbound associations %d", rev, out)
	}
}

func TestConcurrent(t *testing.T) {
	x := New(WithMaxTotal(500), WithMaxPerProcess(50))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				id := source.ProcID{PID: g*10 + i%10}
				x.Record(id, Direction(i%2), source.ProtoTCP,
					netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}), uint16(i)), at(i))
				if i%50 == 0 {
					_ = x.Addrs(id)
					_ = x.Procs(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}))
				}
				if i%300 == 0 {
					x.Forget(id)
				}
			}
		})
	}
	wg.Wait()
	x.checkInvariants(t)
	if st := x.Stats(); st.Associations > 500 {
		t.Fatalf("Stats = %+v over cap", st)
	}
}

// TestBoundsMillions records millions of distinct associations and checks
// that the held count stays at the cap, every eviction is counted, and the
// heap stays within a budget proportional to the cap.
func TestBoundsMillions(t *testing.T) {
	const (
		capTotal = 20000
		records  = 2_000_000
		// Generous per-association budget: entry, map slot, ports, reverse
		// index item; the point is that memory does not grow with records.
		budgetPerAssoc = 1024
	)
	n := records
	switch {
	case testing.Short():
		n = 200_000
	case raceEnabled:
		n = records / 2
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	x := New(WithMaxTotal(capTotal), WithMaxPerProcess(100))
	for i := range n {
		id := source.ProcID{PID: i%5000 + 1, Start: 1}
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		x.Record(id, Outbound, source.ProtoTCP, netip.AddrPortFrom(a, uint16(i)), t0.Add(time.Duration(i)))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	st := x.Stats()
	if st.Associations != capTotal {
		t.Fatalf("held %d associations, cap %d", st.Associations, capTotal)
	}
	if st.Evictions != uint64(n-capTotal) {
		t.Fatalf("evictions %d, want %d", st.Evictions, n-capTotal)
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d records, %d held, heap grew %d bytes (%d per association)", n, st.Associations, grown, grown/capTotal)
	if grown > capTotal*budgetPerAssoc {
		t.Fatalf("heap grew %d bytes for %d associations (budget %d)", grown, capTotal, capTotal*budgetPerAssoc)
	}
	runtime.KeepAlive(x)
	x.checkInvariants(t)
}

// BenchmarkRecord measures one update of an association that exists, the
// hot path for a busy process; the goal is ≤ 150 ns/op and 0 allocs.
func BenchmarkRecord(b *testing.B) {
	for _, held := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("exists/held=%d", held), func(b *testing.B) {
			x := New(WithMaxTotal(held), WithMaxPerProcess(held))
			ids := make([]source.ProcID, held)
			rem := make([]netip.AddrPort, held)
			for i := range held {
				ids[i] = source.ProcID{PID: i%1000 + 1, Start: 42}
				rem[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 443)
				x.Record(ids[i], Outbound, source.ProtoTCP, rem[i], t0)
			}
			now := t0
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				x.Record(ids[i], Outbound, source.ProtoTCP, rem[i], now)
				i++
				if i == held {
					i = 0
				}
			}
		})
	}
	b.Run("new/evicting", func(b *testing.B) {
		x := New(WithMaxTotal(10000))
		now := t0
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			x.Record(source.ProcID{PID: i%100 + 1}, Outbound, source.ProtoUDP, netip.AddrPortFrom(a, 53), now)
			i++
		}
	})
	// Baseline in the same run: a bare mutex-guarded map increment over
	// the same keys (the floor any index with a map pays).
	for _, held := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("baseline/map/held=%d", held), func(b *testing.B) {
			var mu sync.Mutex
			m := make(map[key]uint64, held)
			keys := make([]key, held)
			for i := range held {
				keys[i] = key{id: source.ProcID{PID: i%1000 + 1, Start: 42}, addr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), proto: source.ProtoTCP}
				m[keys[i]] = 0
			}
			i := 0
			for b.Loop() {
				mu.Lock()
				m[keys[i]]++
				mu.Unlock()
				i++
				if i == held {
					i = 0
				}
			}
		})
	}
}
