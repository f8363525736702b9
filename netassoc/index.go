package netassoc

import (
	"cmp"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/procwall/procwall/source"
)

// Direction says who initiated the traffic of an association.
type Direction uint8

// Directions.
const (
	// Outbound: the process initiated the traffic (connect, send). These
	// are the process's associated addresses.
	Outbound Direction = iota
	// Inbound: the process accepted a connection from the remote peer.
	Inbound
)

// String returns "outbound" or "inbound".
func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Assoc is one association of a process with a remote address over one
// protocol, as returned by queries (a copy; the index keeps its own).
type Assoc struct {
	Addr  netip.Addr
	Proto source.Proto
	// Ports are the remote ports seen, sorted ascending; at most the
	// index's per-association port limit ([WithMaxPorts]) are kept. Port 0
	// (protocols without ports) is not recorded.
	Ports []uint16
	// First and Last are the earliest and latest times the association was
	// recorded (the event times given to Record).
	First, Last time.Time
	// Count is how many times the association was recorded.
	Count uint64
}

// Stats are counters of an [Index].
type Stats struct {
	Processes    int    // processes with at least one association
	Associations int    // associations held (both directions)
	Evictions    uint64 // associations evicted to honour a cap
	PortsDropped uint64 // remote ports not kept: the association held its maximum
	Rejected     uint64 // Record calls ignored: invalid address or direction
}

// Defaults for the caps.
const (
	DefaultMaxPerProcess = 4096
	DefaultMaxTotal      = 262144
	DefaultMaxPorts      = 16
)

// Option configures an [Index].
type Option func(*config)

type config struct {
	maxPerProc int
	maxTotal   int
	maxPorts   int
}

// WithMaxPerProcess caps the associations kept for one process (both
// directions together). Values < 1 mean 1.
func WithMaxPerProcess(n int) Option {
	return func(c *config) { c.maxPerProc = max(n, 1) }
}

// WithMaxTotal caps the associations kept in the whole index. Values < 1
// mean 1.
func WithMaxTotal(n int) Option {
	return func(c *config) { c.maxTotal = max(n, 1) }
}

// WithMaxPorts caps the distinct remote ports kept per association; further
// ports are counted in Stats.PortsDropped. Values < 0 mean 0 (no ports kept).
func WithMaxPorts(n int) Option {
	return func(c *config) { c.maxPorts = max(n, 0) }
}

// key identifies one association.
type key struct {
	id    source.ProcID
	addr  netip.Addr
	proto source.Proto
	dir   Direction
}

// entry is one association. It is on two lists: the whole index's, sorted
// by gpos ascending, and its process's, sorted by ppos ascending. gpos and
// ppos are values last had when the entry was (re)placed on the list, so
// gpos <= last and ppos <= last; an update only raises last, and the list
// position is fixed lazily when the entry reaches the head of a list for
// eviction. The head of a list whose pos equals its last is the oldest entry
// by last: every other entry's last is >= its pos >= the head's.
type entry struct {
	// The fields an update touches come first, within one cache line.
	count       uint64
	first, last int64 // unix ns; 0 for a zero time.Time
	// Ports, sorted: the first inlinePorts in inl (n of them); beyond
	// that all of them in more (inl unused).
	n    uint8
	inl  [inlinePorts]uint16
	more []uint16

	k          key
	gpos, ppos int64
	p          *proc

	gprev, gnext *entry // global list
	pprev, pnext *entry // process list
}

// proc holds one process's associations.
type proc struct {
	n          int
	head, tail *entry // process list, oldest first
}

// revItem counts one process's outbound associations with an address
// (one per protocol).
type revItem struct {
	id source.ProcID
	n  int
}

// revList holds the processes of one address; the first is inline, since
// most addresses are used by one process.
type revList struct {
	one  revItem
	more []revItem
}

// maxFree bounds the recycled entries and processes kept for reuse.
const maxFree = 64

// Index is the association index. It is safe for concurrent use.
type Index struct {
	mu     sync.Mutex
	cfg    config
	m      map[key]*entry
	procs  map[source.ProcID]*proc
	rev    map[netip.Addr]revList
	free   []*entry // recycled entries
	freeP  []*proc  // recycled processes
	head   *entry   // global list, oldest first
	tail   *entry
	evict  uint64
	pdrop  uint64
	reject uint64
}

