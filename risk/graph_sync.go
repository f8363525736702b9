package risk

import (
	"time"

	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
)

// SyncTree makes the graph's processes agree with a snapshot of a process
// tree taken at now (proctree.Tree.Snapshot, after the tree was seeded at
// start-up or resynced after lost events): processes the graph lacks are
// added with the tree's identities, names and lineage, parents the graph
// lacks are linked, and live graph processes the snapshot does not hold,
// or holds as exited, are marked exited. Associations and behaviours are
// kept. It returns how many processes were added.
func (g *Graph) SyncTree(procs []proctree.Process, now time.Time) int {
	ts := now.UnixNano()
	g.advance(ts)
	in := make(map[source.ProcID]*proctree.Process, len(procs))
	added := 0
	for i := range procs {
		p := &procs[i]
		if p.ID.PID <= 0 || p.ID.Start == 0 {
			continue
		}
		in[p.ID] = p
		n := g.procs[p.ID]
		if n == nil {
			forked := p.Forked.UnixNano()
			if p.Forked.IsZero() {
				forked = ts
			}
			if old := g.live[p.ID.PID]; old != nil && p.Alive() {
				old.exited = ts
			}
			n = &pnode{id: p.ID, synth: !p.StartKnown, forked: forked, active: ts}
			g.procs[p.ID] = n
			if p.GUID != "" {
				g.guids[p.GUID] = n
			}
			added++
		}
		if n.name == "" {
			n.name, n.exe = p.Name(), p.Exe
			if n.name == "?" {
				n.name = ""
			}
		}
		if !p.Alive() && n.exited == 0 {
			n.exited = p.Exited.UnixNano()
		}
		if n.exited == 0 {
			g.live[p.ID.PID] = n
		}
		if l := g.latest[p.ID.PID]; l == nil || l.forked <= n.forked {
			g.latest[p.ID.PID] = n
		}
	}
	for id, p := range in {
		n := g.procs[id]
		if n.parent != nil || p.Parent == (source.ProcID{}) {
			continue
		}
		if par := g.procs[p.Parent]; par != nil {
			g.link(n, par)
		}
	}
	for pid, n := range g.live {
		if _, ok := in[n.id]; !ok {
			n.exited = ts
			delete(g.live, pid)
		} else if n.exited != 0 {
			delete(g.live, pid)
		}
	}
	if len(g.procs) > g.cfg.maxProcs {
		g.shedProcs()
	}
	return added
}
