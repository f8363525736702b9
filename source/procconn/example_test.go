package procconn_test

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procconn"
)

// Following the processes started under one pid, resyncing after a loss.
func ExampleOpen() {
	s, err := procconn.Open(
		procconn.WithEvents(procconn.EventFork|procconn.EventExec|procconn.EventExit),
		procconn.WithDescendantsOf(1234),
	)
	if err != nil {
		fmt.Println(err) // needs CAP_NET_ADMIN on Linux
		return
	}
	defer s.Close() // from another goroutine, Close unblocks Next
	live := map[int]bool{}
	for {
		ev, err := s.Next()
		switch {
		case errors.Is(err, source.ErrLost):
			// The socket overflowed: bring the view back to /proc.
			d, err := s.Resync(func(yield func(source.ProcID) bool) {
				for pid := range live {
					if !yield(source.ProcID{PID: pid}) {
						return
					}
				}
			})
			if err != nil {
				return
			}
			slog.Warn("events lost", "overflows", s.Stats().Overflows, "added", len(d.Added), "vanished", len(d.Vanished))
			for _, ev := range d.Events(time.Now()) {
				apply(live, ev)
			}
			continue
		case err != nil:
			return // closed
		}
		apply(live, ev)
		fmt.Println(ev.Kind, ev.PID, ev.PPID, ev.Exe, ev.Gone)
	}
}

func apply(live map[int]bool, ev source.Event) {
	switch ev.Kind {
	case source.KindFork, source.KindExec:
		live[ev.PID] = true
	case source.KindExit:
		delete(live, ev.PID)
	}
}