// New returns an empty index.
func New(opts ...Option) *Index {
	c := config{maxPerProc: DefaultMaxPerProcess, maxTotal: DefaultMaxTotal, maxPorts: DefaultMaxPorts}
	for _, o := range opts {
		o(&c)
	}
	return &Index{
		cfg:   c,
		m:     make(map[key]*entry),
		procs: make(map[source.ProcID]*proc),
		rev:   make(map[netip.Addr]revList),
	}
}

// canon returns the form of a under which the index keys it.
func canon(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Record records that process id exchanged traffic with remote over proto
// at time t: dir Outbound when the process initiated it (connect, send),
// Inbound for a peer it accepted. A remote with an invalid address, or an
// unknown direction, is not recorded and is counted in Stats.Rejected.
func (x *Index) Record(id source.ProcID, dir Direction, proto source.Proto, remote netip.AddrPort, t time.Time) {
	addr := remote.Addr()
	if !addr.IsValid() || dir > Inbound {
		x.mu.Lock()
		x.reject++
		x.mu.Unlock()
		return
	}
	if addr.Is4In6() || addr.Zone() != "" {
		addr = canon(addr)
	}
	k := key{id: id, addr: addr, proto: proto, dir: dir}
	ns := unixNano(t)
	port := remote.Port()

	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.m[k]; e != nil {
		e.count++
		if ns < e.first {
			e.first = ns
		}
		if ns > e.last {
			e.last = ns
		}
		if port != 0 {
			x.addPort(e, port)
		}
		return
	}
	p := x.procs[id]
	if p == nil {
		if n := len(x.freeP); n > 0 {
			p = x.freeP[n-1]
			x.freeP = x.freeP[:n-1]
		} else {
			p = &proc{}
		}
		x.procs[id] = p
	}
	var e *entry
	if n := len(x.free); n > 0 {
		e = x.free[n-1]
		x.free = x.free[:n-1]
	} else {
		e = &entry{}
	}
	e.k, e.first, e.last, e.gpos, e.ppos, e.count, e.p = k, ns, ns, ns, ns, 1, p
	if port != 0 {
		x.addPort(e, port)
	}
	x.m[k] = e
	x.insert(e)
	if dir == Outbound {
		x.revAdd(addr, id)
	}
	for p.n > x.cfg.maxPerProc {
		x.evictProc(p)
	}
	for len(x.m) > x.cfg.maxTotal {
		x.evictGlobal()
	}
}

// evictGlobal evicts the oldest association of the index, first re-placing
// heads whose position is stale.
func (x *Index) evictGlobal() {
	for {
		e := x.head
		if e.gpos == e.last {
			x.remove(e)
			x.evict++
			return
		}
		x.gunlink(e)
		e.gpos = e.last
		x.gplace(e)
	}
}

// evictProc evicts the oldest association of process p.
func (x *Index) evictProc(p *proc) {
	for {
		e := p.head
		if e.ppos == e.last {
			x.remove(e)
			x.evict++
			return
		}
		x.punlink(p, e)
		e.ppos = e.last
		x.pplace(p, e)
	}
}

// RecordEvent records the association an event reports: connect and send
// events as Outbound, accept events as Inbound, each with the event's
// remote end (Dst). It reports whether the event was of such a kind with a
// valid remote address; other events are ignored.
func (x *Index) RecordEvent(ev *source.Event) bool {
	var dir Direction
	switch ev.Kind {
	case source.KindConnect, source.KindSend:
		dir = Outbound
	case source.KindAccept:
		dir = Inbound
	default:
		return false
	}
	if !ev.Dst.Addr().IsValid() {
		return false
	}
	x.Record(ev.ID(), dir, ev.Proto, ev.Dst, ev.Time)
	return true
}

// inlinePorts is how many ports an entry holds without a separate slice.
const inlinePorts = 4

func (x *Index) addPort(e *entry, port uint16) {
	if int(e.n) <= inlinePorts {
		ps := e.inl[:e.n]
		for _, p := range ps {
			if p == port {
				return
			}
		}
		if int(e.n) >= x.cfg.maxPorts {
			x.pdrop++
			return
		}
		if int(e.n) < inlinePorts {
			i, _ := slices.BinarySearch(ps, port)
			copy(e.inl[i+1:e.n+1], e.inl[i:e.n])
			e.inl[i] = port
			e.n++
			return
		}
		// Spill to the slice.
		e.more = append(e.more[:0], ps...)
		e.n = inlinePorts + 1
	}
	i, found := slices.BinarySearch(e.more, port)
	if found {
		return
	}
	if len(e.more) >= x.cfg.maxPorts {
		x.pdrop++
		return
	}
	e.more = slices.Insert(e.more, i, port)
}

// portList returns a copy of the entry's ports.
func (e *entry) portList() []uint16 {
	if int(e.n) <= inlinePorts {
		if e.n == 0 {
			return nil
		}
		return slices.Clone(e.inl[:e.n])
	}
	return slices.Clone(e.more)
}

// insert puts a new entry on both lists at the place its position sorts.
func (x *Index) insert(e *entry) {
	x.gplace(e)
	x.pplace(e.p, e)
	e.p.n++
}

// gplace links e into the global list where e.gpos sorts, walking back from
// the tail (new and refreshed entries are usually the newest).
func (x *Index) gplace(e *entry) {
	at := x.tail
	for at != nil && at.gpos > e.gpos {
		at = at.gprev
	}
	x.glink(e, at)
}

// pplace links e into p's list where e.ppos sorts.
func (x *Index) pplace(p *proc, e *entry) {
	at := p.tail
	for at != nil && at.ppos > e.ppos {
		at = at.pprev
	}
	x.plink(p, e, at)
}

// glink links e into the global list after at (at the head if at is nil).
func (x *Index) glink(e, at *entry) {
	e.gprev = at
	if at == nil {
		e.gnext = x.head
		x.head = e
	} else {
		e.gnext = at.gnext
		at.gnext = e
	}
	if e.gnext != nil {
		e.gnext.gprev = e
	} else {
		x.tail = e
	}
}

func (x *Index) gunlink(e *entry) {
	if e.gprev != nil {
		e.gprev.gnext = e.gnext
	} else {
		x.head = e.gnext
	}
	if e.gnext != nil {
		e.gnext.gprev = e.gprev
	} else {
		x.tail = e.gprev
	}
	e.gprev, e.gnext = nil, nil
}

func (x *Index) plink(p *proc, e, at *entry) {
	e.pprev = at
	if at == nil {
		e.pnext = p.head
		p.head = e
	} else {
		e.pnext = at.pnext
		at.pnext = e
	}
	if e.pnext != nil {
		e.pnext.pprev = e
	} else {
		p.tail = e
	}
}

func (x *Index) punlink(p *proc, e *entry) {
	if e.pprev != nil {
		e.pprev.pnext = e.pnext
	} else {
		p.head = e.pnext
	}
	if e.pnext != nil {
		e.pnext.pprev = e.pprev
	} else {
		p.tail = e.pprev
	}
	e.pprev, e.pnext = nil, nil
}

// remove drops an entry from every structure.
func (x *Index) remove(e *entry) {
	delete(x.m, e.k)
	x.gunlink(e)
	p := e.p
	x.punlink(p, e)
	p.n--
	if p.n == 0 {
		delete(x.procs, e.k.id)
		if len(x.freeP) < maxFree {
			*p = proc{}
			x.freeP = append(x.freeP, p)
		}
	}
	if e.k.dir == Outbound {
		x.revDel(e.k.addr, e.k.id)
	}
	if len(x.free) < maxFree && cap(e.more) <= 2*x.cfg.maxPorts {
		*e = entry{more: e.more[:0]}
		x.free = append(x.free, e)
	}
}

func (x *Index) revAdd(a netip.Addr, id source.ProcID) {
	l := x.rev[a]
	switch {
	case l.one.n == 0:
		l.one = revItem{id: id, n: 1}
	case l.one.id == id:
		l.one.n++
	default:
		found := false
		for i := range l.more {
			if l.more[i].id == id {
				l.more[i].n++
				found = true
				break
			}
		}
		if !found {
			l.more = append(l.more, revItem{id: id, n: 1})
		}
	}
	x.rev[a] = l
}

func (x *Index) revDel(a netip.Addr, id source.ProcID) {
	l, ok := x.rev[a]
	if !ok {
		return
	}
	if l.one.id == id && l.one.n > 0 {
		l.one.n--
		if l.one.n == 0 {
			if k := len(l.more); k > 0 {
				l.one = l.more[k-1]
				l.more = l.more[:k-1]
			} else {
				delete(x.rev, a)
				return
			}
		}
		x.rev[a] = l
		return
	}
	for i := range l.more {
		if l.more[i].id != id {
			continue
		}
		l.more[i].n--
		if l.more[i].n == 0 {
			k := len(l.more) - 1
			l.more[i] = l.more[k]
			l.more = l.more[:k]
		}
		x.rev[a] = l
		return
	}
}

// assocs returns copies of id's associations in direction dir.
func (x *Index) assocs(id source.ProcID, dir Direction) []Assoc {
	x.mu.Lock()
	var out []Assoc
	if p := x.procs[id]; p != nil {
		for e := p.head; e != nil; e = e.pnext {
			if e.k.dir != dir {
				continue
			}
			out = append(out, Assoc{
				Addr:  e.k.addr,
				Proto: e.k.proto,
				Ports: e.portList(),
				First: fromNano(e.first),
				Last:  fromNano(e.last),
				Count: e.count,
			})
		}
	}
	x.mu.Unlock()
	slices.SortFunc(out, func(a, b Assoc) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.Proto, b.Proto)
	})
	return out
}

