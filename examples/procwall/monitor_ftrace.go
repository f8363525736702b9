package main

import (
	"errors"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/ftrace"
)

func init() {
	monitorSources["ftrace"] = newFtraceMonitor
}

// newFtraceMonitor reports fork, exec, exit and connect events from a
// tracefs instance of its own (kprobes where the kernel has them, else
// tracepoints: TCP connects and UDP route lookups). It removes the instance when it stops. -pid
// filtering is left to monitor.
func newFtraceMonitor(o monitorOptions) (source.Source, error) {
	s, err := ftrace.Open(ftrace.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	o.Logger.Info("ftrace: tracing", "mode", s.Mode().String(), "instance", s.Instance())
	return &ftraceMonitor{Source: s, o: o}, nil
}

// ftraceMonitor logs ring-buffer loss and goes on: monitor prints events,
// it keeps no state to resynchronise.
type ftraceMonitor struct {
	*ftrace.Source
	o monitorOptions
}

func (m *ftraceMonitor) Next() (source.Event, error) {
	for {
		ev, err := m.Source.Next()
		if errors.Is(err, source.ErrLost) {
			m.o.Logger.Warn("ftrace: events lost", "err", err, "lost", m.Source.Lost())
			continue
		}
		return ev, err
	}
}
