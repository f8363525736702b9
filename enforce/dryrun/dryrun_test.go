package dryrun_test

import (
	"net/netip"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/enforce/enforcetest"
)

func TestConformance(t *testing.T) {
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer { return dryrun.New() }, enforcetest.Options{
		Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) { return e.(*dryrun.Enforcer).Dropped(), nil },
	})
}
