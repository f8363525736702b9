package procconn

import (
	"iter"
	"slices"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procfs"
)

// Diff is what a resync found: the processes a consumer missed while
// events were lost.
type Diff struct {
	// Added are live in /proc but were not known: their fork (and exec)
	// was lost. Parents come before their children.
	Added []procfs.Process
	// Vanished were known live but are not in /proc (or are zombies): their
	// exit was lost, or their pid now names another process (then the new
	// process is in Added).
	Vanished []source.ProcID
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool { return len(d.Added) == 0 && len(d.Vanished) == 0 }

// Resync compares the live processes a consumer knew (from the events it
// saw) with a /proc snapshot taken after the loss, and reports what
// changed. A known identity with Start 0 matches the live process with the
// same pid; with Start set, it matches only a process with that start time
// (a reused pid is a vanished process plus an added one). Zombies in the
// snapshot count as exited.
func Resync(known iter.Seq[source.ProcID], snapshot []procfs.Process) Diff {
	live := make(map[int]*procfs.Process, len(snapshot))
	for i := range snapshot {
		if !snapshot[i].Zombie() {
			live[snapshot[i].PID] = &snapshot[i]
		}
	}
	var d Diff
	matched := make(map[int]bool)
	for id := range known {
		p, ok := live[id.PID]
		if ok && (id.Start == 0 || p.Start == 0 || id.Start == p.Start) {
			matched[id.PID] = true
			continue
		}
		d.Vanished = append(d.Vanished, id)
	}
	var added []procfs.Process
	for pid, p := range live {
		if !matched[pid] {
			added = append(added, *p)
		}
	}
	slices.SortFunc(added, func(a, b procfs.Process) int { return a.PID - b.PID })
	d.Added = procfs.ParentsFirst(added)
	slices.SortFunc(d.Vanished, func(a, b source.ProcID) int { return a.PID - b.PID })
	return d
}

// Events returns the diff as events at time t that bring a consumer's view
// up to date: an exit (with no code: it is not known) for each vanished
// process, then an exec naming its parent (an implicit fork) for each added
// one, parents first. Their Origin is "resync".
func (d *Diff) Events(t time.Time) []source.Event {
	out := make([]source.Event, 0, len(d.Vanished)+len(d.Added))
	for _, id := range d.Vanished {
		out = append(out, source.Event{Time: t, Kind: source.KindExit, PID: id.PID, Start: id.Start, Origin: "resync"})
	}
	for i := range d.Added {
		ev := d.Added[i].Event(t)
		ev.Origin = "resync"
		out = append(out, ev)
	}
	return out
}
