package enforcetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/procwall/procwall/enforce"
)

// Options adds checks to Run.
type Options struct {
	// Dropped, when set, returns the addresses e's packet filter drops
	// now (for a kernel back-end: read from the kernel). Run then checks
	// that the filter follows the blocks: an address is dropped exactly
	// while some active block holds it.
	Dropped func(e enforce.Enforcer) ([]netip.Addr, error)
}

// Run checks the enforcers newEnforcer returns against the Enforcer
// contract, in subtests.
func Run(t *testing.T, newEnforcer func(t *testing.T) enforce.Enforcer) {
	t.Helper()
	RunWith(t, newEnforcer, Options{})
}

// RunWith is Run with more checks.
func RunWith(t *testing.T, newEnforcer func(t *testing.T) enforce.Enforcer, o Options) {
	t.Helper()
	s := &suite{newEnforcer: newEnforcer, o: o}
	t.Run("Empty", s.empty)
	t.Run("BlockAndList", s.blockAndList)
	t.Run("Exists", s.exists)
	t.Run("NotFound", s.notFound)
	t.Run("Protected", s.protected)
	t.Run("BadInput", s.badInput)
	t.Run("Refcount", s.refcount)
	t.Run("Sorted", s.sorted)
	t.Run("NoAliasing", s.noAliasing)
	t.Run("Closed", s.closed)
	t.Run("Concurrent", s.concurrent)
}

type suite struct {
	newEnforcer func(t *testing.T) enforce.Enforcer
	o           Options
}

