package core

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/enforcetest"
)

// fakeBackend is a packet filter in memory that can be told to fail.
type fakeBackend struct {
	dropped map[netip.Addr]bool
	fail    error
	synced  int
}

func (f *fakeBackend) Apply(add, del, _ []netip.Addr, _ *enforce.Config) error {
	if f.fail != nil {
		return f.fail
	}
	for _, a := range del {
		if !f.dropped[a] {
			return errors.New("delete of missing element " + a.String())
		}
		delete(f.dropped, a)
	}
	for _, a := range add {
		if f.dropped[a] {
			return errors.New("duplicate element " + a.String())
		}
		f.dropped[a] = true
	}
	return nil
}

func (f *fakeBackend) Sync(cfg *enforce.Config) error {
	f.synced++
	f.dropped = map[netip.Addr]bool{}
	for _, a := range cfg.Addrs() {
		f.dropped[a] = true
	}
	return nil
}

func (f *fakeBackend) Close() error { return nil }

func (f *fakeBackend) addrs() []netip.Addr {
	var out []netip.Addr
	for a := range f.dropped {
		out = append(out, a)
	}
	return enforce.SortAddrs(out)
}

var a2, a3 = netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")

func TestConformance(t *testing.T) {
	fakes := map[enforce.Enforcer]*fakeBackend{}
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer {
		be := &fakeBackend{}
		c, err := Open("fake", filepath.Join(t.TempDir(), "state.json"), enforce.DefaultProtected(), be)
		if err != nil {
			t.Fatal(err)
		}
		fakes[c] = be
		return c
	}, enforcetest.Options{Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) { return fakes[e].addrs(), nil }})
}

func TestBackendFailureRollsBack(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	be := &fakeBackend{}
	c, err := Open("fake", state, enforce.DefaultProtected(), be)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Block(ctx, enforce.Block{ID: "a", Addrs: []netip.Addr{a2}}); err != nil {
		t.Fatal(err)
	}
	be.fail = errors.New("kernel says no")
	err = c.Block(ctx, enforce.Block{ID: "b", Addrs: []netip.Addr{a3}})
	var oe *enforce.OpError
	if !errors.As(err, &oe) || oe.Op != "block" || oe.ID != "b" || !strings.Contains(err.Error(), "kernel says no") {
		t.Fatalf("err = %v, want an OpError for block b with the back-end's reason", err)
	}
	if err := c.Release(ctx, "a"); err == nil {
		t.Fatal("Release succeeded while the back-end fails")
	}
	bs, _ := c.Blocks(ctx)
	if len(bs) != 1 || bs[0].ID != "a" {
		t.Fatalf("blocks after failures = %v, want [a]", bs)
	}
	cfg, err := enforce.LoadConfig(state)
	if err != nil || cfg.Len() != 1 {
		t.Fatalf("state after failures: %v, %v", cfg, err)
	}
}

func TestSaveFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "sub", "state.json")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	c, err := Open("fake", state, enforce.DefaultProtected(), be)
	if err != nil {
		t.Fatal(err)
	}
	// The state directory disappears: Save fails, the kernel change is
	// undone.
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	err = c.Block(context.Background(), enforce.Block{ID: "a", Addrs: []netip.Addr{a2}})
	if err == nil || !strings.Contains(err.Error(), "save interception configuration") {
		t.Fatalf("err = %v, want the save failure", err)
	}
	if got := be.addrs(); len(got) != 0 {
		t.Fatalf("packet filter keeps %v after the failed save", got)
	}
	if bs, _ := c.Blocks(context.Background()); len(bs) != 0 {
		t.Fatalf("blocks = %v", bs)
	}
}

func TestOpenBadState(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":1,"blocks":[{"id":"x","addrs":["nope"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("fake", bad, enforce.DefaultProtected(), &fakeBackend{}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Open with a corrupt state file: err = %v, want one naming %s", err, bad)
	}
	// A state file that blocks an address protected now is refused
	// rather than enforced.
	cfg := enforce.NewConfig()
	_, _ = cfg.Add(enforce.Block{ID: "old", Addrs: []netip.Addr{a2}})
	st := filepath.Join(dir, "state.json")
	if err := cfg.Save(st); err != nil {
		t.Fatal(err)
	}
	prot := enforce.NewProtected(netip.MustParsePrefix("198.51.100.0/24"))
	_, err := Open("fake", st, prot, &fakeBackend{})
	if !errors.Is(err, enforce.ErrProtected) {
		t.Fatalf("Open with a now-protected address in the state: err = %v, want ErrProtected", err)
	}
	// Reopening a good state restores its blocks, synced once.
	be := &fakeBackend{}
	c, err := Open("fake", st, enforce.DefaultProtected(), be)
	if err != nil {
		t.Fatal(err)
	}
	if be.synced != 1 || !slices.Equal(be.addrs(), []netip.Addr{a2}) {
		t.Fatalf("after Open the filter holds %v (synced %d times)", be.addrs(), be.synced)
	}
	_ = c.Close()
}
