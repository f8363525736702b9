package provenance

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

const none = int32(-1)

// proc is one process of the full tree. Children and activities are kept
// as intrusive linked lists so that a million processes cost no per-node
// slices.
type proc struct {
	pid, ppid   int
	start       uint64
	guid        string
	exe         string
	argv        []string
	cwd         string
	execs       []image // earlier images when the process exec'ed more than once
	time, exit  int64   // unix ns; 0 unknown
	parent      int32
	firstChild  int32
	lastChild   int32
	nextSibling int32
	firstAct    int32
	lastAct     int32
	placeholder bool
	exited      bool
}

type image struct {
	exe  string
	argv []string
}

// activity is one non-lifecycle event of a process.
type activity struct {
	kind    source.Kind
	op      string // file op
	name    string // file path or DNS query
	addr    netip.AddrPort
	answers []netip.Addr
	next    int32
}

// Alert is a risk report found in the events (a risk event).
type Alert struct {
	ID     string // the process's alert ID (see Tree.Resolve)
	Level  source.Level
	Reason string
	Time   time.Time
	node   int32
}

// Tree is the full provenance tree built from events: every process with
// its parent, images and activity (connections, files, DNS). Processes are
// keyed by GUID when the source has one, else by (pid, start); with no
// start time a pid names its most recent process, and a fork of a pid whose
// process has exited (or forked before) starts a new one, so reused pids
// are told apart.
//
// A Tree is not safe for concurrent use.
type Tree struct {
	chunks [][]proc // processes in fixed-size chunks: no copying as the tree grows
	n      int32
	acts   []activity
	byGUID map[string]int32
	byID   map[source.ProcID]int32 // start != 0
	byPID  map[int]int32           // most recent process with the pid
	alerts []Alert
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{
		byGUID: make(map[string]int32),
		byID:   make(map[source.ProcID]int32),
		byPID:  make(map[int]int32),
	}
}

// Len returns the number of processes in the tree.
func (t *Tree) Len() int { return int(t.n) }

const chunkBits = 14

func (t *Tree) proc(i int32) *proc { return &t.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// Alerts returns the risk events seen, in order.
func (t *Tree) Alerts() []Alert { return t.alerts }

// ReadFrom adds every event of src until io.EOF and returns how many it
// added. It stops at the first error from src or from Add.
func (t *Tree) ReadFrom(src source.Source) (int, error) {
	n := 0
	for {
		e, err := src.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, &OpError{Op: "read " + src.Name(), Err: err}
		}
		if err := t.Add(e); err != nil {
			return n, err
		}
		n++
	}
}

// AddAll adds every event of seq, stopping at the first error.
func (t *Tree) AddAll(seq iter.Seq[source.Event]) error {
	for e := range seq {
		if err := t.Add(e); err != nil {
			return err
		}
	}
	return nil
}

func where(e *source.Event) string {
	if e.Origin != "" {
		return " (" + e.Origin + ")"
	}
	return ""
}

// Add records one event. Fork and exec create or update processes (an exec
// of an unknown pid with a parent is an implicit fork; a parent never seen
// becomes a placeholder named by ParentExe/ParentArgv); exit marks the end;
// connect, send, accept, file and DNS events are kept as the process's
// activity; risk events are kept as alerts. Other kinds are ignored. An
// event failing source.Event.Validate is an error wrapping ErrBadEvent.
func (t *Tree) Add(e source.Event) error {
	if err := e.Validate(); err != nil {
		return &OpError{Op: "add", Err: fmt.Errorf("%w: %v%s", ErrBadEvent, err, where(&e))}
	}
	ts := e.Time.UnixNano()
	switch e.Kind {
	case source.KindFork:
		t.fork(&e, ts)
	case source.KindExec:
		i := t.execTarget(&e, ts)
		p := t.proc(i)
		if p.exe != "" || p.argv != nil {
			p.execs = append(p.execs, image{p.exe, p.argv})
		}
		p.exe, p.argv = e.Exe, e.Argv
		if e.Cwd != "" {
			p.cwd = e.Cwd
		}
		if p.time == 0 {
			p.time = ts
		}
		p.placeholder = false
	case source.KindExit:
		i := t.lookupOrPlaceholder(e.GUID, e.PID, e.Start, ts)
		t.proc(i).exited = true
		t.proc(i).exit = ts
	case source.KindConnect, source.KindSend, source.KindAccept:
		i := t.lookupOrPlaceholder(e.GUID, e.PID, e.Start, ts)
		t.addAct(i, activity{kind: e.Kind, addr: e.Dst})
	case source.KindFile:
		i := t.lookupOrPlaceholder(e.GUID, e.PID, e.Start, ts)
		t.addAct(i, activity{kind: e.Kind, op: e.Op, name: e.Path})
	case source.KindDNS:
		i := t.lookupOrPlaceholder(e.GUID, e.PID, e.Start, ts)
		t.addAct(i, activity{kind: e.Kind, name: e.Query, answers: e.Answers})
	case source.KindRisk:
		i := t.lookupOrPlaceholder(e.GUID, e.PID, e.Start, ts)
		t.alerts = append(t.alerts, Alert{ID: t.info(i).ID(), Level: e.Level, Reason: e.Reason, Time: e.Time, node: i})
	}
	return nil
}

