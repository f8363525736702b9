package sockdiag

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/procwall/procwall/source"
)

// diagMsg builds an inet_diag_msg as the kernel sends it.
func diagMsg(family uint8, state State, src, dst netip.AddrPort, uid, inode uint32, cookie uint64) []byte {
	b := make([]byte, msgLen+8) // trailing attribute bytes are ignored
	b[0] = family
	b[1] = uint8(state)
	putID(b[4:], family, sockID{src: src, dst: dst, cookie: cookie})
	binary.NativeEndian.PutUint32(b[64:], uid)
	binary.NativeEndian.PutUint32(b[68:], inode)
	return b
}

func TestParseMsg(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.2:40000")
	dst := netip.MustParseAddrPort("198.51.100.1:443")
	s, err := parseMsg(diagMsg(afInet, Established, src, dst, 1000, 4242, 0x1122334455667788), source.ProtoTCP)
	if err != nil {
		t.Fatal(err)
	}
	want := Socket{Proto: source.ProtoTCP, State: Established, Src: src, Dst: dst, UID: 1000, Inode: 4242, Cookie: 0x1122334455667788}
	if s != want {
		t.Fatalf("parseMsg = %+v, want %+v", s, want)
	}
	src6 := netip.MustParseAddrPort("[2001:db8::2]:53")
	s, err = parseMsg(diagMsg(afInet6, Close, src6, netip.AddrPortFrom(netip.IPv6Unspecified(), 0), 0, 7, 1), source.ProtoUDP)
	if err != nil {
		t.Fatal(err)
	}
	if s.Src != src6 || !s.peerless() || s.State != Close {
		t.Fatalf("unconnected udp6 = %+v", s)
	}
	if _, err := parseMsg(make([]byte, 10), source.ProtoTCP); err == nil {
		t.Fatal("short message accepted")
	}
	bad := diagMsg(afInet, Established, src, dst, 0, 1, 1)
	bad[0] = 99
	if _, err := parseMsg(bad, source.ProtoTCP); err == nil {
		t.Fatal("unknown family accepted")
	}
}

func TestMarshalReq(t *testing.T) {
	b := marshalReq(afInet6, source.ProtoUDP, 0x12, sockID{
		src: netip.MustParseAddrPort("[2001:db8::1]:5353"), dst: netip.MustParseAddrPort("[2001:db8::2]:53"), cookie: noCookie})
	if len(b) != reqLen || b[0] != afInet6 || b[1] != 17 || binary.NativeEndian.Uint32(b[4:]) != 0x12 {
		t.Fatalf("header % x", b[:8])
	}
	if binary.BigEndian.Uint16(b[8:]) != 5353 || binary.BigEndian.Uint16(b[10:]) != 53 {
		t.Fatalf("ports % x", b[8:12])
	}
	if netip.AddrFrom16([16]byte(b[12:28])) != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("src % x", b[12:28])
	}
	if binary.NativeEndian.Uint32(b[48:]) != ^uint32(0) || binary.NativeEndian.Uint32(b[52:]) != ^uint32(0) {
		t.Fatalf("cookie % x", b[48:56])
	}
}