func (s *suite) open(t *testing.T) enforce.Enforcer {
	t.Helper()
	e := s.newEnforcer(t)
	if e == nil {
		t.Fatal("constructor returned a nil enforcer")
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func ids(bs []enforce.Block) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// listIDs returns the IDs of e's blocks, failing t on error.
func listIDs(t *testing.T, e enforce.Enforcer) []string {
	t.Helper()
	bs, err := e.Blocks(context.Background())
	if err != nil {
		t.Fatalf("Blocks: %v", err)
	}
	return ids(bs)
}

func mustBlock(t *testing.T, e enforce.Enforcer, id string, as ...string) {
	t.Helper()
	if err := e.Block(context.Background(), enforce.Block{ID: id, Addrs: addrs(as...), Reason: "enforcetest"}); err != nil {
		t.Fatalf("Block(%q, %v): %v", id, as, err)
	}
}

// checkDropped compares the packet filter with want, when Options.Dropped
// is set.
func (s *suite) checkDropped(t *testing.T, e enforce.Enforcer, want ...string) {
	t.Helper()
	if s.o.Dropped == nil {
		return
	}
	got, err := s.o.Dropped(e)
	if err != nil {
		t.Fatalf("Dropped: %v", err)
	}
	got = enforce.SortAddrs(slices.Clone(got))
	w := enforce.SortAddrs(addrs(want...))
	if !slices.Equal(got, w) {
		t.Fatalf("packet filter drops %v, want %v", got, w)
	}
}

func (s *suite) empty(t *testing.T) {
	e := s.open(t)
	if e.Name() == "" {
		t.Error("Name() is empty")
	}
	if got := listIDs(t, e); len(got) != 0 {
		t.Fatalf("new enforcer has blocks %v", got)
	}
	s.checkDropped(t, e)
}

func (s *suite) blockAndList(t *testing.T) {
	e := s.open(t)
	in := enforce.Block{
		ID:     "b1",
		Addrs:  addrs("203.0.113.7", "198.51.100.2", "2001:db8::2", "198.51.100.2", "::ffff:192.0.2.1"),
		Reason: "conformance",
	}
	if err := e.Block(context.Background(), in); err != nil {
		t.Fatalf("Block: %v", err)
	}
	bs, err := e.Blocks(context.Background())
	if err != nil {
		t.Fatalf("Blocks: %v", err)
	}
	if len(bs) != 1 || bs[0].ID != "b1" {
		t.Fatalf("Blocks = %v, want one block b1", ids(bs))
	}
	want := addrs("192.0.2.1", "198.51.100.2", "203.0.113.7", "2001:db8::2")
	if !slices.Equal(bs[0].Addrs, want) {
		t.Errorf("block addresses = %v, want sorted, deduplicated, unmapped %v", bs[0].Addrs, want)
	}
	if bs[0].Reason != "conformance" {
		t.Errorf("Reason = %q, want it kept", bs[0].Reason)
	}
	s.checkDropped(t, e, "192.0.2.1", "198.51.100.2", "203.0.113.7", "2001:db8::2")
}

func (s *suite) exists(t *testing.T) {
	e := s.open(t)
	mustBlock(t, e, "dup", "198.51.100.2")
	err := e.Block(context.Background(), enforce.Block{ID: "dup", Addrs: addrs("198.51.100.3")})
	if !errors.Is(err, enforce.ErrExists) {
		t.Fatalf("second Block with the same ID: err = %v, want ErrExists", err)
	}
	bs, _ := e.Blocks(context.Background())
	if len(bs) != 1 || !slices.Equal(bs[0].Addrs, addrs("198.51.100.2")) {
		t.Fatalf("refused Block changed the blocks: %v", bs)
	}
	s.checkDropped(t, e, "198.51.100.2")
}

func (s *suite) notFound(t *testing.T) {
	e := s.open(t)
	if err := e.Release(context.Background(), "nope"); !errors.Is(err, enforce.ErrNotFound) {
		t.Fatalf("Release of an unknown ID: err = %v, want ErrNotFound", err)
	}
	mustBlock(t, e, "x", "198.51.100.2")
	if err := e.Release(context.Background(), "x"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := e.Release(context.Background(), "x"); !errors.Is(err, enforce.ErrNotFound) {
		t.Fatalf("second Release: err = %v, want ErrNotFound", err)
	}
	s.checkDropped(t, e)
}

func (s *suite) protected(t *testing.T) {
	e := s.open(t)
	for _, bad := range [][]string{
		{"198.51.100.2", "127.0.0.1"},
		{"::1"},
		{"2001:db8::5", "::ffff:127.0.0.53"},
	} {
		err := e.Block(context.Background(), enforce.Block{ID: "p", Addrs: addrs(bad...)})
		if !errors.Is(err, enforce.ErrProtected) {
			t.Fatalf("Block(%v): err = %v, want ErrProtected", bad, err)
		}
		var pe *enforce.ProtectedError
		if !errors.As(err, &pe) || len(pe.Addrs) != 1 {
			t.Errorf("Block(%v): err = %#v, want a *enforce.ProtectedError naming the one protected address", bad, err)
		}
	}
	if got := listIDs(t, e); len(got) != 0 {
		t.Fatalf("refused blocks were recorded: %v", got)
	}
	s.checkDropped(t, e) // refused whole: not even the allowed addresses
}

func (s *suite) badInput(t *testing.T) {
	e := s.open(t)
	if err := e.Block(context.Background(), enforce.Block{Addrs: addrs("198.51.100.2")}); err == nil {
		t.Error("Block without an ID succeeded")
	}
	if err := e.Block(context.Background(), enforce.Block{ID: "z", Addrs: []netip.Addr{{}}}); err == nil {
		t.Error("Block with a zero netip.Addr succeeded")
	}
	if got := listIDs(t, e); len(got) != 0 {
		t.Fatalf("refused blocks were recorded: %v", got)
	}
	s.checkDropped(t, e)
}

func (s *suite) refcount(t *testing.T) {
	e := s.open(t)
	ctx := context.Background()
	mustBlock(t, e, "a", "198.51.100.2", "198.51.100.3", "2001:db8::2")
	mustBlock(t, e, "b", "198.51.100.3", "2001:db8::2", "203.0.113.9")
	s.checkDropped(t, e, "198.51.100.2", "198.51.100.3", "2001:db8::2", "203.0.113.9")
	if err := e.Release(ctx, "a"); err != nil {
		t.Fatalf("Release(a): %v", err)
	}
	bs, _ := e.Blocks(ctx)
	if len(bs) != 1 || bs[0].ID != "b" || !slices.Equal(bs[0].Addrs, addrs("198.51.100.3", "203.0.113.9", "2001:db8::2")) {
		t.Fatalf("after releasing a, Blocks = %v", bs)
	}
	// Addresses b still holds stay dropped.
	s.checkDropped(t, e, "198.51.100.3", "2001:db8::2", "203.0.113.9")
	if err := e.Release(ctx, "b"); err != nil {
		t.Fatalf("Release(b): %v", err)
	}
	s.checkDropped(t, e)
	// A block with no addresses is allowed and holds nothing.
	mustBlock(t, e, "empty")
	s.checkDropped(t, e)
}

func (s *suite) sorted(t *testing.T) {
	e := s.open(t)
	for _, id := range []string{"m", "b", "z", "a", "k"} {
		mustBlock(t, e, id, "192.0.2.10")
	}
	if got, want := listIDs(t, e), []string{"a", "b", "k", "m", "z"}; !slices.Equal(got, want) {
		t.Fatalf("Blocks IDs = %v, want sorted %v", got, want)
	}
}

func (s *suite) noAliasing(t *testing.T) {
	e := s.open(t)
	in := addrs("198.51.100.2", "198.51.100.3")
	if err := e.Block(context.Background(), enforce.Block{ID: "a", Addrs: in}); err != nil {
		t.Fatal(err)
	}
	in[0] = netip.MustParseAddr("203.0.113.1") // caller reuses its slice
	bs, _ := e.Blocks(context.Background())
	bs[0].Addrs[1] = netip.MustParseAddr("203.0.113.2") // caller edits the result
	bs, _ = e.Blocks(context.Background())
	if !slices.Equal(bs[0].Addrs, addrs("198.51.100.2", "198.51.100.3")) {
		t.Fatalf("enforcer state aliases caller slices: %v", bs[0].Addrs)
	}
}

func (s *suite) closed(t *testing.T) {
	e := s.newEnforcer(t)
	ctx := context.Background()
	mustBlock(t, e, "a", "198.51.100.2")
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Block(ctx, enforce.Block{ID: "b", Addrs: addrs("198.51.100.3")}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Block after Close: err = %v, want os.ErrClosed", err)
	}
	if err := e.Release(ctx, "a"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Release after Close: err = %v, want os.ErrClosed", err)
	}
	if _, err := e.Blocks(ctx); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Blocks after Close: err = %v, want os.ErrClosed", err)
	}
	if err := e.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: err = %v, want nil or os.ErrClosed", err)
	}
}

func (s *suite) concurrent(t *testing.T) {
	e := s.open(t)
	ctx := context.Background()
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errc := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				id := fmt.Sprintf("w%d-%02d", w, r)
				// Every worker shares 198.51.100.2; each has its own too.
				as := addrs("198.51.100.2", fmt.Sprintf("203.0.113.%d", 10+w), fmt.Sprintf("2001:db8::%x", 0x100+w*rounds+r))
				if err := e.Block(ctx, enforce.Block{ID: id, Addrs: as}); err != nil {
					errc <- fmt.Errorf("Block(%s): %w", id, err)
					continue
				}
				if _, err := e.Blocks(ctx); err != nil {
					errc <- fmt.Errorf("Blocks: %w", err)
				}
				if r%2 == 1 { // release every other block
					if err := e.Release(ctx, id); err != nil {
						errc <- fmt.Errorf("Release(%s): %w", id, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	var wantIDs []string
	want := []string{"198.51.100.2"}
	for w := range workers {
		want = append(want, fmt.Sprintf("203.0.113.%d", 10+w))
		for r := 0; r < rounds; r += 2 {
			wantIDs = append(wantIDs, fmt.Sprintf("w%d-%02d", w, r))
			want = append(want, fmt.Sprintf("2001:db8::%x", 0x100+w*rounds+r))
		}
	}
	slices.Sort(wantIDs)
	if got := listIDs(t, e); !slices.Equal(got, wantIDs) {
		t.Fatalf("after concurrent use, Blocks = %v, want %v", got, wantIDs)
	}
	s.checkDropped(t, e, want...)
}
