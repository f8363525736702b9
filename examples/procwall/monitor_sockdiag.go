package main

import (
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/sockdiag"
)

// sockdiagInterval is how often `procwall monitor -source sockdiag` dumps
// the sockets of the current network namespace.
const sockdiagInterval = time.Second

func init() {
	monitorSources["sockdiag"] = newSockdiagMonitor
}

// newSockdiagMonitor reports the associations of the sockets that exist
// now (connect, send, accept, per holding process) and then, every second,
// those of sockets that appeared since. -pid filtering is left to monitor.
func newSockdiagMonitor(o monitorOptions) (source.Source, error) {
	return sockdiag.NewSource(sockdiagInterval, sockdiag.WithLogger(o.Logger))
}
