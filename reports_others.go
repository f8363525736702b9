//go:build !linux

package procwall

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// errReportsNotSupported: the report socket checks peers with SO_PEERCRED,
// which only Linux has.
var errReportsNotSupported = errors.New("report socket: not supported on " + runtime.GOOS)

func listenPrivate(path string) (*net.UnixListener, error) {
	return nil, fmt.Errorf("procwall: %w", errReportsNotSupported)
}

func peerCred(c *net.UnixConn) (Cred, error) { return Cred{}, errReportsNotSupported }

func peerGroups(pid int) ([]int, error) { return nil, errReportsNotSupported }
