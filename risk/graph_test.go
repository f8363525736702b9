package risk

import (
	"net/netip"
	"testing"
	"time"

	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

func TestGraphIdentityAndReuse(t *testing.T) {
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx").Exit(100, 0).
		After(time.Second).Fork(100, 1).Exec(100, "/bin/bash"). // pid reused
		Connect(100, "tcp", "198.51.100.7:443")
	g := feedGraph(t, b)
	if s := g.Stats(); s.Processes != 3 || s.Addrs != 1 || s.Assocs != 1 {
		t.Fatalf("stats %+v, want 3 processes (1, two 100s), 1 address, 1 association", s)
	}
	p := g.lookup(source.ProcID{PID: 100})
	if p == nil || p.name != "bash" || len(p.assocs) != 1 || !p.synth || p.knownStart() != 0 {
		t.Fatalf("live 100 = %+v", p)
	}
	old := 0
	for id, n := range g.procs {
		if id.PID == 100 && n != p {
			old++
			if n.exited == 0 || n.name != "nginx" || len(n.assocs) != 0 {
				t.Errorf("old 100 = %+v", n)
			}
		}
	}
	if old != 1 {
		t.Errorf("%d old incarnations of 100", old)
	}

	// With start times: exact identity.
	g = NewGraph()
	for _, ev := range []source.Event{
		{Time: warnT0, Kind: source.KindFork, PID: 7, Start: 70, PPID: 1, PStart: 10},
		{Time: warnT0, Kind: source.KindConnect, PID: 7, Start: 70, Dst: netip.MustParseAddrPort("[::ffff:203.0.113.9]:80")},
		{Time: warnT0, Kind: source.KindRisk, PID: 7, Start: 70, Level: source.LevelHigh},
	} {
		if err := g.Observe(ev); err != nil {
			t.Fatal(err)
		}
	}
	p = g.lookup(source.ProcID{PID: 7, Start: 70})
	if p == nil || p.synth || p.knownStart() != 70 || p.parent == nil || p.parent.id.Start != 10 || len(p.beh) != 1 {
		t.Fatalf("7@70 = %+v", p)
	}
	if g.addrs[netip.MustParseAddr("203.0.113.9")] == nil {
		t.Error("v4-mapped address not canonicalised")
	}
	if err := g.Observe(source.Event{Time: warnT0, Kind: source.KindConnect, PID: 7}); err == nil {
		t.Error("connect without dst accepted")
	}
	if g.Stats().Rejected != 1 {
		t.Errorf("rejected = %d", g.Stats().Rejected)
	}
}

func TestGraphRetentionAndCap(t *testing.T) {
	g := NewGraph(WithGraphRetention(time.Hour))
	obs := func(ev source.Event) {
		t.Helper()
		if err := g.Observe(ev); err != nil {
			t.Fatal(err)
		}
	}
	obs(source.Event{Time: warnT0, Kind: source.KindFork, PID: 10, PPID: 1})
	obs(source.Event{Time: warnT0, Kind: source.KindConnect, PID: 10, Dst: netip.MustParseAddrPort("203.0.113.9:80")})
	obs(source.Event{Time: warnT0, Kind: source.KindRisk, PID: 10, Level: source.LevelLow})
	obs(source.Event{Time: warnT0.Add(time.Minute), Kind: source.KindExit, PID: 10})
	obs(source.Event{Time: warnT0.Add(time.Minute), Kind: source.KindFork, PID: 20, PPID: 1})
	// Event time moves past the retention: the exited process, its
	// association, behaviour and address go; the live ones stay.
	obs(source.Event{Time: warnT0.Add(3 * time.Hour), Kind: source.KindConnect, PID: 20, Dst: netip.MustParseAddrPort("198.51.100.1:80")})
	if g.lookup(source.ProcID{PID: 20}) == nil {
		t.Fatal("live process pruned")
	}
	for id := range g.procs {
		if id.PID == 10 {
			t.Errorf("exited process 10 kept past retention")
		}
	}
	if g.addrs[netip.MustParseAddr("203.0.113.9")] != nil || g.Stats().Assocs != 1 {
		t.Errorf("stale association kept: %+v", g.Stats())
	}

	g = NewGraph(WithMaxAssocs(100), WithMaxBehaviours(2))
	for i := range 300 {
		ev := source.Event{Time: warnT0.Add(time.Duration(i) * time.Second), Kind: source.KindConnect, PID: 5,
			Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 80)}
		if i >= 256 {
			ev.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 80)
		}
		if err := g.Observe(ev); err != nil {
			t.Fatal(err)
		}
		if n := g.Stats().Assocs; n > 100 {
			t.Fatalf("associations %d over the cap", n)
		}
	}
	p := g.lookup(source.ProcID{PID: 5})
	for _, e := range p.assocs {
		if e.last < warnT0.Add(150*time.Second).UnixNano() {
			t.Errorf("an old association survived the cap: %v", e.a.addr)
		}
		if p.assocs[e.pi] != e || e.a.assocs[e.ai] != e {
			t.Fatal("association indexes out of step")
		}
	}
	for i := range 5 {
		_ = g.Note(Behaviour{Time: warnT0.Add(time.Duration(i) * time.Hour), Node: ProcessNode(p.id), Kind: BehaviourDeny})
	}
	if len(p.beh) != 2 || p.beh[1].t != warnT0.Add(4*time.Hour).UnixNano() {
		t.Errorf("behaviours %+v, want the 2 newest", p.beh)
	}
}

