package sockdiag

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/flowtest"
	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/source"
)

// parseFlow returns a helper flow's protocol, event kind and remote end.
func parseFlow(spec string) (source.Proto, source.Kind, netip.AddrPort) {
	kind, addr, _ := strings.Cut(spec, "=")
	if kind == "tcp" {
		return source.ProtoTCP, source.KindConnect, netip.MustParseAddrPort(addr)
	}
	return source.ProtoUDP, source.KindSend, netip.MustParseAddrPort(addr)
}

// snapshotIn dials inside ns and takes one snapshot.
func snapshotIn(t *testing.T, ns *privtest.NetNS) ([]source.Event, Stats) {
	t.Helper()
	var evs []source.Event
	var st Stats
	err := ns.Do(func() error {
		c, err := Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		evs, err = c.Snapshot()
		st = c.Stats()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs, st
}

// byLocal indexes events by "proto local".
func byLocal(evs []source.Event) map[string][]source.Event {
	m := map[string][]source.Event{}
	for _, e := range evs {
		k := e.Proto.String() + " " + e.Src.String()
		m[k] = append(m[k], e)
	}
	return m
}

// TestSnapshotAttributesFlows: two client processes in a test namespace
// open TCP and connected UDP flows over IPv4 and IPv6 (one of them also
// holds a raw ICMP socket); the snapshot attributes each flow to the right
// pid and start time, the accepted ends to the test process, and agrees
// with `ss -tunap`.
func TestSnapshotAttributesFlows(t *testing.T) {
	privtest.Require(t, privtest.Command("ss"))
	ns := testNS(t)
	p := listeners(t, ns, "127.0.0.1", "198.51.100.1", "::1", "2001:db8::1")
	flowsA := []string{
		fmt.Sprintf("tcp=127.0.0.1:%d", p["tcp/127.0.0.1"]),
		"rawicmp",
		fmt.Sprintf("udpc=[2001:db8::1]:%d", p["udp/2001:db8::1"]),
		fmt.Sprintf("tcp=198.51.100.1:%d", p["tcp/198.51.100.1"]),
	}
	flowsB := []string{
		fmt.Sprintf("tcp=[::1]:%d", p["tcp/::1"]),
		fmt.Sprintf("udpc=198.51.100.1:%d", p["udp/198.51.100.1"]),
		fmt.Sprintf("tcp=[2001:db8::1]:%d", p["tcp/2001:db8::1"]),
		fmt.Sprintf("udpc=127.0.0.1:%d", p["udp/127.0.0.1"]),
	}
	before := flowtest.Accepted()
	a := startHelper(t, ns, flowsA...)
	b := startHelper(t, ns, flowsB...)
	waitAccepted(t, before+4)

	evs, st := snapshotIn(t, ns)
	idx := byLocal(evs)
	ss := ssUsers(t, ns)
	for _, h := range []*helper{a, b} {
		wantStart := startTime("/proc", h.Pid())
		if wantStart == 0 {
			t.Fatalf("no start time for helper %d", h.Pid())
		}
		for spec, local := range h.Local {
			proto, kind, dst := parseFlow(spec)
			got := idx[proto.String()+" "+local.String()]
			if len(got) != 1 {
				t.Errorf("flow %s from %s: %d events %+v, want 1", spec, local, len(got), got)
				continue
			}
			e := got[0]
			if e.PID != h.Pid() || e.Start != wantStart || e.Kind != kind || e.Dst != dst || !e.HasUID || e.UID != 0 || e.Origin != "sockdiag" {
				t.Errorf("flow %s: event %+v, want pid %d start %d kind %v dst %v", spec, e, h.Pid(), wantStart, kind, dst)
			}
			// Independent check: ss names the same process.
			key := proto.String() + " " + local.String() + " " + dst.String()
			if pids := ss[key]; !slices.Equal(pids, []int{h.Pid()}) {
				t.Errorf("ss -tunap says %q is held by %v, sockdiag by %d", key, pids, e.PID)
			}
		}
	}
	// The listener side: the accepted ends belong to this test process
	// and are accepts, with the client's end as the peer.
	for spec, local := range a.Local {
		if spec[:3] != "tcp" {
			continue
		}
		_, _, dst := parseFlow(spec)
		got := idx["tcp "+dst.String()]
		var found bool
		for _, e := range got {
			if e.Dst == local {
				found = true
				if e.Kind != source.KindAccept || e.PID != os.Getpid() {
					t.Errorf("accepted end of %s: %+v, want accept by pid %d", spec, e, os.Getpid())
				}
			}
		}
		if !found {
			t.Errorf("no event for the accepted end of %s (peer %s)", spec, local)
		}
	}
	// Every event names one of the three processes: the raw ICMP socket's
	// inode is not taken for anything.
	for _, e := range evs {
		if e.PID != a.Pid() && e.PID != b.Pid() && e.PID != os.Getpid() {
			t.Errorf("event for a stranger: %+v", e)
		}
	}
	if want := 7 + 4; len(evs) != want { // 7 client flows, 4 accepted TCP ends
		t.Errorf("%d events, want %d: %+v", len(evs), want, evs)
	}
	if st.Dumps != 1 || st.ProcScans != 1 {
		t.Errorf("stats %+v", st)
	}

	// Into the association index: each helper's addresses, and the test
	// process's accepted peers kept apart.
	x := netassoc.New()
	for i := range evs {
		x.RecordEvent(&evs[i])
	}
	for _, h := range []*helper{a, b} {
		var want []netip.Addr
		for spec := range h.Local {
			_, _, dst := parseFlow(spec)
			want = append(want, dst.Addr())
		}
		slices.SortFunc(want, netip.Addr.Compare)
		want = slices.Compact(want)
		id := source.ProcID{PID: h.Pid(), Start: startTime("/proc", h.Pid())}
		if got := x.Addrs(id); !slices.Equal(got, want) {
			t.Errorf("index: Addrs(%v) = %v, want %v", id, got, want)
		}
		for _, addr := range want {
			if !slices.Contains(x.Procs(addr), id) {
				t.Errorf("index: Procs(%v) = %v, lacks %v", addr, x.Procs(addr), id)
			}
		}
	}
	self := source.ProcID{PID: os.Getpid(), Start: startTime("/proc", os.Getpid())}
	if got := x.Addrs(self); len(got) != 0 {
		t.Errorf("index: the listener has outbound addresses %v", got)
	}
	if got := x.Inbound(self); len(got) != 4 {
		t.Errorf("index: the listener has %d inbound peers %+v, want 4", len(got), got)
	}
}

// TestSnapshotNoStaleAttribution: a process's connected UDP socket is seen,
// the process exits, another opens the same flow; the new socket is
// attributed to the new process only, and the old pid never reappears.
func TestSnapshotNoStaleAttribution(t *testing.T) {
	ns := testNS(t)
	p := listeners(t, ns, "198.51.100.1")
	flow := fmt.Sprintf("udpc=198.51.100.1:%d", p["udp/198.51.100.1"])
	var c *Conn
	if err := ns.Do(func() (err error) { c, err = Dial(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := startHelper(t, ns, flow)
	evs, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].PID != a.Pid() {
		t.Fatalf("first snapshot %+v, want one event of %d", evs, a.Pid())
	}
	a.Stop()
	b := startHelper(t, ns, flow, "rawicmp")
	evs, err = c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].PID != b.Pid() || evs[0].Src != b.Local[flow] {
		t.Fatalf("second snapshot %+v, want one event of %d from %v", evs, b.Pid(), b.Local[flow])
	}
	st := c.Stats()
	if st.ProcScans != 2 || st.Cached != 0 {
		t.Errorf("stats %+v: the new socket must come from a rescan", st)
	}
	// Unchanged: holders known by cookie, no new scan.
	if evs, err = c.Snapshot(); err != nil || len(evs) != 1 || evs[0].PID != b.Pid() {
		t.Fatalf("third snapshot %+v, %v", evs, err)
	}
	if st2 := c.Stats(); st2.ProcScans != st.ProcScans || st2.Cached != 1 {
		t.Errorf("unchanged socket rescanned: %+v", st2)
	}
}

// TestFind looks up the sockets of outbound flows by their ends, as the
// nflog source does: TCP, connected UDP and unconnected UDP (sendto), in
// both families.
func TestFind(t *testing.T) {
	ns := testNS(t)
	p := listeners(t, ns, "198.51.100.1", "2001:db8::1")
	flows := []string{
		fmt.Sprintf("tcp=198.51.100.1:%d", p["tcp/198.51.100.1"]),
		fmt.Sprintf("udpc=[2001:db8::1]:%d", p["udp/2001:db8::1"]),
		fmt.Sprintf("udps=198.51.100.1:%d", p["udp/198.51.100.1"]),
		fmt.Sprintf("udps=[2001:db8::1]:%d", p["udp/2001:db8::1"]),
	}
	h := startHelper(t, ns, flows...)
	var c *Conn
	if err := ns.Do(func() (err error) { c, err = Dial(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range flows {
		proto, _, remote := parseFlow(f)
		local := h.Local[f]
		if local.Addr().IsUnspecified() {
			// An unconnected socket: the packet leaves from the
			// address the route picks.
			local = netip.AddrPortFrom(remote.Addr(), local.Port())
		}
		s, err := c.Find(proto, local, remote)
		if err != nil {
			t.Errorf("Find(%v, %v, %v): %v", proto, local, remote, err)
			continue
		}
		ids, err := c.Holders(s.Inode)
		if err != nil || len(ids) != 1 || ids[0].PID != h.Pid() {
			t.Errorf("flow %s: socket %+v held by %v (%v), want %d", f, s, ids, err, h.Pid())
		}
	}
	_, err := c.Find(source.ProtoTCP, netip.MustParseAddrPort("198.51.100.1:1"), netip.MustParseAddrPort("198.51.100.1:2"))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Find of no socket: %v, want ErrNotFound", err)
	}
	t.Logf("after lookups: %+v", c.Stats())
	// A packet from a listener's address and port to a stranger is not
	// the listener's (the kernel's lookup falls back to listeners).
	lst := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), p["tcp/198.51.100.1"])
	if s, err := c.Find(source.ProtoTCP, lst, netip.MustParseAddrPort("198.51.100.1:9")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find from a listening port = %+v, %v, want ErrNotFound", s, err)
	}
	// A connected UDP socket does not send to another remote.
	udpc := h.Local[flows[1]]
	if s, err := c.Find(source.ProtoUDP, udpc, netip.MustParseAddrPort("[2001:db8::1]:9")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find of a connected UDP socket with another remote = %+v, %v, want ErrNotFound", s, err)
	}
}

// TestSource: the polling source reports each association once, reports a
// flow opened later on a later poll, and Close unblocks a waiting Next.
func TestSource(t *testing.T) {
	ns := testNS(t)
	p := listeners(t, ns, "127.0.0.1")
	nsf, err := ns.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	a := startHelper(t, ns, fmt.Sprintf("udpc=127.0.0.1:%d", p["udp/127.0.0.1"]))
	s, err := NewSource(20*time.Millisecond, WithNetNS(int(nsf.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.PID != a.Pid() || ev.Kind != source.KindSend {
		t.Fatalf("first Next = %+v, %v", ev, err)
	}
	b := startHelper(t, ns, fmt.Sprintf("tcp=127.0.0.1:%d", p["tcp/127.0.0.1"]))
	// Next: b's connect and the accepted end (this process), in some
	// order, and never a's flow again.
	got := map[source.Kind]int{}
	for range 2 {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		got[ev.Kind] = ev.PID
	}
	if got[source.KindConnect] != b.Pid() || got[source.KindAccept] != os.Getpid() {
		t.Fatalf("later events %v, want connect by %d and accept by %d", got, b.Pid(), os.Getpid())
	}
	done := make(chan error, 1)
	go func() { _, err := s.Next(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Next after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	if _, err := NewSource(0); err == nil {
		t.Fatal("NewSource(0) accepted")
	}
}

// TestStartCache: a cached start time is used while its process runs and
// dropped when it exits (the pidfd says so even if the pid is reused).
func TestStartCache(t *testing.T) {
	ns := testNS(t)
	h := startHelper(t, ns)
	c, err := Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := startTime("/proc", h.Pid())
	c.starts = map[int]uint64{}
	if got := c.start(h.Pid()); got != want || got == 0 {
		t.Fatalf("start = %d, want %d", got, want)
	}
	if _, ok := c.pids[h.Pid()]; !ok {
		t.Fatal("start time of a running process not cached")
	}
	c.starts = map[int]uint64{}
	if got := c.start(h.Pid()); got != want {
		t.Fatalf("cached start = %d, want %d", got, want)
	}
	h.Stop()
	c.starts = map[int]uint64{}
	// 0, or another process's start should the pid have been reused.
	if got := c.start(h.Pid()); got == want {
		t.Fatalf("start of an exited process = %d, the old process's", got)
	}
	if pe, ok := c.pids[h.Pid()]; ok && pe.start == want {
		t.Fatal("exited process still cached")
	}
}
