package enforcetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/enforce/enforcetest"
)

func TestDryrun(t *testing.T) {
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer { return dryrun.New() }, enforcetest.Options{
		Dropped: func(e enforce.Enforcer) ([]netipAddr, error) { return e.(*dryrun.Enforcer).Dropped(), nil },
	})
}

func TestRecorder(t *testing.T) {
	r := enforcetest.NewRecorder(dryrun.New())
	ctx := context.Background()
	_ = r.Block(ctx, enforce.Block{ID: "a", Addrs: parse("198.51.100.2", "2001:db8::2")})
	_ = r.Block(ctx, enforce.Block{ID: "a", Addrs: parse("198.51.100.3")})
	_ = r.Block(ctx, enforce.Block{ID: "lo", Addrs: parse("127.0.0.1")})
	_ = r.Release(ctx, "zz")
	_, _ = r.Blocks(ctx)
	_ = r.Release(ctx, "a")
	_ = r.Close()
	_ = r.Release(ctx, "a")
	enforcetest.Golden(t, "recorder.golden", r.Log())
}

func TestDiff(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n"
	b := "1\n2\n3\n4\nfive\n6\n7\n8\n9\n"
	got := enforcetest.Diff(a, b)
	want := "  ...\n  3\n  4\n- 5\n+ five\n  6\n  7\n  ...\n"
	if got != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(enforcetest.Diff(a, a), "-") {
		t.Fatal("Diff of equal texts shows changes")
	}
}