func TestGraphLateReport(t *testing.T) {
	// A detector's report arriving after the process exited names the
	// exited process, not a new one.
	b := replay.NewBuilder(warnT0)
	b.Fork(231, 100).Exec(231, "/bin/sh").Connect(231, "tcp", "203.0.113.9:80").Exit(231, 0).
		After(time.Second).Risk(231, "high", "late report")
	g := feedGraph(t, b)
	if s := g.Stats(); s.Processes != 2 {
		t.Fatalf("processes %d, want 2 (100, 231)", s.Processes)
	}
	p := g.lookup(source.ProcID{PID: 231})
	if p == nil || p.exited == 0 || len(p.beh) != 1 || p.name != "sh" {
		t.Fatalf("231 = %+v", p)
	}
	w := newWarner(t, g, nil)
	if _, warns, err := w.Assess(AddrNode(netip.MustParseAddr("203.0.113.9")), g.Now()); err != nil || !warns {
		t.Errorf("address of the late-reported process not warned: %v %v", warns, err)
	}
}

func TestGraphProcessCap(t *testing.T) {
	g := NewGraph(WithMaxProcesses(50))
	for i := range 200 {
		ts := warnT0.Add(time.Duration(i) * time.Second)
		pid := 1000 + i
		for _, ev := range []source.Event{
			{Time: ts, Kind: source.KindFork, PID: pid, PPID: 1},
			{Time: ts, Kind: source.KindConnect, PID: pid, Dst: netip.MustParseAddrPort("203.0.113.9:80")},
			{Time: ts, Kind: source.KindExit, PID: pid},
		} {
			if err := g.Observe(ev); err != nil {
				t.Fatal(err)
			}
		}
		if n := g.Stats().Processes; n > 51 { // the cap, plus the fork that triggers a shed
			t.Fatalf("processes %d over the cap", n)
		}
	}
	checkGraph(t, g)
	if g.lookup(source.ProcID{PID: 1199}) == nil || g.lookup(source.ProcID{PID: 1000}) != nil {
		t.Error("the cap dropped the wrong processes")
	}
	if g.lookup(source.ProcID{PID: 1}) == nil {
		t.Error("the live process was dropped")
	}
}

func TestGraphSyncTree(t *testing.T) {
	// The graph starts after the tree: a snapshot gives it the lineage, with
	// the tree's identities, so that events resolve to the same processes.
	tree := proctree.New()
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx").Fork(231, 100).Exec(231, "/bin/sh").
		Fork(300, 100).Exit(300, 0)
	for _, ev := range b.Events() {
		_ = tree.Apply(ev)
	}
	g := NewGraph()
	_ = g.Observe(source.Event{Time: warnT0, Kind: source.KindFork, PID: 999, PPID: 1}) // gone from the host
	now := warnT0.Add(time.Second)
	// pid 1 is already there: the graph synthesised the placeholder's
	// start exactly as the tree did.
	if n := g.SyncTree(tree.Snapshot(), now); n != 3 {
		t.Fatalf("added %d, want 3 (100, 231, 300)", n)
	}
	checkGraph(t, g)
	sh := g.lookup(source.ProcID{PID: 231})
	if sh == nil || sh.name != "sh" || sh.parent == nil || sh.parent.name != "nginx" || sh.exited != 0 {
		t.Fatalf("231 = %+v", sh)
	}
	if id, _ := tree.Resolve(source.ProcID{PID: 231}); sh.id != id {
		t.Errorf("graph identity %v, tree %v", sh.id, id)
	}
	if p := g.lookup(source.ProcID{PID: 300}); p == nil || p.exited == 0 {
		t.Errorf("exited 300 = %+v", p)
	}
	if p := g.lookup(source.ProcID{PID: 999}); p == nil || p.exited == 0 {
		t.Errorf("999 not marked exited: %+v", p)
	}
	// A later event names the synced process.
	if err := g.Observe(source.Event{Time: now, Kind: source.KindRisk, PID: 231, Level: source.LevelHigh}); err != nil {
		t.Fatal(err)
	}
	if len(sh.beh) != 1 || g.Stats().Processes != 5 {
		t.Errorf("risk event did not land on the synced process: %+v, %+v", sh, g.Stats())
	}
	if n := g.SyncTree(tree.Snapshot(), now); n != 0 {
		t.Errorf("second sync added %d", n)
	}
}
