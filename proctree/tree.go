package proctree

import (
	"fmt"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/procwall/procwall/source"
)

// ID is a process identity: (pid, start time). See [source.ProcID].
type ID = source.ProcID

// DefaultRetention is how long exited processes stay resolvable, in event
// time, unless WithRetention says otherwise.
const DefaultRetention = 5 * time.Minute

// DefaultMaxExited is the default hard cap on exited processes kept.
const DefaultMaxExited = 1 << 16

// DefaultBoundaries are the executable base names (path.Match patterns)
// that end a lineage walk, besides pid 1 and kernel threads.
var DefaultBoundaries = []string{"systemd", "init", "containerd-shim*", "conmon"}

// DefaultSubreapers are the executable base names (path.Match patterns) of
// processes assumed to be child subreapers: orphans are re-parented to the
// nearest living one among their ancestors, else to pid 1.
var DefaultSubreapers = []string{"systemd", "containerd-shim*", "tini", "dumb-init", "conmon"}

// node flags
const (
	fExited      uint16 = 1 << iota // the process has exited
	fExitUnseen                     // exit inferred (pid reused, resync), not observed
	fSynthStart                     // start was not reported; id.Start was synthesised
	fPlaceholder                    // known only as somebody's parent
	fReapPending                    // marked by the first reap pass
	fRemoved                        // no longer in the tree
	fHasCode                        // exit code known
	fHasUID                         // uid known
	fBoundary                       // the executable matches a boundary pattern
	fSubreaper                      // the executable matches a subreaper pattern
)

// node is the tree's internal record of one process.
type node struct {
	id     ID
	parent *node // lineage parent: the process that forked it
	// children as an intrusive doubly linked list: O(1) link and unlink,
	// no per-child allocation.
	firstChild, prevSib, nextSib *node
	older                        *node // previous process with the same pid
	reaper                       ID    // who the kernel re-parented it to, once its parent exited (zero: none)

	exe  *internRef // interned executable path; nil if unknown
	argv []string
	d    *detail // rarely needed details, allocated on first use

	forked, exited int64 // unix ns of event time; exited 0 while alive
	execAt         int64 // when the current image was executed (0: never seen)
	claimedPPID    int32 // the ppid an event named, when that parent is not in the tree
	uid            int32
	code           int32
	signal         int16
	flags          uint16
}

// detail holds what most processes never need, to keep node small.
type detail struct {
	guid  string
	cwd   string
	comm  string
	execs []execRec
}

var noDetail detail

// det returns n's details for writing, allocating them.
func (n *node) det() *detail {
	if n.d == nil {
		n.d = &detail{}
	}
	return n.d
}

// rd returns n's details for reading (a shared empty value if none).
func (n *node) rd() *detail {
	if n.d == nil {
		return &noDetail
	}
	return n.d
}

type execRec struct {
	t    int64
	exe  *internRef
	argv []string
}

// path returns the interned string, or "" for nil.
func (r *internRef) path() string {
	if r == nil {
		return ""
	}
	return r.s
}

func (n *node) alive() bool { return n.flags&fExited == 0 }

// Tree is the concurrent process tree store. Writers (Apply, Reap, Resync)
// and readers (queries, iteration, rendering) may run concurrently: a Tree
// is safe for concurrent use, and every query sees a consistent state.
type Tree struct {
	mu sync.Mutex

	live   map[int]*node    // pid -> live process
	latest map[int]*node    // pid -> most recent exited process (chain via older)
	byGUID map[string]*node // GUID -> process
	count  int              // processes held
	exitQ  nodeRing         // exited processes in exit order
	nExit  int              // exited processes still in the tree
	intern map[string]*internRef
	// high-water marks of the maps: Go maps never give memory back, so
	// Reap rebuilds a map that has shrunk well below its peak.
	hwLive, hwLatest, hwIntern, hwGUID int
	free                               []*node // removed nodes kept for reuse

	retention  time.Duration
	maxExited  int
	boundaries []string
	subreapers []string
	onRemove   func(ID)
	policy     MainPolicy
	hasTraffic func(ID) bool

	lastTime int64 // latest event time seen (unix ns)
	stats    Stats
}

