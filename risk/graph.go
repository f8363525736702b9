package risk

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/procwall/procwall/source"
)

// NodeKind says what a [Node] is.
type NodeKind uint8

// Node kinds.
const (
	NodeProcess NodeKind = iota + 1 // a process, by identity
	NodeAddr                        // a remote IP address
)

// String returns "process" or "addr" (the names used in records).
func (k NodeKind) String() string {
	switch k {
	case NodeProcess:
		return "process"
	case NodeAddr:
		return "addr"
	}
	return "node(" + strconv.Itoa(int(k)) + ")"
}

// Node is a node of the host graph: a process or a remote address.
type Node struct {
	Kind NodeKind
	Proc source.ProcID // NodeProcess; Start 0 names the live (or latest) process with that pid
	Addr netip.Addr    // NodeAddr
}

// ProcessNode returns the node of process id.
func ProcessNode(id source.ProcID) Node { return Node{Kind: NodeProcess, Proc: id} }

// AddrNode returns the node of remote address a.
func AddrNode(a netip.Addr) Node { return Node{Kind: NodeAddr, Addr: canonAddr(a)} }

// String returns "pid 231", "pid 231@start" or the address.
func (n Node) String() string {
	switch n.Kind {
	case NodeProcess:
		return "pid " + n.Proc.String()
	case NodeAddr:
		return n.Addr.String()
	}
	return "invalid node"
}

func canonAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	return a
}

// BehaviourKind is a kind of security-relevant behaviour of a node.
type BehaviourKind uint8

// Behaviour kinds.
const (
	// BehaviourRisk: a detector reported the process (risk event, with a
	// level).
	BehaviourRisk BehaviourKind = iota + 1
	// BehaviourDeny: the rule engine denied something the node did or that
	// was done to it.
	BehaviourDeny
	// BehaviourBlock: containment blocked the node (a block decision's
	// target process, or one of its addresses).
	BehaviourBlock
	numBehaviourKinds
)

var behaviourNames = [...]string{"", "risk", "deny", "block"}

// String returns "risk", "deny" or "block".
func (k BehaviourKind) String() string {
	if k > 0 && k < numBehaviourKinds {
		return behaviourNames[k]
	}
	return "behaviour(" + strconv.Itoa(int(k)) + ")"
}

// Behaviour is one security-relevant behaviour of a node.
type Behaviour struct {
	Time  time.Time
	Node  Node
	Kind  BehaviourKind
	Level Level // BehaviourRisk: the report's level; ignored otherwise
}

// behaviour is a stored Behaviour.
type behaviour struct {
	t     int64
	kind  BehaviourKind
	level Level
}

// Graph defaults.
const (
	DefaultGraphRetention = 24 * time.Hour
	DefaultMaxAssocs      = 1 << 21
	DefaultMaxProcesses   = 1 << 20
	DefaultMaxBehaviours  = 32
)

// GraphOption configures a [Graph].
type GraphOption func(*graphConfig)

type graphConfig struct {
	retention     int64
	maxAssocs     int
	maxProcs      int
	maxBehaviours int
}

// WithGraphRetention sets how long the graph keeps associations,
// behaviours and exited processes after their last activity (event time).
// It must cover the longest period any warning target or chain looks at.
// Values <= 0 mean the default (24 hours, the default warning period).
func WithGraphRetention(d time.Duration) GraphOption {
	return func(c *graphConfig) {
		if d > 0 {
			c.retention = int64(d)
		}
	}
}

// WithMaxAssocs caps the associations the graph holds; past it the oldest
// (by last use) are dropped. Values < 1 mean 1.
func WithMaxAssocs(n int) GraphOption {
	return func(c *graphConfig) { c.maxAssocs = max(n, 1) }
}

// WithMaxProcesses caps the processes the graph holds; past it the
// exited processes that exited first are dropped (live ones never are).
// Values < 1 mean 1.
func WithMaxProcesses(n int) GraphOption {
	return func(c *graphConfig) { c.maxProcs = max(n, 1) }
}

// WithMaxBehaviours caps the behaviours kept per node (the oldest are
// dropped). Values < 1 mean 1.
func WithMaxBehaviours(n int) GraphOption {
	return func(c *graphConfig) { c.maxBehaviours = max(n, 1) }
}

