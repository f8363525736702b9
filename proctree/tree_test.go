package proctree

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// ev is a compact event constructor for tests.
func ev(kind source.Kind, sec float64, pid int, mods ...func(*source.Event)) source.Event {
	e := source.Event{Kind: kind, Time: t0.Add(time.Duration(sec * float64(time.Second))), PID: pid}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func ppid(p int) func(*source.Event)      { return func(e *source.Event) { e.PPID = p } }
func start(s uint64) func(*source.Event)  { return func(e *source.Event) { e.Start = s } }
func pstart(s uint64) func(*source.Event) { return func(e *source.Event) { e.PStart = s } }
func exe(p string) func(*source.Event) {
	return func(e *source.Event) { e.Exe = p; e.Argv = []string{p} }
}
func code(c int) func(*source.Event)     { return func(e *source.Event) { e.Code, e.HasCode = c, true } }
func guid(g string) func(*source.Event)  { return func(e *source.Event) { e.GUID = g } }
func pguid(g string) func(*source.Event) { return func(e *source.Event) { e.ParentGUID = g } }
func fork(sec float64, pid, parent int, m ...func(*source.Event)) source.Event {
	return ev(source.KindFork, sec, pid, append([]func(*source.Event){ppid(parent)}, m...)...)
}
func exec(sec float64, pid int, path string, m ...func(*source.Event)) source.Event {
	return ev(source.KindExec, sec, pid, append([]func(*source.Event){exe(path)}, m...)...)
}
func exit(sec float64, pid int, m ...func(*source.Event)) source.Event {
	return ev(source.KindExit, sec, pid, m...)
}

// apply applies events, failing on anomalies unless allowed.
func apply(t testing.TB, tr *Tree, evs ...source.Event) {
	t.Helper()
	for _, e := range evs {
		if err := tr.Apply(e); err != nil {
			t.Fatalf("Apply(%v %d): %v", e.Kind, e.PID, err)
		}
		checkInvariants(t, tr)
	}
}

// checkInvariants verifies the tree's structure: no cycles, consistent
// child lists, every indexed node present, counts right.
func checkInvariants(t testing.TB, tr *Tree) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	exited, count := 0, 0
	seen := map[ID]bool{}
	tr.each(func(n *node) {
		id := n.id
		count++
		if seen[id] {
			t.Fatalf("identity %v held twice", id)
		}
		seen[id] = true
		if n.flags&fRemoved != 0 {
			t.Fatalf("removed node %v still indexed", id)
		}
		if !n.alive() {
			exited++
		} else if tr.live[id.PID] != n {
			t.Fatalf("live node %v not in live map", id)
		}
		steps := 0
		for a := n.parent; a != nil; a = a.parent {
			if a == n || steps > tr.count {
				t.Fatalf("cycle through %v", id)
			}
			if a.flags&fRemoved != 0 {
				t.Fatalf("%v has removed ancestor %v", id, a.id)
			}
			steps++
		}
		var prev *node
		for c := n.firstChild; c != nil; c = c.nextSib {
			if c.parent != n {
				t.Fatalf("child %v of %v has parent %v", c.id, id, c.parent)
			}
			if c.prevSib != prev {
				t.Fatalf("child list of %v broken at %v", id, c.id)
			}
			prev = c
		}
	})
	if count != tr.count {
		t.Fatalf("count %d, walked %d", tr.count, count)
	}
	uses := map[string]int{}
	tr.each(func(n *node) {
		if n.exe != nil {
			uses[n.exe.s]++
			if tr.intern[n.exe.s] != n.exe {
				t.Fatalf("%v holds a stale intern entry for %q", n.id, n.exe.s)
			}
		}
		for _, e := range n.rd().execs {
			if e.exe != nil {
				uses[e.exe.s]++
			}
		}
	})
	if len(uses) != len(tr.intern) {
		t.Fatalf("intern table has %d strings, %d in use", len(tr.intern), len(uses))
	}
	for s, n := range uses {
		if r := tr.intern[s]; r == nil || r.refs != n {
			t.Fatalf("intern %q: refs %v, uses %d", s, r, n)
		}
	}
	for pid, n := range tr.live {
		if n.id.PID != pid || !n.alive() {
			t.Fatalf("live[%d] inconsistent: %+v", pid, n.id)
		}
	}
	for pid, n := range tr.latest {
		for m := n; m != nil; m = m.older {
			if m.id.PID != pid || m.alive() {
				t.Fatalf("latest chain for %d inconsistent at %v", pid, m.id)
			}
		}
	}
	if exited != tr.nExit {
		t.Fatalf("nExit %d, counted %d", tr.nExit, exited)
	}
}

