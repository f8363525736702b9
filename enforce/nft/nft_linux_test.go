//go:build linux

package nft

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/internal/privtest"
)

// newInNS returns an enforcer working in a fresh namespace.
func newInNS(t *testing.T, opts ...Option) (*Enforcer, *privtest.NetNS) {
	t.Helper()
	privtest.Require(t, privtest.Command("nft"))
	ns := privtest.NewNetNS(t)
	f, err := ns.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e, err := New(append([]Option{WithNetNSFd(int(f.Fd()))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, ns
}

// listTable returns `nft -j list table inet procwall` in ns with handles
// removed, indented.
func listTable(t *testing.T, ns *privtest.NetNS) string {
	t.Helper()
	out := ns.MustRun("nft", "-j", "list", "table", "inet", DefaultTable)
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("nft -j: %v: %s", err, out)
	}
	v = stripHandles(v)
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

func stripHandles(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "handle")
		if _, ok := v["metainfo"]; ok {
			return nil
		}
		for k, x := range v {
			v[k] = stripHandles(x)
		}
	case []any:
		var out []any
		for _, x := range v {
			if x = stripHandles(x); x != nil {
				out = append(out, x)
			}
		}
		return out
	}
	return v
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestRenderMatchesKernel(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{{"default", nil}, {"forward+nflog", []Option{WithForward(), WithNFLOG(7)}}, {"timeouts", []Option{WithTimeouts()}}} {
		t.Run(tc.name, func(t *testing.T) {
			e, nsA := newInNS(t, tc.opts...)
			ctx := context.Background()
			if err := e.Block(ctx, enforce.Block{ID: "a", Addrs: addrs("198.51.100.2", "2001:db8::2", "203.0.113.9")}); err != nil {
				t.Fatal(err)
			}
			if err := e.Block(ctx, enforce.Block{ID: "b", Addrs: addrs("198.51.100.2", "192.0.2.1")}); err != nil {
				t.Fatal(err)
			}
			var script bytes.Buffer
			if err := e.Render(&script); err != nil {
				t.Fatal(err)
			}
			nsB := privtest.NewNetNS(t)
			p := filepath.Join(t.TempDir(), "procwall.nft")
			if err := os.WriteFile(p, script.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			nsB.MustRun("nft", "-f", p)
			got, want := listTable(t, nsA), listTable(t, nsB)
			if got != want {
				t.Fatalf("back-end ruleset differs from `nft -f` of the rendered script:\nback-end:\n%s\nnft -f:\n%s\nscript:\n%s", got, want, script.String())
			}
			// Loading twice replaces, it does not duplicate.
			nsB.MustRun("nft", "-f", p)
			if again := listTable(t, nsB); again != want {
				t.Fatalf("second load changed the ruleset:\n%s", again)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	e, ns := newInNS(t, WithStateFile(state))
	ctx := context.Background()
	if err := e.Block(ctx, enforce.Block{ID: "a", Addrs: addrs("198.51.100.2", "2001:db8::2")}); err != nil {
		t.Fatal(err)
	}
	if err := e.Block(ctx, enforce.Block{ID: "b", Addrs: addrs("198.51.100.3")}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// Someone tampers with the table: a stale element and a lost one.
	ns.MustRun("nft", "add", "element", "inet", DefaultTable, Set4, "{ 203.0.113.7 }")
	ns.MustRun("nft", "delete", "element", "inet", DefaultTable, Set4, "{ 198.51.100.3 }")
	f, _ := ns.Open()
	defer f.Close()
	e2, err := New(WithNetNSFd(int(f.Fd())), WithStateFile(state))
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	bs, err := e2.Blocks(ctx)
	if err != nil || len(bs) != 2 || bs[0].ID != "a" || bs[1].ID != "b" {
		t.Fatalf("blocks after restart = %v, %v", bs, err)
	}
	out := ns.MustRun("nft", "list", "set", "inet", DefaultTable, Set4)
	if !strings.Contains(out, "198.51.100.3") || strings.Contains(out, "203.0.113.7") || strings.Count(out, "198.51.100.2") != 1 {
		t.Fatalf("set after reconcile:\n%s", out)
	}
	if err := e2.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	out = ns.MustRun("nft", "list", "set", "inet", DefaultTable, Set6)
	if strings.Contains(out, "2001:db8::2") {
		t.Fatalf("released address still in set:\n%s", out)
	}
	cfg, err := enforce.LoadConfig(state)
	if err != nil || cfg.Len() != 1 {
		t.Fatalf("state after release: %v %v", cfg, err)
	}
	e2.Close()

	// Tampered rules and an extra chain: the table is rebuilt whole.
	ns.MustRun("nft", "flush", "chain", "inet", DefaultTable, "output")
	ns.MustRun("nft", "add", "rule", "inet", DefaultTable, "output", "ip", "daddr", "192.0.2.99", "accept")
	ns.MustRun("nft", "add", "chain", "inet", DefaultTable, "extra")
	e3, err := New(WithNetNSFd(int(f.Fd())), WithStateFile(state))
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	var script bytes.Buffer
	if err := e3.Render(&script); err != nil {
		t.Fatal(err)
	}
	fresh := privtest.NewNetNS(t)
	p := filepath.Join(dir, "fresh.nft")
	if err := os.WriteFile(p, script.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh.MustRun("nft", "-f", p)
	if got, want := listTable(t, ns), listTable(t, fresh); got != want {
		t.Fatalf("tampered table not rebuilt:\n%s\nwant\n%s", got, want)
	}
}
