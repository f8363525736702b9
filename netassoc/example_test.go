package netassoc_test

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/source"
)

func Example() {
	x := netassoc.New(netassoc.WithMaxPerProcess(1024), netassoc.WithMaxTotal(100000))
	shell := source.ProcID{PID: 4100, Start: 9_000_000_000}
	curl := source.ProcID{PID: 4123, Start: 9_500_000_000}
	now := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)

	x.Record(curl, netassoc.Outbound, source.ProtoTCP, netip.MustParseAddrPort("198.51.100.7:443"), now)
	x.Record(curl, netassoc.Outbound, source.ProtoUDP, netip.MustParseAddrPort("192.0.2.53:53"), now)
	x.Record(shell, netassoc.Inbound, source.ProtoTCP, netip.MustParseAddrPort("203.0.113.9:51514"), now)

	fmt.Println("curl:", x.Addrs(curl))
	fmt.Println("subtree:", x.AddrsOf(slices.Values([]source.ProcID{shell, curl})))
	fmt.Println("who used 198.51.100.7:", x.Procs(netip.MustParseAddr("198.51.100.7")))
	for _, a := range x.Inbound(shell) {
		fmt.Println("shell accepted", a.Proto, a.Addr, a.Ports)
	}
	// Output:
	// curl: [192.0.2.53 198.51.100.7]
	// subtree: [192.0.2.53 198.51.100.7]
	// who used 198.51.100.7: [4123@9500000000]
	// shell accepted tcp 203.0.113.9 [51514]
}
