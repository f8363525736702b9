//go:build linux

package nft

import (
	"context"
	"net/netip"
	"testing"
	"time"

	nflog "github.com/florianl/go-nflog/v2"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/internal/topo"
	"github.com/procwall/procwall/internal/privtest"
)

// TestNFLOG: with WithNFLOG, a dropped packet reaches the NFLOG group,
// read here with go-nflog, with procwall's prefix and the blocked
// destination.
func TestNFLOG(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	tp := topo.New(t)
	f, err := tp.Client.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const group = 41
	e, err := New(WithNetNSFd(int(f.Fd())), WithNFLOG(group))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	nl, err := nflog.Open(&nflog.Config{Group: group, Copymode: nflog.CopyPacket, NetNS: int(f.Fd())})
	if err != nil {
		t.Fatalf("nflog: %v", err)
	}
	defer nl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan nflog.Attribute, 16)
	err = nl.RegisterWithErrorFunc(ctx, func(a nflog.Attribute) int {
		select {
		case got <- a:
		default:
		}
		return 0
	}, func(error) int { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Block(ctx, enforce.Block{ID: "x", Addrs: []netip.Addr{topo.V4a}}); err != nil {
		t.Fatal(err)
	}
	if tp.Reach("udp", topo.V4a) == nil {
		t.Fatal("blocked request got through")
	}
	for {
		select {
		case a := <-got:
			if a.Prefix == nil || *a.Prefix != "procwall drop " || a.Payload == nil || len(*a.Payload) < 20 {
				continue
			}
			p := *a.Payload
			if dst := netip.AddrFrom4([4]byte(p[16:20])); dst != topo.V4a {
				t.Fatalf("logged packet to %s, want %s", dst, topo.V4a)
			}
			return
		case <-ctx.Done():
			t.Fatal("no NFLOG message with procwall's prefix for the dropped packet")
		}
	}
}
