package provenance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/procwall/procwall/source"
)

// Options configure Simplify. The zero value applies DefaultRules, the
// default extractor, merges identical sibling processes and includes the
// ancestors' activity.
type Options struct {
	// Rules are the drop rules of step 2. Nil means DefaultRules(); an
	// empty, non-nil slice drops nothing.
	Rules []Rule
	// Extractor finds resources in command lines (step 3).
	Extractor Extractor
	// KeepDuplicates keeps identical sibling processes (same image,
	// arguments and kept parent) as separate nodes instead of merging
	// them into one node with a Count.
	KeepDuplicates bool
	// SkipAncestorActivity leaves out the connections, files and DNS
	// lookups of the alert's ancestors (a server's own traffic), keeping
	// only what their command lines name.
	SkipAncestorActivity bool
}

type resKey struct {
	t    NodeType
	name string
}

type edgeKey struct {
	from, to int32
	kind     EdgeKind
}

type builder struct {
	t        *Tree
	opts     Options
	rules    []compiledRule
	g        *Graph
	res      map[resKey]int32
	edges    map[edgeKey]int32
	siblings map[string]int32
	cache    map[string][]Finding
	procNode map[int32]int32 // tree process -> graph node (kept processes and merged ones)
}

// Simplify builds the simplified provenance graph around the process the
// alert ID names (see Resolve), in seed 002's steps:
//
//  1. keep the alert's ancestors and descendants, nothing else;
//  2. drop processes matched by the rules, re-linking their children to
//     the nearest kept ancestor (and hoisting their resources, unless the
//     rule says discard);
//  3. find resources in every command line (see Extractor) and in the
//     processes' file, DNS and connection events;
//  4. merge resources of the same type and name into one node each (and
//     identical sibling processes), with edges saying what happened.
//
// The cost is linear in the number of ancestors and descendants, not in
// the size of the tree.
func (t *Tree) Simplify(alertID string, opts Options) (*Graph, error) {
	a, err := t.resolve(alertID)
	if err != nil {
		return nil, err
	}
	return t.simplify(a, opts)
}

func (t *Tree) simplify(a int32, opts Options) (*Graph, error) {
	rules := opts.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	cr, err := compileRules(rules)
	if err != nil {
		return nil, err
	}
	b := &builder{
		t: t, opts: opts, rules: cr,
		g:        &Graph{Version: 1, Rules: rules},
		res:      make(map[resKey]int32),
		edges:    make(map[edgeKey]int32),
		siblings: make(map[string]int32),
		cache:    make(map[string][]Finding),
		procNode: make(map[int32]int32),
	}
	b.g.Stats.TreeProcesses = t.Len()
	b.g.Process = t.info(a)
	b.g.AlertID = b.g.Process.ID()

	// Step 1, ancestors: top-down.
	var anc []int32
	for p := t.proc(a).parent; p != none && len(anc) <= t.Len(); p = t.proc(p).parent {
		anc = append(anc, p)
	}
	slices.Reverse(anc)
	b.g.Stats.Ancestors = len(anc)
	above := none // graph node of the nearest kept process above
	var pending []int32
	for k, p := range anc {
		depth := k - len(anc)
		if b.dropped(p) {
			b.g.Stats.Dropped++
			if above == none {
				pending = append(pending, p)
			} else {
				b.resources(p, above, RoleAncestor, true)
			}
			continue
		}
		n := b.procNodeFor(p, RoleAncestor, depth, none, false)
		if above != none {
			b.edge(above, n, EdgeSpawned, 0)
		}
		for _, q := range pending {
			b.resources(q, n, RoleAncestor, true)
		}
		pending = nil
		b.resources(p, n, RoleAncestor, false)
		above = n
	}
	an := b.procNodeFor(a, RoleAlert, 0, none, false)
	b.g.Alert = b.g.Nodes[an].ID
	if above != none {
		b.edge(above, an, EdgeSpawned, 0)
	}
	for _, q := range pending {
		b.resources(q, an, RoleAncestor, true)
	}
	b.resources(a, an, RoleAlert, false)

	// Step 1, descendants: depth-first, each with the graph node of its
	// nearest kept ancestor.
	type item struct {
		p, owner int32
		depth    int
	}
	stack := []item{}
	pushChildren := func(p, owner int32, depth int) {
		start := len(stack)
		for c := t.proc(p).firstChild; c != none; c = t.proc(c).nextSibling {
			stack = append(stack, item{c, owner, depth})
		}
		slices.Reverse(stack[start:]) // visit children in order
	}
	pushChildren(a, an, 1)
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		b.g.Stats.Descendants++
		if b.g.Stats.Descendants > t.Len() {
			return nil, &OpError{Op: "simplify", Err: fmt.Errorf("%w: the tree has a cycle below %s", ErrBadGraph, b.g.AlertID)}
		}
		if b.dropped(it.p) {
			b.g.Stats.Dropped++
			b.resources(it.p, it.owner, RoleDescendant, true)
			pushChildren(it.p, it.owner, it.depth+1)
			continue
		}
		n := b.procNodeFor(it.p, RoleDescendant, it.depth, it.owner, !opts.KeepDuplicates)
		b.edge(it.owner, n, EdgeSpawned, 0)
		b.resources(it.p, n, RoleDescendant, false)
		pushChildren(it.p, n, it.depth+1)
	}
	b.g.Stats.Edges = len(b.g.Edges)
	for _, n := range b.g.Nodes {
		if n.Type == TypeProcess {
			b.g.Stats.ProcessNodes++
		} else {
			b.g.Stats.ResourceNodes++
		}
	}
	b.g.procNode = b.procNode
	return b.g, nil
}

