package nflog

import (
	"testing"

	"github.com/procwall/procwall/internal/flowtest"
	"github.com/procwall/procwall/internal/privtest"
)

// The test binary doubles as the client program that opens the flows under
// test (internal/flowtest).
const envHelper = "PROCWALL_NFLOG_HELPER"

func TestMain(m *testing.M) { flowtest.Main(m, envHelper) }

// helper is a running client process.
type helper = flowtest.Helper

func startHelper(t *testing.T, ns *privtest.NetNS, flows ...string) *helper {
	t.Helper()
	return flowtest.Start(t, ns, envHelper, flows...)
}

var (
	listeners = flowtest.Listeners
	testNS    = flowtest.NS
)
