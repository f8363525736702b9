package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procfs"
	"github.com/procwall/procwall/source/sockdiag"
)

func init() {
	register(&command{
		name:    "tree",
		summary: "the live process tree with each process's associated addresses",
		run:     runTree,
	})
}

func runTree(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "tree", "[-o text|json] [-pid P] [-netns NAME] [-exited]")
	out := fs.String("o", "text", "output: text (like pstree -p, plus addresses) or json (one object per root, children nested)")
	pid := fs.Int("pid", 0, "show only this process's subtree")
	netns := fs.String("netns", "", "read sockets of this named network namespace")
	inbound := fs.Bool("inbound", false, "also show accepted peers (marked <-)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *out != "text" && *out != "json" {
		return usagef("-o must be text or json, have %q", *out)
	}
	pfs, err := procfs.NewFS(procfs.DefaultRoot)
	if err != nil {
		return err
	}
	obs, err := observeProcs(pfs)
	if err != nil {
		return err
	}
	now := time.Now()
	tr := proctree.New()
	tr.Seed(now, obs)
	if *pid > 0 {
		if _, ok := tr.GetPID(*pid); !ok {
			return fmt.Errorf("no process %d", *pid)
		}
	}

	// Associated addresses of sockets open now, attributed by sock_diag.
	idx := netassoc.New()
	nsf, err := netnsFd(*netns)
	if err != nil {
		return err
	}
	var opts []sockdiag.Option
	if nsf != nil {
		defer nsf.Close()
		opts = append(opts, sockdiag.WithNetNS(int(nsf.Fd())))
	}
	if c, err := sockdiag.Dial(opts...); err != nil {
		fmt.Fprintf(env.stderr, "procwall tree: no socket owners (%v); showing processes only\n", err)
	} else {
		evs, err := c.Snapshot()
		c.Close()
		if err != nil {
			fmt.Fprintf(env.stderr, "procwall tree: socket dump: %v\n", err)
		}
		for i := range evs {
			ev := &evs[i]
			id, ok := tr.ResolveEvent(ev)
			if !ok {
				continue
			}
			dir := netassoc.Outbound
			if ev.Kind == source.KindAccept {
				dir = netassoc.Inbound
			}
			idx.Record(id, dir, ev.Proto, ev.Dst, ev.Time)
		}
	}
	addrs := func(id proctree.ID) []string {
		var s []string
		for _, a := range idx.Outbound(id) {
			s = append(s, fmtAssoc(a.Proto, a.Addr, a.Ports, ""))
		}
		if *inbound {
			for _, a := range idx.Inbound(id) {
				s = append(s, fmtAssoc(a.Proto, a.Addr, a.Ports, "<-"))
			}
		}
		return s
	}
	opt := proctree.RenderOptions{Addrs: addrs}
	if *pid > 0 {
		opt.Root = proctree.ID{PID: *pid}
	}
	if *out == "json" {
		return tr.RenderJSON(env.stdout, opt)
	}
	return tr.Render(env.stdout, opt)
}

// fmtAssoc renders an association as "tcp/198.51.100.7:443,8443".
func fmtAssoc(p source.Proto, a netip.Addr, ports []uint16, prefix string) string {
	s := prefix + p.String() + "/"
	if a.Is6() {
		s += "[" + a.String() + "]"
	} else {
		s += a.String()
	}
	for i, port := range ports {
		if i == 0 {
			s += ":"
		} else {
			s += ","
		}
		s += fmt.Sprint(port)
	}
	return s
}
