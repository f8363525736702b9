package proctree

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// TestChurnMemory runs millions of short-lived processes through a tree
// holding 10k long-lived ones, reaping as a Protector would, and checks
// that the heap returns to within 10% of its baseline: exited processes,
// their interned executable paths and the exit queue are all released.
// 10 million processes without the race detector; fewer under it (the
// race detector makes each cycle ~10x slower). PROCWALL_CHURN overrides.
func TestChurnMemory(t *testing.T) {
	n := 10_000_000
	if raceEnabled || testing.Short() {
		n = 200_000
	}
	if v := os.Getenv("PROCWALL_CHURN"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	tr := New(WithRetention(time.Second), WithMaxExited(1<<16))
	_ = tr.Apply(exec(0, 1, "/usr/lib/systemd/systemd"))
	for i := range 10_000 {
		_ = tr.Apply(fork(0, 1000+i, 1))
		_ = tr.Apply(exec(0, 1000+i, "/usr/sbin/daemon"))
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	fe := source.Event{Kind: source.KindFork, PPID: 1}
	ee := source.Event{Kind: source.KindExec}
	xe := source.Event{Kind: source.KindExit}
	var ts time.Time
	for i := range n {
		pid := 100_000 + i%400_000
		ts = t0.Add(time.Duration(i) * 10 * time.Microsecond)
		fe.PID, fe.Time = pid, ts
		ee.PID, ee.Time = pid, ts
		// Every 8th process runs a unique path (/tmp/x123): interning must
		// not keep them.
		ee.Exe = "/usr/bin/short"
		if i%8 == 0 {
			ee.Exe = "/tmp/x" + strconv.Itoa(i)
		}
		xe.PID, xe.Time = pid, ts
		if err := tr.Apply(fe); err != nil {
			t.Fatal(err)
		}
		_ = tr.Apply(ee)
		_ = tr.Apply(xe)
		if i%10_000 == 0 {
			tr.Reap(ts)
		}
	}
	// Past retention, two passes collect everything that exited.
	tr.Reap(ts.Add(2 * time.Second))
	tr.Reap(ts.Add(3 * time.Second))
	s := tr.Stats()
	if s.Live != 10_001 || s.Exited != 0 {
		t.Fatalf("after churn: %+v", s)
	}
	after := heap()
	t.Logf("%d processes: heap %d → %d bytes (%+.1f%%), reaped %d, evicted %d, interned %d",
		n, base, after, 100*(float64(after)-float64(base))/float64(base), s.Reaped, s.Evicted, s.InternedExecutable)
	if float64(after) > 1.10*float64(base) {
		t.Fatalf("heap %d bytes after churn, more than 10%% above the %d-byte baseline", after, base)
	}
	runtime.KeepAlive(tr)
}
