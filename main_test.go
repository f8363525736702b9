package procwall_test

import (
	"os"
	"testing"

	"github.com/procwall/procwall/internal/leakcheck"
)

// TestMain fails the package's tests if they leak goroutines or file
// descriptors: every Protector, source and report socket a test starts
// must be gone when it ends.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
