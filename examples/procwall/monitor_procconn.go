package main

import (
	"errors"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procconn"
)

func init() {
	monitorSources["procconn"] = newProcconnMonitor
}

// newProcconnMonitor opens the proc connector for `procwall monitor`. With
// -pid, the source follows that process and its descendants itself.
func newProcconnMonitor(o monitorOptions) (source.Source, error) {
	var opts []procconn.Option
	if o.PID > 0 {
		opts = append(opts, procconn.WithDescendantsOf(o.PID))
	}
	s, err := procconn.Open(opts...)
	if err != nil {
		return nil, err
	}
	return &resyncing{src: s, o: o, live: map[int]uint64{}}, nil
}

// resyncing wraps the proc connector so that a loss does not end the
// monitor: it is logged, the live processes are resynced from /proc and
// the difference is emitted as events (exits of processes that vanished,
// execs naming their parent for processes that appeared), so the output
// stays a faithful, replayable trace.
type resyncing struct {
	src     *procconn.Source
	o       monitorOptions
	live    map[int]uint64 // pid → start, as the emitted events say
	pending []source.Event
}

func (r *resyncing) Name() string { return r.src.Name() }

func (r *resyncing) Close() error { return r.src.Close() }

func (r *resyncing) Next() (source.Event, error) {
	for {
		if len(r.pending) > 0 {
			ev := r.pending[0]
			r.pending = r.pending[1:]
			r.track(&ev)
			return ev, nil
		}
		ev, err := r.src.Next()
		if errors.Is(err, source.ErrLost) {
			r.resync(err)
			continue
		}
		if errors.Is(err, procconn.ErrMalformed) {
			// One undecodable message: say so and go on.
			r.o.Logger.Warn("procconn: skipped a message", "err", err, "malformed", r.src.Stats().Malformed)
			continue
		}
		if err != nil {
			return ev, err
		}
		r.track(&ev)
		return ev, nil
	}
}

func (r *resyncing) track(ev *source.Event) {
	switch ev.Kind {
	case source.KindFork, source.KindExec:
		if ev.Start != 0 || r.live[ev.PID] == 0 {
			r.live[ev.PID] = ev.Start
		}
	case source.KindExit:
		delete(r.live, ev.PID)
	}
}

func (r *resyncing) resync(cause error) {
	d, err := r.src.Resync(func(yield func(source.ProcID) bool) {
		for pid, start := range r.live {
			if !yield(source.ProcID{PID: pid, Start: start}) {
				return
			}
		}
	})
	st := r.src.Stats()
	if err != nil {
		r.o.Logger.Warn("procconn: events lost, resync failed", "cause", cause, "err", err, "overflows", st.Overflows)
		return
	}
	r.o.Logger.Warn("procconn: events lost, resynced from /proc", "cause", cause, "overflows", st.Overflows,
		"added", len(d.Added), "vanished", len(d.Vanished))
	r.pending = append(r.pending, d.Events(time.Now())...)
}
