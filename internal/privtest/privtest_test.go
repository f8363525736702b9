package privtest

import (
	"os"
	"strings"
	"testing"
)

func TestNetNSIsolated(t *testing.T) {
	ns := NewNetNS(t)
	if _, err := os.Stat(ns.Path); err != nil {
		t.Fatalf("namespace file: %v", err)
	}
	out := ns.MustRun("ip", "-o", "link", "show")
	// A fresh namespace has loopback and nothing of the host's.
	if !strings.Contains(out, "lo:") || strings.Count(out, "\n") != 1 {
		t.Fatalf("fresh namespace links:\n%s", out)
	}
	var inside string
	if err := ns.Do(func() error {
		b, err := os.Readlink("/proc/thread-self/ns/net")
		inside = b
		return err
	}); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	if inside == host {
		t.Fatalf("Do ran in the host namespace %s", host)
	}
}

func TestStrict(t *testing.T) {
	t.Setenv(EnvPrivileged, "1")
	if !Strict() {
		t.Fatal("Strict() false with PROCWALL_TEST_PRIVILEGED=1")
	}
	t.Setenv(EnvPrivileged, "")
	if Strict() {
		t.Fatal("Strict() true without PROCWALL_TEST_PRIVILEGED")
	}
}