// Outbound returns the associations process id initiated (its associated
// addresses with detail), sorted by address then protocol.
func (x *Index) Outbound(id source.ProcID) []Assoc { return x.assocs(id, Outbound) }

// Inbound returns the peers process id accepted connections from, sorted
// by address then protocol.
func (x *Index) Inbound(id source.ProcID) []Assoc { return x.assocs(id, Inbound) }

// Addrs returns the distinct remote addresses process id initiated traffic
// to, sorted.
func (x *Index) Addrs(id source.ProcID) []netip.Addr {
	return x.AddrsOf(func(yield func(source.ProcID) bool) { yield(id) })
}

// AddrsOf returns the union of the outbound addresses of the processes ids
// yields (a subtree, for containment), sorted and distinct.
func (x *Index) AddrsOf(ids iter.Seq[source.ProcID]) []netip.Addr {
	var out []netip.Addr
	x.mu.Lock()
	for id := range ids {
		p := x.procs[id]
		if p == nil {
			continue
		}
		for e := p.head; e != nil; e = e.pnext {
			if e.k.dir == Outbound {
				out = append(out, e.k.addr)
			}
		}
	}
	x.mu.Unlock()
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Procs returns the processes that initiated traffic to addr (the reverse
// index; accepted peers are not included), sorted by pid then start time.
func (x *Index) Procs(addr netip.Addr) []source.ProcID {
	addr = canon(addr)
	x.mu.Lock()
	l, ok := x.rev[addr]
	var out []source.ProcID
	if ok {
		out = make([]source.ProcID, 0, 1+len(l.more))
		out = append(out, l.one.id)
		for _, it := range l.more {
			out = append(out, it.id)
		}
	}
	x.mu.Unlock()
	slices.SortFunc(out, compareID)
	return out
}

// Processes returns the processes with at least one association (either
// direction), sorted by pid then start time.
func (x *Index) Processes() []source.ProcID {
	x.mu.Lock()
	out := make([]source.ProcID, 0, len(x.procs))
	for id := range x.procs {
		out = append(out, id)
	}
	x.mu.Unlock()
	slices.SortFunc(out, compareID)
	return out
}

func compareID(a, b source.ProcID) int {
	if c := cmp.Compare(a.PID, b.PID); c != 0 {
		return c
	}
	return cmp.Compare(a.Start, b.Start)
}

// Forget drops every association of process id (when the process is reaped
// from the tree). Forgetting is not eviction and is not counted.
func (x *Index) Forget(id source.ProcID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.procs[id]
	for p != nil && p.head != nil {
		x.remove(p.head)
	}
}

// Stats returns the index's counters.
func (x *Index) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return Stats{
		Processes:    len(x.procs),
		Associations: len(x.m),
		Evictions:    x.evict,
		PortsDropped: x.pdrop,
		Rejected:     x.reject,
	}
}
