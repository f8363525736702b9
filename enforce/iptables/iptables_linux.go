//go:build linux

package iptables

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/internal/core"
	"github.com/procwall/procwall/internal/netns"
)

// Enforcer is the iptables back-end. It implements enforce.Enforcer.
type Enforcer struct {
	core *core.Core
	be   *backend
}

var _ enforce.Enforcer = (*Enforcer)(nil)

// New finds the iptables commands, loads the state file and reconciles the
// kernel with it (see the package documentation).
func New(opts ...Option) (*Enforcer, error) {
	o := newOptions(opts)
	be := &backend{o: o}
	err := be.do(func() error {
		var err error
		if be.ipt[0], err = goipt.New(goipt.IPFamily(goipt.ProtocolIPv4), goipt.Timeout(10)); err != nil {
			return err
		}
		be.ipt[1], err = goipt.New(goipt.IPFamily(goipt.ProtocolIPv6), goipt.Timeout(10))
		return err
	})
	if err != nil {
		return nil, &enforce.OpError{Backend: "iptables", Op: "open", Err: err}
	}
	c, err := core.Open("iptables", o.state, o.prot, be)
	if err != nil {
		return nil, err
	}
	return &Enforcer{core: c, be: be}, nil
}

// Name implements enforce.Enforcer: "iptables".
func (e *Enforcer) Name() string { return "iptables" }

// Block implements enforce.Enforcer.
func (e *Enforcer) Block(ctx context.Context, b enforce.Block) error { return e.core.Block(ctx, b) }

// Release implements enforce.Enforcer.
func (e *Enforcer) Release(ctx context.Context, id string) error { return e.core.Release(ctx, id) }

// Blocks implements enforce.Enforcer.
func (e *Enforcer) Blocks(ctx context.Context) ([]enforce.Block, error) { return e.core.Blocks(ctx) }

// Close implements enforce.Enforcer. The rules stay in the kernel.
func (e *Enforcer) Close() error { return e.core.Close() }

// Config returns a copy of the interception configuration.
func (e *Enforcer) Config() (*enforce.Config, error) { return e.core.Config() }

// Render writes the current configuration of one family as an
// iptables-restore file (see the package-level Render).
func (e *Enforcer) Render(w io.Writer, v6 bool) error {
	return e.core.Do("render", func(cfg *enforce.Config) error {
		return render(w, e.be.o, familyAddrs(cfg.Addrs(), v6), v6)
	})
}