func TestForkExecExitLineage(t *testing.T) {
	tr := New()
	apply(t, tr,
		exec(0, 1, "/usr/lib/systemd/systemd"),
		fork(1, 100, 1), exec(1.1, 100, "/usr/sbin/nginx"),
		fork(2, 101, 100), exec(2.1, 101, "/usr/sbin/nginx"),
		fork(3, 231, 101), exec(3.1, 231, "/bin/sh"),
		exit(4, 231, code(2)),
	)
	if got, want := tr.Lineage(ID{PID: 231}), "systemd(1) > nginx(100) > nginx(101) > sh(231)"; got != want {
		t.Fatalf("Lineage = %q, want %q", got, want)
	}
	p, ok := tr.GetPID(231)
	if !ok || p.Alive() || !p.HasCode || p.Code != 2 {
		t.Fatalf("exited sh: %+v ok=%v", p, ok)
	}
	if p.Parent.PID != 101 {
		t.Fatalf("parent %v", p.Parent)
	}
	kids := tr.Children(ID{PID: 100})
	if len(kids) != 1 || kids[0].ID.PID != 101 {
		t.Fatalf("children of 100: %+v", kids)
	}
	var desc []int
	for d := range tr.Descendants(ID{PID: 100}) {
		desc = append(desc, d.ID.PID)
	}
	if fmt.Sprint(desc) != "[101 231]" {
		t.Fatalf("descendants %v", desc)
	}
	if anc := tr.Ancestors(ID{PID: 231}); len(anc) != 3 || anc[0].ID.PID != 101 || anc[2].ID.PID != 1 {
		t.Fatalf("ancestors %+v", anc)
	}
}

func TestExecHistory(t *testing.T) {
	tr := New()
	apply(t, tr, fork(0, 10, 1), exec(1, 10, "/bin/bash"), exec(2, 10, "/usr/bin/python3"), exec(3, 10, "/tmp/x"))
	p, _ := tr.GetPID(10)
	if p.Exe != "/tmp/x" || len(p.Execs) != 2 || p.Execs[0].Exe != "/bin/bash" || p.Execs[1].Exe != "/usr/bin/python3" {
		t.Fatalf("exec history: exe %q execs %+v", p.Exe, p.Execs)
	}
	if !p.Execs[1].Time.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("exec time %v", p.Execs[1].Time)
	}
}

func TestPIDReuse(t *testing.T) {
	t.Run("without start times", func(t *testing.T) {
		tr := New()
		apply(t, tr, fork(0, 50, 1), exec(0.1, 50, "/bin/old"), exit(1, 50), fork(2, 50, 1), exec(2.1, 50, "/bin/new"))
		cur, _ := tr.GetPID(50)
		if cur.Exe != "/bin/new" || !cur.Alive() {
			t.Fatalf("current pid 50: %+v", cur)
		}
		if tr.Len() != 3 {
			t.Fatalf("Len = %d, want 3 (placeholder 1, old and new incarnation of 50)", tr.Len())
		}
		var old Process
		for p := range tr.All() {
			if p.ID.PID == 50 && !p.Alive() {
				old = p
			}
		}
		if old.Exe != "/bin/old" || old.ID == cur.ID || old.StartKnown || cur.StartKnown {
			t.Fatalf("old %+v cur %+v", old.ID, cur.ID)
		}
		if got, _ := tr.Get(old.ID); got.Exe != "/bin/old" {
			t.Fatalf("old not resolvable by its identity")
		}
	})
	t.Run("with start times, exit unseen", func(t *testing.T) {
		tr := New()
		apply(t, tr, fork(0, 50, 1, start(1000)), exec(0.1, 50, "/bin/old", start(1000)))
		// A new process with the same pid and another start: the first
		// one's exit was lost.
		apply(t, tr, fork(5, 50, 1, start(9000)), exec(5.1, 50, "/bin/new", start(9000)))
		old, ok := tr.Get(ID{PID: 50, Start: 1000})
		if !ok || old.Alive() || !old.ExitUnseen || old.Exe != "/bin/old" {
			t.Fatalf("old incarnation: %+v ok=%v", old, ok)
		}
		cur, _ := tr.Get(ID{PID: 50, Start: 9000})
		if cur.Exe != "/bin/new" || !cur.Alive() || !cur.StartKnown {
			t.Fatalf("new incarnation: %+v", cur)
		}
		// An exec naming the old identity must not touch the new process.
		if err := tr.Apply(exec(6, 50, "/bin/ghost", start(1000))); err != nil {
			t.Logf("anomaly (expected kind): %v", err)
		}
		cur, _ = tr.Get(ID{PID: 50, Start: 9000})
		if cur.Exe != "/bin/new" {
			t.Fatalf("exec of old identity changed the new process: %q", cur.Exe)
		}
	})
	t.Run("guid tells reuse apart", func(t *testing.T) {
		tr := New()
		apply(t, tr, exec(0, 70, "/bin/a", guid("{A}"), ppid(1)), exec(1, 70, "/bin/b", guid("{B}"), ppid(1)))
		a, okA := tr.GetGUID("{A}")
		b, okB := tr.GetGUID("{B}")
		if !okA || !okB || a.ID == b.ID || a.Alive() || !b.Alive() {
			t.Fatalf("guid reuse: a=%+v b=%+v", a.ID, b.ID)
		}
	})
}