// pnode is a process of the graph.
type pnode struct {
	id       source.ProcID
	synth    bool // id.Start was synthesised from event time
	name     string
	exe      string
	parent   *pnode
	ci       int32 // index in parent.children
	children []*pnode
	forked   int64
	exited   int64 // 0 while alive
	active   int64 // last event naming the process
	assocs   []*assoc
	beh      []behaviour

	mark uint32 // traversal epoch
	slot int32  // index into the traversal's scratch while mark is current
}

// anode is a remote address of the graph.
type anode struct {
	addr   netip.Addr
	assocs []*assoc
	beh    []behaviour
	mark   uint32
	slot   int32
}

// assoc is one process↔address association (one direction).
type assoc struct {
	p           *pnode
	a           *anode
	inbound     bool
	first, last int64
	pi, ai      int32 // indexes in p.assocs and a.assocs
}

type assocKey struct {
	p       *pnode
	a       *anode
	inbound bool
}

// Graph is the host graph the early-warning ([Warner]) and attack-chain
// ([Chains]) components read: processes with their lineage, remote
// addresses, the associations between them with first and last use, and
// the behaviours (risk reports, denials, blocks) of each node, all in event
// time.
//
// Feed it every event with [Graph.Observe] and the behaviours that are not
// events (rule denials, blocks) with [Graph.Note]. It forgets what is older
// than its retention on its own (driven by event time) and never holds more
// than its association cap. It is not safe for concurrent use.
type Graph struct {
	cfg    graphConfig
	procs  map[source.ProcID]*pnode
	live   map[int]*pnode
	latest map[int]*pnode // the most recent process with each pid, alive or not
	guids  map[string]*pnode
	addrs  map[netip.Addr]*anode
	assocs map[assocKey]*assoc

	now       int64
	lastPrune int64
	epoch     uint32
	rejected  uint64
	shedAt    int // process count below which no shed is tried
}

// NewGraph returns an empty graph.
func NewGraph(opts ...GraphOption) *Graph {
	c := graphConfig{retention: int64(DefaultGraphRetention), maxAssocs: DefaultMaxAssocs,
		maxProcs: DefaultMaxProcesses, maxBehaviours: DefaultMaxBehaviours}
	for _, o := range opts {
		o(&c)
	}
	return &Graph{
		cfg:    c,
		procs:  make(map[source.ProcID]*pnode),
		live:   make(map[int]*pnode),
		latest: make(map[int]*pnode),
		guids:  make(map[string]*pnode),
		addrs:  make(map[netip.Addr]*anode),
		assocs: make(map[assocKey]*assoc),
	}
}

// GraphStats are a graph's sizes and counters.
type GraphStats struct {
	Processes, Addrs, Assocs int
	Rejected                 uint64 // events not applied because they failed validation
}

// Stats returns the graph's sizes and counters.
func (g *Graph) Stats() GraphStats {
	return GraphStats{Processes: len(g.procs), Addrs: len(g.addrs), Assocs: len(g.assocs), Rejected: g.rejected}
}

// Now returns the latest event time the graph has seen.
func (g *Graph) Now() time.Time {
	if g.now == 0 {
		return time.Time{}
	}
	return time.Unix(0, g.now).UTC()
}

// Observe applies one event: fork, exec and exit shape the lineage;
// connect and send add outbound associations, accept an inbound one; risk
// adds a risk behaviour to the process; a safe assess resolves (clears) the
// process's behaviours. Other kinds only mark the process active. It
// returns an error, and changes nothing, for an event that fails
// validation.
//
// Identity follows proctree's rules: an event with a start time names that
// process; without one it names the live process with that pid, and a fork
// without one starts a new process whose start is synthesised from the
// event time.
func (g *Graph) Observe(ev source.Event) error {
	if err := ev.Validate(); err != nil {
		g.rejected++
		return fmt.Errorf("risk graph: %w", err)
	}
	ts := ev.Time.UnixNano()
	g.advance(ts)
	switch ev.Kind {
	case source.KindFork:
		n := g.find(ev.PID, ev.Start, ev.GUID)
		if n == nil || (ev.Start == 0 && ev.GUID == "") {
			n = g.newProc(ev.PID, ev.Start, ev.GUID, ts)
		}
		if p := g.parentFor(&ev, ts); p != nil && n.parent == nil {
			g.link(n, p)
		}
		n.active = ts
	case source.KindExec:
		n := g.find(ev.PID, ev.Start, ev.GUID)
		if n == nil {
			n = g.newProc(ev.PID, ev.Start, ev.GUID, ts)
		}
		if n.parent == nil {
			if p := g.parentFor(&ev, ts); p != nil {
				g.link(n, p)
			}
		}
		n.exe = ev.Exe
		n.name = imageName(ev.Exe, ev.Comm, ev.Argv)
		n.active = ts
	case source.KindExit:
		n := g.procFor(&ev, ts)
		n.exited, n.active = ts, ts
		if g.live[n.id.PID] == n {
			delete(g.live, n.id.PID)
		}
	case source.KindConnect, source.KindSend, source.KindAccept:
		n := g.procFor(&ev, ts)
		n.active = ts
		g.associate(n, canonAddr(ev.Dst.Addr()), ev.Kind == source.KindAccept, ts)
	case source.KindRisk:
		n := g.procFor(&ev, ts)
		n.active = ts
		n.beh = g.addBehaviour(n.beh, behaviour{t: ts, kind: BehaviourRisk, level: ev.Level})
	case source.KindAssess:
		n := g.procFor(&ev, ts)
		n.active = ts
		if ev.Safe {
			n.beh = n.beh[:0]
		}
	default:
		g.procFor(&ev, ts).active = ts
	}
	return nil
}