// Stats counts what a tree did and how it is sized.
type Stats struct {
	Live, Exited       int    // processes in the tree
	Applied            uint64 // events applied
	Anomalies          uint64 // events that were inconsistent (see AnomalyError)
	Reaped             uint64 // exited processes removed after retention
	Evicted            uint64 // exited processes removed early by the hard cap
	PIDReuse           uint64 // a new process took the pid of a live one
	Placeholders       uint64 // parents created because an event named them first
	Reparented         uint64 // orphans re-parented when their parent was removed
	CyclesRefused      uint64 // parentage claims refused because they would form a cycle
	InternedExecutable int    // distinct executable paths interned
}

// Option configures a Tree.
type Option func(*Tree)

// WithRetention sets how long exited processes stay resolvable, measured in
// event time (default 5 minutes).
func WithRetention(d time.Duration) Option { return func(t *Tree) { t.retention = d } }

// WithMaxExited caps the number of exited processes kept (default 65536);
// past it the oldest exited processes are removed early, and counted.
func WithMaxExited(n int) Option { return func(t *Tree) { t.maxExited = n } }

// WithBoundaries replaces the executable base-name patterns that end a
// lineage walk (default DefaultBoundaries). Pid 1 and kernel threads are
// always boundaries.
func WithBoundaries(patterns ...string) Option {
	return func(t *Tree) { t.boundaries = append([]string(nil), patterns...) }
}

// WithSubreapers replaces the executable base-name patterns of processes
// treated as child subreapers (default DefaultSubreapers).
func WithSubreapers(patterns ...string) Option {
	return func(t *Tree) { t.subreapers = append([]string(nil), patterns...) }
}

// WithOnRemove registers a function called (with the tree's lock held: it
// must not call back into the tree) for each process removed from the
// tree, so that indexes keyed by identity can forget it.
func WithOnRemove(f func(ID)) Option { return func(t *Tree) { t.onRemove = f } }

