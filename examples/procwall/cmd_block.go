package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/enforce/iptables"
	"github.com/procwall/procwall/enforce/nft"
)

// `procwall block|unblock|status` operate an enforcer directly.

func init() {
	register(&command{name: "block", summary: "block addresses with an enforcer (a manual block)", run: runBlock})
	register(&command{name: "unblock", summary: "release blocks by ID", run: runUnblock})
	register(&command{name: "status", summary: "list an enforcer's blocks and drop counters", run: runStatus})
}

// enforcerFlags are the flags the three subcommands share.
type enforcerFlags struct {
	backend, netns, state, protect, output string
	forward                                bool
	nflog                                  int
}

func addEnforcerFlags(fs *flag.FlagSet) *enforcerFlags {
	f := &enforcerFlags{}
	fs.StringVar(&f.backend, "backend", "nft", "enforcer: nft, iptables or dryrun (dryrun reads the state file and changes nothing)")
	fs.StringVar(&f.netns, "netns", "", "work inside this named network namespace (/run/netns/NAME)")
	fs.StringVar(&f.state, "state", "", "state file (default /var/lib/procwall/enforce-BACKEND[-NETNS].json)")
	fs.StringVar(&f.protect, "protect", "", "comma-separated networks never to block, besides loopback (e.g. the rule server)")
	fs.BoolVar(&f.forward, "forward", false, "also drop forwarded traffic (must match between runs)")
	fs.IntVar(&f.nflog, "nflog", -1, "send drops to this NFLOG group (must match between runs; -1: none)")
	fs.StringVar(&f.output, "o", "text", "output: text or json")
	return f
}