// Note records a behaviour that is not an event of its own: a rule
// denial, a block (for the blocked process and each blocked address). A
// process node that is not in the graph is created (with unknown lineage).
func (g *Graph) Note(b Behaviour) error {
	if b.Kind == 0 || b.Kind >= numBehaviourKinds {
		return fmt.Errorf("risk graph: note: unknown behaviour kind %d", b.Kind)
	}
	if b.Time.IsZero() {
		return fmt.Errorf("risk graph: note %v: missing time", b.Kind)
	}
	ts := b.Time.UnixNano()
	rec := behaviour{t: ts, kind: b.Kind, level: b.Level}
	switch b.Node.Kind {
	case NodeProcess:
		if b.Node.Proc.PID <= 0 {
			return fmt.Errorf("risk graph: note %v: pid must be > 0, have %d", b.Kind, b.Node.Proc.PID)
		}
		g.advance(ts)
		n := g.lookup(b.Node.Proc)
		if n == nil {
			n = g.newProc(b.Node.Proc.PID, b.Node.Proc.Start, "", ts)
		}
		n.beh = g.addBehaviour(n.beh, rec)
	case NodeAddr:
		if !b.Node.Addr.IsValid() {
			return fmt.Errorf("risk graph: note %v: invalid address", b.Kind)
		}
		g.advance(ts)
		a := g.addr(canonAddr(b.Node.Addr))
		a.beh = g.addBehaviour(a.beh, rec)
	default:
		return fmt.Errorf("risk graph: note %v: invalid node kind %v", b.Kind, b.Node.Kind)
	}
	return nil
}

func imageName(exe, comm string, argv []string) string {
	switch {
	case exe != "":
		return path.Base(exe)
	case comm != "":
		return comm
	case len(argv) > 0:
		return path.Base(argv[0])
	}
	return ""
}

func (g *Graph) addBehaviour(bs []behaviour, b behaviour) []behaviour {
	i := len(bs)
	for i > 0 && bs[i-1].t > b.t {
		i--
	}
	bs = slices.Insert(bs, i, b)
	if over := len(bs) - g.cfg.maxBehaviours; over > 0 {
		bs = append(bs[:0], bs[over:]...)
	}
	return bs
}

// advance moves the graph's clock and prunes what retention dropped, at
// most eight times per retention period.
func (g *Graph) advance(ts int64) {
	if ts <= g.now {
		return
	}
	g.now = ts
	if g.lastPrune == 0 {
		g.lastPrune = ts
		return
	}
	if ts-g.lastPrune >= max(g.cfg.retention/8, int64(time.Second)) {
		g.Prune(time.Unix(0, ts))
	}
}

// find returns the process (pid, start, guid) names: by GUID, by exact
// identity, else the live process with that pid (when start is 0 or the
// live one's start was synthesised).
func (g *Graph) find(pid int, start uint64, guid string) *pnode {
	if guid != "" {
		if n := g.guids[guid]; n != nil {
			return n
		}
	}
	if start != 0 {
		if n := g.procs[source.ProcID{PID: pid, Start: start}]; n != nil {
			return n
		}
	}
	if n := g.live[pid]; n != nil && (start == 0 || n.synth) {
		return n
	}
	return nil
}

// lookup resolves a process node for queries: exact identity, else the
// live process with that pid, else the most recent exited one, else nil.
func (g *Graph) lookup(id source.ProcID) *pnode {
	if id.Start != 0 {
		return g.procs[id]
	}
	if n := g.live[id.PID]; n != nil {
		return n
	}
	return g.latest[id.PID]
}

