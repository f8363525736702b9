package procfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/procwall/procwall/source"
)

var errClosed = fmt.Errorf("procfs: %w", os.ErrClosed)

// SnapshotSource is a [source.Source] over one snapshot of /proc: an exec
// event per process, with its parent (an implicit fork), parents before
// their children, then io.EOF. It seeds a process tree at start-up.
//
// The snapshot is taken at the first call of Next. A process that could not
// be read for another reason than having exited is reported by Next as an
// error (an *OpError); Next may be called again and goes on with the next
// process. Next is called from one goroutine at a time; Close may be called
// from any goroutine.
type SnapshotSource struct {
	fs    FS
	now   func() time.Time
	taken bool
	at    time.Time
	queue []item
	i     int

	closeOnce sync.Once
	closed    chan struct{}
}

type item struct {
	p   Process
	err error
}

// NewSnapshotSource returns a source over a snapshot of fs.
func NewSnapshotSource(fs FS) *SnapshotSource {
	return &SnapshotSource{fs: fs, now: time.Now, closed: make(chan struct{})}
}

// Name implements source.Source.
func (s *SnapshotSource) Name() string { return "procfs" }

// Next implements source.Source.
func (s *SnapshotSource) Next() (source.Event, error) {
	select {
	case <-s.closed:
		return source.Event{}, errClosed
	default:
	}
	if !s.taken {
		s.taken = true
		s.at = s.now()
		var procs []Process
		for p, err := range s.fs.All() {
			if err != nil {
				var op *OpError
				if errors.As(err, &op) && op.Op == "list" {
					return source.Event{}, err
				}
				s.queue = append(s.queue, item{err: err})
				continue
			}
			procs = append(procs, p)
		}
		for _, p := range ParentsFirst(procs) {
			s.queue = append(s.queue, item{p: p})
		}
	}
	if s.i >= len(s.queue) {
		return source.Event{}, io.EOF
	}
	it := s.queue[s.i]
	s.queue[s.i] = item{}
	s.i++
	if it.err != nil {
		return source.Event{}, it.err
	}
	return it.p.Event(s.at), nil
}

// Close implements source.Source.
func (s *SnapshotSource) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// ParentsFirst returns procs ordered so that every process comes after its
// parent when the parent is among them: roots (parents not in the list) by
// ascending pid, each followed depth-first by its descendants, children by
// ascending start time then pid. A cycle in claimed parentage (impossible
// in one consistent /proc, possible across a torn read) is broken: every
// process appears exactly once.
func ParentsFirst(procs []Process) []Process {
	byPID := make(map[int]int, len(procs))
	for i, p := range procs {
		byPID[p.PID] = i
	}
	children := make(map[int][]int, len(procs))
	var roots []int
	for i, p := range procs {
		if j, ok := byPID[p.PPID]; ok && p.PPID != p.PID {
			children[procs[j].PID] = append(children[procs[j].PID], i)
		} else {
			roots = append(roots, i)
		}
	}
	less := func(a, b int) int {
		pa, pb := &procs[a], &procs[b]
		if pa.Start != pb.Start && pa.PPID == pb.PPID {
			if pa.Start < pb.Start {
				return -1
			}
			return 1
		}
		return pa.PID - pb.PID
	}
	slices.SortFunc(roots, func(a, b int) int { return procs[a].PID - procs[b].PID })
	out := make([]Process, 0, len(procs))
	done := make([]bool, len(procs))
	var stack []int
	visit := func(r int) {
		stack = append(stack[:0], r)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if done[i] {
				continue
			}
			done[i] = true
			out = append(out, procs[i])
			kids := children[procs[i].PID]
			slices.SortFunc(kids, less)
			for k := len(kids) - 1; k >= 0; k-- {
				stack = append(stack, kids[k])
			}
		}
	}
	for _, r := range roots {
		visit(r)
	}
	// Whatever is left sits on a parentage cycle: start from its lowest pid.
	for {
		left := -1
		for i := range procs {
			if !done[i] && (left < 0 || procs[i].PID < procs[left].PID) {
				left = i
			}
		}
		if left < 0 {
			break
		}
		visit(left)
	}
	return out
}
