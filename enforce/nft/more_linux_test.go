//go:build linux

package nft

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/enforcetest"
	"github.com/procwall/procwall/enforce/internal/topo"
	"github.com/procwall/procwall/internal/leakcheck"
	"github.com/procwall/procwall/internal/privtest"
)

// kernelSet reads the addresses of one of procwall's sets in ns with the
// nft command.
func kernelSet(ns *privtest.NetNS, set string) ([]netip.Addr, error) {
	out, err := ns.Run("nft", "-j", "list", "set", "inet", DefaultTable, set)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, err
	}
	var as []netip.Addr
	for _, x := range doc.Nftables {
		if x.Set == nil {
			continue
		}
		for _, raw := range x.Set.Elem {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				// An element with a timeout is an object.
				var o struct {
					Elem struct {
						Val string `json:"val"`
					} `json:"elem"`
				}
				if err := json.Unmarshal(raw, &o); err != nil || o.Elem.Val == "" {
					return nil, fmt.Errorf("element %s: %v", raw, err)
				}
				s = o.Elem.Val
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			as = append(as, a)
		}
	}
	return as, nil
}

func kernelAddrs(ns *privtest.NetNS) ([]netip.Addr, error) {
	a4, err := kernelSet(ns, Set4)
	if err != nil {
		return nil, err
	}
	a6, err := kernelSet(ns, Set6)
	return append(a4, a6...), err
}

func TestConformance(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	nss := map[enforce.Enforcer]*privtest.NetNS{}
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer {
		e, ns := newInNS(t, WithStateFile(filepath.Join(t.TempDir(), "state.json")))
		nss[e] = ns
		return e
	}, enforcetest.Options{Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) { return kernelAddrs(nss[e]) }})
}

func TestTraffic(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	tp := topo.New(t)
	f, err := tp.Client.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := New(WithNetNSFd(int(f.Fd())))
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
		if c.Chain == "output" && c.Field == "daddr" {
			dropped += c.Packets
		}
	}
	if dropped == 0 {
		t.Errorf("output drop counters are zero after blocked requests: %+v", cs)
	}
	if err := e.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	tp.Expect(t)
	// Loopback is protected by default.
	err = e.Block(ctx, enforce.Block{ID: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if !errors.Is(err, enforce.ErrProtected) {
		t.Fatalf("blocking loopback: err = %v, want ErrProtected", err)
	}
}

func TestRenderGolden(t *testing.T) {
	cfg := enforce.NewConfig()
	for _, b := range []enforce.Block{
		{ID: "a", Addrs: addrs("198.51.100.2", "2001:db8::2", "203.0.113.9")},
		{ID: "b", Addrs: addrs("198.51.100.2", "192.0.2.1")},
	} {
		if _, err := cfg.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	var sb strings.Builder
	if err := Render(&sb, cfg, WithForward(), WithNFLOG(5)); err != nil {
		t.Fatal(err)
	}
	enforcetest.Golden(t, "render.nft", sb.String())
}

// The restart test re-executes the test binary as a child that holds an
// enforcer; the parent kills it with SIGKILL and starts again.
const envChild = "PROCWALL_NFT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(child())
	}
	os.Exit(leakcheck.Main(m))
}

func child() int {
	f, err := os.Open(os.Getenv("NETNS_PATH"))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	e, err := New(WithNetNSFd(int(f.Fd())), WithStateFile(os.Getenv("STATE")))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return enforcetest.RestartWorkload(e)
}

func TestRestartAfterKill(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	ns := privtest.NewNetNS(t)
	state := filepath.Join(t.TempDir(), "state.json")
	for round := range 2 {
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
		// Kill -9 the child, by its pid.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if strings.TrimSpace(line) != "ready" && round == 0 {
			t.Fatalf("child: %q", line)
		}
		if round == 1 && !strings.Contains(line, "exists") {
			// The second child finds "keep" restored and cannot add it again.
			t.Fatalf("second child: %q, want an ErrExists failure", line)
		}
	}
	f, _ := ns.Open()
	defer f.Close()
	e, err := New(WithNetNSFd(int(f.Fd())), WithStateFile(state))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	bs, err := e.Blocks(context.Background())
	if err != nil || len(bs) != 1 || bs[0].ID != "keep" {
		t.Fatalf("blocks after kill -9 and restart = %v, %v; want [keep]", bs, err)
	}
	got, err := kernelAddrs(ns)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs("198.51.100.2", "2001:db8::2"); !slices.Equal(got, want) {
		t.Fatalf("kernel sets after restart = %v, want each of %v once", got, want)
	}
}

