package proctree

// MainPolicy chooses how the main process of a process is found.
type MainPolicy uint8

const (
	// MainBelowBoundary is the default (DESIGN.md): walk from the process
	// towards the root and stop before the first boundary process; the
	// last process reached is the main process.
	MainBelowBoundary MainPolicy = iota
	// MainNearestWithTraffic: the nearest ancestor (or the process itself)
	// that has associated addresses, as told by the function given to
	// WithTraffic; falls back to MainBelowBoundary when none has.
	MainNearestWithTraffic
)

// WithMainPolicy selects the main-process policy (default
// MainBelowBoundary). MainNearestWithTraffic needs WithTraffic.
func WithMainPolicy(p MainPolicy) Option { return func(t *Tree) { t.policy = p } }

// WithTraffic tells the tree how to learn whether a process has associated
// addresses, for MainNearestWithTraffic. The function is called with the
// tree's lock held and must not call back into the tree.
func WithTraffic(f func(ID) bool) Option { return func(t *Tree) { t.hasTraffic = f } }

// Main is the answer of a main-process query.
type Main struct {
	// ID is the main process.
	ID ID
	// Depth is how many parent links were walked from the queried process
	// (0: the process is its own main process).
	Depth int
	// Boundary is the boundary process the walk stopped before (zero when
	// the walk reached the top of the known tree instead).
	Boundary ID
	// Incomplete is true when the walk ended at a process whose parent is
	// not known to the tree (a placeholder, or a parentage that was never
	// reported), so the true main process may lie further up.
	Incomplete bool
	// SelfBoundary is true when the queried process is itself a boundary
	// process (pid 1, a kernel thread, or a boundary executable).
	SelfBoundary bool
}

// isBoundary reports whether n ends lineage walks: pid 1, kthreadd (pid 2)
// and its children, and executables matching the boundary patterns.
func (t *Tree) isBoundary(n *node) bool {
	if n.id.PID == 1 || n.id.PID == 2 {
		return true
	}
	if n.parent != nil && n.parent.id.PID == 2 {
		return true
	}
	return n.flags&fBoundary != 0
}

// MainProcess returns the main process of id under the tree's policy. It
// allocates nothing.
func (t *Tree) MainProcess(id ID) (Main, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.lookup(id)
	if n == nil {
		return Main{}, false
	}
	if t.policy == MainNearestWithTraffic && t.hasTraffic != nil {
		depth := 0
		for a := n; a != nil && !t.isBoundary(a); a = a.parent {
			if t.hasTraffic(a.id) {
				return Main{ID: a.id, Depth: depth}, true
			}
			depth++
		}
	}
	return t.mainBelowBoundary(n), true
}

func (t *Tree) mainBelowBoundary(n *node) Main {
	if t.isBoundary(n) {
		return Main{ID: n.id, SelfBoundary: true}
	}
	m := Main{ID: n.id}
	for cur := n; ; {
		p := cur.parent
		if p == nil {
			// The top of the known tree without reaching a boundary: only
			// pid 1 and 2 have no parent, and they are boundaries, so the
			// lineage above cur is missing.
			m.ID = cur.id
			m.Incomplete = true
			return m
		}
		if t.isBoundary(p) {
			m.ID = cur.id
			m.Boundary = p.id
			return m
		}
		cur = p
		m.Depth++
	}
}
