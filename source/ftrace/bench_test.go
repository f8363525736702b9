package ftrace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/procwall/procwall/source"
)

// benchPage fills a page with copies of rec and returns it with the
// record count.
func benchPage(rec []byte) ([]byte, int) {
	p := newPage(1)
	n := 0
	for len(p.b)+4+len(rec)+8 <= 4096-8 {
		p.add(3, rec)
		n++
	}
	return p.page(false, 0), n
}

func benchRecords(b *testing.B) map[string][]byte {
	nt := testFormat(b, "task_newtask")
	ex := testFormat(b, "sched_process_exec")
	xt := testFormat(b, "sched_process_exit")
	ss := testFormat(b, "inet_sock_set_state")
	return map[string][]byte{
		"fork": buildRecord(nt, map[string]any{"common_pid": 10, "pid": 11, "clone_flags": 0x1200011}),
		"exec": buildRecord(ex, map[string]any{"common_pid": 11, "filename": []byte("/usr/bin/python3"), "pid": 11, "old_pid": 11}),
		"exit": buildRecord(xt, map[string]any{"common_pid": 11, "pid": 11, "group_dead": 1}),
		"connect4": buildRecord(ss, map[string]any{"common_pid": 11, "oldstate": 7, "newstate": 2, "family": 2, "protocol": 6,
			"dport": 8080, "saddr": []byte{127, 0, 0, 1}, "daddr": []byte{127, 0, 0, 1}}),
		"connect6": buildRecord(ss, map[string]any{"common_pid": 11, "oldstate": 7, "newstate": 2, "family": 10, "protocol": 6,
			"dport": 8081, "saddr_v6": netip.IPv6Loopback().AsSlice(), "daddr_v6": netip.IPv6Loopback().AsSlice()}),
	}
}

