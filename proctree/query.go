package proctree

import (
	"errors"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// Process is a copy of what the tree knows about one process. It does not
// change when the tree does.
type Process struct {
	ID     ID     `json:"id"`
	GUID   string `json:"guid,omitempty"`
	Parent ID     `json:"parent"` // zero when the parent is unknown
	// ClaimedPPID is the parent pid an event named that could not be linked
	// (a refused cycle); 0 otherwise.
	ClaimedPPID int `json:"claimed_ppid,omitempty"`
	// StartKnown is false when no source reported the start time; ID.Start
	// was then synthesised by the tree (from event time) to keep identity
	// unique.
	StartKnown bool `json:"start_known"`
	// Placeholder is true for a process known only because another event
	// named it (as a parent, or by its traffic) before its fork or exec.
	Placeholder bool     `json:"placeholder,omitempty"`
	Exe         string   `json:"exe,omitempty"`
	Argv        []string `json:"argv,omitempty"`
	Comm        string   `json:"comm,omitempty"`
	Cwd         string   `json:"cwd,omitempty"`
	UID         int      `json:"uid"`
	HasUID      bool     `json:"-"`
	// Execs are the images the process ran before its current one, oldest
	// first.
	Execs   []Exec    `json:"execs,omitempty"`
	Forked  time.Time `json:"forked"`
	Exited  time.Time `json:"exited,omitzero"` // zero while alive
	Code    int       `json:"code,omitempty"`
	HasCode bool      `json:"-"`
	Signal  int       `json:"signal,omitempty"`
	// ExitUnseen is true when the exit was inferred (the pid was reused)
	// rather than observed.
	ExitUnseen bool `json:"exit_unseen,omitempty"`
	// Reaper is the process the kernel re-parented this one to after its
	// parent exited (zero if none).
	Reaper ID `json:"reaper,omitzero"`
}

// Exec is one image a process ran.
type Exec struct {
	Time time.Time `json:"time"`
	Exe  string    `json:"exe"`
	Argv []string  `json:"argv,omitempty"`
}

// Alive reports whether the process has not exited.
func (p *Process) Alive() bool { return p.Exited.IsZero() }

// Name is the executable's base name, or the task name, or "?".
func (p *Process) Name() string {
	n := node{argv: p.Argv, d: &detail{comm: p.Comm}}
	if p.Exe != "" {
		n.exe = &internRef{s: p.Exe}
	}
	return n.name()
}

// Label is "name(pid)".
func (p *Process) Label() string {
	return p.Name() + "(" + strconv.Itoa(p.ID.PID) + ")"
}

// KnownStart returns the start time when a source reported it, else 0.
func (p *Process) KnownStart() uint64 {
	if p.StartKnown {
		return p.ID.Start
	}
	return 0
}

func (n *node) snapshot() Process {
	p := Process{
		ID:          n.id,
		GUID:        n.rd().guid,
		StartKnown:  n.flags&fSynthStart == 0,
		Placeholder: n.flags&fPlaceholder != 0,
		Exe:         n.exe.path(),
		Argv:        slices.Clone(n.argv),
		Comm:        n.rd().comm,
		Cwd:         n.rd().cwd,
		UID:         int(n.uid),
		HasUID:      n.flags&fHasUID != 0,
		Forked:      time.Unix(0, n.forked).UTC(),
		Code:        int(n.code),
		HasCode:     n.flags&fHasCode != 0,
		Signal:      int(n.signal),
		ExitUnseen:  n.flags&fExitUnseen != 0,
		ClaimedPPID: int(n.claimedPPID),
	}
	if !p.HasUID {
		p.UID = -1
	}
	if n.parent != nil {
		p.Parent = n.parent.id
	}
	if n.exited != 0 {
		p.Exited = time.Unix(0, n.exited).UTC()
	}
	p.Reaper = n.reaper
	for _, e := range n.rd().execs {
		p.Execs = append(p.Execs, Exec{Time: time.Unix(0, e.t).UTC(), Exe: e.exe.path(), Argv: slices.Clone(e.argv)})
	}
	return p
}

// ErrNotFound is returned for a process the tree does not hold.
var ErrNotFound = errors.New("process not in the tree")

// lookup finds a node: by exact identity when Start is set, else the live
// process with that pid, else the most recent exited one.
func (t *Tree) lookup(id ID) *node {
	if id.Start != 0 {
		return t.byIdentity(id)
	}
	if n := t.live[id.PID]; n != nil {
		return n
	}
	return t.latest[id.PID]
}

// rlookup takes the lock and finds id's node (nil if unknown); the
// caller defers the returned unlock.
func (t *Tree) rlookup(id ID) (*node, func()) {
	t.mu.Lock()
	return t.lookup(id), t.mu.Unlock
}

// Get returns the process with identity id. With id.Start == 0 it is the
// live process with that pid, or the most recent exited one.
func (t *Tree) Get(id ID) (Process, bool) {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return Process{}, false
	}
	return n.snapshot(), true
}

