package procwall_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/rules"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// webServer builds the common scene: systemd (1) → nginx (100) → worker
// (101); nginx talks to two upstreams.
func webServer() *replay.Builder {
	return replay.NewBuilder(t0).
		Exec(1, "/usr/lib/systemd/systemd", "/sbin/init").
		Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		Fork(101, 100).Exec(101, "/usr/sbin/nginx", "nginx: worker").
		Connect(100, "tcp", "198.51.100.7:443").
		Connect(100, "tcp", "203.0.113.9:5432")
}

type result struct {
	recs []*risk.Decision
	enf  *dryrun.Enforcer
	p    *procwall.Protector
}

func replayTrace(t *testing.T, b *replay.Builder, opts ...procwall.Option) result {
	t.Helper()
	if err := b.Err(); err != nil {
		t.Fatalf("builder: %v", err)
	}
	var res result
	res.enf = dryrun.New()
	opts = append([]procwall.Option{
		procwall.WithSources(b.Source()),
		procwall.WithEnforcer(res.enf),
		procwall.WithRecordHook(func(r procwall.Record) { res.recs = append(res.recs, r.(*risk.Decision)) }),
	}, opts...)
	p, err := procwall.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	res.p = p
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// summary renders records compactly: "block 231→100 main_process [a b]".
func summary(recs []*risk.Decision) []string {
	var out []string
	for _, d := range recs {
		s := d.Action
		switch d.Action {
		case risk.ActionBlock:
			s += fmt.Sprintf(" %d→%d %s %v", d.RiskPID, d.TargetPID, d.Target, d.Addrs)
		case risk.ActionRelease:
			s += fmt.Sprintf(" %d %s %v", d.TargetPID, d.Target, d.Addrs)
		}
		out = append(out, s)
	}
	return out
}

func TestContainmentDefinitions(t *testing.T) {
	cases := []struct {
		name   string
		trace  func() *replay.Builder
		opts   []procwall.Option
		want   []string
		reason string // substring of the last record's reason
		active int    // blocks active at the end
	}{
		{
			name: "own traffic: block the risk process's addresses",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").
					Connect(231, "tcp", "203.0.113.66:4444").Risk(231, "high", "reverse shell")
			},
			want:   []string{"block 231→231 risk_process [203.0.113.66]"},
			reason: "has traffic of its own",
			active: 1,
		},
		{
			name: "no traffic: block the main process's addresses",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell")
			},
			want:   []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]"},
			reason: "risk process has no traffic of its own; blocked the addresses of its main process nginx (100)",
			active: 1,
		},
		{
			name: "main process is not the parent's traffic: the worker's own traffic is not taken",
			trace: func() *replay.Builder {
				return webServer().Connect(101, "tcp", "192.0.2.80:80").
					Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell")
			},
			want:   []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]"},
			active: 1,
		},
		{
			name: "descendants scope widens the main-process block",
			trace: func() *replay.Builder {
				return webServer().Connect(101, "tcp", "192.0.2.80:80").
					Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell")
			},
			opts:   []procwall.Option{procwall.WithRiskOptions(risk.WithScope(risk.ScopeDescendants))},
			want:   []string{"block 231→100 main_process [192.0.2.80 198.51.100.7 203.0.113.9]"},
			active: 1,
		},
		{
			name: "nothing to block: none with a reason",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(300, 1).Exec(300, "/usr/bin/cron", "cron").
					Fork(301, 300).Exec(301, "/bin/sh", "sh").Risk(301, "high", "odd")
			},
			want:   []string{"none"},
			reason: "neither risk process sh (301) nor its main process cron (300) has associated addresses",
		},
		{
			name: "accepted peers are not blocked",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(300, 1).Exec(300, "/usr/sbin/sshd", "sshd").
					Accept(300, "tcp", "192.0.2.10:22", "203.0.113.50:50000").
					Risk(300, "high", "brute force target")
			},
			want:   []string{"none"},
			reason: "has no traffic of its own and is its own main process",
		},
		{
			name: "parent is a boundary: the risk process is its own main process",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(50, 1).Exec(50, "/usr/bin/containerd-shim-runc-v2", "shim").
					Connect(50, "tcp", "198.51.100.1:443").
					Fork(60, 50).Exec(60, "/usr/bin/app", "app").Risk(60, "high", "x")
			},
			want:   []string{"none"},
			reason: "is its own main process",
		},
		{
			name: "container boundary: main process is the container's top process",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(50, 1).Exec(50, "/usr/bin/conmon", "conmon").
					Connect(50, "tcp", "198.51.100.1:443").
					Fork(60, 50).Exec(60, "/usr/bin/java", "java").Connect(60, "tcp", "198.51.100.60:8443").
					Fork(61, 60).Exec(61, "/bin/bash", "bash").Risk(61, "critical", "x")
			},
			want:   []string{"block 61→60 main_process [198.51.100.60]"},
			active: 1,
		},
		{
			name: "exited risk process within retention is still contained",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Exit(231, 0).
					After(4*time.Minute).Risk(231, "high", "late detection")
			},
			want:   []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]"},
			active: 1,
		},
		{
			name: "exited risk process past retention: none",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Exit(231, 0).
					After(6*time.Minute).Connect(100, "tcp", "198.51.100.7:443").
					After(time.Minute).Risk(231, "high", "too late")
			},
			want:   []string{"none"},
			reason: "pid 231 is not in the process tree",
		},
		{
			name: "unknown pid: none",
			trace: func() *replay.Builder {
				return webServer().Risk(9999, "medium", "ghost")
			},
			want:   []string{"none"},
			reason: "pid 9999 is not in the process tree",
		},
		{
			name: "pid reuse: the new process does not inherit the old one's traffic",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(50, 1).Exec(50, "/usr/bin/curl", "curl").Connect(50, "tcp", "203.0.113.1:80").Exit(50, 0).
					Fork(50, 1).Exec(50, "/usr/bin/sleep", "sleep").Risk(50, "high", "reused")
			},
			want:   []string{"none"},
			reason: "sleep (50) has no traffic of its own",
		},
		{
			name: "protected addresses are never blocked",
			trace: func() *replay.Builder {
				return replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
					Fork(70, 1).Exec(70, "/usr/bin/app", "app").
					Connect(70, "tcp", "127.0.0.1:6379").Connect(70, "tcp", "[::1]:5432").
					Connect(70, "tcp", "198.51.100.9:443").Risk(70, "high", "x").
					Fork(71, 1).Exec(71, "/usr/bin/app2", "app2").Connect(71, "tcp", "127.0.0.1:6379").Risk(71, "high", "y")
			},
			want:   []string{"block 70→70 risk_process [198.51.100.9]", "none"},
			reason: "are all protected (127.0.0.1)",
			active: 1,
		},
		{
			name: "configured protected network",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell")
			},
			opts: []procwall.Option{procwall.WithProtected(enforce.NewProtected(
				netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("203.0.113.0/24")))},
			want:   []string{"block 231→100 main_process [198.51.100.7]"},
			reason: "protected, not blocked: 203.0.113.9",
			active: 1,
		},
		{
			name: "release on safe assessment of the target",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell").
					After(4*time.Minute).Assess(100, true, "clean")
			},
			want: []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]",
				"release 100 main_process [198.51.100.7 203.0.113.9]"},
			reason: "nginx (100) assessed safe",
		},
		{
			name: "release on safe assessment of the risk process",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell").
					Assess(231, true, "false positive")
			},
			want: []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]",
				"release 100 main_process [198.51.100.7 203.0.113.9]"},
			reason: "sh (231) assessed safe; released the block on nginx (100)",
		},
		{
			name: "an address held by another block stays blocked",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell").
					Fork(400, 1).Exec(400, "/tmp/miner", "miner").Connect(400, "tcp", "198.51.100.7:443").
					Risk(400, "critical", "miner").
					Assess(100, true, "clean")
			},
			want: []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]",
				"block 400→400 risk_process [198.51.100.7]",
				"release 100 main_process [203.0.113.9]"},
			active: 1,
		},
		{
			name: "unsafe assessment keeps the block",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "web shell").
					Assess(100, false, "still dirty")
			},
			want:   []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]", "none"},
			reason: "assessed unsafe",
			active: 1,
		},
		{
			name:   "assessment with nothing to release",
			trace:  func() *replay.Builder { return webServer().Assess(100, true, "routine") },
			want:   []string{"none"},
			reason: "no active block to release",
		},
		{
			name: "repeated report: already blocked",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "a").Risk(231, "high", "b")
			},
			want:   []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]", "none"},
			reason: "already blocked by pw-100-1",
			active: 1,
		},
		{
			name: "below the blocking level: alert only",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "low", "meh")
			},
			opts:   []procwall.Option{procwall.WithRiskOptions(risk.WithMinLevel(risk.Level(3)))},
			want:   []string{"none"},
			reason: "below the blocking level high; alert only",
		},
		{
			name: "block timeout releases by itself",
			trace: func() *replay.Builder {
				return webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x").
					After(2*time.Minute).Connect(100, "tcp", "198.51.100.7:443")
			},
			opts: []procwall.Option{procwall.WithRiskOptions(risk.WithBlockTimeout(time.Minute))},
			want: []string{"block 231→100 main_process [198.51.100.7 203.0.113.9]",
				"release 100 main_process [198.51.100.7 203.0.113.9]"},
			reason: "timed out",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := replayTrace(t, c.trace(), c.opts...)
			if got := summary(res.recs); !slices.Equal(got, c.want) {
				t.Fatalf("records:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			last := res.recs[len(res.recs)-1]
			if !strings.Contains(last.Reason, c.reason) {
				t.Fatalf("last reason %q does not contain %q", last.Reason, c.reason)
			}
			if n := len(res.p.ActiveBlocks()); n != c.active {
				t.Fatalf("%d active blocks at the end, want %d", n, c.active)
			}
			// The enforcer drops exactly the union of active blocks.
			var want []netip.Addr
			for _, b := range res.p.ActiveBlocks() {
				want = append(want, b.Addrs...)
			}
			want = enforce.SortAddrs(want)
			if got := res.enf.Dropped(); !slices.Equal(got, want) {
				t.Fatalf("enforcer drops %v, active blocks hold %v", got, want)
			}
			for _, d := range res.recs {
				if d.Enforcer != "dryrun" || d.Addrs == nil || d.Time.IsZero() {
					t.Fatalf("record missing fields: %+v", d)
				}
			}
		})
	}
}