func TestBadInputDocumented(t *testing.T) {
	var anomaly *AnomalyError
	t.Run("duplicate fork", func(t *testing.T) {
		tr := New()
		apply(t, tr, fork(0, 10, 1, start(5)))
		err := tr.Apply(fork(1, 10, 1, start(5)))
		if !errors.As(err, &anomaly) || !strings.Contains(err.Error(), "duplicate fork") {
			t.Fatalf("duplicate fork: %v", err)
		}
		if tr.Len() != 2 { // 10 and placeholder 1
			t.Fatalf("Len = %d", tr.Len())
		}
		checkInvariants(t, tr)
	})
	t.Run("exit before fork", func(t *testing.T) {
		tr := New()
		err := tr.Apply(exit(0, 77, code(1)))
		if !errors.As(err, &anomaly) {
			t.Fatalf("exit of unknown pid: %v", err)
		}
		p, ok := tr.GetPID(77)
		if !ok || p.Alive() || p.Code != 1 {
			t.Fatalf("unknown exit not recorded: %+v", p)
		}
		checkInvariants(t, tr)
	})
	t.Run("exec of unknown pid is an implicit fork", func(t *testing.T) {
		tr := New()
		apply(t, tr, exec(0, 1, "/sbin/init"), exec(1, 300, "/bin/sh", ppid(1)))
		if p, _ := tr.GetPID(300); p.Parent.PID != 1 || p.Exe != "/bin/sh" {
			t.Fatalf("implicit fork: %+v", p)
		}
	})
	t.Run("parent never seen becomes a placeholder", func(t *testing.T) {
		tr := New()
		apply(t, tr, fork(0, 500, 400))
		par, ok := tr.GetPID(400)
		if !ok || !par.Placeholder {
			t.Fatalf("placeholder parent: %+v ok=%v", par, ok)
		}
		// The placeholder fills in when its own events arrive.
		apply(t, tr, exec(0, 1, "/sbin/init"), fork(1, 400, 1), exec(1.1, 400, "/usr/sbin/apache2"))
		par, _ = tr.GetPID(400)
		if par.Placeholder || par.Exe != "/usr/sbin/apache2" || par.Parent.PID != 1 {
			t.Fatalf("placeholder after its fork: %+v", par)
		}
		if got := tr.Lineage(ID{PID: 500}); got != "init(1) > apache2(400) > ?(500)" {
			t.Fatalf("lineage %q", got)
		}
	})
	t.Run("cycle refused", func(t *testing.T) {
		tr := New()
		apply(t, tr, fork(0, 20, 10, start(2), pstart(1)), fork(0, 10, 1, start(1)))
		// 10 claims to be a child of 20, its own child.
		err := tr.Apply(exec(1, 10, "/bin/x", start(1), ppid(20), pstart(2)))
		checkInvariants(t, tr)
		p, _ := tr.Get(ID{PID: 10, Start: 1})
		if p.Parent.PID != 1 {
			t.Fatalf("cycle claim changed parent to %v (err %v)", p.Parent, err)
		}
		err = tr.Apply(fork(2, 10, 20, start(1), pstart(2)))
		if !errors.As(err, &anomaly) {
			// Duplicate fork with known parent: ignored is also fine, as
			// long as no cycle appears.
			t.Logf("second claim: %v", err)
		}
		checkInvariants(t, tr)
	})
	t.Run("pid 0 and self-parent rejected", func(t *testing.T) {
		tr := New()
		for _, e := range []source.Event{fork(0, 0, 1), fork(0, 5, 5), exec(0, -3, "/x")} {
			if err := tr.Apply(e); !errors.As(err, &anomaly) || !strings.Contains(err.Error(), "rejected") {
				t.Fatalf("Apply(%+v) = %v, want rejection", e, err)
			}
		}
		if tr.Len() != 0 {
			t.Fatalf("rejected events changed the tree: %d", tr.Len())
		}
	})
}

