package proctree

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

const benchLive = 100_000

// liveTree returns a tree holding n live processes under a systemd.
func liveTree(b *testing.B, n int, opts ...Option) *Tree {
	b.Helper()
	tr := New(opts...)
	_ = tr.Apply(exec(0, 1, "/usr/lib/systemd/systemd"))
	for i := range n {
		pid := 1000 + i
		_ = tr.Apply(fork(0, pid, 1))
		_ = tr.Apply(exec(0, pid, "/usr/sbin/worker"))
	}
	return tr
}

// BenchmarkTreeApply: one fork+exec+exit cycle per op on a tree of 100k
// live processes (exited processes are reaped as they would be in a run).
func BenchmarkTreeApply(b *testing.B) {
	tr := liveTree(b, benchLive, WithRetention(time.Second), WithMaxExited(4096))
	argv := []string{"/bin/true"}
	base := t0
	fe := source.Event{Kind: source.KindFork, PPID: 1}
	ee := source.Event{Kind: source.KindExec, Exe: "/bin/true", Argv: argv}
	xe := source.Event{Kind: source.KindExit, HasCode: true}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		pid := 200_000 + i%100_000
		ts := base.Add(time.Duration(i) * time.Microsecond)
		fe.PID, fe.Time = pid, ts
		ee.PID, ee.Time = pid, ts
		xe.PID, xe.Time = pid, ts
		_ = tr.ApplyEvent(&fe)
		_ = tr.ApplyEvent(&ee)
		_ = tr.ApplyEvent(&xe)
		if i%4096 == 0 {
			tr.Reap(ts)
		}
		i++
	}
}

// BenchmarkMapBaseline: the same number of inserts and deletes on a plain
// map under a mutex — the floor TreeApply is compared against.
func BenchmarkMapBaseline(b *testing.B) {
	type rec struct {
		pid, ppid int
		exe       string
		argv      []string
		t         int64
	}
	var mu sync.Mutex
	m := make(map[int]*rec, benchLive)
	for i := range benchLive {
		m[1000+i] = &rec{pid: 1000 + i, ppid: 1, exe: "/usr/sbin/worker"}
	}
	argv := []string{"/bin/true"}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		pid := 200_000 + i%100_000
		ts := t0.Add(time.Duration(i) * time.Microsecond).UnixNano()
		mu.Lock()
		m[pid] = &rec{pid: pid, ppid: 1, t: ts} // fork
		mu.Unlock()
		mu.Lock()
		if r := m[pid]; r != nil { // exec
			r.exe, r.argv = "/bin/true", argv
		}
		mu.Unlock()
		mu.Lock()
		delete(m, pid) // exit
		mu.Unlock()
		i++
	}
}

// BenchmarkMainProcess: main-process lookup at depth 8.
func BenchmarkMainProcess(b *testing.B) {
	tr := liveTree(b, 10_000)
	parent := 1
	for d := range 8 {
		pid := 50_000 + d
		_ = tr.Apply(fork(1, pid, parent))
		_ = tr.Apply(exec(1, pid, "/usr/bin/level"))
		parent = pid
	}
	leaf := ID{PID: parent}
	if m, ok := tr.MainProcess(leaf); !ok || m.ID.PID != 50_000 || m.Depth != 7 {
		b.Fatalf("MainProcess = %+v %v", m, ok)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.MainProcess(leaf)
	}
}

// BenchmarkTreeMemory reports the heap bytes per live process, excluding
// the strings (executable paths are interned and shared; argv is nil).
func BenchmarkTreeMemory(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr := liveTree(b, benchLive)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchLive, "B/proc")
		runtime.KeepAlive(tr)
	}
}
