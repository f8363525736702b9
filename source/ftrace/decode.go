package ftrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/procwall/procwall/source"
)

// role says what an enabled event means to the source.
type role uint8

const (
	roleNone        role = iota
	roleNewTask          // task/task_newtask: fork or thread creation, with clone flags
	roleFork             // sched/sched_process_fork: fork or thread creation, no flags
	roleExec             // sched/sched_process_exec
	roleExit             // sched/sched_process_exit
	roleSockState        // sock/inet_sock_set_state, filtered to TCP_CLOSE -> TCP_SYN_SENT
	roleTCP4Connect      // kprobe tcp_v4_connect: sockaddr_in
	roleTCP6Connect      // kprobe tcp_v6_connect: sockaddr_in6
	roleUDP4Connect      // kprobe ip4_datagram_connect
	roleUDP6Connect      // kprobe ip6_datagram_connect
	roleUDP4Send         // kprobe udp_sendmsg: msg->msg_name
	roleUDP6Send         // kprobe udpv6_sendmsg
	roleFib4             // fib/fib_table_lookup: an IPv4 route lookup, filtered to UDP output
	roleFib6             // fib6/fib6_table_lookup: the same for IPv6
)

// recKind is what a decoded record reports.
type recKind uint8

const (
	recNone    recKind = iota
	recNewTask         // a task was created (Child); CloneFlags valid when HasFlags
	recExec
	recExit
	recConnect
	recSend
	recSkip // a record the source deliberately reports nothing for (see Why)
)

// Linux clone flags the source looks at.
const (
	cloneParent = 0x00008000 // CLONE_PARENT: the new task's parent is the caller's parent
	cloneThread = 0x00010000 // CLONE_THREAD: the new task joins the caller's thread group
)

// TCP states (include/net/tcp_states.h) and address families.
const (
	tcpSynSent = 2
	tcpClose   = 7
	afInet     = 2
	afInet6    = 10
)

// record is one decoded trace event. Filename aliases the page it came
// from and is valid until the next read.
type record struct {
	Kind       recKind
	TS         uint64 // trace clock (boot) nanoseconds
	TID        int32  // common_pid: the task in whose context the event fired
	Child      int32  // new task: its id
	Parent     int32  // new task (sched_process_fork only): the parent task id
	CloneFlags uint64
	HasFlags   bool
	PID        int32 // exec: the thread-group id after exec; exit: the exiting task
	OldPID     int32 // exec: the task id before exec
	Filename   []byte
	GroupDead  bool // exit: the last task of its thread group
	HasGroup   bool // exit: GroupDead is known
	Proto      source.Proto
	Dst, Src   netip.AddrPort
	SPort      uint16 // route lookup: the source port, also when the source address is not chosen yet
	Why        string // recSkip: why
}

// fieldRef is a resolved field: where it is in a record.
type fieldRef struct {
	off, size int
	signed    bool
	ok        bool
}

func (f fieldRef) u64(b []byte) uint64 {
	switch f.size {
	case 1:
		return uint64(b[f.off])
	case 2:
		return uint64(binary.NativeEndian.Uint16(b[f.off:]))
	case 4:
		return uint64(binary.NativeEndian.Uint32(b[f.off:]))
	default:
		return binary.NativeEndian.Uint64(b[f.off:])
	}
}

func (f fieldRef) i64(b []byte) int64 {
	if !f.signed {
		return int64(f.u64(b))
	}
	switch f.size {
	case 1:
		return int64(int8(b[f.off]))
	case 2:
		return int64(int16(binary.NativeEndian.Uint16(b[f.off:])))
	case 4:
		return int64(int32(binary.NativeEndian.Uint32(b[f.off:])))
	default:
		return int64(binary.NativeEndian.Uint64(b[f.off:]))
	}
}

// eventDecoder decodes the records of one event.
type eventDecoder struct {
	id     uint16
	name   string
	role   role
	minLen int
	pid    fieldRef // common_pid
	flags  fieldRef // common_flags
	f      [8]fieldRef
}

