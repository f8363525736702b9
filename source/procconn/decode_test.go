package procconn

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// message builds a proc connector netlink message as the kernel sends it.
func message(what EventMask, ts uint64, data ...uint32) []byte {
	ne := binary.NativeEndian
	ev := make([]byte, evHdrLen)
	ne.PutUint32(ev[0:], uint32(what))
	ne.PutUint32(ev[4:], 1)
	ne.PutUint64(ev[8:], ts)
	for _, d := range data {
		ev = ne.AppendUint32(ev, d)
	}
	cn := make([]byte, cnMsgLen)
	ne.PutUint32(cn[0:], cnIdxProc)
	ne.PutUint32(cn[4:], cnValProc)
	ne.PutUint32(cn[8:], 7)
	ne.PutUint32(cn[12:], 0)
	ne.PutUint16(cn[16:], uint16(len(ev)))
	body := append(cn, ev...)
	hdr := make([]byte, nlmsgHdrLen)
	ne.PutUint32(hdr[0:], uint32(nlmsgHdrLen+len(body)))
	ne.PutUint16(hdr[4:], nlmsgDone)
	b := append(hdr, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func commData(pid, tgid uint32, name string) []uint32 {
	var c [16]byte
	copy(c[:], name)
	out := []uint32{pid, tgid}
	for i := 0; i < 16; i += 4 {
		out = append(out, binary.NativeEndian.Uint32(c[i:]))
	}
	return out
}

func TestDecodeKinds(t *testing.T) {
	at := time.Unix(100, 0)
	for _, tc := range []struct {
		name string
		msg  []byte
		want source.Event
	}{
		{"fork", message(EventFork, 5, 10, 10, 20, 20), source.Event{Kind: source.KindFork, PID: 20, PPID: 10}},
		{"fork from a thread", message(EventFork, 5, 11, 10, 20, 20), source.Event{Kind: source.KindFork, PID: 20, PPID: 10}},
		{"exec", message(EventExec, 5, 20, 20), source.Event{Kind: source.KindExec, PID: 20}},
		{"exit 0", message(EventExit, 5, 20, 20, 0, 17, 10, 10), source.Event{Kind: source.KindExit, PID: 20, HasCode: true}},
		{"exit 3", message(EventExit, 5, 20, 20, 3<<8, 17, 10, 10), source.Event{Kind: source.KindExit, PID: 20, HasCode: true, Code: 3}},
		{"killed", message(EventExit, 5, 20, 20, 9, 17, 10, 10), source.Event{Kind: source.KindExit, PID: 20, Signal: 9}},
		{"core", message(EventExit, 5, 20, 20, 0x80|11, 17, 10, 10), source.Event{Kind: source.KindExit, PID: 20, Signal: 11, Reason: "core dumped"}},
		{"uid", message(EventUID, 5, 20, 20, 1000, 65534), source.Event{Kind: source.KindAttr, PID: 20, UID: 65534, HasUID: true, Reason: "ruid=1000 euid=65534"}},
		{"gid", message(EventGID, 5, 20, 20, 5, 6), source.Event{Kind: source.KindAttr, PID: 20, Reason: "rgid=5 egid=6"}},
		{"sid", message(EventSID, 5, 20, 20), source.Event{Kind: source.KindAttr, PID: 20, Reason: "setsid"}},
		{"ptrace", message(EventPtrace, 5, 20, 20, 30, 30), source.Event{Kind: source.KindAttr, PID: 20, Reason: "ptrace attach tracer=30"}},
		{"ptrace detach", message(EventPtrace, 5, 20, 20, 0, 0), source.Event{Kind: source.KindAttr, PID: 20, Reason: "ptrace detach"}},
		{"comm", message(EventComm, 5, commData(20, 20, "a b(c)")...), source.Event{Kind: source.KindAttr, PID: 20, Comm: "a b(c)"}},
		{"comm 16", message(EventComm, 5, commData(20, 20, "0123456789abcdef")...), source.Event{Kind: source.KindAttr, PID: 20, Comm: "0123456789abcdef"}},
		{"coredump", message(EventCoredump, 5, 21, 20, 10, 10), source.Event{Kind: source.KindAttr, PID: 20, Reason: "coredump"}},
	} {
		var raw rawEvent
		n, err := decodeMessage(tc.msg, &raw)
		if err != nil || n != len(tc.msg) {
			t.Errorf("%s: decode = %d, %v", tc.name, n, err)
			continue
		}
		if raw.TS != 5 {
			t.Errorf("%s: ts %d", tc.name, raw.TS)
		}
		got := raw.toEvent(at)
		tc.want.Time, tc.want.Origin = at, "procconn"
		if got.Kind != tc.want.Kind || got.PID != tc.want.PID || got.PPID != tc.want.PPID || got.Code != tc.want.Code ||
			got.HasCode != tc.want.HasCode || got.Signal != tc.want.Signal || got.UID != tc.want.UID || got.HasUID != tc.want.HasUID ||
			got.Reason != tc.want.Reason || got.Comm != tc.want.Comm || !got.Time.Equal(at) || got.Origin != "procconn" {
			t.Errorf("%s: event\n%+v\nwant\n%+v", tc.name, got, tc.want)
		}
	}
}

func TestDecodeThreadAndAck(t *testing.T) {
	var raw rawEvent
	if _, err := decodeMessage(message(EventFork, 1, 10, 10, 21, 10), &raw); err != nil || !raw.thread() {
		t.Errorf("thread fork: %v thread=%v", err, raw.thread())
	}
	if _, err := decodeMessage(message(0, 1, 0), &raw); err != nil || raw.What != 0 {
		t.Errorf("ack: %v %+v", err, raw)
	}
	// Two messages in one datagram.
	b := append(message(EventExec, 1, 5, 5), message(EventExit, 2, 5, 5, 0, 17, 1, 1)...)
	n, err := decodeMessage(b, &raw)
	if err != nil || raw.What != EventExec {
		t.Fatal(err)
	}
	if _, err := decodeMessage(b[n:], &raw); err != nil || raw.What != EventExit {
		t.Fatal(err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := message(EventExit, 1, 5, 5, 0, 17, 1, 1)
	ne := binary.NativeEndian
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "shorter than a netlink header"},
		{"short header", good[:10], "shorter than a netlink header"},
		{"length beyond", mod(func(b []byte) []byte { ne.PutUint32(b, 1000); return b }), "netlink length 1000"},
		{"length below header", mod(func(b []byte) []byte { ne.PutUint32(b, 4); return b }), "netlink length 4"},
		{"no connector header", mod(func(b []byte) []byte { ne.PutUint32(b, 20); return b[:20] }), "connector header"},
		{"other connector", mod(func(b []byte) []byte { ne.PutUint32(b[16:], 9); return b }), "not the proc connector"},
		{"connector length", mod(func(b []byte) []byte { ne.PutUint16(b[32:], 500); return b }), "connector length 500"},
		{"short event", mod(func(b []byte) []byte { ne.PutUint16(b[32:], 8); return b }), "bytes of event"},
		{"unknown type", mod(func(b []byte) []byte { ne.PutUint32(b[36:], 0x8); return b }), "unknown event type 0x8"},
		{"truncated data", mod(func(b []byte) []byte { ne.PutUint16(b[32:], 20); return b }), "need 24"},
		{"netlink error", mod(func(b []byte) []byte {
			ne.PutUint16(b[4:], nlmsgError)
			ne.PutUint32(b[16:], uint32(0xffffffff))
			return b
		}), "netlink error 1"},
	} {
		var raw rawEvent
		_, err := decodeMessage(tc.msg, &raw)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestEventMaskString(t *testing.T) {
	if s := (EventFork | EventExit | 0x8).String(); s != "fork|exit|0x8" {
		t.Errorf("String = %q", s)
	}
	if s := EventMask(0).String(); s != "none" {
		t.Errorf("String = %q", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(message(EventFork, 1, 10, 10, 20, 20))
	f.Add(message(EventExec, 1, 20, 20))
	f.Add(message(EventExit, 1, 20, 20, 0x300, 17, 10, 10))
	f.Add(message(EventComm, 1, commData(20, 20, "x")...))
	f.Add(message(EventUID, 1, 20, 20, 0, 0))
	f.Add(message(0, 1, 0))
	f.Add(append(message(EventSID, 1, 2, 2), message(EventPtrace, 1, 2, 2, 3, 3)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		at := time.Unix(1, 0)
		for len(b) > 0 {
			var raw rawEvent
			n, err := decodeMessage(b, &raw)
			if n < 0 || n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			if err == nil {
				ev := raw.toEvent(at)
				if raw.What != 0 && ev.Kind == source.KindUnknown {
					t.Fatalf("decoded %v to an unknown kind", raw.What)
				}
			} else if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if n == 0 {
				break
			}
			b = b[n:]
		}
	})
}

// BenchmarkDecode is the cost of decoding one message into a source.Event
// (fork and exit, the bulk of a storm); it must not allocate.
func BenchmarkDecode(b *testing.B) {
	msgs := [][]byte{message(EventFork, 1, 10, 10, 20, 20), message(EventExit, 2, 20, 20, 0, 17, 10, 10)}
	at := time.Unix(1, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var raw rawEvent
		if _, err := decodeMessage(msgs[i&1], &raw); err != nil {
			b.Fatal(err)
		}
		ev := raw.toEvent(at)
		if ev.PID != 20 {
			b.Fatal(ev.PID)
		}
		i++
	}
}
