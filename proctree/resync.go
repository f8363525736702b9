package proctree

import (
	"slices"
	"time"
)

// Observed is a process seen in a snapshot of the system (from /proc): what
// Seed and Resync converge the tree to.
type Observed struct {
	PID   int
	PPID  int
	Start uint64 // 0 if unknown
	Exe   string
	Argv  []string
	Comm  string
	Cwd   string
	UID   int
	// HasUID says UID is known.
	HasUID bool
}

// Diff reports what a Resync changed.
type Diff struct {
	// Added are processes the snapshot had and the tree did not.
	Added []ID
	// Exited are processes the tree held as alive that the snapshot did
	// not have: they are marked exited (exit not observed) at the resync
	// time.
	Exited []ID
	// Linked are processes whose missing parent the snapshot supplied.
	Linked []ID
}

// Empty reports whether the resync changed nothing.
func (d *Diff) Empty() bool { return len(d.Added)+len(d.Exited)+len(d.Linked) == 0 }

// Seed fills the tree from a snapshot taken at now; it is Resync on a tree
// that may be empty.
func (t *Tree) Seed(now time.Time, procs []Observed) Diff { return t.Resync(now, procs) }

// Resync makes the tree's live processes converge to a snapshot taken at
// now (after lost events, or at start-up): live processes missing from the
// snapshot are marked exited, processes missing from the tree are added
// under their parents, and processes the tree has under another start time
// are treated as pid reuse. Lineage the tree already knows is kept, since
// the snapshot only shows the kernel's current parent (orphans appear under
// their reaper).
func (t *Tree) Resync(now time.Time, procs []Observed) Diff {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := now.UnixNano()
	if ts > t.lastTime {
		t.lastTime = ts
	}
	var d Diff
	seen := make(map[int]*Observed, len(procs))
	for i := range procs {
		if procs[i].PID > 0 {
			seen[procs[i].PID] = &procs[i]
		}
	}
	// Live processes that are gone, or whose pid now belongs to another
	// process.
	var gone []*node
	for pid, n := range t.live {
		o, ok := seen[pid]
		if !ok || (o.Start != 0 && n.flags&fSynthStart == 0 && o.Start != n.id.Start) {
			gone = append(gone, n)
		}
	}
	slices.SortFunc(gone, func(a, b *node) int { return compareID(a.id, b.id) })
	for _, n := range gone {
		t.markExited(n, ts, true)
		d.Exited = append(d.Exited, n.id)
	}
	// Processes to add: create them all, then link parents, so the order
	// of the snapshot does not matter.
	added := make(map[*node]bool)
	for i := range procs {
		o := &procs[i]
		if o.PID <= 0 {
			continue
		}
		if n := t.live[o.PID]; n != nil {
			if n.flags&fSynthStart != 0 && o.Start != 0 && t.byIdentity(ID{PID: o.PID, Start: o.Start}) == nil {
				// Learn the real start time.
				n.id.Start = o.Start
				n.flags &^= fSynthStart
			}
			if n.flags&fPlaceholder != 0 {
				t.fill(n, o)
				n.flags &^= fPlaceholder
			}
			continue
		}
		if o.Start != 0 && t.byIdentity(ID{PID: o.PID, Start: o.Start}) != nil {
			// The snapshot shows a process the tree saw exit: the snapshot
			// raced with the exit. Keep the observed exit.
			continue
		}
		n := t.newNode(o.PID, o.Start, "", ts)
		t.fill(n, o)
		added[n] = true
		d.Added = append(d.Added, n.id)
	}
	for i := range procs {
		o := &procs[i]
		n := t.live[o.PID]
		if n == nil || n.parent != nil || o.PPID <= 0 {
			continue
		}
		p := t.live[o.PPID]
		if p == nil || p == n {
			continue
		}
		cyc := false
		for a := p; a != nil; a = a.parent {
			if a == n {
				cyc = true
				break
			}
		}
		if cyc {
			t.stats.CyclesRefused++
			continue
		}
		t.link(n, p)
		if !added[n] {
			d.Linked = append(d.Linked, n.id)
		}
	}
	t.enforceCap()
	return d
}

func (t *Tree) fill(n *node, o *Observed) {
	if o.Exe != "" {
		t.setExe(n, o.Exe)
	}
	if o.Argv != nil {
		n.argv = o.Argv
	}
	if o.Comm != "" {
		n.det().comm = o.Comm
	}
	if o.Cwd != "" {
		n.det().cwd = o.Cwd
	}
	if o.HasUID {
		n.uid, n.flags = int32(o.UID), n.flags|fHasUID
	}
}