// Field slots per role, in eventDecoder.f.
var roleFields = map[role][]string{
	roleNewTask:     {"pid", "clone_flags"},
	roleFork:        {"parent_pid", "child_pid"},
	roleExec:        {"filename", "pid", "old_pid"},
	roleExit:        {"pid", "?group_dead"},
	roleSockState:   {"oldstate", "newstate", "sport", "dport", "family", "protocol", "?saddr", "daddr"},
	roleTCP4Connect: {"family", "port", "addr"},
	roleUDP4Connect: {"family", "port", "addr"},
	roleUDP4Send:    {"family", "port", "addr"},
	roleTCP6Connect: {"family", "port", "addr0", "addr1", "addr2", "addr3"},
	roleUDP6Connect: {"family", "port", "addr0", "addr1", "addr2", "addr3"},
	roleUDP6Send:    {"family", "port", "addr0", "addr1", "addr2", "addr3"},
	roleFib4:        {"err", "iif", "proto", "sport", "dport", "src", "dst"},
	roleFib6:        {"err", "iif", "proto", "sport", "dport", "src", "dst"},
}

// Trace entry flags (common_flags) that mean interrupt context, where the
// current task is not the one the event is about.
const irqFlags = 0x08 | 0x10 | 0x40 // TRACE_FLAG_HARDIRQ | TRACE_FLAG_SOFTIRQ | TRACE_FLAG_NMI

// Linux ifindex of loopback: output route lookups carry it as iif.
const loopbackIfindex = 1

// inet_sock_set_state's v6 address fields, kept apart from roleFields'
// eight slots.
type v6Fields struct{ saddr, daddr fieldRef }

// newEventDecoder resolves the fields a role needs in format f.
func newEventDecoder(r role, f *Format) (*eventDecoder, *v6Fields, error) {
	d := &eventDecoder{id: f.ID, name: f.Name, role: r}
	ref := func(name string, optional bool) (fieldRef, error) {
		fl, ok := f.Field(name)
		if !ok {
			if optional {
				return fieldRef{}, nil
			}
			return fieldRef{}, fmt.Errorf("event %s: no field %q", f.Name, name)
		}
		if !fl.DataLoc && !fl.RelLoc && fl.Size != 1 && fl.Size != 2 && fl.Size != 4 && fl.Size != 8 &&
			!(fl.Size == 16 && (name == "src" || name == "dst" || name == "saddr_v6" || name == "daddr_v6")) {
			return fieldRef{}, fmt.Errorf("event %s: field %s has size %d", f.Name, name, fl.Size)
		}
		if fl.DataLoc || fl.RelLoc {
			if fl.Size != 4 {
				return fieldRef{}, fmt.Errorf("event %s: dynamic field %s has size %d, want 4", f.Name, name, fl.Size)
			}
		}
		if e := fl.Offset + fl.Size; e > d.minLen {
			d.minLen = e
		}
		return fieldRef{off: fl.Offset, size: fl.Size, signed: fl.Signed, ok: true}, nil
	}
	var err error
	if d.pid, err = ref("common_pid", false); err != nil {
		return nil, nil, err
	}
	if d.flags, err = ref("common_flags", true); err != nil {
		return nil, nil, err
	}
	names, ok := roleFields[r]
	if !ok {
		return nil, nil, fmt.Errorf("event %s: no decoder for role %d", f.Name, r)
	}
	for i, n := range names {
		opt := false
		if n[0] == '?' {
			opt, n = true, n[1:]
		}
		if d.f[i], err = ref(n, opt); err != nil {
			return nil, nil, err
		}
	}
	var v6 *v6Fields
	switch r {
	case roleSockState:
		v6 = &v6Fields{}
		if v6.saddr, err = ref("saddr_v6", true); err != nil {
			return nil, nil, err
		}
		if v6.daddr, err = ref("daddr_v6", true); err != nil {
			return nil, nil, err
		}
		if d.f[7].size != 4 || (d.f[6].ok && d.f[6].size != 4) ||
			(v6.daddr.ok && v6.daddr.size != 16) || (v6.saddr.ok && v6.saddr.size != 16) {
			return nil, nil, fmt.Errorf("event %s: address fields of unexpected size", f.Name)
		}
	case roleFib4, roleFib6:
		want := 4
		if r == roleFib6 {
			want = 16
		}
		if d.f[5].size != want || d.f[6].size != want {
			return nil, nil, fmt.Errorf("event %s: src/dst of size %d/%d, want %d", f.Name, d.f[5].size, d.f[6].size, want)
		}
	case roleTCP4Connect, roleUDP4Connect, roleUDP4Send:
		if d.f[2].size != 4 {
			return nil, nil, fmt.Errorf("event %s: addr has size %d, want 4", f.Name, d.f[2].size)
		}
	case roleTCP6Connect, roleUDP6Connect, roleUDP6Send:
		for i := 2; i < 6; i++ {
			if d.f[i].size != 4 {
				return nil, nil, fmt.Errorf("event %s: %s has size %d, want 4", f.Name, names[i], d.f[i].size)
			}
		}
	}
	if r == roleExec && !(d.f[0].size == 4 && (isDyn(f, "filename"))) {
		return nil, nil, fmt.Errorf("event %s: filename is not a dynamic string", f.Name)
	}
	return d, v6, nil
}