// BenchmarkParse measures walking a ring-buffer page and decoding its
// records, per event type; the events/s metric is per core.
func BenchmarkParse(b *testing.B) {
	d := recordedDecoder(b)
	recs := benchRecords(b)
	for _, name := range []string{"fork", "exec", "exit", "connect4", "connect6"} {
		b.Run(name, func(b *testing.B) {
			page, n := benchPage(recs[name])
			var it pageIter
			var r record
			b.ReportAllocs()
			events := 0
			for b.Loop() {
				if err := it.reset(defaultLayout, page); err != nil {
					b.Fatal(err)
				}
				for {
					ts, data, ok, err := it.next()
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					if err := d.decode(ts, data, &r); err != nil {
						b.Fatal(err)
					}
				}
				events += n
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
		})
	}
}

// Text lines as trace_pipe prints the same events (with record-tgid off).
var textLines = map[string]string{
	"fork":     `         python3-11      [001] ..... 1367.897108: task_newtask: pid=12 comm=python3 clone_flags=1200011 oom_score_adj=0`,
	"exec":     `         python3-11      [001] ..... 1367.909224: sched_process_exec: filename=/usr/bin/python3 pid=11 old_pid=11`,
	"exit":     `         python3-11      [001] ..... 1367.917249: sched_process_exit: comm=python3 pid=11 prio=120 group_dead=true`,
	"connect4": `         python3-11      [001] ..... 1367.919147: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=0 dport=8080 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_CLOSE newstate=TCP_SYN_SENT`,
	"connect6": `         python3-11      [001] ..... 1367.919147: inet_sock_set_state: family=AF_INET6 protocol=IPPROTO_TCP sport=0 dport=8081 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 oldstate=TCP_CLOSE newstate=TCP_SYN_SENT`,
}

var errTextLine = errors.New("bad trace line")

// parseTextLine is the baseline: a minimal parser of trace_pipe text
// lines for the same events, as the text alternative would need. The
// task's comm may contain spaces and '-', so the pid is found from the
// "[cpu]" column backwards.
func parseTextLine(line []byte, out *record) error {
	*out = record{}
	br := bytes.Index(line, []byte(") ["))
	if br < 0 {
		br = bytes.Index(line, []byte(" ["))
	}
	if br < 0 {
		return errTextLine
	}
	head := bytes.TrimRight(line[:br], " ")
	dash := bytes.LastIndexByte(head, '-')
	if dash < 0 {
		return errTextLine
	}
	pid, err := atoi(head[dash+1:])
	if err != nil {
		return err
	}
	out.TID = int32(pid)
	rest := line[br:]
	colon := bytes.Index(rest, []byte(": "))
	if colon < 0 {
		return errTextLine
	}
	tsf := rest[bytes.LastIndexByte(rest[:colon], ' ')+1 : colon]
	dot := bytes.IndexByte(tsf, '.')
	if dot < 0 {
		return errTextLine
	}
	sec, err1 := atoi(tsf[:dot])
	usec, err2 := atoi(tsf[dot+1:])
	if err1 != nil || err2 != nil {
		return errTextLine
	}
	out.TS = uint64(sec)*1e9 + uint64(usec)*1e3
	rest = rest[colon+2:]
	ev := bytes.IndexByte(rest, ':')
	if ev < 0 {
		return errTextLine
	}
	name, args := rest[:ev], rest[ev+2:]
	var family []byte
	var dport int
	var d4, d6 []byte
	for len(args) > 0 {
		sp := bytes.IndexByte(args, ' ')
		var kv []byte
		if sp < 0 {
			kv, args = args, nil
		} else {
			kv, args = args[:sp], args[sp+1:]
		}
		eq := bytes.IndexByte(kv, '=')
		if eq < 0 {
			continue
		}
		k, v := kv[:eq], kv[eq+1:]
		switch string(name) {
		case "task_newtask":
			switch string(k) {
			case "pid":
				n, _ := atoi(v)
				out.Child = int32(n)
			case "clone_flags":
				f, _ := strconv.ParseUint(string(v), 16, 64)
				out.CloneFlags, out.HasFlags = f, true
			}
			out.Kind = recNewTask
		case "sched_process_exec":
			switch string(k) {
			case "filename":
				out.Filename = v
			case "pid":
				n, _ := atoi(v)
				out.PID = int32(n)
			}
			out.Kind = recExec
		case "sched_process_exit":
			switch string(k) {
			case "pid":
				n, _ := atoi(v)
				out.PID = int32(n)
			case "group_dead":
				out.GroupDead, out.HasGroup = string(v) == "true", true
			}
			out.Kind = recExit
		case "inet_sock_set_state":
			switch string(k) {
			case "family":
				family = v
			case "dport":
				dport, _ = atoi(v)
			case "daddr":
				d4 = v
			case "daddrv6":
				d6 = v
			}
			out.Kind = recConnect
		}
	}
	if out.Kind == recConnect {
		out.Proto = source.ProtoTCP
		a := d4
		if string(family) == "AF_INET6" {
			a = d6
		}
		ip, err := netip.ParseAddr(string(a))
		if err != nil {
			return err
		}
		out.Dst = netip.AddrPortFrom(ip, uint16(dport))
	}
	return nil
}

func atoi(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errTextLine
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errTextLine
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// BenchmarkParseText is the text baseline for BenchmarkParse: the same
// events as trace_pipe lines (the Go side only; the kernel's printf
// formatting of each line comes on top, see BenchmarkKernelRead).
func BenchmarkParseText(b *testing.B) {
	for _, name := range []string{"fork", "exec", "exit", "connect4", "connect6"} {
		b.Run(name, func(b *testing.B) {
			line := []byte(textLines[name])
			var r record
			b.ReportAllocs()
			events := 0
			for b.Loop() {
				if err := parseTextLine(line, &r); err != nil {
					b.Fatal(err)
				}
				events++
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func TestParseTextBaseline(t *testing.T) {
	var r record
	if err := parseTextLine([]byte(textLines["connect6"]), &r); err != nil || r.Dst != netip.MustParseAddrPort("[::1]:8081") || r.TID != 11 {
		t.Fatalf("%+v %v", r, err)
	}
	if err := parseTextLine([]byte(textLines["fork"]), &r); err != nil || r.Child != 12 || r.CloneFlags != 0x1200011 {
		t.Fatalf("%+v %v", r, err)
	}
	_ = binary.NativeEndian
}
