package proctree

import (
	"net/netip"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// FuzzApply drives random event sequences through a tree and checks its
// invariants after each event: no panic, no cycle, consistent indexes.
// Each 4-byte group of the input is one operation.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 5, 1, 0, 1, 5, 0, 0, 2, 5, 0, 3})
	f.Add([]byte{0, 2, 1, 1, 0, 1, 2, 1, 0, 2, 1, 2, 6, 0, 0, 9, 5, 0, 0, 0})
	f.Add([]byte{3, 7, 0, 0, 0, 7, 7, 0, 1, 0, 3, 0, 0, 8, 7, 5, 2, 8, 0, 0, 4, 0, 0, 0})
	f.Fuzz(fuzzApply)
}

func fuzzApply(t *testing.T, data []byte) {
	{
		tr := New(WithRetention(3*time.Second), WithMaxExited(6), WithBoundaries("b*"))
		exes := []string{"/bin/a", "/bin/b", "/usr/bin/bash", "/x/c", ""}
		now := 0.0
		for i := 0; i+3 < len(data) && i < 4*400; i += 4 {
			op, pid, arg, st := data[i]%8, int(data[i+1]%12), int(data[i+2]%12), uint64(data[i+3]%4)
			now += 0.5
			var e source.Event
			switch op {
			case 0:
				e = fork(now, pid, arg, start(st), pstart(uint64(data[i+3]/4%4)))
			case 1:
				e = exec(now, pid, exes[arg%len(exes)], start(st), ppid(int(data[i+3]%6)))
			case 2:
				e = exit(now, pid, start(st), code(arg))
			case 3:
				e = ev(source.KindConnect, now, pid, start(st), func(e *source.Event) { e.Dst = mustAddrPort("198.51.100.1:80") })
			case 4:
				tr.Reap(t0.Add(time.Duration(now * float64(time.Second))))
				checkInvariants(t, tr)
				continue
			case 5:
				e = exec(now, pid, exes[arg%len(exes)], guid(string(rune('A'+arg%3))), pguid(string(rune('A'+int(st)))), ppid(arg))
			case 6:
				var obs []Observed
				for j := 0; j < arg; j++ {
					obs = append(obs, Observed{PID: 1 + (pid+j)%12, PPID: (pid + 2*j) % 12, Start: uint64(j % 3), Exe: exes[j%len(exes)]})
				}
				tr.Resync(t0.Add(time.Duration(now*float64(time.Second))), obs)
				checkInvariants(t, tr)
				continue
			case 7:
				id := ID{PID: pid, Start: st}
				tr.MainProcess(id)
				tr.Lineage(id)
				tr.Subtree(id)
				continue
			}
			_ = tr.Apply(e)
			checkInvariants(t, tr)
		}
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
