package rules

import (
	"os"
	"testing"

	"github.com/procwall/procwall/internal/leakcheck"
)

// TestMain fails the package's tests if they leak goroutines or file
// descriptors.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