// refusing is an enforcer that refuses every block.
type refusing struct{ *dryrun.Enforcer }

func (refusing) Name() string { return "refusing" }
func (refusing) Block(context.Context, enforce.Block) error {
	return errors.New("firewall API unavailable")
}

func TestEnforcerRefusalIsRecorded(t *testing.T) {
	b := webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x")
	var recs []*risk.Decision
	p, err := procwall.New(procwall.WithSources(b.Source()), procwall.WithEnforcer(refusing{dryrun.New()}),
		procwall.WithRecordHook(func(r procwall.Record) { recs = append(recs, r.(*risk.Decision)) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Action != "none" || !strings.Contains(recs[0].Reason, "firewall API unavailable") ||
		recs[0].Enforcer != "refusing" {
		t.Fatalf("records %+v", recs)
	}
	if len(p.ActiveBlocks()) != 0 {
		t.Fatal("a refused block is in the ledger")
	}
	if m := p.Metrics(); m.EnforceErrs != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestRestartKeepsBlocksReleasable(t *testing.T) {
	// The enforcer already holds a block from a previous run.
	enf := dryrun.New()
	prev := enforce.Block{ID: "pw-100-7", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")},
		Target: proctree.ID{PID: 100, Start: 555}, TargetKind: risk.TargetMainProcess, Risk: proctree.ID{PID: 231, Start: 556}}
	if err := enf.Block(context.Background(), prev); err != nil {
		t.Fatal(err)
	}
	b := replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
		Fork(100, 1).Start(555).Exec(100, "/usr/sbin/nginx", "nginx").Start(555).
		Fork(231, 100).Start(556).Parent(100, 555).Exec(231, "/bin/sh", "sh").Start(556).
		Risk(231, "high", "again").Start(556).
		Assess(100, true, "clean")
	var recs []*risk.Decision
	p, err := procwall.New(procwall.WithSources(b.Source()), procwall.WithEnforcer(enf),
		procwall.WithRecordHook(func(r procwall.Record) { recs = append(recs, r.(*risk.Decision)) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := summary(recs)
	if len(got) != 2 || got[0] != "none" || got[1] != "release 100 main_process [198.51.100.7]" {
		t.Fatalf("records %v", got)
	}
	if recs[1].Block != "pw-100-7" || recs[1].TargetStart != 555 {
		t.Fatalf("release record %+v", recs[1])
	}
	if len(enf.Dropped()) != 0 {
		t.Fatalf("still dropped: %v", enf.Dropped())
	}
}

func TestStrictReplayErrorStopsRun(t *testing.T) {
	r := replay.New("bad.jsonl", strings.NewReader(`{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":2,"ppid":1}
{"ts":"2026-11-22T10:00:01Z","type":"teleport","pid":2}
`))
	p, err := procwall.New(procwall.WithSources(r))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Fatalf("Run error %v, want one naming bad.jsonl:2", err)
	}
}

func TestReportAPI(t *testing.T) {
	p, err := procwall.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, e := range webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Events() {
		if err := p.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := p.Report(ctx, risk.Report{Process: proctree.ID{PID: 231}, Level: risk.Level(3), Reason: "edr"})
	if err != nil || len(ds) != 1 || ds[0].Action != "block" || ds[0].TargetPID != 100 {
		t.Fatalf("Report = %+v, %v", ds, err)
	}
	ds, err = p.Assess(ctx, risk.Assessment{Process: proctree.ID{PID: 100}, Safe: true})
	if err != nil || len(ds) != 1 || ds[0].Action != "release" {
		t.Fatalf("Assess = %+v, %v", ds, err)
	}
	m := p.Metrics()
	if m.Decisions["block"] != 1 || m.Decisions["release"] != 1 || m.Events["api"] == 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestManualRelease(t *testing.T) {
	var res result
	res.enf = dryrun.New()
	p, err := procwall.New(procwall.WithEnforcer(res.enf),
		procwall.WithRecordHook(func(r procwall.Record) { res.recs = append(res.recs, r.(*risk.Decision)) }))
	if err != nil {
		t.Fatal(err)
	}
	res.p = p
	for _, e := range webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x").Events() {
		if err := p.Handle(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	blocks := res.p.ActiveBlocks()
	if len(blocks) != 1 {
		t.Fatalf("blocks %v", blocks)
	}
	d, err := res.p.Release(context.Background(), blocks[0].ID, "operator: false positive")
	if err != nil || d.Action != "release" || d.Reason != "operator: false positive" || len(d.Addrs) != 2 {
		t.Fatalf("Release = %+v, %v", d, err)
	}
	if len(res.enf.Dropped()) != 0 || len(res.p.ActiveBlocks()) != 0 {
		t.Fatalf("still blocked: %v", res.enf.Dropped())
	}
	if _, err := res.p.Release(context.Background(), blocks[0].ID, ""); !errors.Is(err, enforce.ErrNotFound) {
		t.Fatalf("second release: %v, want ErrNotFound", err)
	}
	if last := res.recs[len(res.recs)-1]; last.Action != "release" || last.Block != blocks[0].ID {
		t.Fatalf("hook did not get the release record: %+v", last)
	}
}

// blockingSource yields its events, then blocks until closed.
type blockingSource struct {
	*replay.Reader
	done chan struct{}
}

func (b *blockingSource) Next() (source.Event, error) {
	ev, err := b.Reader.Next()
	if err == nil {
		return ev, nil
	}
	<-b.done
	return source.Event{}, os.ErrClosed
}

func (b *blockingSource) Close() error {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	return nil
}

func TestAssessorReleases(t *testing.T) {
	src := &blockingSource{Reader: webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x").Source(),
		done: make(chan struct{})}
	asked := make(chan enforce.Block, 10)
	assessor := risk.AssessorFunc(func(ctx context.Context, b enforce.Block) (bool, string, error) {
		asked <- b
		return b.Target.PID == 100, "scan clean", nil
	})
	released := make(chan *risk.Decision, 10)
	p, err := procwall.New(procwall.WithSources(src), procwall.WithAssessor(assessor, 10*time.Millisecond),
		procwall.WithRecordHook(func(r procwall.Record) {
			if d := r.(*risk.Decision); d.Action == "release" {
				released <- d
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case d := <-released:
		if d.TargetPID != 100 || !strings.Contains(d.Reason, "nginx (100) assessed safe") || d.Report != "scan clean" {
			t.Fatalf("release record %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("assessor never released the block")
	}
	if b := <-asked; b.Target.PID != 100 || b.Risk.PID != 231 {
		t.Fatalf("assessor asked about %+v", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(p.ActiveBlocks()) != 0 {
		t.Fatal("block still active")
	}
}

func TestWarningsAndChains(t *testing.T) {
	b := webServer().
		Fork(231, 101).Exec(231, "/bin/sh", "sh").
		Fork(232, 101).Exec(232, "/bin/sh", "sh").
		After(time.Second).Risk(231, "high", "web shell").
		Risk(232, "high", "web shell").
		After(20*time.Second).Fork(240, 231).Exec(240, "/usr/bin/curl", "curl").Connect(240, "tcp", "203.0.113.77:443").
		Fork(300, 1).Exec(300, "/usr/bin/python3", "python3").After(10*time.Second).Connect(300, "tcp", "203.0.113.77:443").
		After(3*time.Minute).Connect(100, "tcp", "198.51.100.7:443")
	var warns []*risk.Warning
	var chains []*risk.Chain
	p, err := procwall.New(procwall.WithSources(b.Source()),
		procwall.WithWarning(risk.DefaultWarnConfig()), procwall.WithChains(risk.DefaultChainConfig()),
		procwall.WithRecordHook(func(r procwall.Record) {
			switch r := r.(type) {
			case *risk.Warning:
				warns = append(warns, r)
			case *risk.Chain:
				chains = append(chains, r)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := map[int]bool{}
	for _, w := range warns {
		if w.Action != "warn" || len(w.Drivers) == 0 || w.Probability >= w.Threshold {
			t.Fatalf("warn record %+v", w)
		}
		warned[w.PID] = true
	}
	if !warned[100] || !warned[101] {
		t.Fatalf("the web server and its worker, parents of two reported shells, were not warned about: %v", warned)
	}
	var path string
	for _, c := range chains {
		if c.Origin == "sh (231)" {
			path = c.Path
		}
	}
	if !strings.Contains(path, "sh (231) → curl (240) → 203.0.113.77 → python3 (300)") {
		t.Fatalf("chain of sh (231): %q (chains %d)", path, len(chains))
	}
	if m := p.Metrics(); m.Decisions["warn"] != uint64(len(warns)) || m.Decisions["chain"] != uint64(len(chains)) {
		t.Fatalf("metrics %v", m.Decisions)
	}
}

func TestWarningConfigValidated(t *testing.T) {
	cfg := risk.DefaultWarnConfig()
	cfg.Target.Period = 0
	if _, err := procwall.New(procwall.WithWarning(cfg)); err == nil || !strings.Contains(err.Error(), "Period") {
		t.Fatalf("bad warning config accepted: %v", err)
	}
}

const testBundle = `{
  "format": 1,
  "version": "test-7",
  "order": {"general": ["user", "signature", "md5", "sha256", "process", "destination", "target"],
            "self_protection": ["process", "target"]},
  "self_protection": ["/etc/procwall/"],
  "lists": {"c2": {"items": ["203.0.113.0/24"]}},
  "rules": [
    {"id": "c2", "action": "deny", "ops": ["connect"], "description": "known command-and-control network", "match": {"dst": ["@c2"]}},
    {"id": "tmp-exec", "action": "deny", "ops": ["exec"], "description": "program started from /tmp", "match": {"exe": ["/tmp/"]}},
    {"id": "system", "action": "allow", "ops": ["exec"], "description": "system programs", "match": {"exe": ["/usr/", "/sbin/", "/bin/"]}},
    {"id": "web", "action": "allow", "ops": ["connect"], "description": "upstreams", "match": {"dst": ["198.51.100.0/24"]}}
  ]
}`

func TestRuleVerdicts(t *testing.T) {
	bundle, err := rules.ParseBundle([]byte(testBundle), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.New()
	if err := eng.Load(bundle); err != nil {
		t.Fatal(err)
	}
	b := replay.NewBuilder(t0).Exec(1, "/sbin/init", "init").
		Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		Connect(100, "tcp", "198.51.100.7:443"). // allowed by rule "web": no record
		Fork(231, 100).Exec(231, "/bin/sh", "sh").
		Connect(231, "tcp", "203.0.113.66:4444").        // denied: the destination is blocked
		Connect(231, "tcp", "192.0.2.9:80").             // no rule decides: ask
		Fork(300, 1).Exec(300, "/tmp/.x/miner", "miner") // denied exec: a risk report on 300
	var recs []procwall.Record
	p, err := procwall.New(procwall.WithSources(b.Source()), procwall.WithRules(eng),
		procwall.WithRecordHook(func(r procwall.Record) { recs = append(recs, r) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		switch r := r.(type) {
		case *rules.Record:
			got = append(got, fmt.Sprintf("%s %s %d %s%s", r.Action, r.Rule, r.PID, r.Dst, r.Target))
		case *risk.Decision:
			got = append(got, fmt.Sprintf("%s %d→%d %s %v", r.Action, r.RiskPID, r.TargetPID, r.Target, r.Addrs))
		}
	}
	want := []string{
		"deny c2 231 203.0.113.66:4444",
		"block 231→231 destination [203.0.113.66]",
		"ask  231 192.0.2.9:80",
		"deny tmp-exec 300 /tmp/.x/miner",
		"none 300→300 main_process []",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := p.Metrics(); m.RulesVersion != "test-7" || m.Decisions["deny"] != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestWarningReports(t *testing.T) {
	// Two shells under a worker: the warnings on the worker's lineage
	// become risk reports; the worker (no traffic) is contained through
	// its main process, a miner-free sshd (not related) is not.
	b := webServer().
		Fork(120, 1).Exec(120, "/usr/sbin/sshd", "sshd").Connect(120, "tcp", "192.0.2.22:22").
		Fork(231, 101).Exec(231, "/bin/sh", "sh").
		Fork(232, 101).Exec(232, "/bin/sh", "sh").
		After(time.Second).Risk(231, "medium", "odd shell").
		Risk(232, "medium", "odd shell")
	var recs []*risk.Decision
	p, err := procwall.New(procwall.WithSources(b.Source()),
		procwall.WithWarning(risk.DefaultWarnConfig()), procwall.WithWarningReports(source.LevelHigh),
		procwall.WithRiskOptions(risk.WithMinLevel(source.LevelHigh)),
		procwall.WithRecordHook(func(r procwall.Record) {
			if d, ok := r.(*risk.Decision); ok {
				recs = append(recs, d)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var fromWarn []string
	for _, d := range recs {
		if strings.HasPrefix(d.Report, "early warning") {
			fromWarn = append(fromWarn, fmt.Sprintf("%s %d→%d", d.Action, d.RiskPID, d.TargetPID))
		} else if d.Action != "none" {
			t.Fatalf("a medium report blocked: %+v", d)
		}
	}
	if !slices.Contains(fromWarn, "block 101→100") {
		t.Fatalf("warning reports %v: want the worker 101 contained through nginx 100", fromWarn)
	}
	for _, s := range fromWarn {
		if strings.Contains(s, "120") {
			t.Fatalf("unrelated sshd reported: %v", fromWarn)
		}
	}
}

// lossySource yields its events; at index lossAt it first reports lost
// events (source.ErrLost); then it ends.
type lossySource struct {
	evs    []source.Event
	lossAt int
	i      int
	lost   bool
}

func (s *lossySource) Name() string { return "lossy" }
func (s *lossySource) Close() error { return nil }
func (s *lossySource) Next() (source.Event, error) {
	if s.i == s.lossAt && !s.lost {
		s.lost = true
		return source.Event{}, fmt.Errorf("lossy: 3 events dropped: %w", source.ErrLost)
	}
	if s.i >= len(s.evs) {
		return source.Event{}, io.EOF
	}
	s.i++
	return s.evs[s.i-1], nil
}

// TestResyncAfterLoss: a loss report makes Run re-read the running
// processes, after the events delivered before the loss: a process forked
// before the loss whose exit was lost is marked exited, a process whose
// fork was lost appears, and events after the loss apply on top.
func TestResyncAfterLoss(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	fork := func(sec, pid, ppid int) source.Event {
		return source.Event{Time: at.Add(time.Duration(sec) * time.Second), Kind: source.KindFork, PID: pid, PPID: ppid, Start: uint64(pid) * 100}
	}
	src := &lossySource{evs: []source.Event{fork(1, 10, 1), fork(2, 11, 1), fork(3, 12, 1)}, lossAt: 2}
	snapshots := 0
	resync := func() ([]proctree.Observed, error) {
		snapshots++
		// 11 exited unseen; 20 was forked unseen. 12 is forked after.
		return []proctree.Observed{{PID: 1, Start: 1, Comm: "init"}, {PID: 10, PPID: 1, Start: 1000}, {PID: 20, PPID: 10, Start: 2000, Comm: "missed"}}, nil
	}
	p, err := procwall.New(procwall.WithSources(src), procwall.WithResync(resync))
	if err != nil {
		t.Fatal(err)
	}
	p.Seed(at, []proctree.Observed{{PID: 1, Start: 1, Comm: "init"}})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snapshots != 1 {
		t.Fatalf("%d snapshots taken, want 1", snapshots)
	}
	m := p.Metrics()
	if m.Lost["lossy"] != 1 || m.Resyncs != 1 {
		t.Fatalf("lost %v, resyncs %d; want 1 and 1", m.Lost, m.Resyncs)
	}
	tr := p.Tree()
	for pid, live := range map[int]bool{10: true, 11: false, 12: true, 20: true} {
		pr, ok := tr.GetPID(pid)
		if !ok {
			t.Fatalf("pid %d unknown after the resync", pid)
		}
		if pr.Exited.IsZero() != live {
			t.Errorf("pid %d: exited at %v, want live %v", pid, pr.Exited, live)
		}
	}
	if pr, _ := tr.GetPID(20); pr.Parent.PID != 10 {
		t.Errorf("missed process's parent %v, want pid 10", pr.Parent)
	}
}

// TestStoppedRefusesChanges: once Run has ended (and closed the
// enforcer), assessments, reports, releases and events are refused with
// ErrStopped instead of recording a release that nobody carries out; the
// block stays listed, and queries still work.
func TestStoppedRefusesChanges(t *testing.T) {
	src := &blockingSource{Reader: webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x").Source(),
		done: make(chan struct{})}
	var recs []string
	p, err := procwall.New(procwall.WithSources(src),
		procwall.WithRecordHook(func(r procwall.Record) { recs = append(recs, r.(*risk.Decision).Action) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.ActiveBlocks()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no block before the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	bg := context.Background()
	if _, err := p.Assess(bg, risk.Assessment{Process: proctree.ID{PID: 100}, Safe: true}); !errors.Is(err, procwall.ErrStopped) {
		t.Errorf("Assess after Run: %v, want ErrStopped", err)
	}
	if _, err := p.Report(bg, risk.Report{Process: proctree.ID{PID: 101}, Level: risk.Level(3), Reason: "x"}); !errors.Is(err, procwall.ErrStopped) {
		t.Errorf("Report after Run: %v, want ErrStopped", err)
	}
	blocks := p.ActiveBlocks()
	if len(blocks) != 1 {
		t.Fatalf("active blocks after Run: %v", blocks)
	}
	if _, err := p.Release(bg, blocks[0].ID, "late"); !errors.Is(err, procwall.ErrStopped) {
		t.Errorf("Release after Run: %v, want ErrStopped", err)
	}
	if err := p.Handle(bg, source.Event{Time: time.Now(), Kind: source.KindExit, PID: 231}); !errors.Is(err, procwall.ErrStopped) {
		t.Errorf("Handle after Run: %v, want ErrStopped", err)
	}
	if !slices.Equal(recs, []string{"block"}) {
		t.Errorf("records %v, want only the block", recs)
	}
	if _, ok := p.Tree().GetPID(231); !ok {
		t.Error("tree query after Run failed")
	}
}

// TestMetricsHandler serves the metrics over HTTP after a loss and a
// resync, with a rule-bundle version that needs escaping.
func TestMetricsHandler(t *testing.T) {
	src := &lossySource{evs: []source.Event{{Time: time.Now(), Kind: source.KindFork, PID: 10, PPID: 1}}, lossAt: 1}
	p, err := procwall.New(procwall.WithSources(src),
		procwall.WithResync(func() ([]proctree.Observed, error) { return []proctree.Observed{{PID: 1}, {PID: 10, PPID: 1}}, nil }),
		procwall.WithRulesVersion(func() string { return "2026.11 \"é\" \\ x\ny" }))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(procwall.MetricsHandler(p))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{
		"procwall_lost_total{source=\"lossy\"} 1\n",
		"procwall_resyncs_total 1\n",
		"procwall_events_total{source=\"lossy\"} 1\n",
		"procwall_tree_live_processes 2\n",
		"procwall_assoc_associations 0\n",
		"procwall_rules_info{version=\"2026.11 \\\"é\\\" \\\\ x\\ny\"} 1\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// TestRunWithoutSources: a Protector fed only through Report keeps
// running under Run until ctx ends, and Run's assessor releases the block
// in the meantime.
func TestRunWithoutSources(t *testing.T) {
	assessor := risk.AssessorFunc(func(ctx context.Context, b enforce.Block) (bool, string, error) {
		return true, "clean", nil
	})
	enf := dryrun.New()
	p, err := procwall.New(procwall.WithEnforcer(enf), procwall.WithAssessor(assessor, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run without sources returned at once: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	for _, e := range webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Events() {
		if err := p.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := p.Report(ctx, risk.Report{Process: proctree.ID{PID: 231}, Level: risk.Level(3), Reason: "edr"})
	if err != nil || len(ds) != 1 || ds[0].Action != "block" {
		t.Fatalf("Report = %+v, %v", ds, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(p.ActiveBlocks()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the assessor did not release the block")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(enf.Dropped()) != 0 {
		t.Fatalf("still dropped: %v", enf.Dropped())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}
