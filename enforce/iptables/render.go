package iptables

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/procwall/procwall/enforce"
)

// ErrNotSupported is returned by New on systems without iptables.
var ErrNotSupported = errors.New("iptables: not supported on this system")

// Chains of procwall's own in the filter table.
const (
	ChainIn   = "PROCWALL-IN"
	ChainOut  = "PROCWALL-OUT"
	ChainFwd  = "PROCWALL-FWD"
	ChainDrop = "PROCWALL-DROP"
)

// Option configures an Enforcer (and Render).
type Option func(*options)

type options struct {
	state   string
	prot    *enforce.Protected
	netns   string
	forward bool
	nflog   bool
	group   uint16
}

func newOptions(opts []Option) options {
	o := options{prot: enforce.DefaultProtected()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithStateFile persists the interception configuration in path and
// reconciles the kernel with it at start-up. Without it the configuration
// lives only in memory and New starts from empty chains.
func WithStateFile(path string) Option { return func(o *options) { o.state = path } }

// WithProtected replaces the protected networks (default:
// enforce.DefaultProtected()).
func WithProtected(p *enforce.Protected) Option { return func(o *options) { o.prot = p } }

// WithNetNS runs every iptables command in the network namespace at path
// (for example /run/netns/NAME).
func WithNetNS(path string) Option { return func(o *options) { o.netns = path } }

// WithForward also drops forwarded traffic to and from blocked addresses.
func WithForward() Option { return func(o *options) { o.forward = true } }

// WithNFLOG sends every dropped packet to NFLOG group group, with the
// prefix "procwall drop".
func WithNFLOG(group uint16) Option { return func(o *options) { o.nflog, o.group = true, group } }

// hooks lists the built-in chains and the chain of procwall's each jumps
// to.
func hooks(o options) [][2]string {
	h := [][2]string{{"INPUT", ChainIn}, {"OUTPUT", ChainOut}}
	if o.forward {
		h = append(h, [2]string{"FORWARD", ChainFwd})
	}
	return h
}

// ruleSpecs returns the rule specifications (after "-A CHAIN") that drop a.
func ruleSpecs(o options, a netip.Addr) [][2]string {
	p := netip.PrefixFrom(a, a.BitLen()).String()
	specs := [][2]string{{ChainIn, "-s " + p + " -j " + ChainDrop}, {ChainOut, "-d " + p + " -j " + ChainDrop}}
	if o.forward {
		specs = append(specs, [2]string{ChainFwd, "-s " + p + " -j " + ChainDrop}, [2]string{ChainFwd, "-d " + p + " -j " + ChainDrop})
	}
	return specs
}

// familyAddrs returns the addresses of cfg of one family.
func familyAddrs(addrs []netip.Addr, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is6() == v6 {
			out = append(out, a)
		}
	}
	return out
}

// Render writes cfg's addresses of one family (IPv6 when v6) as an
// iptables-restore file for the filter table, to be loaded with
// `iptables-restore --noflush` (or ip6tables-restore): it declares
// procwall's chains — which flushes them — and fills them, in one
// transaction, leaving every other chain alone. The jumps from the
// built-in chains (INPUT to PROCWALL-IN, OUTPUT to PROCWALL-OUT, FORWARD to
// PROCWALL-FWD) are not in the file: the Enforcer inserts them once.
func Render(w io.Writer, cfg *enforce.Config, v6 bool, opts ...Option) error {
	o := newOptions(opts)
	return render(w, o, familyAddrs(cfg.Addrs(), v6), v6)
}

func render(w io.Writer, o options, addrs []netip.Addr, v6 bool) error {
	bw := bufio.NewWriter(w)
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	fmt.Fprintf(bw, "# procwall interception configuration (%s): %d addresses\n*filter\n", fam, len(addrs))
	chains := []string{ChainIn, ChainOut}
	if o.forward {
		chains = append(chains, ChainFwd)
	}
	for _, c := range append(chains, ChainDrop) {
		fmt.Fprintf(bw, ":%s - [0:0]\n", c)
	}
	if o.nflog {
		fmt.Fprintf(bw, "-A %s -j NFLOG --nflog-prefix %s --nflog-group %d\n", ChainDrop, strconv.Quote("procwall drop"), o.group)
	}
	fmt.Fprintf(bw, "-A %s -j DROP\n", ChainDrop)
	// Rules chain by chain, in address order.
	for _, c := range chains {
		for _, a := range addrs {
			for _, s := range ruleSpecs(o, a) {
				if s[0] == c {
					fmt.Fprintf(bw, "-A %s %s\n", s[0], s[1])
				}
			}
		}
	}
	fmt.Fprintf(bw, "COMMIT\n")
	return bw.Flush()
}

// renderDelta writes a --noflush file that deletes the rules of del and
// appends those of add.
func renderDelta(w io.Writer, o options, add, del []netip.Addr) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "*filter\n")
	for _, a := range del {
		for _, s := range ruleSpecs(o, a) {
			fmt.Fprintf(bw, "-D %s %s\n", s[0], s[1])
		}
	}
	for _, a := range add {
		for _, s := range ruleSpecs(o, a) {
			fmt.Fprintf(bw, "-A %s %s\n", s[0], s[1])
		}
	}
	fmt.Fprintf(bw, "COMMIT\n")
	return bw.Flush()
}
