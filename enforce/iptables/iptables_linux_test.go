//go:build linux

package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/enforcetest"
	"github.com/procwall/procwall/enforce/internal/topo"
	"github.com/procwall/procwall/internal/leakcheck"
	"github.com/procwall/procwall/internal/privtest"
)

func requireIPT(t *testing.T) {
	t.Helper()
	privtest.Require(t, privtest.Command("iptables"), privtest.Command("iptables-restore"), privtest.Command("ip6tables-restore"))
}

func newInNS(t *testing.T, opts ...Option) (*Enforcer, *privtest.NetNS) {
	t.Helper()
	requireIPT(t)
	ns := privtest.NewNetNS(t)
	e, err := New(append([]Option{WithNetNS(ns.Path)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, ns
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

var outRule = regexp.MustCompile(`^-A ` + ChainOut + ` -d (\S+)/(32|128) -j ` + ChainDrop + `$`)

// kernelAddrs reads the addresses dropped in ns from iptables-save and
// ip6tables-save, checking that the input chain agrees with the output
// chain.
func kernelAddrs(ns *privtest.NetNS) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		s, err := ns.Run(cmd, "-t", "filter")
		if err != nil {
			return nil, err
		}
		in := 0
		for _, line := range strings.Split(s, "\n") {
			if m := outRule.FindStringSubmatch(line); m != nil {
				out = append(out, netip.MustParseAddr(m[1]))
			}
			if strings.HasPrefix(line, "-A "+ChainIn+" -s ") {
				in++
			}
		}
		if n := strings.Count(s, "-A OUTPUT -j "+ChainOut+"\n"); n != 1 {
			return nil, fmt.Errorf("%s: %d jumps from OUTPUT, want 1", cmd, n)
		}
		_ = in
	}
	return out, nil
}

func TestConformance(t *testing.T) {
	requireIPT(t)
	nss := map[enforce.Enforcer]*privtest.NetNS{}
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer {
		e, ns := newInNS(t, WithStateFile(filepath.Join(t.TempDir(), "state.json")))
		nss[e] = ns
		return e
	}, enforcetest.Options{Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) { return kernelAddrs(nss[e]) }})
}