func (t *Tree) addAct(i int32, a activity) {
	a.next = none
	n := int32(len(t.acts))
	t.acts = append(t.acts, a)
	p := t.proc(i)
	if p.lastAct == none {
		p.firstAct = n
	} else {
		t.acts[p.lastAct].next = n
	}
	p.lastAct = n
}

// lookup finds the process an event names.
func (t *Tree) lookup(guid string, pid int, start uint64) (int32, bool) {
	if guid != "" {
		i, ok := t.byGUID[guid]
		return i, ok
	}
	if start != 0 {
		i, ok := t.byID[source.ProcID{PID: pid, Start: start}]
		return i, ok
	}
	i, ok := t.byPID[pid]
	return i, ok
}

func (t *Tree) newProc(guid string, pid int, start uint64, ts int64) int32 {
	i := t.n
	if i&(1<<chunkBits-1) == 0 {
		t.chunks = append(t.chunks, make([]proc, 1<<chunkBits))
	}
	t.n++
	*t.proc(i) = proc{
		pid: pid, start: start, guid: guid, time: ts,
		parent: none, firstChild: none, lastChild: none, nextSibling: none,
		firstAct: none, lastAct: none,
	}
	if guid != "" {
		t.byGUID[guid] = i
	}
	if start != 0 {
		t.byID[source.ProcID{PID: pid, Start: start}] = i
	}
	if pid > 0 {
		t.byPID[pid] = i
	}
	return i
}

func (t *Tree) lookupOrPlaceholder(guid string, pid int, start uint64, ts int64) int32 {
	if i, ok := t.lookup(guid, pid, start); ok {
		return i
	}
	i := t.newProc(guid, pid, start, ts)
	t.proc(i).placeholder = true
	return i
}

// link makes p a child of parent (p must have no parent yet).
func (t *Tree) link(parent, p int32) {
	c := t.proc(p)
	// Only a process that already has children (a placeholder named as a
	// parent before it was seen) can close a cycle.
	if parent == p || c.firstChild != none && t.isAncestor(p, parent) {
		return // a cycle: inconsistent input, leave p a root
	}
	c.parent = parent
	c.ppid = t.proc(parent).pid
	pp := t.proc(parent)
	if pp.lastChild == none {
		pp.firstChild = p
	} else {
		t.proc(pp.lastChild).nextSibling = p
	}
	pp.lastChild = p
}

// isAncestor reports whether a is an ancestor of (or equal to) d.
func (t *Tree) isAncestor(a, d int32) bool {
	for n := 0; d != none && n < 1<<16; n++ {
		if d == a {
			return true
		}
		d = t.proc(d).parent
	}
	return false
}

// parentOf finds or creates the parent an event names.
func (t *Tree) parentOf(e *source.Event, ts int64) int32 {
	if e.ParentGUID == "" && e.PPID <= 0 {
		return none
	}
	if i, ok := t.lookup(e.ParentGUID, e.PPID, e.PStart); ok {
		p := t.proc(i)
		if p.placeholder && p.exe == "" && p.argv == nil && (e.ParentExe != "" || e.ParentArgv != nil) {
			p.exe, p.argv = e.ParentExe, e.ParentArgv
		}
		return i
	}
	i := t.newProc(e.ParentGUID, e.PPID, e.PStart, 0)
	p := t.proc(i)
	p.placeholder = true
	p.exe, p.argv = e.ParentExe, e.ParentArgv
	return i
}

func (t *Tree) fork(e *source.Event, ts int64) {
	if i, ok := t.lookup(e.GUID, e.PID, e.Start); ok {
		p := t.proc(i)
		// The same process seen again (a duplicate record, or a
		// placeholder made by earlier activity): adopt it. A pid without
		// identity that already started is a reused pid: a new process.
		sameIdentity := e.GUID != "" || e.Start != 0
		if sameIdentity || (p.placeholder && p.parent == none) {
			p.placeholder = false
			if p.time == 0 {
				p.time = ts
			}
			if p.parent == none {
				if par := t.parentOf(e, ts); par != none {
					t.link(par, i)
				}
			}
			return
		}
	}
	i := t.newProc(e.GUID, e.PID, e.Start, ts)
	if par := t.parentOf(e, ts); par != none {
		t.link(par, i)
	}
}

