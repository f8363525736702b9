package sockdiag

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/procwall/procwall/internal/flowtest"
	"github.com/procwall/procwall/internal/privtest"
)

// The test binary doubles as the client program that opens the flows under
// test (internal/flowtest).
const envHelper = "PROCWALL_SOCKDIAG_HELPER"

func TestMain(m *testing.M) { flowtest.Main(m, envHelper) }

// helper is a running client process.
type helper = flowtest.Helper

func startHelper(t *testing.T, ns *privtest.NetNS, flows ...string) *helper {
	t.Helper()
	return flowtest.Start(t, ns, envHelper, flows...)
}

var (
	listeners    = flowtest.Listeners
	waitAccepted = flowtest.WaitAccepted
	testNS       = flowtest.NS
)

// ssUsers runs `ss -tunapH` in ns and returns "proto local peer" → pids.
func ssUsers(t *testing.T, ns *privtest.NetNS) map[string][]int {
	t.Helper()
	out := ns.MustRun("ss", "-tunapH")
	m := map[string][]int{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		local, err1 := netip.ParseAddrPort(strings.NewReplacer("[::ffff:", "[").Replace(f[4]))
		peer, err2 := netip.ParseAddrPort(strings.NewReplacer("[::ffff:", "[").Replace(f[5]))
		if err1 != nil || err2 != nil {
			continue
		}
		key := f[0] + " " + unmapAP(local).String() + " " + unmapAP(peer).String()
		for _, u := range strings.Split(f[6], "pid=")[1:] {
			n := 0
			fmt.Sscanf(u, "%d", &n)
			m[key] = append(m[key], n)
		}
	}
	return m
}