// TestManyAddresses blocks more addresses than fit in one netlink message
// and checks that every one reaches the kernel.
func TestManyAddresses(t *testing.T) {
	e, ns := newInNS(t)
	var as []netip.Addr
	for i := range 6000 {
		as = append(as, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
		as = append(as, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
	}
	if err := e.Block(context.Background(), enforce.Block{ID: "many", Addrs: as}); err != nil {
		t.Fatal(err)
	}
	got, err := kernelAddrs(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(as) {
		t.Fatalf("kernel holds %d addresses, want %d", len(got), len(as))
	}
	if err := e.Release(context.Background(), "many"); err != nil {
		t.Fatal(err)
	}
	if got, _ := kernelAddrs(ns); len(got) != 0 {
		t.Fatalf("kernel holds %d addresses after release", len(got))
	}
}

// TestKernelRefusal: when the kernel refuses a change (here: the element
// to delete was removed behind procwall's back) the error names it and
// the configuration is unchanged.
func TestKernelRefusal(t *testing.T) {
	// One element per message: the refused batch has a failing and a
	// succeeding message, and every answer must be collected.
	e, ns := newInNS(t, withChunk(1))
	ctx := context.Background()
	if err := e.Block(ctx, enforce.Block{ID: "a", Addrs: addrs("198.51.100.2", "198.51.100.3")}); err != nil {
		t.Fatal(err)
	}
	ns.MustRun("nft", "delete", "element", "inet", DefaultTable, Set4, "{ 198.51.100.3 }")
	err := e.Release(ctx, "a")
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Release after tampering: err = %v, want the kernel's ENOENT", err)
	}
	if bs, _ := e.Blocks(ctx); len(bs) != 1 {
		t.Fatalf("failed Release changed the blocks: %v", bs)
	}
	// The whole batch was refused: 198.51.100.2 is still dropped.
	if got, _ := kernelAddrs(ns); !slices.Equal(got, addrs("198.51.100.2")) {
		t.Fatalf("kernel after refused batch: %v", got)
	}
}

func TestConformanceTimeouts(t *testing.T) {
	privtest.Require(t, privtest.Command("nft"))
	nss := map[enforce.Enforcer]*privtest.NetNS{}
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer {
		e, ns := newInNS(t, WithTimeouts())
		nss[e] = ns
		return e
	}, enforcetest.Options{Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) { return kernelAddrs(nss[e]) }})
}

// TestTimeouts: with WithTimeouts an address whose every block expires is
// dropped by the kernel until the latest expiry only; one also held by a
// block without expiry stays; releasing a block whose elements timed out
// works.
func TestTimeouts(t *testing.T) {
	e, ns := newInNS(t, WithTimeouts())
	ctx := context.Background()
	now := time.Now()
	for _, b := range []enforce.Block{
		{ID: "short", Addrs: addrs("198.51.100.2", "198.51.100.3", "2001:db8::2"), Expires: now.Add(3 * time.Second)},
		{ID: "forever", Addrs: addrs("198.51.100.3")},
	} {
		if err := e.Block(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	out := ns.MustRun("nft", "list", "set", "inet", DefaultTable, Set4)
	if !strings.Contains(out, "198.51.100.2 timeout") || strings.Contains(out, "198.51.100.3 timeout") {
		t.Fatalf("set elements:\n%s", out)
	}
	// The rendered script carries the timeouts and loads with nft.
	var script strings.Builder
	if err := e.Render(&script); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "t.nft")
	if err := os.WriteFile(p, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := privtest.NewNetNS(t)
	fresh.MustRun("nft", "-f", p)
	if out := fresh.MustRun("nft", "list", "set", "inet", DefaultTable, Set4); !strings.Contains(out, "198.51.100.2 timeout") {
		t.Fatalf("rendered script loaded without the timeout:\n%s\nscript:\n%s", out, script.String())
	}
	time.Sleep(time.Until(now.Add(3500 * time.Millisecond)))
	got, err := kernelAddrs(ns)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, addrs("198.51.100.3")) {
		t.Fatalf("after the expiry the kernel drops %v, want [198.51.100.3]", got)
	}
	if err := e.Release(ctx, "short"); err != nil {
		t.Fatalf("Release of a block whose elements timed out: %v", err)
	}
	if err := e.Release(ctx, "forever"); err != nil {
		t.Fatal(err)
	}
	if got, _ := kernelAddrs(ns); len(got) != 0 {
		t.Fatalf("kernel drops %v after releasing everything", got)
	}
}