func TestRetentionTwoPassReap(t *testing.T) {
	var removed []ID
	tr := New(WithRetention(time.Minute), WithOnRemove(func(id ID) { removed = append(removed, id) }))
	apply(t, tr, fork(0, 10, 1), exit(10, 10))
	if tr.Reap(t0.Add(69*time.Second)) != 0 {
		t.Fatal("reaped before retention ended")
	}
	if n := tr.Reap(t0.Add(71 * time.Second)); n != 0 {
		t.Fatalf("first pass removed %d: it must only mark", n)
	}
	if _, ok := tr.GetPID(10); !ok {
		t.Fatal("process gone after the marking pass")
	}
	if n := tr.Reap(t0.Add(72 * time.Second)); n != 1 {
		t.Fatalf("second pass removed %d, want 1", n)
	}
	if _, ok := tr.GetPID(10); ok {
		t.Fatal("process still resolvable after reaping")
	}
	if len(removed) != 1 || removed[0].PID != 10 {
		t.Fatalf("onRemove calls %v", removed)
	}
	checkInvariants(t, tr)
	if s := tr.Stats(); s.Reaped != 1 || s.Exited != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMaxExitedCap(t *testing.T) {
	tr := New(WithMaxExited(3))
	for i := range 10 {
		apply(t, tr, fork(float64(i), 100+i, 1), exit(float64(i)+0.5, 100+i))
	}
	s := tr.Stats()
	if s.Exited != 3 || s.Evicted != 7 {
		t.Fatalf("stats %+v: want 3 exited kept, 7 evicted", s)
	}
	// The newest exited are the ones kept.
	for _, pid := range []int{107, 108, 109} {
		if _, ok := tr.GetPID(pid); !ok {
			t.Fatalf("pid %d evicted, newer ones must stay", pid)
		}
	}
	if _, ok := tr.GetPID(100); ok {
		t.Fatal("oldest exited kept past the cap")
	}
}

func TestOrphansReparented(t *testing.T) {
	tr := New(WithRetention(time.Second))
	apply(t, tr,
		exec(0, 1, "/sbin/init"),
		fork(1, 50, 1), exec(1, 50, "/usr/bin/containerd-shim-runc-v2"),
		fork(2, 60, 50), exec(2, 60, "/usr/sbin/nginx"),
		fork(3, 61, 60), fork(3, 62, 1),
		exit(4, 60),
	)
	// While 60 is retained, lineage is intact and the reaper is recorded.
	if p, _ := tr.GetPID(61); p.Parent.PID != 60 || p.Reaper.PID != 50 {
		t.Fatalf("before reaping: parent %v reaper %v", p.Parent, p.Reaper)
	}
	tr.Reap(t0.Add(10 * time.Second))
	tr.Reap(t0.Add(11 * time.Second))
	checkInvariants(t, tr)
	if p, _ := tr.GetPID(61); p.Parent.PID != 50 {
		t.Fatalf("orphan re-parented to %v, want the subreaper 50", p.Parent)
	}
	// Without a subreaper the orphan goes to pid 1.
	apply(t, tr, fork(20, 70, 62), fork(20, 71, 70), exit(21, 70))
	tr.Reap(t0.Add(30 * time.Second))
	tr.Reap(t0.Add(31 * time.Second))
	if p, _ := tr.GetPID(71); p.Parent.PID != 1 {
		t.Fatalf("orphan re-parented to %v, want 1", p.Parent)
	}
	if tr.Stats().Reparented < 2 {
		t.Fatalf("reparent count %d", tr.Stats().Reparented)
	}
}

func TestMainProcess(t *testing.T) {
	build := func(t *testing.T, opts ...Option) *Tree {
		tr := New(opts...)
		apply(t, tr,
			exec(0, 1, "/usr/lib/systemd/systemd"),
			fork(0, 2, 0), exec(0, 2, "kthreadd"),
			fork(0, 9, 2), // a kernel thread
			fork(1, 100, 1), exec(1, 100, "/usr/sbin/nginx"),
			fork(2, 101, 100), exec(2, 101, "/usr/sbin/nginx"),
			fork(3, 231, 101), exec(3, 231, "/bin/sh"),
			fork(4, 300, 1), exec(4, 300, "/usr/bin/containerd-shim-runc-v2"),
			fork(5, 310, 300), exec(5, 310, "/usr/bin/java"),
			fork(6, 320, 310), exec(6, 320, "/bin/bash"),
			fork(7, 400, 1), exec(7, 400, "/usr/bin/cron"),
			fork(8, 900, 850), exec(8, 900, "/tmp/payload"), // parent never seen
		)
		return tr
	}
	cases := []struct {
		name       string
		pid        int
		opts       []Option
		want       int
		incomplete bool
		self       bool
	}{
		{"deep descendant stops below pid 1", 231, nil, 100, false, false},
		{"parent is boundary: itself", 100, nil, 100, false, false},
		{"container shim is a boundary", 320, nil, 310, false, false},
		{"pid 1 is its own", 1, nil, 1, false, true},
		{"kernel thread is a boundary", 9, nil, 9, false, true},
		{"unknown lineage above: incomplete", 900, nil, 850, true, false},
		{"custom boundary list", 231, []Option{WithBoundaries("nginx")}, 231, false, false},
		{"cron is not a default boundary", 400, nil, 400, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := build(t, c.opts...)
			m, ok := tr.MainProcess(ID{PID: c.pid})
			if !ok || m.ID.PID != c.want || m.Incomplete != c.incomplete || m.SelfBoundary != c.self {
				t.Fatalf("MainProcess(%d) = %+v ok=%v, want pid %d incomplete=%v self=%v", c.pid, m, ok, c.want, c.incomplete, c.self)
			}
		})
	}
	t.Run("nearest with traffic policy", func(t *testing.T) {
		tr := build(t, WithMainPolicy(MainNearestWithTraffic), WithTraffic(func(id ID) bool { return id.PID == 101 }))
		if m, _ := tr.MainProcess(ID{PID: 231}); m.ID.PID != 101 || m.Depth != 1 {
			t.Fatalf("nearest with traffic: %+v", m)
		}
	})
	t.Run("exited main process still resolves", func(t *testing.T) {
		tr := build(t)
		apply(t, tr, exit(9, 101), exit(9, 231))
		if m, _ := tr.MainProcess(ID{PID: 231}); m.ID.PID != 100 {
			t.Fatalf("main of exited: %+v", m)
		}
	})
	if _, ok := New().MainProcess(ID{PID: 42}); ok {
		t.Fatal("MainProcess of unknown pid reported ok")
	}
}