// New returns an empty tree.
func New(opts ...Option) *Tree {
	t := &Tree{
		live:       make(map[int]*node),
		latest:     make(map[int]*node),
		byGUID:     make(map[string]*node),
		intern:     make(map[string]*internRef),
		retention:  DefaultRetention,
		maxExited:  DefaultMaxExited,
		boundaries: DefaultBoundaries,
		subreapers: DefaultSubreapers,
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// AnomalyError describes an event that did not fit the tree. The tree
// applies what it sensibly can (documented per Reason) and returns this
// error so the caller can count or log it; it is never a reason to stop.
type AnomalyError struct {
	Event  source.Event
	Reason string
}

// Error implements error.
func (e *AnomalyError) Error() string {
	return fmt.Sprintf("proctree: %s event for pid %d at %s: %s", e.Event.Kind, e.Event.PID,
		e.Event.Time.UTC().Format(time.RFC3339Nano), e.Reason)
}

func (t *Tree) anomaly(ev *source.Event, format string, args ...any) error {
	t.stats.Anomalies++
	return &AnomalyError{Event: *ev, Reason: fmt.Sprintf(format, args...)}
}

// internRef is one interned string and how many uses it has; strings
// are dropped when their last user goes, so churn through unique paths
// does not grow the table.
type internRef struct {
	s     string
	refs  int
	flags uint16 // fBoundary, fSubreaper: pattern matches, computed once
}

// internStr returns the shared copy of s, counting one more use.
func (t *Tree) internStr(s string) string {
	if s == "" {
		return ""
	}
	return t.ref(s).s
}

// ref returns the intern entry of a non-empty s, counting one more use.
func (t *Tree) ref(s string) *internRef {
	if r, ok := t.intern[s]; ok {
		r.refs++
		return r
	}
	r := &internRef{s: s, refs: 1}
	if matchAny(t.boundaries, s) {
		r.flags |= fBoundary
	}
	if matchAny(t.subreapers, s) {
		r.flags |= fSubreaper
	}
	t.intern[s] = r
	t.hwIntern = max(t.hwIntern, len(t.intern))
	return r
}

// unref drops one use of an interned string.
func (t *Tree) unref(r *internRef) {
	if r == nil {
		return
	}
	if r.refs--; r.refs <= 0 {
		delete(t.intern, r.s)
	}
}

// setExe replaces n's executable, keeping the intern counts and the
// boundary and subreaper flags (computed once per exec, not per walk).
func (t *Tree) setExe(n *node, exe string) {
	old := n.exe
	n.flags &^= fBoundary | fSubreaper
	n.exe = nil
	if exe != "" {
		n.exe = t.ref(exe)
		n.flags |= n.exe.flags
	}
	t.unref(old)
}

// byIdentity returns the node with exactly this identity, alive or exited.
func (t *Tree) byIdentity(id ID) *node {
	if n := t.live[id.PID]; n != nil && n.id == id {
		return n
	}
	for n := t.latest[id.PID]; n != nil; n = n.older {
		if n.id == id {
			return n
		}
	}
	return nil
}

// each calls f for every node, live then exited.
func (t *Tree) each(f func(*node)) {
	for _, n := range t.live {
		f(n)
	}
	for _, n := range t.latest {
		for ; n != nil; n = n.older {
			f(n)
		}
	}
}

// Apply updates the tree with one event. Process events (fork, exec, exit,
// attr) change it; others only resolve their process, creating it if it is
// unknown, so that traffic of a process seen for the first time is kept.
//
// Documented behaviour for inconsistent input (each returns an
// *AnomalyError and never leaves a cycle):
//   - fork of a pid that is alive with another identity: the old process is
//     marked exited (exit not observed) and a new one starts (pid reuse);
//     a duplicate fork of the same identity is ignored;
//   - fork or exec naming a parent that is not in the tree: a placeholder
//     parent is created (its details fill in if it shows up later);
//   - exec or exit of an unknown pid: the process is created on the spot
//     (exec: under its ppid if the event names one);
//   - parentage that would form a cycle: refused, the process keeps its
//     current parent;
//   - pid 0 or a process naming itself as parent: rejected, nothing changes.
func (t *Tree) Apply(ev source.Event) error { return t.ApplyEvent(&ev) }

// ApplyEvent is Apply without copying the event; the tree keeps no
// reference to *ev (slices it holds, such as Argv, are shared).
func (t *Tree) ApplyEvent(ev *source.Event) error {
	if err := ev.Validate(); err != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.anomaly(ev, "rejected: %v", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Applied++
	ts := ev.Time.UnixNano()
	if ts > t.lastTime {
		t.lastTime = ts
	}
	if ev.Start != 0 && (ev.Kind == source.KindFork || ev.Kind == source.KindExec ||
		ev.Kind == source.KindExit || ev.Kind == source.KindAttr) {
		if n := t.byIdentity(ev.ID()); n != nil && !n.alive() {
			return t.anomaly(ev, "process %s already exited; event ignored", n.id)
		}
	}
	switch ev.Kind {
	case source.KindFork:
		return t.applyFork(ev, ts)
	case source.KindExec:
		return t.applyExec(ev, ts)
	case source.KindExit:
		return t.applyExit(ev, ts)
	case source.KindAttr:
		n, err := t.resolveForUpdate(ev, ts)
		if n != nil {
			if ev.HasUID {
				n.uid, n.flags = int32(ev.UID), n.flags|fHasUID
			}
			if ev.Comm != "" {
				n.det().comm = ev.Comm
			}
		}
		return err
	default:
		_, err := t.resolveForUpdate(ev, ts)
		return err
	}
}

// matches reports whether the live node n is the process an event with
// this start and GUID names.
func matches(n *node, start uint64, guid string) bool {
	if start != 0 && n.flags&fSynthStart == 0 && n.id.Start != start {
		return false
	}
	if g := n.rd().guid; guid != "" && g != "" && g != guid {
		return false
	}
	return true
}

// findLive returns the live node for (pid, start, guid), or nil.
func (t *Tree) findLive(pid int, start uint64, guid string) *node {
	if guid != "" {
		if n, ok := t.byGUID[guid]; ok {
			return n
		}
	}
	n := t.live[pid]
	if n != nil && matches(n, start, guid) {
		return n
	}
	return nil
}

// newNode creates a live process for pid and registers it. A live process
// already holding the pid is retired first (pid reuse).
func (t *Tree) newNode(pid int, start uint64, guid string, ts int64) *node {
	return t.newNodeAfter(t.live[pid], pid, start, guid, ts)
}

// newNodeAfter is newNode when the caller already looked up the live
// process holding pid (old, or nil).
func (t *Tree) newNodeAfter(old *node, pid int, start uint64, guid string, ts int64) *node {
	if old != nil {
		t.stats.PIDReuse++
		t.markExited(old, ts, true)
	}
	var n *node
	if k := len(t.free); k > 0 {
		n, t.free[k-1], t.free = t.free[k-1], nil, t.free[:k-1]
		n.forked = ts
	} else {
		n = &node{forked: ts}
	}
	n.id = ID{PID: pid, Start: start}
	if start == 0 {
		// Synthesise a start from event time (unix ns: a range apart from
		// boot-relative starts), unique among the processes with this pid.
		// It depends only on the pid's own events, so another store fed the
		// same events (risk.Graph) synthesises the same identity. The pid
		// has no live process now, so only its exited ones can collide.
		n.flags |= fSynthStart
		s := uint64(max(ts, 1))
	again:
		for m := t.latest[pid]; m != nil; m = m.older {
			if m.id.Start == s {
				s++
				goto again
			}
		}
		n.id.Start = s
	}
	t.live[pid] = n
	t.hwLive = max(t.hwLive, len(t.live))
	t.count++
	if guid != "" {
		n.det().guid = guid
		t.byGUID[guid] = n
		t.hwGUID = max(t.hwGUID, len(t.byGUID))
	}
	return n
}

// parentFor finds or creates the parent named by (ppid, pstart, pguid).
func (t *Tree) parentFor(ev *source.Event, ts int64) (*node, bool) {
	if ev.PPID <= 0 {
		return nil, false
	}
	if p := t.findLive(ev.PPID, ev.PStart, ev.ParentGUID); p != nil {
		return p, false
	}
	// An exited parent still in retention, named by identity or GUID.
	if ev.ParentGUID != "" {
		if p, ok := t.byGUID[ev.ParentGUID]; ok {
			return p, false
		}
	}
	if ev.PStart != 0 {
		if p := t.byIdentity(ID{PID: ev.PPID, Start: ev.PStart}); p != nil {
			return p, false
		}
	}
	p := t.newNode(ev.PPID, ev.PStart, ev.ParentGUID, ts)
	p.flags |= fPlaceholder
	if ev.ParentExe != "" {
		t.setExe(p, ev.ParentExe)
		p.argv = ev.ParentArgv
	}
	t.stats.Placeholders++
	return p, true
}

func (t *Tree) applyFork(ev *source.Event, ts int64) error {
	if n := t.findLive(ev.PID, ev.Start, ev.GUID); n != nil && (ev.Start != 0 || ev.GUID != "") {
		// The same identity forked twice, or a placeholder learning its
		// parent: fill in the parent if it was not known.
		if n.flags&fPlaceholder != 0 || n.parent == nil {
			n.flags &^= fPlaceholder
			return t.setParent(n, ev, ts)
		}
		return t.anomaly(ev, "duplicate fork of %s ignored", n.id)
	} else if n != nil && n.flags&fPlaceholder != 0 {
		// A placeholder parent whose own fork arrives late.
		n.flags &^= fPlaceholder
		if n.parent == nil {
			return t.setParent(n, ev, ts)
		}
		return nil
	}
	n := t.newNodeAfter(t.live[ev.PID], ev.PID, ev.Start, ev.GUID, ts)
	if ev.Exe != "" {
		t.setExe(n, ev.Exe)
		n.argv = ev.Argv
	}
	return t.setParent(n, ev, ts)
}

// setParent links n under the parent the event names, refusing cycles.
func (t *Tree) setParent(n *node, ev *source.Event, ts int64) error {
	if ev.PPID <= 0 {
		return nil
	}
	p, _ := t.parentFor(ev, ts)
	if p == nil || p == n.parent {
		return nil
	}
	for a := p; a != nil; a = a.parent {
		if a == n {
			t.stats.CyclesRefused++
			n.claimedPPID = int32(ev.PPID)
			return t.anomaly(ev, "parent %d would make a cycle in the tree; kept the current parent", ev.PPID)
		}
	}
	t.link(n, p)
	n.claimedPPID = 0
	return nil
}

// within reports whether a is c or one of c's descendants (so linking c
// under a would make a cycle).
func (t *Tree) within(a, c *node) bool {
	for ; a != nil; a = a.parent {
		if a == c {
			return true
		}
	}
	return false
}

func (t *Tree) link(n, p *node) {
	t.unlink(n)
	n.parent = p
	n.nextSib = p.firstChild
	if p.firstChild != nil {
		p.firstChild.prevSib = n
	}
	p.firstChild = n
}

func (t *Tree) unlink(n *node) {
	p := n.parent
	if p == nil {
		return
	}
	if n.prevSib != nil {
		n.prevSib.nextSib = n.nextSib
	} else {
		p.firstChild = n.nextSib
	}
	if n.nextSib != nil {
		n.nextSib.prevSib = n.prevSib
	}
	n.parent, n.prevSib, n.nextSib = nil, nil, nil
}

func (t *Tree) applyExec(ev *source.Event, ts int64) error {
	n := t.findLive(ev.PID, ev.Start, ev.GUID)
	var err error
	if n == nil {
		// Implicit fork: exec of a pid never seen (or a new identity).
		n = t.newNode(ev.PID, ev.Start, ev.GUID, ts)
		err = t.setParent(n, ev, ts)
	} else if t.sameExec(n, ev, ts) {
		// Two sources (say the proc connector and tracefs) reporting one
		// exec: fill in what the first report lacked, keep one history
		// entry.
		if ev.Cwd != "" && n.rd().cwd == "" {
			n.det().cwd = ev.Cwd
		}
		if ev.HasUID && n.flags&fHasUID == 0 {
			n.uid, n.flags = int32(ev.UID), n.flags|fHasUID
		}
		if len(n.argv) == 0 && len(ev.Argv) > 0 {
			n.argv = ev.Argv
		}
		return nil
	} else {
		n.flags &^= fPlaceholder
		if ev.PPID > 0 && (n.parent == nil || (n.parent.id.PID != ev.PPID && n.parent.flags&fPlaceholder != 0)) {
			err = t.setParent(n, ev, ts)
		}
		if n.exe != nil {
			at := n.execAt
			if at == 0 {
				at = n.forked
			}
			d := n.det()
			d.execs = append(d.execs, execRec{t: at, exe: n.exe, argv: n.argv})
			n.exe.refs++ // the history holds a use too
		}
	}
	t.setExe(n, ev.Exe)
	n.argv = ev.Argv
	n.execAt = ts
	if ev.Cwd != "" {
		n.det().cwd = ev.Cwd
	}
	if ev.Comm != "" {
		n.det().comm = ev.Comm
	} else if n.d != nil {
		n.d.comm = "" // exec resets the task name to the new image's
	}
	if ev.HasUID {
		n.uid, n.flags = int32(ev.UID), n.flags|fHasUID
	}
	return err
}

// execDedupWindow is how close in event time two reports of an exec of
// the same image must be to count as one exec seen by two sources.
const execDedupWindow = 100 * time.Millisecond

// sameExec reports whether ev repeats the exec n last recorded: the same
// image (by base name: sources may name /usr/sbin/ip or its target
// /usr/bin/ip) within execDedupWindow.
func (t *Tree) sameExec(n *node, ev *source.Event, ts int64) bool {
	if n.exe == nil || ev.Exe == "" || n.execAt == 0 {
		return false
	}
	d := ts - n.execAt
	if d < 0 {
		d = -d
	}
	return d <= int64(execDedupWindow) && path.Base(n.exe.s) == path.Base(ev.Exe)
}

func (t *Tree) applyExit(ev *source.Event, ts int64) error {
	n := t.findLive(ev.PID, ev.Start, ev.GUID)
	var err error
	if n == nil {
		n = t.newNode(ev.PID, ev.Start, ev.GUID, ts)
		err = t.anomaly(ev, "exit of a process never seen; recorded as an exited process of unknown lineage")
	}
	if ev.HasCode {
		n.code, n.flags = int32(ev.Code), n.flags|fHasCode
	}
	n.signal = int16(ev.Signal)
	t.markExited(n, ts, false)
	t.enforceCap()
	return err
}

// resolveForUpdate returns the live process an event names, creating it if
// it is unknown (a process seen first by its traffic or a report).
func (t *Tree) resolveForUpdate(ev *source.Event, ts int64) (*node, error) {
	if n := t.findLive(ev.PID, ev.Start, ev.GUID); n != nil {
		return n, nil
	}
	// Named by identity but already exited: still resolvable.
	if ev.Start != 0 {
		if n := t.byIdentity(ID{PID: ev.PID, Start: ev.Start}); n != nil {
			return n, nil
		}
	}
	if ev.GUID != "" {
		if n, ok := t.byGUID[ev.GUID]; ok {
			return n, nil
		}
	}
	if ev.Kind == source.KindRisk || ev.Kind == source.KindAssess {
		// Reports do not create processes: resolution is the caller's.
		return nil, nil
	}
	n := t.newNode(ev.PID, ev.Start, ev.GUID, ts)
	n.flags |= fPlaceholder
	return n, nil
}

// markExited records that n ended at ts and re-parents nothing yet: the
// lineage stays intact while n is retained.
func (t *Tree) markExited(n *node, ts int64, unseen bool) {
	if !n.alive() {
		return
	}
	n.flags |= fExited
	if unseen {
		n.flags |= fExitUnseen
	}
	n.exited = ts
	delete(t.live, n.id.PID) // an alive node is always live[pid]
	n.older = t.latest[n.id.PID]
	t.latest[n.id.PID] = n
	t.hwLatest = max(t.hwLatest, len(t.latest))
	t.exitQ.push(n)
	t.nExit++
	// The kernel re-parents n's live children now; record to whom.
	if n.firstChild != nil {
		if r := t.reaperFor(n); r != nil {
			for c := n.firstChild; c != nil; c = c.nextSib {
				if c.alive() {
					c.reaper = r.id
				}
			}
		}
	}
}

// reaperFor returns the nearest living ancestor of n that is a subreaper,
// else the live pid 1 (nil if the tree has none).
func (t *Tree) reaperFor(n *node) *node {
	for a := n.parent; a != nil; a = a.parent {
		if a.alive() && (a.id.PID == 1 || a.flags&fSubreaper != 0) {
			return a
		}
	}
	return t.live[1]
}

func matchAny(patterns []string, exe string) bool {
	if exe == "" {
		return false
	}
	base := path.Base(exe)
	for _, p := range patterns {
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

// enforceCap removes the oldest exited processes while more than maxExited
// are kept.
func (t *Tree) enforceCap() {
	for t.maxExited > 0 && t.nExit > t.maxExited {
		n := t.popExit()
		if n == nil {
			return
		}
		t.stats.Evicted++
		t.remove(n)
	}
}

// popExit returns the oldest exited node still in the tree.
func (t *Tree) popExit() *node {
	for t.exitQ.len() > 0 {
		if n := t.exitQ.popFront(); n != nil && n.flags&fRemoved == 0 {
			return n
		}
	}
	return nil
}

// remove takes an exited node out of the tree. Its children move to the
// process the kernel re-parented them to (or up to n's parent when that
// is unknown), so no live process loses its place.
func (t *Tree) remove(n *node) {
	if n.flags&fRemoved != 0 {
		return
	}
	n.flags |= fRemoved
	t.nExit--
	for c := n.firstChild; c != nil; {
		next := c.nextSib
		var r *node
		if c.reaper != (ID{}) {
			r = t.byIdentity(c.reaper)
		}
		if r == nil || r == n || t.within(r, c) {
			r = n.parent
		}
		t.unlink(c)
		if r != nil && !t.within(r, c) {
			t.link(c, r)
		}
		c.reaper = ID{}
		t.stats.Reparented++
		c = next
	}
	t.unlink(n)
	t.count--
	if g := n.rd().guid; g != "" && t.byGUID[g] == n {
		delete(t.byGUID, g)
	}
	t.unref(n.exe)
	for _, e := range n.rd().execs {
		t.unref(e.exe)
	}
	// Unchain from the pid's exited history.
	pid := n.id.PID
	if t.latest[pid] == n {
		if n.older != nil {
			t.latest[pid] = n.older
		} else {
			delete(t.latest, pid)
		}
	} else {
		for m := t.latest[pid]; m != nil; m = m.older {
			if m.older == n {
				m.older = n.older
				break
			}
		}
	}
	n.older = nil
	if t.onRemove != nil {
		t.onRemove(n.id)
	}
	// Nothing refers to n any more (children re-linked, history unchained,
	// exit-queue slot cleared by the caller, reapers named by identity):
	// keep it for the next process, so steady churn allocates nothing.
	if len(t.free) < maxFree {
		*n = node{}
		t.free = append(t.free, n)
	}
}

// maxFree bounds the nodes kept for reuse.
const maxFree = 64

// Reap runs one pass of exited-process collection at time now (event time
// or wall time, as the caller drives it). Processes whose retention ended
// are marked on one pass and removed on the next, so that a late event
// arriving between two passes still resolves. It returns how many were
// removed. Call it on an interval; tests drive it with explicit times.
func (t *Tree) Reap(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	cut := now.Add(-t.retention).UnixNano()
	removed := 0
	// Exit order is event order, so the queue is (nearly) sorted by exit
	// time: scan from the head while entries are old enough.
	for i := 0; i < t.exitQ.len(); i++ {
		n := t.exitQ.at(i)
		if n == nil || n.flags&fRemoved != 0 {
			continue
		}
		if n.exited > cut {
			break
		}
		if n.flags&fReapPending == 0 {
			n.flags |= fReapPending
			continue
		}
		t.exitQ.clearAt(i)
		t.remove(n)
		t.stats.Reaped++
		removed++
	}
	// Drop removed entries from the head.
	for t.exitQ.len() > 0 && (t.exitQ.at(0) == nil || t.exitQ.at(0).flags&fRemoved != 0) {
		t.exitQ.popFront()
	}
	t.compact()
	return removed
}

// shrunk reports whether a map of n entries that peaked at hw should be
// rebuilt to give memory back.
func shrunk(n, hw int) bool { return hw > 1024 && n*4 < hw }

// compact rebuilds maps that have shrunk well below their high-water mark.
func (t *Tree) compact() {
	if shrunk(len(t.live), t.hwLive) {
		t.live, t.hwLive = copyMap(t.live), len(t.live)
	}
	if shrunk(len(t.latest), t.hwLatest) {
		t.latest, t.hwLatest = copyMap(t.latest), len(t.latest)
	}
	if shrunk(len(t.intern), t.hwIntern) {
		t.intern, t.hwIntern = copyMap(t.intern), len(t.intern)
	}
	if shrunk(len(t.byGUID), t.hwGUID) {
		t.byGUID, t.hwGUID = copyMap(t.byGUID), len(t.byGUID)
	}
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	n := make(map[K]V, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// Now returns the latest event time the tree has seen.
func (t *Tree) Now() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastTime == 0 {
		return time.Time{}
	}
	return time.Unix(0, t.lastTime).UTC()
}

// Stats returns the tree's counters and sizes.
func (t *Tree) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Live = len(t.live)
	s.Exited = t.nExit
	s.InternedExecutable = len(t.intern)
	return s
}

// label is "name(pid)" for a node.
func (n *node) label() string {
	return n.name() + "(" + strconv.Itoa(n.id.PID) + ")"
}

func (n *node) name() string {
	switch {
	case n.exe != nil:
		return path.Base(n.exe.s)
	case n.rd().comm != "":
		return n.rd().comm
	case len(n.argv) > 0:
		return path.Base(n.argv[0])
	}
	return "?"
}
