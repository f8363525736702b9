package enforcetest

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/procwall/procwall/enforce"
)

// RestartWorkload is the child side of a kill-and-restart test of a
// persistent enforcer: it takes block "keep" (198.51.100.2, 2001:db8::2),
// takes and releases block "gone" (198.51.100.2, 198.51.100.3), prints
// "ready" on standard output and waits to be killed. The parent kills it
// with SIGKILL, opens the enforcer again on the same state, and expects
// exactly block "keep". It returns the child's exit code (1 after printing
// "error: ..." on failure).
func RestartWorkload(e enforce.Enforcer) int {
	ctx := context.Background()
	for _, b := range []enforce.Block{
		{ID: "keep", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::2")}},
		{ID: "gone", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")}},
	} {
		if err := e.Block(ctx, b); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	if err := e.Release(ctx, "gone"); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed before
	return 0
}