func TestResync(t *testing.T) {
	tr := New()
	apply(t, tr,
		exec(0, 1, "/sbin/init", start(1)),
		fork(1, 10, 1, start(10)), exec(1, 10, "/bin/a", start(10)),
		fork(2, 11, 1, start(11)), exec(2, 11, "/bin/b", start(11)),
	)
	// /proc now: 10 still there, 11 gone, 12 new (child of 10), and pid 13
	// under 12 listed before its parent.
	snap := []Observed{
		{PID: 1, Start: 1, Exe: "/sbin/init"},
		{PID: 10, PPID: 1, Start: 10, Exe: "/bin/a"},
		{PID: 13, PPID: 12, Start: 13, Exe: "/bin/d"},
		{PID: 12, PPID: 10, Start: 12, Exe: "/bin/c"},
	}
	d := tr.Resync(t0.Add(time.Minute), snap)
	checkInvariants(t, tr)
	if fmt.Sprint(d.Exited) != "[11@11]" || fmt.Sprint(d.Added) != "[13@13 12@12]" {
		t.Fatalf("diff: exited %v added %v", d.Exited, d.Added)
	}
	if got := tr.Lineage(ID{PID: 13}); got != "init(1) > a(10) > c(12) > d(13)" {
		t.Fatalf("lineage after resync: %q", got)
	}
	if p, _ := tr.GetPID(11); p.Alive() || !p.ExitUnseen {
		t.Fatalf("stale process not marked exited: %+v", p)
	}
	// A second resync with the same snapshot changes nothing.
	if d := tr.Resync(t0.Add(2*time.Minute), snap); !d.Empty() {
		t.Fatalf("second resync not empty: %+v", d)
	}
	// Pid reuse seen only in the snapshot.
	snap[1].Start = 99
	d = tr.Resync(t0.Add(3*time.Minute), snap)
	if len(d.Exited) != 1 || d.Exited[0] != (ID{PID: 10, Start: 10}) || len(d.Added) != 1 || d.Added[0] != (ID{PID: 10, Start: 99}) {
		t.Fatalf("reuse diff %+v", d)
	}
	checkInvariants(t, tr)
}

