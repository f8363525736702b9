package privtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/procwall/procwall/internal/netns"
)

// NetNS is a named network namespace a test created. It is removed by the
// test's cleanup.
type NetNS struct {
	Name string
	Path string // /run/netns/<Name>
	t    testing.TB
}

// NewNetNS creates a fresh network namespace with a unique name (prefix
// "pwt-"), brings its loopback up and registers its removal with
// t.Cleanup. It requires root and iproute2.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	Require(t, Command("ip"))
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "pwt-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NetNS{Name: name, Path: "/run/netns/" + name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.MustRun("ip", "link", "set", "lo", "up")
	return ns
}

// Command returns a command that runs argv inside the namespace.
func (ns *NetNS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
}

// Run runs argv inside the namespace and returns its combined output.
func (ns *NetNS) Run(argv ...string) (string, error) {
	out, err := ns.Command(context.Background(), argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s (in netns %s): %w: %s", strings.Join(argv, " "), ns.Name, err, out)
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (ns *NetNS) MustRun(argv ...string) string {
	ns.t.Helper()
	out, err := ns.Run(argv...)
	if err != nil {
		ns.t.Fatal(err)
	}
	return out
}

// Open returns a file descriptor of the namespace, for APIs that take one
// (nftables.WithNetNSFd). The caller closes it.
func (ns *NetNS) Open() (*os.File, error) { return os.Open(ns.Path) }

// Do runs fn on an OS thread that has entered the namespace; sockets fn
// opens live in the namespace. The thread returns to its original
// namespace afterwards (or is discarded if it cannot).
func (ns *NetNS) Do(fn func() error) error { return netns.Do(ns.Path, fn) }

// Veth joins two namespaces with a veth pair and numbers each end:
// addrA (a prefix such as "198.51.100.1/24") goes on a's end, addrB on b's.
// Further addresses can be added with AddAddr.
func Veth(t testing.TB, a, b *NetNS, addrA, addrB string) (ifA, ifB string) {
	t.Helper()
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	suf := hex.EncodeToString(rnd[:])
	ifA, ifB = "pwa"+suf, "pwb"+suf
	a.MustRun("ip", "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	a.MustRun("ip", "addr", "add", addrA, "dev", ifA)
	b.MustRun("ip", "addr", "add", addrB, "dev", ifB)
	a.MustRun("ip", "link", "set", ifA, "up")
	b.MustRun("ip", "link", "set", ifB, "up")
	return ifA, ifB
}

// AddAddr adds an address (with prefix length) to a device in the namespace.
// IPv6 addresses are added with nodad so that they are usable at once.
func (ns *NetNS) AddAddr(dev, prefix string) {
	ns.t.Helper()
	args := []string{"ip", "addr", "add", prefix, "dev", dev}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	ns.MustRun(args...)
}
