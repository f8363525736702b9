// Command embed shows how an existing security agent embeds procwall: the
// agent keeps its own event pipeline and its own detector; it hands
// process and connection events to a Protector with Handle, and its
// detector's verdicts with Report and Assess. procwall answers with
// decision records and enforces them.
//
// It runs without privileges on the dry-run enforcer:
//
//	go run ./examples/embed
//
// With -backend nft -netns NAME (as root) the same code blocks for real
// inside that network namespace.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/enforce/nft"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
)

// agentEvent is the existing agent's own event type.
type agentEvent struct {
	When    time.Time
	What    string // "spawn", "exec", "conn"
	PID     int
	Parent  int
	Path    string
	Remote  string
	Verdict string // the agent's detector's verdict, if any
}

// toProcwall maps the agent's events onto procwall's event model.
func toProcwall(e agentEvent) (source.Event, error) {
	ev := source.Event{Time: e.When, PID: e.PID, PPID: e.Parent}
	switch e.What {
	case "spawn":
		ev.Kind = source.KindFork
	case "exec":
		ev.Kind, ev.Exe, ev.Argv = source.KindExec, e.Path, []string{e.Path}
	case "conn":
		ap, err := netip.ParseAddrPort(e.Remote)
		if err != nil {
			return ev, err
		}
		ev.Kind, ev.Proto, ev.Dst = source.KindConnect, source.ProtoTCP, ap
	default:
		return ev, fmt.Errorf("agent event %q has no procwall equivalent", e.What)
	}
	return ev, ev.Validate()
}

func main() {
	backend := flag.String("backend", "dryrun", "dryrun, or nft (root; with -netns)")
	netns := flag.String("netns", "", "named network namespace for the nft back-end")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var enf enforce.Enforcer = dryrun.New()
	if *backend == "nft" {
		var opts []nft.Option
		if *netns != "" {
			f, err := os.Open("/run/netns/" + *netns)
			if err != nil {
				fmt.Fprintln(os.Stderr, "embed:", err)
				os.Exit(1)
			}
			defer f.Close()
			opts = append(opts, nft.WithNetNSFd(int(f.Fd())))
		}
		e, err := nft.New(opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "embed:", err)
			os.Exit(1)
		}
		enf = e
	}
	defer enf.Close()

	// The agent ships procwall's records along with its own telemetry.
	out := json.NewEncoder(os.Stdout)
	p, err := runAgent(context.Background(), enf, log, func(r procwall.Record) { out.Encode(r) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "lineage of the shell:", p.Tree().Lineage(proctree.ID{PID: 812}))
}

// runAgent is the embedding: a Protector on the agent's enforcer, fed the
// agent's events, its detector's report and its analyst's assessment;
// record receives every decision record.
func runAgent(ctx context.Context, enf enforce.Enforcer, log *slog.Logger, record func(procwall.Record)) (*procwall.Protector, error) {
	p, err := procwall.New(
		procwall.WithEnforcer(enf),
		procwall.WithLogger(log),
		procwall.WithRecordHook(record),
	)
	if err != nil {
		return nil, err
	}
	t0 := time.Now().UTC()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	// What the agent's pipeline saw: a Java service that spawns a shell
	// after a deserialisation exploit.
	for _, e := range []agentEvent{
		{When: at(0), What: "exec", PID: 1, Path: "/sbin/init"},
		{When: at(1), What: "spawn", PID: 700, Parent: 1},
		{When: at(1), What: "exec", PID: 700, Parent: 1, Path: "/usr/bin/java"},
		{When: at(2), What: "conn", PID: 700, Remote: "203.0.113.40:5432"},
		{When: at(3), What: "spawn", PID: 812, Parent: 700},
		{When: at(3), What: "exec", PID: 812, Parent: 700, Path: "/bin/bash"},
	} {
		ev, err := toProcwall(e)
		if err != nil {
			log.Warn("event not mapped", "err", err)
			continue
		}
		if err := p.Handle(ctx, ev); err != nil {
			return p, fmt.Errorf("handle: %w", err)
		}
	}
	// The agent's detector flags the shell.
	if _, err := p.Report(ctx, risk.Report{Time: at(4), Process: proctree.ID{PID: 812}, Level: source.LevelHigh,
		Reason: "shell spawned by a JVM"}); err != nil {
		return p, fmt.Errorf("report: %w", err)
	}
	// Later its analyst clears the service.
	if _, err := p.Assess(ctx, risk.Assessment{Time: at(60), Process: proctree.ID{PID: 700}, Safe: true, Reason: "patched and restarted"}); err != nil {
		return p, fmt.Errorf("assess: %w", err)
	}
	return p, nil
}
