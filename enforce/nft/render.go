package nft

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/procwall/procwall/enforce"
)

// Set names inside the table.
const (
	Set4 = "blocked4"
	Set6 = "blocked6"
)

// Render writes cfg as an `nft -f` script that replaces procwall's table
// with exactly the ruleset the Enforcer built with the same options
// installs: loading it creates the table if missing, deletes it and
// recreates it, in one transaction. Options that do not shape the ruleset
// (state file, namespace) are ignored.
func Render(w io.Writer, cfg *enforce.Config, opts ...Option) error {
	o := newOptions(opts)
	bw := bufio.NewWriter(w)
	fam := "inet " + o.table
	fmt.Fprintf(bw, "# procwall interception configuration: %d blocks, %d addresses\n", cfg.Len(), len(cfg.Addrs()))
	fmt.Fprintf(bw, "table %s\ndelete table %s\ntable %s {\n", fam, fam, fam)
	var v4, v6 []netip.Addr
	for _, a := range cfg.Addrs() {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	var exp map[netip.Addr]time.Duration
	if o.timeouts {
		exp = timeouts(cfg, cfg.Addrs(), time.Now())
		v4 = slicesDeleteExpired(v4, exp)
		v6 = slicesDeleteExpired(v6, exp)
	}
	renderSet(bw, Set4, "ipv4_addr", v4, o.timeouts, exp)
	renderSet(bw, Set6, "ipv6_addr", v6, o.timeouts, exp)
	for _, ch := range chains(o) {
		fmt.Fprintf(bw, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", ch.name, ch.name, o.priority)
		for _, r := range ch.rules {
			proto := "ip"
			set := Set4
			if r.v6 {
				proto, set = "ip6", Set6
			}
			field := "saddr"
			if r.daddr {
				field = "daddr"
			}
			fmt.Fprintf(bw, "\t\t%s %s @%s counter", proto, field, set)
			if o.nflog {
				fmt.Fprintf(bw, " log prefix %s group %d", strconv.Quote(o.prefix), o.group)
			}
			fmt.Fprintf(bw, " drop\n")
		}
		fmt.Fprintf(bw, "\t}\n")
	}
	fmt.Fprintf(bw, "}\n")
	return bw.Flush()
}

func renderSet(w *bufio.Writer, name, typ string, addrs []netip.Addr, flagTimeout bool, exp map[netip.Addr]time.Duration) {
	fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n", name, typ)
	if flagTimeout {
		w.WriteString("\t\tflags timeout\n")
	}
	if len(addrs) > 0 {
		w.WriteString("\t\telements = {")
		for i, a := range addrs {
			if i > 0 {
				w.WriteString(",")
			}
			if i%8 == 0 {
				w.WriteString("\n\t\t\t")
			} else {
				w.WriteString(" ")
			}
			w.WriteString(a.String())
			if d := exp[a]; d > 0 {
				// Whole seconds, rounded up: nft's time syntax.
				fmt.Fprintf(w, " timeout %ds", int64((d+time.Second-1)/time.Second))
			}
		}
		w.WriteString("\n\t\t}\n")
	}
	w.WriteString("\t}\n")
}

// rule is one drop rule: match the destination (daddr) or source address
// of IPv4 or IPv6 packets against the family's set.
type rule struct{ v6, daddr bool }

type chainSpec struct {
	name  string // also the hook
	rules []rule
}

// chains lists the base chains and their rules, in order.
func chains(o options) []chainSpec {
	cs := []chainSpec{
		{name: "input", rules: []rule{{false, false}, {true, false}}},
		{name: "output", rules: []rule{{false, true}, {true, true}}},
	}
	if o.forward {
		cs = append(cs, chainSpec{name: "forward", rules: []rule{{false, true}, {true, true}, {false, false}, {true, false}}})
	}
	return cs
}

// timeouts returns, for each address of as that cfg holds, how long its
// drop has left: until the latest Expires of the blocks holding it, or 0
// (no timeout) when one of them never expires. An address whose time is up
// maps to a negative duration.
func timeouts(cfg *enforce.Config, as []netip.Addr, now time.Time) map[netip.Addr]time.Duration {
	want := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		want[a] = true
	}
	latest := make(map[netip.Addr]time.Time, len(as))
	forever := make(map[netip.Addr]bool)
	for _, b := range cfg.Blocks() {
		for _, a := range b.Addrs {
			if !want[a] {
				continue
			}
			if b.Expires.IsZero() {
				forever[a] = true
			} else if b.Expires.After(latest[a]) {
				latest[a] = b.Expires
			}
		}
	}
	out := make(map[netip.Addr]time.Duration, len(latest))
	for a, t := range latest {
		if forever[a] {
			continue
		}
		d := t.Sub(now)
		switch {
		case d <= 0:
			out[a] = -1
		case d < time.Millisecond:
			out[a] = time.Millisecond
		default:
			out[a] = d.Round(time.Millisecond)
		}
	}
	return out
}

// slicesDeleteExpired removes the addresses whose time is up.
func slicesDeleteExpired(as []netip.Addr, exp map[netip.Addr]time.Duration) []netip.Addr {
	out := as[:0:0]
	for _, a := range as {
		if exp[a] >= 0 {
			out = append(out, a)
		}
	}
	return out
}