func TestRender(t *testing.T) {
	tr := New()
	apply(t, tr,
		exec(0, 1, "/sbin/init"),
		fork(1, 100, 1), exec(1, 100, "/usr/sbin/nginx"),
		fork(2, 101, 100), fork(2, 102, 100),
		fork(3, 231, 101), exec(3, 231, "/bin/sh"), exit(4, 231, code(0)),
	)
	var b strings.Builder
	err := tr.Render(&b, RenderOptions{Addrs: func(id ID) []string {
		if id.PID == 100 {
			return []string{"198.51.100.7", "203.0.113.9"}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `init(1)
└─ nginx(100)  198.51.100.7, 203.0.113.9
   ├─ ?(101)
   │  └─ sh(231) [exited 10:00:04 code 0]
   └─ ?(102)
`
	if b.String() != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := tr.RenderJSON(&b, RenderOptions{Root: ID{PID: 100}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"exe":"/usr/sbin/nginx"`) || strings.Count(b.String(), "\n") != 1 ||
		!strings.Contains(b.String(), `"children":[{`) {
		t.Fatalf("RenderJSON: %s", b.String())
	}
}

// TestConcurrentStress runs writers and readers at once; with -race it
// checks the locking, and the invariants check the result.
func TestConcurrentStress(t *testing.T) {
	tr := New(WithRetention(time.Second), WithMaxExited(500))
	apply(t, tr, exec(0, 1, "/sbin/init"))
	var wg sync.WaitGroup
	const writers, perWriter = 2, 3000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				pid := 1000 + w*perWriter + i
				sec := float64(i) / 100
				_ = tr.Apply(fork(sec, pid, 1))
				_ = tr.Apply(exec(sec, pid, "/bin/worker"))
				if i%3 == 0 {
					_ = tr.Apply(fork(sec, pid+500000, pid))
				}
				_ = tr.Apply(exit(sec, pid))
				if i%100 == 0 {
					tr.Reap(t0.Add(time.Duration(sec * float64(time.Second))))
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				tr.MainProcess(ID{PID: 1000 + i})
				_ = tr.Lineage(ID{PID: 500000 + 1000 + i})
				n := 0
				for range tr.All() {
					n++
					if n > 50 {
						break
					}
				}
				_ = tr.Subtree(ID{PID: 1})
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, tr)
}

func TestExecReportedByTwoSources(t *testing.T) {
	tr := New()
	apply(t, tr, fork(0, 10, 1),
		exec(1, 10, "/usr/sbin/ip"),
		exec(1.001, 10, "/usr/bin/ip", func(e *source.Event) { e.Cwd = "/root"; e.UID, e.HasUID = 0, true }),
		exec(1.01, 10, "/tmp/payload"),
		exec(1.02, 10, "/tmp/payload"),
		exec(2, 10, "/tmp/payload"), // a real re-exec, later
	)
	p, _ := tr.GetPID(10)
	if len(p.Execs) != 2 || p.Execs[0].Exe != "/usr/sbin/ip" || p.Execs[1].Exe != "/tmp/payload" || p.Cwd != "/root" || !p.HasUID {
		t.Fatalf("execs %+v cwd %q uid %v", p.Execs, p.Cwd, p.HasUID)
	}
}

func TestQueriesOfUnknownProcess(t *testing.T) {
	tr := New()
	apply(t, tr, fork(0, 10, 1))
	unknown := ID{PID: 4242}
	for range tr.Descendants(unknown) {
		t.Fatal("descendants of an unknown process")
	}
	if tr.Subtree(unknown) != nil || tr.SubtreeIDs(unknown) != nil || tr.Ancestors(unknown) != nil ||
		tr.Children(unknown) != nil || tr.Lineage(unknown) != "" {
		t.Fatal("queries of an unknown process returned something")
	}
	if _, ok := tr.Parent(unknown); ok {
		t.Fatal("parent of an unknown process")
	}
	if _, ok := tr.Resolve(unknown); ok {
		t.Fatal("resolved an unknown process")
	}
}
