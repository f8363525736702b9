package nft_test

import (
	"context"
	"log"
	"net/netip"
	"os"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/nft"
)

// An agent opens the back-end once; New reconciles the kernel with the
// state file, so blocks survive restarts.
func ExampleNew() {
	e, err := nft.New(
		nft.WithStateFile("/var/lib/procwall/enforce-nft.json"),
		nft.WithProtected(enforce.NewProtected(
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
			netip.MustParsePrefix("192.0.2.10/32"), // the rule server
		)),
		nft.WithNFLOG(5),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	err = e.Block(context.Background(), enforce.Block{
		ID:     "r1",
		Addrs:  []netip.Addr{netip.MustParseAddr("203.0.113.7")},
		Reason: "risk process 4242 connected to it",
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Render writes the configuration as a script for `nft -f`.
func ExampleRender() {
	cfg := enforce.NewConfig()
	_, _ = cfg.Add(enforce.Block{ID: "r1", Addrs: []netip.Addr{
		netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7"),
	}})
	if err := nft.Render(os.Stdout, cfg); err != nil {
		log.Fatal(err)
	}
	// Output:
	// # procwall interception configuration: 1 blocks, 2 addresses
	// table inet procwall
	// delete table inet procwall
	// table inet procwall {
	// 	set blocked4 {
	// 		type ipv4_addr
	// 		elements = {
	// 			203.0.113.7
	// 		}
	// 	}
	// 	set blocked6 {
	// 		type ipv6_addr
	// 		elements = {
	// 			2001:db8::7
	// 		}
	// 	}
	// 	chain input {
	// 		type filter hook input priority -10; policy accept;
	// 		ip saddr @blocked4 counter drop
	// 		ip6 saddr @blocked6 counter drop
	// 	}
	// 	chain output {
	// 		type filter hook output priority -10; policy accept;
	// 		ip daddr @blocked4 counter drop
	// 		ip6 daddr @blocked6 counter drop
	// 	}
	// }
}