func TestParseStatStart(t *testing.T) {
	// A command name with spaces and parentheses.
	stat := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615\n"
	n, err := parseStatStart([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if n != 123456*10_000_000 {
		t.Fatalf("start = %d", n)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 zz 1"} {
		if _, err := parseStatStart([]byte(bad)); err == nil {
			t.Errorf("parseStatStart(%q) accepted", bad)
		}
	}
}

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint64{"socket:[123]": 123, "socket:[]": 0, "pipe:[5]": 0, "socket:[12": 0, "/dev/null": 0} {
		n, ok := socketInode(in)
		if n != want || ok != (want != 0) {
			t.Errorf("socketInode(%q) = %d, %v", in, n, ok)
		}
	}
}

func TestClassify(t *testing.T) {
	ls := map[listenKey][]netip.Addr{
		{source.ProtoTCP, 22}:  {netip.IPv6Unspecified()},
		{source.ProtoTCP, 443}: {netip.MustParseAddr("198.51.100.1")},
	}
	mk := func(p source.Proto, st State, src, dst string, inode uint64) *Socket {
		s := &Socket{Proto: p, State: st, Src: netip.MustParseAddrPort(src), Inode: inode}
		if dst != "" {
			s.Dst = netip.MustParseAddrPort(dst)
		}
		return s
	}
	cases := []struct {
		s    *Socket
		want source.Kind
	}{
		{mk(source.ProtoTCP, Established, "198.51.100.1:22", "203.0.113.9:5000", 1), source.KindAccept},
		{mk(source.ProtoTCP, Established, "198.51.100.1:443", "203.0.113.9:5000", 1), source.KindAccept},
		{mk(source.ProtoTCP, Established, "198.51.100.2:443", "203.0.113.9:5000", 1), source.KindConnect},
		{mk(source.ProtoTCP, SynSent, "198.51.100.1:22", "203.0.113.9:5000", 1), source.KindConnect},
		{mk(source.ProtoTCP, CloseWait, "198.51.100.1:40000", "203.0.113.9:80", 1), source.KindConnect},
		{mk(source.ProtoTCP, Established, "198.51.100.1:40000", "203.0.113.9:80", 0), source.KindUnknown},
		{mk(source.ProtoTCP, Listen, "0.0.0.0:22", "", 1), source.KindUnknown},
		{mk(source.ProtoUDP, Established, "198.51.100.1:40000", "203.0.113.9:53", 1), source.KindSend},
		{mk(source.ProtoUDP, Close, "0.0.0.0:40000", "", 1), source.KindUnknown},
	}
	for _, c := range cases {
		if got := classify(c.s, ls); got != c.want {
			t.Errorf("classify(%+v) = %v, want %v", *c.s, got, c.want)
		}
	}
}

// fixture writes a fake /proc: pids with fd links.
type fixture struct {
	t    *testing.T
	root string
}

func (f *fixture) link(pid, fd int, target string) {
	dir := filepath.Join(f.root, strconv.Itoa(pid), "fd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(dir, strconv.Itoa(fd))
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) unlink(pid, fd int) {
	if err := os.Remove(filepath.Join(f.root, strconv.Itoa(pid), "fd", strconv.Itoa(fd))); err != nil {
		f.t.Fatal(err)
	}
}

// TestOwnersInodeReuse: a cached holder whose fd now refers to another
// socket (the inode was freed and reused) must not be reported; the new
// holder is found by a rescan.
func TestOwnersInodeReuse(t *testing.T) {
	f := &fixture{t: t, root: t.TempDir()}
	f.link(10, 3, "socket:[100]")
	f.link(10, 4, "socket:[101]") // a raw ICMP socket, say
	f.link(10, 5, "pipe:[7]")
	f.link(20, 3, "socket:[200]")
	o := newOwners(f.root)
	m, err := o.resolve([]uint64{100, 200, 999})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m[100], []int{10}) || !slices.Equal(m[200], []int{20}) || len(m[999]) != 0 {
		t.Fatalf("resolve = %v", m)
	}
	if o.scans != 1 {
		t.Fatalf("scans = %d, want 1", o.scans)
	}
	// Cached and unchanged: no rescan.
	if m, _ = o.resolve([]uint64{100}); !slices.Equal(m[100], []int{10}) || o.scans != 1 {
		t.Fatalf("cached resolve = %v, scans %d", m, o.scans)
	}
	// A new socket of a process that held a looked-up socket is found
	// among that process's fds, without a full scan.
	f.link(20, 9, "socket:[201]")
	if m, _ = o.resolve([]uint64{201}); !slices.Equal(m[201], []int{20}) || o.scans != 1 || o.hotHits != 1 {
		t.Fatalf("new socket of a recent holder: %v, scans %d, hot hits %d", m, o.scans, o.hotHits)
	}
	// Process 10 closes socket 100; the kernel reuses inode 100 for a
	// socket of process 30; process 10's fd 3 is now another socket.
	f.link(10, 3, "socket:[300]")
	f.link(30, 7, "socket:[100]")
	m, err = o.resolve([]uint64{100})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m[100], []int{30}) {
		t.Fatalf("after reuse, inode 100 held by %v, want [30]", m[100])
	}
	if o.stale == 0 || o.scans != 2 || !slices.Equal(m[100], []int{30}) {
		t.Fatalf("stale %d scans %d", o.stale, o.scans)
	}
	// Shared after fork: both holders.
	f.link(31, 7, "socket:[100]")
	f.unlink(10, 4)
	m, _ = o.resolve([]uint64{100})
	got := slices.Sorted(slices.Values(m[100]))
	// The cache still verifies 30 but a new holder is only found by a
	// rescan; resolve reports what it verified when nothing went stale.
	if !slices.Contains(got, 30) {
		t.Fatalf("holders %v lost 30", got)
	}
}

