package procwall_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// A web shell (231) inside a web server (100): the shell has no traffic of
// its own, so the addresses of its main process are blocked, then released
// when the server is assessed safe.
func Example() {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	trace := replay.NewBuilder(t0).
		Exec(1, "/usr/lib/systemd/systemd", "/sbin/init").
		Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		Connect(100, "tcp", "198.51.100.7:443").
		Connect(100, "tcp", "203.0.113.9:5432").
		Fork(231, 100).Exec(231, "/bin/sh", "sh", "-i").
		At(t0.Add(5*time.Minute)).Risk(231, "high", "reverse shell").
		At(t0.Add(9*time.Minute)).Assess(100, true, "clean")

	enc := json.NewEncoder(os.Stdout)
	p, err := procwall.New(
		procwall.WithSources(trace.Source()),
		procwall.WithRecordHook(func(r procwall.Record) {
			d := r.(*risk.Decision)
			enc.Encode(map[string]any{"action": d.Action, "target_pid": d.TargetPID, "target": d.Target, "addrs": d.Addrs})
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"action":"block","addrs":["198.51.100.7","203.0.113.9"],"target":"main_process","target_pid":100}
	// {"action":"release","addrs":["198.51.100.7","203.0.113.9"],"target":"main_process","target_pid":100}
}

// Feeding events and reports from an existing agent's own pipeline, without
// sources.
func ExampleProtector_Report() {
	ctx := context.Background()
	p, _ := procwall.New()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, ev := range replay.NewBuilder(t0).
		Fork(100, 1).Exec(100, "/usr/bin/python3", "python3", "app.py").
		Fork(200, 100).Exec(200, "/usr/bin/curl", "curl", "http://203.0.113.5/x").
		Connect(200, "tcp", "203.0.113.5:80").Events() {
		p.Handle(ctx, ev)
	}
	ds, _ := p.Report(ctx, risk.Report{Process: proctree.ID{PID: 200}, Level: source.LevelCritical, Reason: "dropper"})
	fmt.Println(ds[0].Action, ds[0].Target, ds[0].Addrs)
	fmt.Println(p.Tree().Lineage(proctree.ID{PID: 200}))
	// Output:
	// block risk_process [203.0.113.5]
	// ?(1) > python3(100) > curl(200)
}
