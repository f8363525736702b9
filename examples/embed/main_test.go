package main

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
)

func TestToProcwall(t *testing.T) {
	now := time.Now()
	ev, err := toProcwall(agentEvent{When: now, What: "conn", PID: 5, Remote: "198.51.100.1:443"})
	if err != nil || ev.Kind != source.KindConnect || ev.Dst.String() != "198.51.100.1:443" {
		t.Fatalf("conn: %+v %v", ev, err)
	}
	if _, err := toProcwall(agentEvent{When: now, What: "conn", PID: 5, Remote: "nowhere"}); err == nil {
		t.Fatal("bad remote accepted")
	}
	if _, err := toProcwall(agentEvent{When: now, What: "teleport", PID: 5}); err == nil || !strings.Contains(err.Error(), "teleport") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := toProcwall(agentEvent{When: now, What: "spawn", PID: 0}); err == nil {
		t.Fatal("pid 0 accepted")
	}
}

// TestRunAgent: the embedding contains the shell through its main
// process — the JVM's address is blocked on the enforcer — and the
// analyst's assessment releases it again.
func TestRunAgent(t *testing.T) {
	enf := &watchingEnforcer{Enforcer: dryrun.New()}
	var recs []*risk.Decision
	p, err := runAgent(context.Background(), enf, slog.New(slog.DiscardHandler), func(r procwall.Record) {
		recs = append(recs, r.(*risk.Decision))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want a block and a release: %+v", len(recs), recs)
	}
	b, r := recs[0], recs[1]
	if b.Action != risk.ActionBlock || b.RiskPID != 812 || b.TargetPID != 700 || b.Target != "main_process" ||
		len(b.Addrs) != 1 || b.Addrs[0] != "203.0.113.40" {
		t.Fatalf("block record %+v", b)
	}
	if r.Action != risk.ActionRelease || r.TargetPID != 700 {
		t.Fatalf("release record %+v", r)
	}
	if !slices.Equal(enf.blocked, []netip.Addr{netip.MustParseAddr("203.0.113.40")}) {
		t.Fatalf("enforcer blocked %v", enf.blocked)
	}
	if len(p.ActiveBlocks()) != 0 || len(enf.Dropped()) != 0 {
		t.Fatalf("still blocked after the release: %v", enf.Dropped())
	}
}

// watchingEnforcer records the addresses each Block call was given.
type watchingEnforcer struct {
	*dryrun.Enforcer
	blocked []netip.Addr
}

func (w *watchingEnforcer) Block(ctx context.Context, b enforce.Block) error {
	w.blocked = append(w.blocked, b.Addrs...)
	return w.Enforcer.Block(ctx, b)
}