// protected parses -protect.
func (f *enforcerFlags) protected() (*enforce.Protected, error) {
	p := enforce.DefaultProtected()
	for _, s := range strings.Split(f.protect, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pf, err := netip.ParsePrefix(s); err == nil {
			p.Add(pf)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, usagef("-protect: %q is neither a network nor an address", s)
		}
		p.Add(netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

func (f *enforcerFlags) statePath() string {
	if f.state != "" {
		return f.state
	}
	name := "enforce-" + f.backend
	if f.netns != "" {
		name += "-" + f.netns
	}
	return filepath.Join("/var/lib/procwall", name+".json")
}

// cliEnforcer is an enforcer with what status needs.
type cliEnforcer struct {
	enforce.Enforcer
	counters func(ctx context.Context) ([][3]string, error) // rule, packets, bytes
	dry      *dryrun.Enforcer
	cleanup  func()
}

// open validates the flags and opens the enforcer.
func (f *enforcerFlags) open() (*cliEnforcer, error) {
	if f.output != "text" && f.output != "json" {
		return nil, usagef("-o must be text or json, have %q", f.output)
	}
	if f.nflog > 0xffff || f.nflog < -1 {
		return nil, usagef("-nflog must be a group number 0-65535 (or -1), have %d", f.nflog)
	}
	if f.netns != "" && (strings.ContainsAny(f.netns, "/\x00") || f.netns == "." || f.netns == "..") {
		return nil, usagef("-netns: bad namespace name %q", f.netns)
	}
	prot, err := f.protected()
	if err != nil {
		return nil, err
	}
	state := f.statePath()
	nsPath := ""
	if f.netns != "" {
		nsPath = filepath.Join("/run/netns", f.netns)
		if _, err := os.Stat(nsPath); err != nil {
			return nil, fmt.Errorf("network namespace %q: %w", f.netns, err)
		}
	}
	if f.backend != "dryrun" {
		if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
			return nil, err
		}
	}
	switch f.backend {
	case "nft":
		opts := []nft.Option{nft.WithStateFile(state), nft.WithProtected(prot)}
		if f.forward {
			opts = append(opts, nft.WithForward())
		}
		if f.nflog >= 0 {
			opts = append(opts, nft.WithNFLOG(uint16(f.nflog)))
		}
		var nsf *os.File
		if nsPath != "" {
			if nsf, err = os.Open(nsPath); err != nil {
				return nil, err
			}
			opts = append(opts, nft.WithNetNSFd(int(nsf.Fd())))
		}
		e, err := nft.New(opts...)
		if err != nil {
			if nsf != nil {
				nsf.Close()
			}
			return nil, err
		}
		return &cliEnforcer{Enforcer: e, cleanup: func() {
			if nsf != nil {
				nsf.Close()
			}
		}, counters: func(ctx context.Context) ([][3]string, error) {
			cs, err := e.Counters(ctx)
			var out [][3]string
			for _, c := range cs {
				out = append(out, [3]string{fmt.Sprintf("%s %s @%s", c.Chain, c.Field, c.Set), fmt.Sprint(c.Packets), fmt.Sprint(c.Bytes)})
			}
			return out, err
		}}, nil
	case "iptables":
		opts := []iptables.Option{iptables.WithStateFile(state), iptables.WithProtected(prot)}
		if f.forward {
			opts = append(opts, iptables.WithForward())
		}
		if f.nflog >= 0 {
			opts = append(opts, iptables.WithNFLOG(uint16(f.nflog)))
		}
		if nsPath != "" {
			opts = append(opts, iptables.WithNetNS(nsPath))
		}
		e, err := iptables.New(opts...)
		if err != nil {
			return nil, err
		}
		return &cliEnforcer{Enforcer: e, counters: func(ctx context.Context) ([][3]string, error) {
			cs, err := e.Counters(ctx)
			var out [][3]string
			for _, c := range cs {
				out = append(out, [3]string{fmt.Sprintf("%s %s", c.Chain, c.Addr), fmt.Sprint(c.Packets), fmt.Sprint(c.Bytes)})
			}
			return out, err
		}}, nil
	case "dryrun":
		cfg, err := enforce.LoadConfig(state)
		if err != nil {
			return nil, err
		}
		d := dryrun.New(dryrun.WithProtected(prot))
		for _, b := range cfg.Blocks() {
			if err := d.Block(context.Background(), b); err != nil {
				return nil, fmt.Errorf("state file %s: %w", state, err)
			}
		}
		return &cliEnforcer{Enforcer: d, dry: d}, nil
	default:
		return nil, usagef("-backend must be nft, iptables or dryrun, have %q", f.backend)
	}
}

func (c *cliEnforcer) close() {
	c.Close()
	if c.cleanup != nil {
		c.cleanup()
	}
}

// readAddrs parses addresses from args and, with file != "", from a file
// ("-": standard input) of one address per line; blank lines and text after
// '#' are ignored.
func readAddrs(env *cmdEnv, args []string, file string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range args {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, usagef("bad address %q", s)
		}
		out = append(out, a)
	}
	if file == "" {
		return out, nil
	}
	var r io.Reader = env.stdin
	name := "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, file
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, usagef("%s:%d: bad address %q", name, n, line)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// deriveID names a manual block after its addresses.
func deriveID(addrs []netip.Addr) string {
	h := sha256.New()
	for _, a := range enforce.SortAddrs(append([]netip.Addr(nil), addrs...)) {
		h.Write(a.AsSlice())
	}
	return "manual-" + hex.EncodeToString(h.Sum(nil))[:12]
}

func printOps(env *cmdEnv, d *dryrun.Enforcer, from int) {
	for _, op := range d.Ops()[from:] {
		fmt.Fprintf(env.stdout, "would %s %d addresses (block %s)\n", op.Kind, len(op.Addrs), op.Block)
	}
}

func runBlock(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "block", "[-backend nft|iptables|dryrun] [-netns NAME] [-state FILE] [-f FILE] [-protect CIDR,...] [-id ID] [-reason TEXT] [-for D] ADDR...")
	ef := addEnforcerFlags(fs)
	file := fs.String("f", "", "read more addresses from FILE, one a line ('-': standard input)")
	id := fs.String("id", "", "block ID (default: derived from the addresses)")
	reason := fs.String("reason", "manual block", "why, for people")
	dur := fs.Duration("for", 0, "the block expires after this long (recorded in the block; 0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	addrs, err := readAddrs(env, fs.Args(), *file)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return usagef("no addresses to block")
	}
	if *dur < 0 {
		return usagef("-for must not be negative")
	}
	b := enforce.Block{ID: *id, Addrs: addrs, Reason: *reason, Created: time.Now().UTC()}
	if b.ID == "" {
		b.ID = deriveID(addrs)
	}
	if *dur > 0 {
		b.Expires = b.Created.Add(*dur)
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.close()
	n := 0
	if e.dry != nil {
		n = len(e.dry.Ops())
	}
	if err := e.Block(ctx, b); err != nil {
		return err
	}
	if e.dry != nil {
		printOps(env, e.dry, n)
		return nil
	}
	if ef.output == "json" {
		return json.NewEncoder(env.stdout).Encode(map[string]any{"action": "block", "id": b.ID, "addrs": len(enforce.SortAddrs(addrs)), "enforcer": e.Name()})
	}
	fmt.Fprintf(env.stdout, "blocked %s: %d addresses (%s)\n", b.ID, len(enforce.SortAddrs(addrs)), e.Name())
	return nil
}

func runUnblock(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "unblock", "[-backend nft|iptables|dryrun] [-netns NAME] [-state FILE] ID...")
	ef := addEnforcerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no block IDs")
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.close()
	var errs []error
	for _, id := range fs.Args() {
		n := 0
		if e.dry != nil {
			n = len(e.dry.Ops())
		}
		if err := e.Release(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case e.dry != nil:
			printOps(env, e.dry, n)
		case ef.output == "json":
			_ = json.NewEncoder(env.stdout).Encode(map[string]any{"action": "release", "id": id, "enforcer": e.Name()})
		default:
			fmt.Fprintf(env.stdout, "released %s (%s)\n", id, e.Name())
		}
	}
	return errors.Join(errs...)
}

func runStatus(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "status", "[-backend nft|iptables|dryrun] [-netns NAME] [-state FILE] [-o text|json]")
	ef := addEnforcerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	e, err := ef.open()
	if err != nil {
		return err
	}
	defer e.close()
	bs, err := e.Blocks(ctx)
	if err != nil {
		return err
	}
	var counters [][3]string
	if e.counters != nil {
		if counters, err = e.counters(ctx); err != nil {
			return err
		}
	}
	if ef.output == "json" {
		enc := json.NewEncoder(env.stdout)
		for _, b := range bs {
			if err := enc.Encode(map[string]any{"block": b}); err != nil {
				return err
			}
		}
		for _, c := range counters {
			if err := enc.Encode(map[string]any{"counter": map[string]string{"rule": c[0], "packets": c[1], "bytes": c[2]}}); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(env.stdout, "%s: %d blocks (state %s)\n", e.Name(), len(bs), ef.statePath())
	tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
	if len(bs) > 0 {
		fmt.Fprintln(tw, "ID\tADDRS\tCREATED\tEXPIRES\tREASON")
	}
	for _, b := range bs {
		exp := "-"
		if !b.Expires.IsZero() {
			exp = b.Expires.Format(time.RFC3339)
		}
		created := "-"
		if !b.Created.IsZero() {
			created = b.Created.Format(time.RFC3339)
		}
		as := make([]string, len(b.Addrs))
		for i, a := range b.Addrs {
			as[i] = a.String()
		}
		list := strings.Join(as, ",")
		if len(as) > 4 {
			list = strings.Join(as[:4], ",") + fmt.Sprintf(",... (%d)", len(as))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.ID, list, created, exp, b.Reason)
	}
	if len(counters) > 0 {
		fmt.Fprintln(tw, "\nRULE\tPACKETS\tBYTES")
		for _, c := range counters {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c[0], c[1], c[2])
		}
	}
	return tw.Flush()
}
