package enforcetest_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/enforce/enforcetest"
)

// A Recorder keeps a readable log of what was asked of an enforcer, for
// golden files (see Golden). Conformance is checked from a test with
// enforcetest.Run(t, newEnforcer).
func ExampleRecorder() {
	r := enforcetest.NewRecorder(dryrun.New())
	ctx := context.Background()
	_ = r.Block(ctx, enforce.Block{ID: "r1", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2")}})
	_ = r.Block(ctx, enforce.Block{ID: "r2", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	_ = r.Release(ctx, "r1")
	fmt.Print(r.Log())
	// Output:
	// block "r1" [198.51.100.2] -> ok
	// block "r2" [127.0.0.1] -> ErrProtected
	// release "r1" -> ok
}
