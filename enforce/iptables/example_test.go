package iptables_test

import (
	"log"
	"net/netip"
	"os"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/iptables"
)

// New with WithNetNS works inside a named network namespace.
func ExampleNew() {
	e, err := iptables.New(
		iptables.WithStateFile("/var/lib/procwall/enforce-iptables.json"),
		iptables.WithNetNS("/run/netns/agent"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
}

// Render writes one family's rules for `iptables-restore --noflush`.
func ExampleRender() {
	cfg := enforce.NewConfig()
	_, _ = cfg.Add(enforce.Block{ID: "r1", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.7")}})
	if err := iptables.Render(os.Stdout, cfg, false); err != nil {
		log.Fatal(err)
	}
	// Output:
	// # procwall interception configuration (IPv4): 1 addresses
	// *filter
	// :PROCWALL-IN - [0:0]
	// :PROCWALL-OUT - [0:0]
	// :PROCWALL-DROP - [0:0]
	// -A PROCWALL-DROP -j DROP
	// -A PROCWALL-IN -s 203.0.113.7/32 -j PROCWALL-DROP
	// -A PROCWALL-OUT -d 203.0.113.7/32 -j PROCWALL-DROP
	// COMMIT
}