// Remove deletes procwall's jumps and chains from both families (every
// block stops) and closes the enforcer. The state file is left as it is.
func (e *Enforcer) Remove() error {
	err := e.core.Do("remove", func(*enforce.Config) error {
		return e.be.do(func() error {
			for _, ipt := range e.be.ipt {
				for _, h := range hooks(e.be.o) {
					for range 100 {
						if ok, err := ipt.Exists("filter", h[0], "-j", h[1]); err != nil || !ok {
							break
						}
						if err := ipt.Delete("filter", h[0], "-j", h[1]); err != nil {
							return err
						}
					}
					if err := ipt.ClearAndDeleteChain("filter", h[1]); err != nil {
						return err
					}
				}
				if err := ipt.ClearAndDeleteChain("filter", ChainDrop); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// Counter is the count of one drop rule.
type Counter struct {
	Chain   string // ChainIn, ChainOut or ChainFwd
	Addr    netip.Addr
	Packets uint64
	Bytes   uint64
}

// Counters reads the drop rules' counters (both families).
func (e *Enforcer) Counters(ctx context.Context) ([]Counter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Counter
	err := e.core.Do("counters", func(*enforce.Config) error {
		return e.be.do(func() error {
			for _, ipt := range e.be.ipt {
				for _, h := range hooks(e.be.o) {
					stats, err := ipt.StructuredStats("filter", h[1])
					if err != nil {
						return err
					}
					for _, s := range stats {
						n := s.Destination
						if h[1] == ChainIn || (h[1] == ChainFwd && s.Source != nil && s.Source.IP != nil && !s.Source.IP.IsUnspecified()) {
							n = s.Source
						}
						c := Counter{Chain: h[1], Packets: s.Packets, Bytes: s.Bytes}
						if n != nil {
							if a, ok := netip.AddrFromSlice(n.IP); ok {
								c.Addr = a.Unmap()
							}
						}
						out = append(out, c)
					}
				}
			}
			return nil
		})
	})
	return out, err
}

type backend struct {
	o   options
	ipt [2]*goipt.IPTables // IPv4, IPv6
}

func (b *backend) Close() error { return nil }

// do runs fn in the configured network namespace: on an OS thread that has
// entered it, so that the commands fn starts run there too.
func (b *backend) do(fn func() error) error {
	if b.o.netns == "" {
		return fn()
	}
	return netns.Do(b.o.netns, fn)
}

// restore runs (ip6)iptables-restore --noflush with data on its input.
func (b *backend) restore(v6 bool, data []byte) error {
	cmd := "iptables-restore"
	if v6 {
		cmd = "ip6tables-restore"
	}
	var out bytes.Buffer
	c := exec.Command(cmd, "--noflush", "--wait")
	c.Stdin = bytes.NewReader(data)
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Sync refills procwall's chains from cfg in one transaction per family and
// leaves exactly one jump from each built-in chain, first.
func (b *backend) Sync(cfg *enforce.Config) error {
	all := cfg.Addrs()
	return b.do(func() error {
		for i, ipt := range b.ipt {
			v6 := i == 1
			var buf bytes.Buffer
			if err := render(&buf, b.o, familyAddrs(all, v6), v6); err != nil {
				return err
			}
			// Chains that already hold exactly these rules are left
			// alone, so that their counters survive a restart.
			if !b.same(ipt, buf.String()) {
				if err := b.restore(v6, buf.Bytes()); err != nil {
					return err
				}
			}
			for _, h := range hooks(b.o) {
				if err := hook(ipt, h[0], h[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// same reports whether procwall's chains hold exactly the rules of the
// rendered file (in any order).
func (b *backend) same(ipt *goipt.IPTables, rendered string) bool {
	var want, have []string
	for _, l := range strings.Split(rendered, "\n") {
		if strings.HasPrefix(l, "-A ") {
			want = append(want, l)
		}
	}
	chains := []string{ChainIn, ChainOut, ChainDrop}
	if b.o.forward {
		chains = append(chains, ChainFwd)
	}
	for _, c := range chains {
		rules, err := ipt.List("filter", c)
		if err != nil {
			return false
		}
		for _, r := range rules {
			if strings.HasPrefix(r, "-A ") {
				have = append(have, r)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(have)
	return slices.Equal(want, have)
}

// hook leaves exactly one "-j to" rule in from, at the top.
func hook(ipt *goipt.IPTables, from, to string) error {
	rules, err := ipt.List("filter", from)
	if err != nil {
		return err
	}
	want := "-A " + from + " -j " + to
	var at []int
	n := 0
	for _, r := range rules {
		if !strings.HasPrefix(r, "-A ") {
			continue
		}
		n++
		if r == want {
			at = append(at, n)
		}
	}
	if len(at) == 1 && at[0] == 1 {
		return nil
	}
	for k := len(at) - 1; k >= 0; k-- {
		if err := ipt.DeleteById("filter", from, at[k]); err != nil {
			return err
		}
	}
	return ipt.Insert("filter", from, 1, "-j", to)
}

// Apply deletes and appends rules in one transaction per family.
// Deleting a rule by specification searches the chain, so deleting many
// is quadratic; past bulkDelete deletions the family's chains are
// refilled from the configuration instead (also one transaction).
const bulkDelete = 256

func (b *backend) Apply(add, del, _ []netip.Addr, cfg *enforce.Config) error {
	return b.do(func() error {
		for _, v6 := range []bool{false, true} {
			a, d := familyAddrs(add, v6), familyAddrs(del, v6)
			if len(a) == 0 && len(d) == 0 {
				continue
			}
			var buf bytes.Buffer
			var err error
			if len(d) > bulkDelete {
				err = render(&buf, b.o, familyAddrs(cfg.Addrs(), v6), v6)
			} else {
				err = renderDelta(&buf, b.o, a, d)
			}
			if err != nil {
				return err
			}
			if err := b.restore(v6, buf.Bytes()); err != nil {
				return err
			}
		}
		return nil
	})
}
