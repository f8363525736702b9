package netns_test

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/procwall/procwall/internal/netns"
	"github.com/procwall/procwall/internal/privtest"
)

func TestDoEntersAndLeaves(t *testing.T) {
	ns := privtest.NewNetNS(t)
	host, _ := os.Readlink("/proc/thread-self/ns/net")
	var inside, child string
	err := netns.Do(ns.Path, func() error {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
		child = string(out)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside == host || child[:len(child)-1] != inside {
		t.Fatalf("host %s, inside %s, child %q", host, inside, child)
	}
	boom := errors.New("boom")
	if err := netns.Do(ns.Path, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn's error lost: %v", err)
	}
	if err := netns.Do("/run/netns/pw-does-not-exist", func() error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing namespace: %v", err)
	}
}