// procFor resolves the process an event names, as lookup does (a report
// may arrive after the process exited), creating it when unknown.
func (g *Graph) procFor(ev *source.Event, ts int64) *pnode {
	if n := g.find(ev.PID, ev.Start, ev.GUID); n != nil {
		return n
	}
	if ev.Start != 0 {
		if n := g.procs[ev.ID()]; n != nil {
			return n
		}
	} else if n := g.latest[ev.PID]; n != nil && ev.GUID == "" {
		return n
	}
	return g.newProc(ev.PID, ev.Start, ev.GUID, ts)
}

func (g *Graph) parentFor(ev *source.Event, ts int64) *pnode {
	if ev.PPID <= 0 {
		return nil
	}
	if p := g.find(ev.PPID, ev.PStart, ev.ParentGUID); p != nil {
		return p
	}
	if ev.PStart != 0 {
		if p := g.procs[ev.ParentID()]; p != nil {
			return p
		}
	}
	p := g.newProc(ev.PPID, ev.PStart, ev.ParentGUID, ts)
	p.name = imageName(ev.ParentExe, "", ev.ParentArgv)
	p.exe = ev.ParentExe
	return p
}

func (g *Graph) newProc(pid int, start uint64, guid string, ts int64) *pnode {
	if old := g.live[pid]; old != nil && old.exited == 0 {
		old.exited = ts
	}
	n := &pnode{forked: ts, active: ts}
	n.id = source.ProcID{PID: pid, Start: start}
	if start == 0 {
		n.synth = true
		s := max(uint64(ts), 1)
		for g.procs[source.ProcID{PID: pid, Start: s}] != nil {
			s++
		}
		n.id.Start = s
	}
	g.procs[n.id] = n
	g.live[pid] = n
	g.latest[pid] = n
	if guid != "" {
		g.guids[guid] = n
	}
	if len(g.procs) > g.cfg.maxProcs && len(g.procs) > g.shedAt {
		g.shedProcs()
		// When few exited processes could go, wait for a tenth of the cap
		// more before scanning again.
		g.shedAt = len(g.procs) + max(g.cfg.maxProcs/10, 1) - 1
	}
	return n
}

// shedProcs drops the exited processes that exited first (a tenth of the
// cap) when the process cap is exceeded.
func (g *Graph) shedProcs() {
	var exits []int64
	for _, n := range g.procs {
		if n.exited != 0 {
			exits = append(exits, n.exited)
		}
	}
	if len(exits) == 0 {
		return
	}
	slices.Sort(exits)
	cut := exits[min(len(exits)-1, max(g.cfg.maxProcs/10, 1)-1)]
	for _, n := range g.procs {
		if n.exited != 0 && n.exited <= cut {
			g.removeProc(n)
		}
	}
	g.dropStaleGUIDs()
}

// removeProc forgets an exited process with its associations; its
// children are orphaned.
func (g *Graph) removeProc(n *pnode) {
	for len(n.assocs) > 0 {
		g.removeAssoc(n.assocs[len(n.assocs)-1])
	}
	for len(n.children) > 0 {
		g.unlink(n.children[len(n.children)-1])
	}
	g.unlink(n)
	delete(g.procs, n.id)
	if g.live[n.id.PID] == n {
		delete(g.live, n.id.PID)
	}
	if g.latest[n.id.PID] == n {
		delete(g.latest, n.id.PID)
	}
}

func (g *Graph) dropStaleGUIDs() {
	for guid, n := range g.guids {
		if g.procs[n.id] != n {
			delete(g.guids, guid)
		}
	}
}

func (g *Graph) link(n, p *pnode) {
	for a := p; a != nil; a = a.parent {
		if a == n {
			return // a cycle: keep n unparented
		}
	}
	n.parent = p
	n.ci = int32(len(p.children))
	p.children = append(p.children, n)
}

func (g *Graph) unlink(n *pnode) {
	p := n.parent
	if p == nil {
		return
	}
	last := p.children[len(p.children)-1]
	p.children[n.ci] = last
	last.ci = n.ci
	p.children = p.children[:len(p.children)-1]
	n.parent = nil
}

func (g *Graph) addr(a netip.Addr) *anode {
	n := g.addrs[a]
	if n == nil {
		n = &anode{addr: a}
		g.addrs[a] = n
	}
	return n
}