// TestMatchFlow: only the socket that can have sent the packet matches
// (OpenSnitch #387: a lookup answer sharing only the port was taken).
func TestMatchFlow(t *testing.T) {
	local := netip.MustParseAddrPort("198.51.100.2:40000")
	remote := netip.MustParseAddrPort("198.51.100.1:53")
	mk := func(p source.Proto, st State, src, dst string) *Socket {
		s := &Socket{Proto: p, State: st, Src: netip.MustParseAddrPort(src)}
		if dst != "" {
			s.Dst = netip.MustParseAddrPort(dst)
		}
		return s
	}
	cases := []struct {
		s    *Socket
		want bool
	}{
		{mk(source.ProtoTCP, SynSent, "198.51.100.2:40000", "198.51.100.1:53"), true},
		{mk(source.ProtoTCP, SynSent, "[::ffff:198.51.100.2]:40000", "[::ffff:198.51.100.1]:53"), true},
		{mk(source.ProtoTCP, Listen, "0.0.0.0:40000", ""), false},
		{mk(source.ProtoTCP, Established, "198.51.100.2:40000", "198.51.100.9:53"), false},
		{mk(source.ProtoUDP, Close, "0.0.0.0:40000", ""), true},
		{mk(source.ProtoUDP, Close, "[::]:40000", ""), true},
		{mk(source.ProtoUDP, Close, "198.51.100.3:40000", ""), false},
		{mk(source.ProtoUDP, Close, "198.51.100.2:40001", ""), false},
		{mk(source.ProtoUDP, Established, "198.51.100.2:40000", "198.51.100.9:53"), false},
	}
	for _, c := range cases {
		if got := matchFlow(c.s, local, remote); got != c.want {
			t.Errorf("matchFlow(%+v) = %v, want %v", *c.s, got, c.want)
		}
	}
}

// FuzzParseMsg: any bytes either fail with ErrMalformed (too short, or an
// address family other than IPv4 and IPv6) or decode to the fields at
// their offsets in struct inet_diag_msg; never a panic.
func FuzzParseMsg(f *testing.F) {
	f.Add(diagMsg(afInet, Established, netip.MustParseAddrPort("198.51.100.2:40000"), netip.MustParseAddrPort("198.51.100.1:443"), 1000, 4242, 7))
	f.Add(diagMsg(afInet6, Listen, netip.MustParseAddrPort("[2001:db8::2]:53"), netip.AddrPortFrom(netip.IPv6Unspecified(), 0), 0, 7, 1))
	f.Add(make([]byte, msgLen-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseMsg(b, source.ProtoTCP)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if len(b) >= msgLen && (b[0] == afInet || b[0] == afInet6) {
				t.Fatalf("a %d-byte message of family %d refused: %v", len(b), b[0], err)
			}
			return
		}
		if len(b) < msgLen {
			t.Fatalf("a %d-byte message accepted", len(b))
		}
		if s.State != State(b[1]) || s.Src.Port() != binary.BigEndian.Uint16(b[4:]) ||
			s.UID != binary.NativeEndian.Uint32(b[64:]) || s.Inode != uint64(binary.NativeEndian.Uint32(b[68:])) {
			t.Fatalf("%+v does not match the bytes", s)
		}
		want := 4
		if b[0] == afInet6 {
			want = 16
		}
		if s.Src.Addr().BitLen()/8 != want || !bytes.Equal(s.Src.Addr().AsSlice(), b[8:8+want]) {
			t.Fatalf("source %v does not match the bytes (family %d)", s.Src, b[0])
		}
	})
}