func (b *builder) dropped(p int32) bool {
	pr := b.t.proc(p)
	for i := range b.rules {
		if b.rules[i].match(pr.exe, pr.argv) {
			return true
		}
	}
	return false
}

func (b *builder) discarded(p int32) bool {
	pr := b.t.proc(p)
	for i := range b.rules {
		if b.rules[i].match(pr.exe, pr.argv) {
			return b.rules[i].discard
		}
	}
	return false
}

func (b *builder) newNode(n Node) int32 {
	i := int32(len(b.g.Nodes))
	n.ID = "n" + strconv.Itoa(int(i))
	b.g.Nodes = append(b.g.Nodes, n)
	return i
}

// procNodeFor returns the graph node of a kept process, merging it into an
// identical sibling's node when merge is set.
func (b *builder) procNodeFor(p int32, role Role, depth int, owner int32, merge bool) int32 {
	info := b.t.info(p)
	if info.Exe == "" && len(info.Argv) == 0 {
		merge = false // unknown processes are not identical to anything
	}
	var key string
	if merge {
		var sb strings.Builder
		sb.WriteString(strconv.Itoa(int(owner)))
		sb.WriteByte(0)
		sb.WriteString(info.Exe)
		for _, a := range info.Argv {
			sb.WriteByte(0)
			sb.WriteString(a)
		}
		key = sb.String()
		if n, ok := b.siblings[key]; ok {
			node := &b.g.Nodes[n]
			node.Count++
			if len(node.Processes) < MaxProcessesPerNode {
				node.Processes = append(node.Processes, info)
			}
			b.g.Stats.Merged++
			b.procNode[p] = n
			return n
		}
	}
	n := b.newNode(Node{Type: TypeProcess, Name: info.Name(), Role: role, Depth: depth, Count: 1, Processes: []ProcessInfo{info}})
	if merge {
		b.siblings[key] = n
	}
	b.procNode[p] = n
	return n
}

func (b *builder) resNode(t NodeType, name string) int32 {
	k := resKey{t, name}
	if n, ok := b.res[k]; ok {
		return n
	}
	n := b.newNode(Node{Type: t, Name: name})
	b.res[k] = n
	return n
}

func (b *builder) edge(from, to int32, kind EdgeKind, port int) {
	k := edgeKey{from, to, kind}
	i, ok := b.edges[k]
	if !ok {
		i = int32(len(b.g.Edges))
		b.edges[k] = i
		b.g.Edges = append(b.g.Edges, Edge{From: b.g.Nodes[from].ID, To: b.g.Nodes[to].ID, Kind: kind})
	}
	e := &b.g.Edges[i]
	e.Count++
	if port != 0 && len(e.Ports) < 32 {
		if j, found := slices.BinarySearch(e.Ports, port); !found {
			e.Ports = slices.Insert(e.Ports, j, port)
		}
	}
}