func TestTraffic(t *testing.T) {
	requireIPT(t)
	tp := topo.New(t)
	e, err := New(WithNetNS(tp.Client.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	tp.Expect(t)
	if err := e.Block(ctx, enforce.Block{ID: "x", Addrs: []netip.Addr{topo.V4a, topo.V6a}}); err != nil {
		t.Fatal(err)
	}
	tp.Expect(t, topo.V4a, topo.V6a)
	cs, err := e.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dropped uint64
	for _, c := range cs {
		if c.Chain == ChainOut && (c.Addr == topo.V4a || c.Addr == topo.V6a) {
			dropped += c.Packets
		}
	}
	if dropped == 0 {
		t.Errorf("drop counters are zero after blocked requests: %+v", cs)
	}
	if err := e.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	tp.Expect(t)
	err = e.Block(ctx, enforce.Block{ID: "lo", Addrs: addrs("127.0.0.1")})
	if !errors.Is(err, enforce.ErrProtected) {
		t.Fatalf("blocking loopback: err = %v, want ErrProtected", err)
	}
}

// save returns iptables-save of the filter table without comments and
// counters.
func save(t *testing.T, ns *privtest.NetNS, cmd string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(ns.MustRun(cmd, "-t", "filter"), "\n") {
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		keep = append(keep, regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(l, "[0:0]"))
	}
	// Rules in procwall's chains are appended as blocks come, so their
	// order depends on history; every one drops, so order is not
	// compared.
	slices.Sort(keep)
	return strings.Join(keep, "\n")
}

func TestRenderLoads(t *testing.T) {
	e, nsA := newInNS(t, WithNFLOG(3), WithForward())
	ctx := context.Background()
	for _, b := range []enforce.Block{
		{ID: "a", Addrs: addrs("198.51.100.2", "2001:db8::2", "203.0.113.9")},
		{ID: "b", Addrs: addrs("198.51.100.2", "192.0.2.1")},
	} {
		if err := e.Block(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	nsB := privtest.NewNetNS(t)
	dir := t.TempDir()
	for i, fam := range []struct{ restore, save string }{{"iptables-restore", "iptables-save"}, {"ip6tables-restore", "ip6tables-save"}} {
		var buf bytes.Buffer
		if err := e.Render(&buf, i == 1); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fam.restore)
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		for range 2 { // loading twice changes nothing
			nsB.MustRun(fam.restore, "--noflush", p)
		}
		ipt := strings.TrimSuffix(fam.restore, "-restore")
		for _, h := range [][2]string{{"FORWARD", ChainFwd}, {"OUTPUT", ChainOut}, {"INPUT", ChainIn}} {
			nsB.MustRun(ipt, "-I", h[0], "1", "-j", h[1])
		}
		if got, want := save(t, nsA, fam.save), save(t, nsB, fam.save); got != want {
			t.Fatalf("%s: back-end ruleset differs from the rendered file loaded:\nback-end:\n%s\nrendered:\n%s", fam.save, got, want)
		}
	}
}

func TestRenderGolden(t *testing.T) {
	cfg := enforce.NewConfig()
	if _, err := cfg.Add(enforce.Block{ID: "a", Addrs: addrs("198.51.100.2", "2001:db8::2", "192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, v6 := range []bool{false, true} {
		if err := Render(&sb, cfg, v6, WithNFLOG(5)); err != nil {
			t.Fatal(err)
		}
	}
	enforcetest.Golden(t, "render.rules", sb.String())
}

const envChild = "PROCWALL_IPT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(child())
	}
	os.Exit(leakcheck.Main(m))
}

func child() int {
	e, err := New(WithNetNS(os.Getenv("NETNS_PATH")), WithStateFile(os.Getenv("STATE")))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return enforcetest.RestartWorkload(e)
}

func TestRestartAfterKill(t *testing.T) {
	requireIPT(t)
	ns := privtest.NewNetNS(t)
	state := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", "NETNS_PATH="+ns.Path, "STATE="+state)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Kill() // SIGKILL, by pid
	_ = cmd.Wait()
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q", line)
	}
	// A stale rule and a duplicated jump appear meanwhile.
	ns.MustRun("iptables", "-A", ChainOut, "-d", "203.0.113.7/32", "-j", ChainDrop)
	ns.MustRun("iptables", "-A", "OUTPUT", "-j", ChainOut)
	for range 2 { // start twice: nothing duplicated
		e, err := New(WithNetNS(ns.Path), WithStateFile(state))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := e.Blocks(context.Background())
		e.Close()
		if err != nil || len(bs) != 1 || bs[0].ID != "keep" {
			t.Fatalf("blocks after kill -9 and restart = %v, %v; want [keep]", bs, err)
		}
		got, err := kernelAddrs(ns)
		if err != nil {
			t.Fatal(err)
		}
		if want := addrs("198.51.100.2", "2001:db8::2"); !slices.Equal(got, want) {
			t.Fatalf("kernel rules after restart = %v, want each of %v once", got, want)
		}
	}
}

// TestBulkRelease releases more addresses than bulkDelete (the chains are
// refilled) while another block keeps some of them.
func TestBulkRelease(t *testing.T) {
	e, ns := newInNS(t)
	ctx := context.Background()
	var as []netip.Addr
	for i := range 600 {
		as = append(as, netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}))
	}
	if err := e.Block(ctx, enforce.Block{ID: "big", Addrs: as}); err != nil {
		t.Fatal(err)
	}
	if err := e.Block(ctx, enforce.Block{ID: "small", Addrs: as[:3]}); err != nil {
		t.Fatal(err)
	}
	if got, err := kernelAddrs(ns); err != nil || len(got) != 600 {
		t.Fatalf("kernel drops %d addresses (%v), want 600", len(got), err)
	}
	if err := e.Release(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	got, err := kernelAddrs(ns)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, as[:3]) {
		t.Fatalf("after the bulk release the kernel drops %v, want %v", got, as[:3])
	}
}
