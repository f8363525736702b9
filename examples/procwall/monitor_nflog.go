package main

import (
	"errors"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/nflog"
)

func init() {
	monitorSources["nflog"] = newNflogMonitor
}

// newNflogMonitor reports new outbound TCP and UDP flows of the current
// network namespace, each attributed to its sending process. It adds the
// table inet procwall_nflog (logging to NFLOG group 3140) for as long as it
// runs and deletes it when it stops. -pid filtering is left to monitor.
func newNflogMonitor(o monitorOptions) (source.Source, error) {
	s, err := nflog.Open(nflog.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	return &lossLogging{Source: s, o: o}, nil
}

// lossLogging logs a loss (a full queue, a netlink overflow) and goes on:
// flows are independent of each other, so there is nothing to resync.
type lossLogging struct {
	*nflog.Source
	o monitorOptions
}

func (l *lossLogging) Next() (source.Event, error) {
	for {
		ev, err := l.Source.Next()
		if errors.Is(err, source.ErrLost) {
			l.o.Logger.Warn("nflog: events lost", "err", err, "stats", l.Source.Stats())
			continue
		}
		return ev, err
	}
}