// findings returns what a process's command lines and events name.
func (b *builder) findings(p int32, role Role) []Finding {
	pr := b.t.proc(p)
	var out []Finding
	imgs := append(slices.Clip(pr.execs), image{pr.exe, pr.argv})
	for _, im := range imgs {
		if im.exe == "" && len(im.argv) == 0 {
			continue
		}
		var sb strings.Builder
		sb.WriteString(pr.cwd)
		sb.WriteByte(0)
		sb.WriteString(im.exe)
		for _, a := range im.argv {
			sb.WriteByte(0)
			sb.WriteString(a)
		}
		key := sb.String()
		f, ok := b.cache[key]
		if !ok {
			var err error
			f, err = b.opts.Extractor.ExtractArgv(im.exe, im.argv, pr.cwd)
			if err != nil {
				b.g.Stats.UnparsedCommand++
			}
			b.cache[key] = f
		}
		out = append(out, f...)
	}
	if role == RoleAncestor && b.opts.SkipAncestorActivity {
		return out
	}
	for i := pr.firstAct; i != none; i = b.t.acts[i].next {
		out = append(out, activityFindings(&b.t.acts[i])...)
	}
	return out
}

// activityFindings turns one recorded event into findings. DNS answers
// are returned as EdgeResolvesTo findings whose Name is "domain\x00addr".
func activityFindings(a *activity) []Finding {
	switch a.kind {
	case source.KindConnect, source.KindSend:
		if !a.addr.Addr().IsValid() {
			return nil
		}
		return []Finding{{Edge: EdgeConnected, Type: TypeAddress, Name: a.addr.Addr().Unmap().String(), Port: int(a.addr.Port())}}
	case source.KindAccept:
		if !a.addr.Addr().IsValid() {
			return nil
		}
		return []Finding{{Edge: EdgeAccepted, Type: TypeAddress, Name: a.addr.Addr().Unmap().String()}}
	case source.KindFile:
		e := EdgeWrote
		switch strings.ToLower(a.op) {
		case "delete", "unlink", "remove":
			e = EdgeDeleted
		case "read", "open":
			e = EdgeRead
		}
		return []Finding{{Edge: e, Type: TypeFile, Name: a.name}}
	case source.KindDNS:
		q := strings.ToLower(strings.TrimSuffix(a.name, "."))
		out := []Finding{{Edge: EdgeResolved, Type: TypeDomain, Name: q}}
		for _, ans := range a.answers {
			out = append(out, Finding{Edge: EdgeResolvesTo, Type: TypeAddress, Name: q + "\x00" + ans.Unmap().String()})
		}
		return out
	}
	return nil
}

// resources attaches a process's findings to graph node owner: its own
// node, or for a dropped process the node its resources are hoisted to.
func (b *builder) resources(p, owner int32, role Role, dropped bool) {
	if dropped && b.discarded(p) {
		return
	}
	for _, f := range b.findings(p, role) {
		b.g.Stats.ResourceFinds++
		b.attach(owner, f)
	}
}

func (b *builder) attach(owner int32, f Finding) {
	switch f.Edge {
	case EdgeResolvesTo:
		dom, addr, _ := strings.Cut(f.Name, "\x00")
		d := b.resNode(TypeDomain, dom)
		b.edge(d, b.resNode(TypeAddress, addr), EdgeResolvesTo, 0)
		return
	}
	n := b.resNode(f.Type, f.Name)
	b.edge(owner, n, f.Edge, f.Port)
	if f.Type == TypeURL {
		if _, host, port, ok := parseURL(f.Name); ok {
			s := &scan{}
			s.host(EdgeHost, host, port)
			for _, h := range s.out {
				b.edge(n, b.resNode(h.Type, h.Name), EdgeHost, h.Port)
			}
		}
	}
}

// String summarises the graph for logs.
func (g *Graph) String() string {
	return fmt.Sprintf("provenance graph of %s: %d nodes (%d processes), %d edges; tree %d processes, %d ancestors, %d descendants, %d dropped",
		g.AlertID, len(g.Nodes), g.Stats.ProcessNodes, len(g.Edges), g.Stats.TreeProcesses, g.Stats.Ancestors, g.Stats.Descendants, g.Stats.Dropped)
}
