package nflog

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"

	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/sockdiag"
)

// openIn opens a source working in ns.
func openIn(t *testing.T, ns *privtest.NetNS, opts ...Option) *Source {
	t.Helper()
	f, err := ns.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Open(append([]Option{WithNetNS(int(f.Fd()))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// collect reads events until want returns true for the set read, or the
// deadline passes (a bounded wait; Close unblocks Next).
func collect(t *testing.T, s *Source, d time.Duration, done func([]source.Event) bool) []source.Event {
	t.Helper()
	var evs []source.Event
	timer := time.AfterFunc(d, func() { s.Close() })
	defer timer.Stop()
	for !done(evs) {
		ev, err := s.Next()
		if errors.Is(err, os.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// ssPorts runs `ss -tunapH` in ns and returns "proto localport" → pids.
func ssPorts(t *testing.T, ns *privtest.NetNS) map[string][]int {
	t.Helper()
	out := ns.MustRun("ss", "-tunapH")
	m := map[string][]int{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		i := strings.LastIndexByte(f[4], ':')
		key := f[0] + " " + f[4][i+1:]
		for _, u := range strings.Split(f[6], "pid=")[1:] {
			n := 0
			fmt.Sscanf(u, "%d", &n)
			m[key] = append(m[key], n)
		}
	}
	return m
}

// TestAttributesFlows: client processes in a test namespace open TCP flows
// and send UDP datagrams (connected and unconnected) over IPv4 and IPv6;
// each new flow is logged by the source's rule and attributed to the
// sending pid, which `ss -tunap` confirms.
func TestAttributesFlows(t *testing.T) {
	privtest.Require(t, privtest.Command("ss"), privtest.Command("nft"))
	ns := testNS(t)
	p := listeners(t, ns, "127.0.0.1", "198.51.100.1", "::1", "2001:db8::1")
	s := openIn(t, ns)
	if out := ns.MustRun("nft", "list", "table", "inet", DefaultTable); !strings.Contains(out, fmt.Sprintf("log group %d", DefaultGroup)) {
		t.Fatalf("table without the log rule:\n%s", out)
	}
	flowsA := []string{
		fmt.Sprintf("tcp=198.51.100.1:%d", p["tcp/198.51.100.1"]),
		fmt.Sprintf("udps=127.0.0.1:%d", p["udp/127.0.0.1"]),
		fmt.Sprintf("udps=[2001:db8::1]:%d", p["udp/2001:db8::1"]),
		"rawicmp",
	}
	flowsB := []string{
		fmt.Sprintf("tcp=[::1]:%d", p["tcp/::1"]),
		fmt.Sprintf("udpc=198.51.100.1:%d", p["udp/198.51.100.1"]),
		fmt.Sprintf("tcp=[2001:db8::1]:%d", p["tcp/2001:db8::1"]),
		fmt.Sprintf("tcp=127.0.0.1:%d", p["tcp/127.0.0.1"]),
	}
	a := startHelper(t, ns, flowsA...)
	b := startHelper(t, ns, flowsB...)
	type want struct {
		pid   int
		proto source.Proto
		kind  source.Kind
		dst   netip.AddrPort
		local netip.AddrPort
	}
	var wants []want
	for _, h := range []*helper{a, b} {
		for spec, local := range h.Local {
			kind, addr, _ := strings.Cut(spec, "=")
			w := want{pid: h.Pid(), proto: source.ProtoTCP, kind: source.KindConnect, dst: netip.MustParseAddrPort(addr), local: local}
			if kind != "tcp" {
				w.proto, w.kind = source.ProtoUDP, source.KindSend
			}
			wants = append(wants, w)
		}
	}
	if len(wants) != 7 {
		t.Fatalf("helpers report %d flows, want 7", len(wants))
	}
	key := func(proto source.Proto, dst netip.AddrPort, port uint16) string {
		return fmt.Sprintf("%v %v %d", proto, dst, port)
	}
	t0 := time.Now()
	evs := collect(t, s, 10*time.Second, func(evs []source.Event) bool {
		seen := map[string]bool{}
		for _, e := range evs {
			seen[key(e.Proto, e.Dst, e.Src.Port())] = true
		}
		for _, w := range wants {
			if !seen[key(w.proto, w.dst, w.local.Port())] {
				return false
			}
		}
		return true
	})
	t.Logf("%d events in %v; stats %+v", len(evs), time.Since(t0), s.Stats())
	got := map[string]source.Event{}
	for _, e := range evs {
		got[key(e.Proto, e.Dst, e.Src.Port())] = e
	}
	ss := ssPorts(t, ns)
	for _, w := range wants {
		e, ok := got[key(w.proto, w.dst, w.local.Port())]
		if !ok {
			t.Errorf("no event for %v flow %v -> %v of pid %d (stats %+v)", w.proto, w.local, w.dst, w.pid, s.Stats())
			continue
		}
		if e.PID != w.pid || e.Kind != w.kind || e.Start == 0 || !e.HasUID || e.Origin != "nflog" {
			t.Errorf("flow %v -> %v: event %+v, want pid %d kind %v", w.local, w.dst, e, w.pid, w.kind)
		}
		if !w.local.Addr().IsUnspecified() && e.Src != w.local {
			t.Errorf("flow to %v: src %v, want %v", w.dst, e.Src, w.local)
		}
		if pids := ss[fmt.Sprintf("%v %d", w.proto, w.local.Port())]; len(pids) != 1 || pids[0] != e.PID {
			t.Errorf("ss -tunap says local port %v/%d is held by %v, nflog by %d", w.proto, w.local.Port(), pids, e.PID)
		}
	}
	// Into the association index: each helper's outbound addresses.
	x := netassoc.New()
	for i := range evs {
		x.RecordEvent(&evs[i])
	}
	for _, h := range []*helper{a, b} {
		var want []netip.Addr
		for _, w := range wants {
			if w.pid == h.Pid() {
				want = append(want, w.dst.Addr())
			}
		}
		slices.SortFunc(want, netip.Addr.Compare)
		want = slices.Compact(want)
		var id source.ProcID
		for _, e := range evs {
			if e.PID == h.Pid() {
				id = e.ID()
			}
		}
		if got := x.Addrs(id); !slices.Equal(got, want) {
			t.Errorf("index: Addrs(%v) = %v, want %v", id, got, want)
		}
	}
	// Replies and accepted ends are not new outbound flows: every event
	// names a helper.
	for _, e := range evs {
		if e.PID != a.Pid() && e.PID != b.Pid() {
			t.Errorf("event for a process that opened no flow: %+v", e)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out := ns.MustRun("nft", "list", "tables"); strings.Contains(out, DefaultTable) {
		t.Fatalf("table left after Close:\n%s", out)
	}
	if _, err := s.Next(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// TestLossReported: with a queue of one event and a reader that does not
// keep up, drops are counted and Next reports source.ErrLost, then goes on.
func TestLossReported(t *testing.T) {
	ns := testNS(t)
	p := listeners(t, ns, "127.0.0.1")
	s := openIn(t, ns, WithQueue(1), WithGroup(3141), WithTable("procwall_nflog_test"))
	var flows []string
	for range 10 {
		flows = append(flows, fmt.Sprintf("udps=127.0.0.1:%d", p["udp/127.0.0.1"]))
	}
	startHelper(t, ns, flows...)
	// Bounded wait for the reader to see all ten packets.
	for i := 0; i < 100 && s.Stats().Packets < 10; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	st := s.Stats()
	if st.Packets != 10 || st.Dropped != 9 || st.Events != 1 {
		t.Fatalf("stats %+v, want 10 packets, 1 queued, 9 dropped", st)
	}
	_, err := s.Next()
	if !errors.Is(err, source.ErrLost) || !strings.Contains(err.Error(), "9 ") {
		t.Fatalf("Next = %v, want ErrLost naming 9", err)
	}
	if ev, err := s.Next(); err != nil || ev.Kind != source.KindSend {
		t.Fatalf("Next after loss = %+v, %v", ev, err)
	}
}

// TestCloseUnblocksNext: Close from another goroutine ends a blocked Next,
// and a table left by an earlier run is replaced on Open.
func TestCloseUnblocksNext(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	ns := testNS(t)
	ns.MustRun("nft", "add table inet "+DefaultTable+"; add chain inet "+DefaultTable+" stale")
	s := openIn(t, ns)
	if out := ns.MustRun("nft", "list", "table", "inet", DefaultTable); strings.Contains(out, "stale") {
		t.Fatalf("stale table kept:\n%s", out)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Next(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Next = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	t.Logf("Close took %v", time.Since(start))
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close stopped the library's goroutines (bounded wait: the reader
	// returns right after our callback tells it to).
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "florianl/go-nflog") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("go-nflog goroutines left after Close:\n%s", stacks)
}

// TestHookAttribution drives the packet callback with crafted NFLOG
// attributes against real sockets: a packet with no UID attribute (sent by
// the kernel, no socket) from the port of an unconnected UDP socket is not
// attributed to that socket's process (OpenSnitch #929), nor is one whose
// UID differs from the socket's; the matching packet is.
func TestHookAttribution(t *testing.T) {
	ns := testNS(t)
	p := listeners(t, ns, "198.51.100.1")
	flow := fmt.Sprintf("udps=198.51.100.1:%d", p["udp/198.51.100.1"])
	h := startHelper(t, ns, flow, "rawicmp")
	f, err := ns.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	diag, err := sockdiag.Dial(sockdiag.WithNetNS(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	defer diag.Close()
	s := &Source{cfg: defaultConfig(), diag: diag, events: make(chan source.Event, 4), closed: make(chan struct{})}
	local := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), h.Local[flow].Port())
	pkt := ipv4(17, "198.51.100.1", "198.51.100.1", local.Port(), p["udp/198.51.100.1"], 0)
	uid, other := uint32(0), uint32(4242)

	s.hook(gonflog.Attribute{Payload: &pkt})
	s.hook(gonflog.Attribute{Payload: &pkt, UID: &other})
	if st := s.Stats(); st.NoSocket != 1 || st.UIDMismatch != 1 || st.Events != 0 || len(s.events) != 0 {
		t.Fatalf("stats %+v, queued %d: want one no-socket, one uid mismatch, no event", st, len(s.events))
	}
	s.hook(gonflog.Attribute{Payload: &pkt, UID: &uid})
	if len(s.events) != 1 {
		t.Fatalf("matching packet: %d events, stats %+v", len(s.events), s.Stats())
	}
	if ev := <-s.events; ev.PID != h.Pid() || ev.Kind != source.KindSend || ev.Src != local {
		t.Fatalf("event %+v, want send by %d from %v", ev, h.Pid(), local)
	}
	// A packet from a port no socket holds is not attributed.
	stray := ipv4(17, "198.51.100.1", "198.51.100.1", 9, 9, 0)
	s.hook(gonflog.Attribute{Payload: &stray, UID: &uid})
	if st := s.Stats(); st.Unattributed != 1 || len(s.events) != 0 {
		t.Fatalf("stray packet: stats %+v", st)
	}
}