func (g *Graph) associate(p *pnode, addr netip.Addr, inbound bool, ts int64) {
	a := g.addr(addr)
	k := assocKey{p: p, a: a, inbound: inbound}
	if e := g.assocs[k]; e != nil {
		e.first = min(e.first, ts)
		e.last = max(e.last, ts)
		return
	}
	e := &assoc{p: p, a: a, inbound: inbound, first: ts, last: ts,
		pi: int32(len(p.assocs)), ai: int32(len(a.assocs))}
	p.assocs = append(p.assocs, e)
	a.assocs = append(a.assocs, e)
	g.assocs[k] = e
	if len(g.assocs) > g.cfg.maxAssocs {
		g.shed()
	}
}

func (g *Graph) removeAssoc(e *assoc) {
	delete(g.assocs, assocKey{p: e.p, a: e.a, inbound: e.inbound})
	p, a := e.p, e.a
	last := p.assocs[len(p.assocs)-1]
	p.assocs[e.pi], last.pi = last, e.pi
	p.assocs = p.assocs[:len(p.assocs)-1]
	last = a.assocs[len(a.assocs)-1]
	a.assocs[e.ai], last.ai = last, e.ai
	a.assocs = a.assocs[:len(a.assocs)-1]
}

// shed drops the oldest tenth of the associations (by last use) when the
// cap is exceeded.
func (g *Graph) shed() {
	lasts := make([]int64, 0, len(g.assocs))
	for _, e := range g.assocs {
		lasts = append(lasts, e.last)
	}
	slices.Sort(lasts)
	cut := lasts[len(lasts)/10]
	for _, e := range g.assocs {
		if e.last <= cut && len(g.assocs) > g.cfg.maxAssocs*9/10 {
			g.removeAssoc(e)
		}
	}
}

// Prune forgets what is older than the retention at now: associations
// last used before it, behaviours before it, exited processes that exited
// before it and hold nothing any more, and addresses left without
// associations or behaviours. Observe and Note call it on their own as
// event time advances.
func (g *Graph) Prune(now time.Time) {
	ts := now.UnixNano()
	g.lastPrune = ts
	cut := ts - g.cfg.retention
	for _, e := range g.assocs {
		if e.last < cut {
			g.removeAssoc(e)
		}
	}
	trim := func(bs []behaviour) []behaviour {
		i := 0
		for i < len(bs) && bs[i].t < cut {
			i++
		}
		if i == 0 {
			return bs
		}
		return append(bs[:0], bs[i:]...)
	}
	for _, n := range g.procs {
		n.beh = trim(n.beh)
		if n.exited == 0 || n.exited >= cut || len(n.assocs) > 0 || len(n.beh) > 0 {
			continue
		}
		g.removeProc(n) // its children keep their own retention
	}
	g.dropStaleGUIDs()
	for a, n := range g.addrs {
		n.beh = trim(n.beh)
		if len(n.assocs) == 0 && len(n.beh) == 0 {
			delete(g.addrs, a)
		}
	}
}

// nextEpoch starts a traversal: marks from earlier traversals no longer
// count.
func (g *Graph) nextEpoch() uint32 {
	g.epoch++
	if g.epoch == 0 { // wrapped: clear every mark
		for _, n := range g.procs {
			n.mark = 0
		}
		for _, n := range g.addrs {
			n.mark = 0
		}
		g.epoch = 1
	}
	return g.epoch
}

// label names a process for records: "name (pid)" or "pid N".
func (n *pnode) label() string {
	if n.name == "" {
		return "pid " + strconv.Itoa(n.id.PID)
	}
	return n.name + " (" + strconv.Itoa(n.id.PID) + ")"
}

// knownStart is the start time a source reported, else 0.
func (n *pnode) knownStart() uint64 {
	if n.synth {
		return 0
	}
	return n.id.Start
}

// aliveAt reports whether the process existed at some time in [from, to].
func (n *pnode) aliveIn(from, to int64) bool {
	return n.forked <= to && (n.exited == 0 || n.exited >= from)
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// compareNodes orders graph nodes deterministically: processes (by pid,
// then start) before addresses (by address).
func compareNodes(p1 *pnode, a1 *anode, p2 *pnode, a2 *anode) int {
	switch {
	case p1 != nil && p2 != nil:
		if c := cmp.Compare(p1.id.PID, p2.id.PID); c != 0 {
			return c
		}
		return cmp.Compare(p1.id.Start, p2.id.Start)
	case p1 != nil:
		return -1
	case p2 != nil:
		return 1
	}
	return a1.addr.Compare(a2.addr)
}