// execTarget finds the process an exec event replaces the image of,
// creating it (an implicit fork) when the event names a new process.
func (t *Tree) execTarget(e *source.Event, ts int64) int32 {
	i, ok := t.lookup(e.GUID, e.PID, e.Start)
	if ok {
		p := t.proc(i)
		reused := e.GUID == "" && e.Start == 0 && p.exited
		if !reused {
			if p.parent == none {
				if par := t.parentOf(e, ts); par != none {
					t.link(par, i)
				}
			}
			return i
		}
	}
	i = t.newProc(e.GUID, e.PID, e.Start, ts)
	if par := t.parentOf(e, ts); par != none {
		t.link(par, i)
	}
	return i
}

func (t *Tree) info(i int32) ProcessInfo {
	p := t.proc(i)
	pi := ProcessInfo{
		PID: p.pid, Start: p.start, GUID: p.guid, Exe: p.exe, Argv: p.argv, Cwd: p.cwd,
		PPID: p.ppid, Placeholder: p.placeholder,
	}
	if p.time != 0 {
		pi.Time = time.Unix(0, p.time).UTC()
	}
	if p.exited && p.exit != 0 {
		pi.Exited = time.Unix(0, p.exit).UTC()
	}
	return pi
}

// Resolve finds the process an alert ID names: a GUID (seed 002's nodeid,
// Sysmon's ProcessGuid), "pid@start", or a pid (its most recent process).
// A GUID match wins over a pid of the same spelling.
func (t *Tree) Resolve(id string) (ProcessInfo, error) {
	i, err := t.resolve(id)
	if err != nil {
		return ProcessInfo{}, err
	}
	return t.info(i), nil
}

func (t *Tree) resolve(id string) (int32, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return none, &OpError{Op: "resolve", Err: fmt.Errorf("%w: empty alert id", ErrNotFound)}
	}
	if i, ok := t.byGUID[id]; ok {
		return i, nil
	}
	if p, s, ok := strings.Cut(id, "@"); ok {
		pid, err1 := strconv.Atoi(p)
		start, err2 := strconv.ParseUint(s, 10, 64)
		if err1 == nil && err2 == nil {
			if i, ok := t.byID[source.ProcID{PID: pid, Start: start}]; ok {
				return i, nil
			}
		}
	} else if pid, err := strconv.Atoi(id); err == nil {
		if i, ok := t.byPID[pid]; ok {
			return i, nil
		}
	}
	return none, &OpError{Op: "resolve", Err: fmt.Errorf("%w: no process %q (want a node id/GUID, a pid or pid@start)", ErrNotFound, id)}
}

// Processes iterates over every process of the tree in the order they
// were first seen.
func (t *Tree) Processes() iter.Seq[ProcessInfo] {
	return func(yield func(ProcessInfo) bool) {
		for i := range t.n {
			if !yield(t.info(int32(i))) {
				return
			}
		}
	}
}

// Process is a process as another process store sees it: the seam through
// which a live tree (package proctree) is copied into a Tree with
// AddProcess. Parent names the parent by the same kind of identity.
type Process struct {
	ProcessInfo
	ParentGUID  string
	ParentStart uint64
}

// AddProcess adds (or updates) a process known from another store rather
// than from events: the adapter seam for the live process tree. Add the
// parents before their children; the process's activity is then added as
// events (connect, file, dns) with Add.
func (t *Tree) AddProcess(p Process) error {
	if p.PID <= 0 && p.GUID == "" {
		return &OpError{Op: "add process", Err: fmt.Errorf("%w: process with neither pid nor guid", ErrBadEvent)}
	}
	e := source.Event{
		Kind: source.KindExec, PID: p.PID, Start: p.Start, GUID: p.GUID,
		PPID: p.PPID, PStart: p.ParentStart, ParentGUID: p.ParentGUID,
		Exe: p.Exe, Argv: p.Argv, Cwd: p.Cwd,
	}
	ts := p.Time.UnixNano()
	if p.Time.IsZero() {
		ts = 0
	}
	i := t.execTarget(&e, ts)
	q := t.proc(i)
	q.exe, q.argv, q.placeholder = p.Exe, p.Argv, p.Placeholder
	if p.Cwd != "" {
		q.cwd = p.Cwd
	}
	if !p.Exited.IsZero() {
		q.exited, q.exit = true, p.Exited.UnixNano()
	}
	return nil
}
