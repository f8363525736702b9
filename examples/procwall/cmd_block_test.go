package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/internal/privtest"
)

func TestBlockUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "addrs.txt")
	if err := os.WriteFile(bad, []byte("198.51.100.2\n# comment\n\n198.51.100.300\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"block", "-backend", "dryrun"}, "no addresses"},
		{[]string{"block", "-backend", "dryrun", "not-an-ip"}, `bad address "not-an-ip"`},
		{[]string{"block", "-backend", "dryrun", "-f", bad}, "addrs.txt:4: bad address"},
		{[]string{"block", "-backend", "pf", "198.51.100.2"}, "-backend must be"},
		{[]string{"block", "-backend", "dryrun", "-protect", "nope", "198.51.100.2"}, "-protect"},
		{[]string{"unblock", "-backend", "dryrun"}, "no block IDs"},
		{[]string{"status", "-backend", "dryrun", "-o", "yaml"}, "-o must be"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBlockDryrun(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	cfg := enforce.NewConfig()
	if _, err := cfg.Add(enforce.Block{ID: "old", Addrs: []netipAddr{mustAddr("198.51.100.2")}}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Save(state); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "block", "-backend", "dryrun", "-state", state, "198.51.100.2", "198.51.100.3")
	if code != 0 || !strings.HasPrefix(out, "would add 1 addresses (block manual-") {
		t.Fatalf("exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, _ = runCLI(t, "unblock", "-backend", "dryrun", "-state", state, "old")
	if code != 0 || out != "would del 1 addresses (block old)\n" {
		t.Fatalf("unblock: exit %d, out %q", code, out)
	}
	code, _, stderr = runCLI(t, "block", "-backend", "dryrun", "-state", state, "127.0.0.1")
	if code != 1 || !strings.Contains(stderr, "protected") {
		t.Fatalf("blocking loopback: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "block", "-backend", "dryrun", "-state", state, "-protect", "198.51.100.0/24", "198.51.100.9")
	if code != 1 || !strings.Contains(stderr, "198.51.100.0/24") {
		t.Fatalf("blocking a -protect network: exit %d, %q", code, stderr)
	}
}

func TestBlockNetNS(t *testing.T) {
	for _, backend := range []string{"nft", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			privtest.Require(t, privtest.Command("nft"), privtest.Command("iptables-restore"))
			ns := privtest.NewNetNS(t)
			dir := t.TempDir()
			state := filepath.Join(dir, "state.json")
			list := filepath.Join(dir, "list")
			if err := os.WriteFile(list, []byte("2001:db8::7 # a comment\n203.0.113.5\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			common := []string{"-backend", backend, "-netns", ns.Name, "-state", state}
			cli := func(args ...string) string {
				t.Helper()
				code, out, stderr := runCLI(t, append(args[:1:1], append(common, args[1:]...)...)...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				return out
			}
			if out := cli("block", "-id", "m1", "-f", list, "198.51.100.2"); !strings.Contains(out, "blocked m1: 3 addresses") {
				t.Fatalf("block: %q", out)
			}
			out := cli("status")
			if !strings.Contains(out, "m1") || !strings.Contains(out, "203.0.113.5") {
				t.Fatalf("status:\n%s", out)
			}
			var kernel string
			if backend == "nft" {
				kernel = ns.MustRun("nft", "list", "table", "inet", "procwall")
			} else {
				kernel = ns.MustRun("iptables-save") + ns.MustRun("ip6tables-save")
			}
			for _, a := range []string{"198.51.100.2", "203.0.113.5", "2001:db8::7"} {
				if !strings.Contains(kernel, a) {
					t.Fatalf("kernel lacks %s:\n%s", a, kernel)
				}
			}
			code, _, stderr := runCLI(t, append([]string{"block"}, append(common, "127.0.0.1")...)...)
			if code != 1 || !strings.Contains(stderr, "protected") {
				t.Fatalf("blocking loopback: exit %d: %s", code, stderr)
			}
			cli("unblock", "m1")
			if out := cli("status"); !strings.Contains(out, "0 blocks") {
				t.Fatalf("status after unblock:\n%s", out)
			}
		})
	}
}

type netipAddr = netip.Addr

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
