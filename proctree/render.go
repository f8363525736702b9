package proctree

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// RenderOptions control Render and RenderJSON.
type RenderOptions struct {
	// Root limits the output to one process's subtree; zero renders every
	// root of the tree.
	Root ID
	// Addrs, when set, returns a process's associated addresses, shown next
	// to it.
	Addrs func(ID) []string
	// HideExited leaves exited processes out (their live descendants are
	// still shown, under the exited ancestor's line).
	HideExited bool
	// Mark, when set, returns a short tag to print after a process (for
	// instance "RISK" or "MAIN"), or "".
	Mark func(ID) string
}

// Render writes the tree as text in the style of `pstree -p`: one process a
// line, "name(pid)", children indented under their parent, exited processes
// tagged, and associated addresses when opts.Addrs is set.
func (t *Tree) Render(w io.Writer, opts RenderOptions) error {
	t.mu.Lock()
	roots := t.roots(opts.Root)
	var b strings.Builder
	for _, r := range roots {
		t.renderNode(&b, r, "", "", opts)
	}
	t.mu.Unlock()
	_, err := io.WriteString(w, b.String())
	return err
}

// roots returns the nodes to render from: root's node, or every node
// without a parent, sorted. The caller holds the lock.
func (t *Tree) roots(root ID) []*node {
	var roots []*node
	if root != (ID{}) {
		if n := t.lookup(root); n != nil {
			roots = []*node{n}
		}
	} else {
		t.each(func(n *node) {
			if n.parent == nil {
				roots = append(roots, n)
			}
		})
	}
	sortNodes(roots)
	return roots
}

func sortNodes(ns []*node) {
	slices.SortFunc(ns, func(a, b *node) int { return compareID(a.id, b.id) })
}

func (t *Tree) renderNode(b *strings.Builder, n *node, first, rest string, opts RenderOptions) {
	b.WriteString(first)
	b.WriteString(n.label())
	if !n.alive() {
		fmt.Fprintf(b, " [exited %s", time.Unix(0, n.exited).UTC().Format("15:04:05"))
		if n.flags&fHasCode != 0 {
			fmt.Fprintf(b, " code %d", n.code)
		}
		if n.signal != 0 {
			fmt.Fprintf(b, " signal %d", n.signal)
		}
		b.WriteString("]")
	}
	if opts.Mark != nil {
		if m := opts.Mark(n.id); m != "" {
			b.WriteString(" <" + m + ">")
		}
	}
	if opts.Addrs != nil {
		if as := opts.Addrs(n.id); len(as) > 0 {
			b.WriteString("  ")
			b.WriteString(strings.Join(as, ", "))
		}
	}
	b.WriteByte('\n')
	cs := sortedChildren(n)
	if opts.HideExited {
		kept := cs[:0]
		for _, c := range cs {
			if c.alive() || c.firstChild != nil {
				kept = append(kept, c)
			}
		}
		cs = kept
	}
	for i, c := range cs {
		if i == len(cs)-1 {
			t.renderNode(b, c, rest+"└─ ", rest+"   ", opts)
		} else {
			t.renderNode(b, c, rest+"├─ ", rest+"│  ", opts)
		}
	}
}

// JSONProcess is one process in RenderJSON's output: the Process fields,
// its associated addresses, and its children nested.
type JSONProcess struct {
	Process
	Addrs    []string      `json:"addrs,omitempty"`
	Children []JSONProcess `json:"children,omitempty"`
}

// RenderJSON writes the tree (or opts.Root's subtree) as JSON: one object
// per root, one per line, children nested.
func (t *Tree) RenderJSON(w io.Writer, opts RenderOptions) error {
	t.mu.Lock()
	roots := t.roots(opts.Root)
	var docs []JSONProcess
	var build func(n *node) JSONProcess
	build = func(n *node) JSONProcess {
		jp := JSONProcess{Process: n.snapshot()}
		if opts.Addrs != nil {
			jp.Addrs = opts.Addrs(n.id)
		}
		for _, c := range sortedChildren(n) {
			if opts.HideExited && !c.alive() && c.firstChild == nil {
				continue
			}
			jp.Children = append(jp.Children, build(c))
		}
		return jp
	}
	for _, r := range roots {
		docs = append(docs, build(r))
	}
	t.mu.Unlock()
	enc := json.NewEncoder(w)
	for i := range docs {
		if err := enc.Encode(&docs[i]); err != nil {
			return err
		}
	}
	return nil
}