func isDyn(f *Format, name string) bool {
	fl, ok := f.Field(name)
	return ok && (fl.DataLoc || fl.RelLoc)
}

// decoder turns raw records of the enabled events into records.
type decoder struct {
	evs  []*eventDecoder
	v6   []*v6Fields // parallel to evs
	rel  []bool      // parallel: exec filename is __rel_loc
	last int
}

// errUnknownEvent is wrapped when a record's event id is not one the
// decoder knows.
var errUnknownEvent = errors.New("record of an event the source did not enable")

// add registers the decoder for an event.
func (d *decoder) add(r role, f *Format) error {
	ed, v6, err := newEventDecoder(r, f)
	if err != nil {
		return err
	}
	for _, e := range d.evs {
		if e.id == ed.id {
			return fmt.Errorf("events %s and %s share id %d", e.name, ed.name, ed.id)
		}
	}
	rel := false
	if r == roleExec {
		fl, _ := f.Field("filename")
		rel = fl.RelLoc
	}
	d.evs = append(d.evs, ed)
	d.v6 = append(d.v6, v6)
	d.rel = append(d.rel, rel)
	return nil
}

// decode decodes one record (the data of one ring-buffer entry). It does
// not allocate.
func (d *decoder) decode(ts uint64, b []byte, out *record) error {
	*out = record{TS: ts}
	if len(b) < 8 {
		return fmt.Errorf("record of %d bytes: %w", len(b), errShortPage)
	}
	id := binary.NativeEndian.Uint16(b)
	i := d.last
	if i >= len(d.evs) || d.evs[i].id != id {
		i = -1
		for j, e := range d.evs {
			if e.id == id {
				i = j
				break
			}
		}
		if i < 0 {
			return fmt.Errorf("event id %d: %w", id, errUnknownEvent)
		}
		d.last = i
	}
	e := d.evs[i]
	if len(b) < e.minLen {
		return fmt.Errorf("%s record of %d bytes, want %d: %w", e.name, len(b), e.minLen, errShortPage)
	}
	out.TID = int32(e.pid.i64(b))
	f := &e.f
	switch e.role {
	case roleNewTask:
		out.Kind = recNewTask
		out.Child = int32(f[0].i64(b))
		out.CloneFlags = f[1].u64(b)
		out.HasFlags = true
	case roleFork:
		out.Kind = recNewTask
		out.Parent = int32(f[0].i64(b))
		out.Child = int32(f[1].i64(b))
	case roleExec:
		out.Kind = recExec
		loc := f[0].u64(b)
		off, n := int(loc&0xffff), int(loc>>16)
		if d.rel[i] {
			off += f[0].off + f[0].size
		}
		if off+n > len(b) {
			return fmt.Errorf("%s: filename at %d+%d beyond record of %d bytes: %w", e.name, off, n, len(b), errShortPage)
		}
		s := b[off : off+n]
		for k, c := range s {
			if c == 0 {
				s = s[:k]
				break
			}
		}
		out.Filename = s
		out.PID = int32(f[1].i64(b))
		out.OldPID = int32(f[2].i64(b))
	case roleExit:
		out.Kind = recExit
		out.PID = int32(f[0].i64(b))
		if f[1].ok {
			out.HasGroup = true
			out.GroupDead = f[1].u64(b) != 0
		}
	case roleSockState:
		if f[0].i64(b) != tcpClose || f[1].i64(b) != tcpSynSent {
			out.Kind = recSkip
			out.Why = "state change other than TCP_CLOSE->TCP_SYN_SENT"
			return nil
		}
		out.Kind = recConnect
		switch p := f[5].u64(b); p {
		case 6, 262: // IPPROTO_TCP, IPPROTO_MPTCP
			out.Proto = source.ProtoTCP
		default:
			out.Proto = source.Proto(p)
		}
		sport, dport := uint16(f[2].u64(b)), uint16(f[3].u64(b))
		switch f[4].u64(b) {
		case afInet:
			out.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[f[7].off:f[7].off+4])), dport)
			if f[6].ok {
				if a := netip.AddrFrom4([4]byte(b[f[6].off : f[6].off+4])); !a.IsUnspecified() {
					out.Src = netip.AddrPortFrom(a, sport)
				}
			}
		case afInet6:
			v6 := d.v6[i]
			if !v6.daddr.ok {
				out.Kind = recSkip
				out.Why = "IPv6 connect on a kernel without daddr_v6"
				return nil
			}
			out.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[v6.daddr.off:v6.daddr.off+16])).Unmap(), dport)
			if v6.saddr.ok {
				if a := netip.AddrFrom16([16]byte(b[v6.saddr.off : v6.saddr.off+16])).Unmap(); !a.IsUnspecified() {
					out.Src = netip.AddrPortFrom(a, sport)
				}
			}
		default:
			out.Kind = recSkip
			out.Why = "connect of an address family other than inet/inet6"
		}
	case roleFib4, roleFib6:
		decodeFib(e, b, out)
	case roleTCP4Connect, roleUDP4Connect, roleUDP4Send:
		decodeSockaddr4(e, b, out)
	case roleTCP6Connect, roleUDP6Connect, roleUDP6Send:
		decodeSockaddr6(e, b, out)
	}
	return nil
}