// GetPID is Get(ID{PID: pid}).
func (t *Tree) GetPID(pid int) (Process, bool) { return t.Get(ID{PID: pid}) }

// GetGUID returns the process a source identified by GUID.
func (t *Tree) GetGUID(guid string) (Process, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.byGUID[guid]
	if n == nil {
		return Process{}, false
	}
	return n.snapshot(), true
}

// Resolve returns the full identity of the process id names (see Get).
func (t *Tree) Resolve(id ID) (ID, bool) {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return ID{}, false
	}
	return n.id, true
}

// Parent returns the process's lineage parent.
func (t *Tree) Parent(id ID) (Process, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.lookup(id)
	if n == nil || n.parent == nil {
		return Process{}, false
	}
	return n.parent.snapshot(), true
}

// Ancestors returns the process's ancestors, nearest first. The slice is a
// consistent copy.
func (t *Tree) Ancestors(id ID) []Process {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return nil
	}
	var out []Process
	for a := n.parent; a != nil; a = a.parent {
		out = append(out, a.snapshot())
	}
	return out
}

// Children returns the process's direct children (alive and exited still
// retained), in pid order.
func (t *Tree) Children(id ID) []Process {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return nil
	}
	var out []Process
	for c := n.firstChild; c != nil; c = c.nextSib {
		out = append(out, c.snapshot())
	}
	sortProcs(out)
	return out
}

// Descendants yields the process's descendants depth-first, each parent
// before its children. The sequence is taken from a consistent snapshot made
// when iteration starts.
func (t *Tree) Descendants(id ID) iter.Seq[Process] {
	return func(yield func(Process) bool) {
		sub := t.Subtree(id)
		if len(sub) == 0 {
			return
		}
		for _, p := range sub[1:] {
			if !yield(p) {
				return
			}
		}
	}
}

// Subtree returns the process followed by its descendants (depth-first,
// children in pid order), as one consistent copy; nil if id is unknown.
func (t *Tree) Subtree(id ID) []Process {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return nil
	}
	var out []Process
	var walk func(n *node)
	walk = func(n *node) {
		out = append(out, n.snapshot())
		for _, c := range sortedChildren(n) {
			walk(c)
		}
	}
	walk(n)
	return out
}

// SubtreeIDs returns the identities of the process and its descendants.
func (t *Tree) SubtreeIDs(id ID) []ID {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return nil
	}
	out := []ID{n.id}
	nodes := []*node{n}
	for i := 0; i < len(out); i++ {
		for c := nodes[i].firstChild; c != nil; c = c.nextSib {
			out = append(out, c.id)
			nodes = append(nodes, c)
		}
	}
	return out
}

func sortedChildren(n *node) []*node {
	var cs []*node
	for c := n.firstChild; c != nil; c = c.nextSib {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *node) int { return compareID(a.id, b.id) })
	return cs
}

func compareID(a, b ID) int {
	if a.PID != b.PID {
		return a.PID - b.PID
	}
	switch {
	case a.Start < b.Start:
		return -1
	case a.Start > b.Start:
		return 1
	}
	return 0
}

func sortProcs(ps []Process) {
	slices.SortFunc(ps, func(a, b Process) int { return compareID(a.ID, b.ID) })
}

// Lineage returns the chain from the root-most known ancestor down to the
// process, as "systemd(1) > nginx(100) > sh(231)".
func (t *Tree) Lineage(id ID) string {
	n, unlock := t.rlookup(id)
	defer unlock()
	if n == nil {
		return ""
	}
	var parts []string
	for a := n; a != nil; a = a.parent {
		parts = append(parts, a.label())
	}
	slices.Reverse(parts)
	return strings.Join(parts, " > ")
}

// All yields every process in the tree (alive and retained exited ones),
// ordered by identity. The sequence comes from a consistent snapshot made
// when iteration starts, so concurrent updates never tear it.
func (t *Tree) All() iter.Seq[Process] {
	return func(yield func(Process) bool) {
		for _, p := range t.Snapshot() {
			if !yield(p) {
				return
			}
		}
	}
}

// Snapshot returns a consistent copy of every process, ordered by identity.
func (t *Tree) Snapshot() []Process {
	t.mu.Lock()
	out := make([]Process, 0, t.count)
	t.each(func(n *node) { out = append(out, n.snapshot()) })
	t.mu.Unlock()
	sortProcs(out)
	return out
}

// Len returns the number of processes held (alive and exited).
func (t *Tree) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// ResolveEvent returns the full identity of the process an event names: by
// GUID when it carries one, else as Resolve.
func (t *Tree) ResolveEvent(ev *source.Event) (ID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.GUID != "" {
		if n := t.byGUID[ev.GUID]; n != nil {
			return n.id, true
		}
	}
	n := t.lookup(ev.ID())
	if n == nil {
		return ID{}, false
	}
	return n.id, true
}

// Retention returns how long exited processes stay resolvable.
func (t *Tree) Retention() time.Duration { return t.retention }