func roleKind(r role) (recKind, source.Proto) {
	switch r {
	case roleTCP4Connect, roleTCP6Connect:
		return recConnect, source.ProtoTCP
	case roleUDP4Connect, roleUDP6Connect:
		return recConnect, source.ProtoUDP
	default:
		return recSend, source.ProtoUDP
	}
}

// decodeSockaddr4 decodes a kprobe record that fetched a sockaddr_in:
// family (host order), port (network order as stored in memory), addr
// (network order).
func decodeSockaddr4(e *eventDecoder, b []byte, out *record) {
	f := &e.f
	if fam := f[0].u64(b); fam != afInet {
		out.Kind = recSkip
		out.Why = "no AF_INET address at the probe (connected socket, or another family)"
		return
	}
	out.Kind, out.Proto = roleKind(e.role)
	port := binary.BigEndian.Uint16(b[f[1].off:])
	out.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[f[2].off:f[2].off+4])), port)
}

// decodeSockaddr6 decodes a kprobe record that fetched a sockaddr_in6 as
// a family, a port and four u32 words of address.
func decodeSockaddr6(e *eventDecoder, b []byte, out *record) {
	f := &e.f
	if fam := f[0].u64(b); fam != afInet6 {
		out.Kind = recSkip
		out.Why = "no AF_INET6 address at the probe (connected socket, or another family)"
		return
	}
	out.Kind, out.Proto = roleKind(e.role)
	port := binary.BigEndian.Uint16(b[f[1].off:])
	var a [16]byte
	for k := range 4 {
		copy(a[4*k:], b[f[2+k].off:f[2+k].off+4])
	}
	out.Dst = netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), port)
}

// decodeFib decodes a route lookup: in task context, for UDP output, it is
// the task sending a datagram to (or connecting a UDP socket to) dst.
func decodeFib(e *eventDecoder, b []byte, out *record) {
	f := &e.f
	if e.flags.ok && e.flags.u64(b)&irqFlags != 0 {
		out.Kind, out.Why = recSkip, "route lookup in interrupt context"
		return
	}
	if f[0].i64(b) != 0 || f[1].i64(b) != loopbackIfindex || f[2].u64(b) != 17 {
		out.Kind, out.Why = recSkip, "route lookup other than a successful UDP output lookup"
		return
	}
	var src, dst netip.Addr
	if e.role == roleFib4 {
		src = netip.AddrFrom4([4]byte(b[f[5].off : f[5].off+4]))
		dst = netip.AddrFrom4([4]byte(b[f[6].off : f[6].off+4]))
	} else {
		src = netip.AddrFrom16([16]byte(b[f[5].off : f[5].off+16])).Unmap()
		dst = netip.AddrFrom16([16]byte(b[f[6].off : f[6].off+16])).Unmap()
	}
	out.Kind, out.Proto = recSend, source.ProtoUDP
	out.Dst = netip.AddrPortFrom(dst, uint16(f[4].u64(b)))
	out.SPort = uint16(f[3].u64(b))
	if !src.IsUnspecified() {
		out.Src = netip.AddrPortFrom(src, out.SPort)
	}
}
