//go:build linux

package nft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/internal/core"
)

// Enforcer is the nftables back-end. It implements enforce.Enforcer.
type Enforcer struct {
	core *core.Core
	be   *backend
}

var _ enforce.Enforcer = (*Enforcer)(nil)

// New connects to nftables, loads the state file and reconciles the kernel
// table with it (see the package documentation).
func New(opts ...Option) (*Enforcer, error) {
	o := newOptions(opts)
	if o.table == "" {
		return nil, &enforce.OpError{Backend: "nft", Op: "open", Err: fmt.Errorf("empty table name")}
	}
	be, err := newBackend(o)
	if err != nil {
		return nil, &enforce.OpError{Backend: "nft", Op: "open", Err: err}
	}
	c, err := core.Open("nft", o.state, o.prot, be)
	if err != nil {
		be.Close()
		return nil, err
	}
	return &Enforcer{core: c, be: be}, nil
}

// Name implements enforce.Enforcer: "nft".
func (e *Enforcer) Name() string { return "nft" }

// Block implements enforce.Enforcer.
func (e *Enforcer) Block(ctx context.Context, b enforce.Block) error { return e.core.Block(ctx, b) }

// Release implements enforce.Enforcer.
func (e *Enforcer) Release(ctx context.Context, id string) error { return e.core.Release(ctx, id) }

// Blocks implements enforce.Enforcer.
func (e *Enforcer) Blocks(ctx context.Context) ([]enforce.Block, error) { return e.core.Blocks(ctx) }

// Close implements enforce.Enforcer. The table and its blocks stay in the
// kernel.
func (e *Enforcer) Close() error { return e.core.Close() }

// Config returns a copy of the interception configuration.
func (e *Enforcer) Config() (*enforce.Config, error) { return e.core.Config() }

// Render writes the current configuration as an `nft -f` script (see the
// package-level Render).
func (e *Enforcer) Render(w io.Writer) error {
	return e.core.Do("render", func(cfg *enforce.Config) error { return Render(w, cfg, e.be.optList()...) })
}

// Remove deletes procwall's table from the kernel (every block stops) and
// closes the enforcer. The state file is left as it is.
func (e *Enforcer) Remove() error {
	err := e.core.Do("remove", func(*enforce.Config) error {
		e.be.conn.DelTable(e.be.table)
		return e.be.conn.Flush()
	})
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// Counter is the count of one drop rule.
type Counter struct {
	Chain string // "input", "output" or "forward"
	Set   string // Set4 or Set6
	// Field is "daddr" or "saddr".
	Field   string
	Packets uint64
	Bytes   uint64
}

// Counters reads the drop rules' counters from the kernel.
func (e *Enforcer) Counters(ctx context.Context) ([]Counter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Counter
	err := e.core.Do("counters", func(*enforce.Config) error {
		for _, ch := range chains(e.be.o) {
			rules, err := e.be.conn.GetRules(e.be.table, &nftables.Chain{Name: ch.name, Table: e.be.table})
			if err != nil {
				return fmt.Errorf("chain %s: %w", ch.name, err)
			}
			for _, r := range rules {
				c := Counter{Chain: ch.name}
				for _, x := range r.Exprs {
					switch x := x.(type) {
					case *expr.Lookup:
						c.Set = x.SetName
					case *expr.Payload:
						c.Field = "saddr"
						if x.Offset == 16 || x.Offset == 24 {
							c.Field = "daddr"
						}
					case *expr.Counter:
						c.Packets, c.Bytes = x.Packets, x.Bytes
					}
				}
				out = append(out, c)
			}
		}
		return nil
	})
	return out, err
}

type backend struct {
	o     options
	conn  *nftables.Conn
	table *nftables.Table
	sets  [2]*nftables.Set // IPv4, IPv6
	fast  *elemBatch
}

func (b *backend) optList() []Option {
	return []Option{func(o *options) { *o = b.o }}
}

func newBackend(o options) (*backend, error) {
	copts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
	if o.netnsFd >= 0 {
		copts = append(copts, nftables.WithNetNSFd(o.netnsFd))
	}
	conn, err := nftables.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	fast, err := newElemBatch(o.netnsFd, o.table, o.chunk)
	if err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	t := &nftables.Table{Name: o.table, Family: nftables.TableFamilyINet}
	b := &backend{o: o, conn: conn, table: t, fast: fast}
	// Set IDs are chosen here rather than by the library, whose counter
	// is shared by every connection.
	b.sets[0] = &nftables.Set{Table: t, ID: 1, Name: Set4, KeyType: nftables.TypeIPAddr, HasTimeout: o.timeouts}
	b.sets[1] = &nftables.Set{Table: t, ID: 2, Name: Set6, KeyType: nftables.TypeIP6Addr, HasTimeout: o.timeouts}
	return b, nil
}

// bigBuffers lets one batch carry many thousands of set elements, as nft
// does: the send buffer limit is raised past net.core.wmem_max (the
// process has CAP_NET_ADMIN anyway).
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20); e != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<20)
		}
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	})
	if err != nil {
		return err
	}
	return serr
}

func (b *backend) Close() error {
	return errors.Join(b.fast.Close(), b.conn.CloseLasting())
}

// Sync makes the table hold exactly cfg. When the table's sets, chains and
// rules are procwall's as configured, only the set elements that differ
// are added and deleted (counters survive a restart); otherwise the table
// is deleted and rebuilt. Either way it is one batch.
func (b *backend) Sync(cfg *enforce.Config) error {
	if !b.o.timeouts && b.intact() {
		want := cfg.Addrs()
		have, err := b.elements()
		if err == nil {
			add, del := diff(want, have)
			return b.Apply(add, del, nil, cfg)
		}
	}
	return b.rebuild(cfg)
}

// diff returns the addresses of want not in have, and of have not in want.
func diff(want, have []netip.Addr) (add, del []netip.Addr) {
	hs := make(map[netip.Addr]bool, len(have))
	for _, a := range have {
		hs[a] = true
	}
	for _, a := range want {
		if !hs[a] {
			add = append(add, a)
		}
		delete(hs, a)
	}
	for _, a := range have {
		if hs[a] {
			del = append(del, a)
			delete(hs, a) // a duplicate is deleted once
		}
	}
	return add, del
}

// elements reads the addresses in both sets.
func (b *backend) elements() ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range b.sets {
		els, err := b.conn.GetSetElements(s)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			a, ok := netip.AddrFromSlice(e.Key)
			if !ok {
				return nil, fmt.Errorf("set %s: element of %d bytes", s.Name, len(e.Key))
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// intact reports whether the table exists with exactly the sets, chains
// and rules the options call for.
func (b *backend) intact() bool {
	sets, err := b.conn.GetSets(b.table)
	if err != nil || len(sets) != len(b.sets) {
		return false
	}
	for _, s := range sets {
		var want *nftables.Set
		for _, w := range b.sets {
			if w.Name == s.Name {
				want = w
			}
		}
		if want == nil || s.KeyType.Name != want.KeyType.Name || s.Interval || s.HasTimeout != b.o.timeouts || s.Constant || s.IsMap {
			return false
		}
	}
	all, err := b.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false
	}
	var chs []*nftables.Chain
	for _, c := range all {
		if c.Table.Name == b.table.Name {
			chs = append(chs, c)
		}
	}
	specs := chains(b.o)
	if len(chs) != len(specs) {
		return false
	}
	for _, spec := range specs {
		var ch *nftables.Chain
		for _, c := range chs {
			if c.Name == spec.name {
				ch = c
			}
		}
		if ch == nil || ch.Hooknum == nil || *ch.Hooknum != *hookOf(spec.name) || ch.Priority == nil ||
			int32(*ch.Priority) != b.o.priority || ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept || ch.Type != nftables.ChainTypeFilter {
			return false
		}
		rules, err := b.conn.GetRules(b.table, ch)
		if err != nil || len(rules) != len(spec.rules) {
			return false
		}
		for i, r := range rules {
			if signature(r.Exprs) != signature(b.ruleExprs(spec.rules[i])) {
				return false
			}
		}
	}
	return true
}

// signature describes a rule's expressions by what matters to procwall
// (not counter values or kernel-assigned IDs).
func signature(xs []expr.Any) string {
	var sb strings.Builder
	for _, x := range xs {
		switch x := x.(type) {
		case *expr.Meta:
			fmt.Fprintf(&sb, "meta %d r%d;", x.Key, x.Register)
		case *expr.Cmp:
			fmt.Fprintf(&sb, "cmp %d r%d %x;", x.Op, x.Register, x.Data)
		case *expr.Payload:
			fmt.Fprintf(&sb, "payload %d %d %d r%d;", x.Base, x.Offset, x.Len, x.DestRegister)
		case *expr.Lookup:
			fmt.Fprintf(&sb, "lookup %s r%d %v;", x.SetName, x.SourceRegister, x.Invert)
		case *expr.Counter:
			sb.WriteString("counter;")
		case *expr.Log:
			fmt.Fprintf(&sb, "log %d %q;", x.Group, x.Data)
		case *expr.Verdict:
			fmt.Fprintf(&sb, "verdict %d %s;", x.Kind, x.Chain)
		default:
			fmt.Fprintf(&sb, "%T;", x)
		}
	}
	return sb.String()
}

func hookOf(name string) *nftables.ChainHook {
	return map[string]*nftables.ChainHook{
		"input":   nftables.ChainHookInput,
		"output":  nftables.ChainHookOutput,
		"forward": nftables.ChainHookForward,
	}[name]
}

// rebuild deletes and rebuilds the table with cfg's addresses, in one
// batch.
func (b *backend) rebuild(cfg *enforce.Config) error {
	c := b.conn
	c.AddTable(b.table) // so that the delete cannot fail
	c.DelTable(b.table)
	c.AddTable(b.table)
	for _, s := range b.sets {
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	all := cfg.Addrs()
	var exp map[netip.Addr]time.Duration
	if b.o.timeouts {
		exp = timeouts(cfg, all, time.Now())
		all = slicesDeleteExpired(all, exp)
	}
	if err := b.queue(all, nil, exp); err != nil {
		return err
	}
	pol := nftables.ChainPolicyAccept
	for _, ch := range chains(b.o) {
		hook := hookOf(ch.name)
		chain := c.AddChain(&nftables.Chain{
			Name: ch.name, Table: b.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(b.o.priority)), Policy: &pol,
		})
		for _, r := range ch.rules {
			c.AddRule(&nftables.Rule{Table: b.table, Chain: chain, Exprs: b.ruleExprs(r)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("rebuild table inet %s: %w", b.table.Name, err)
	}
	return nil
}

func (b *backend) ruleExprs(r rule) []expr.Any {
	proto, set := byte(unix.NFPROTO_IPV4), b.sets[0]
	off, n := uint32(12), uint32(4) // IPv4 saddr
	if r.v6 {
		proto, set = unix.NFPROTO_IPV6, b.sets[1]
		off, n = 8, 16
	}
	if r.daddr {
		off += n
	}
	xs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
	}
	if b.o.nflog {
		xs = append(xs, &expr.Log{
			Key:   1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX,
			Group: b.o.group,
			Data:  []byte(b.o.prefix),
		})
	}
	return append(xs, &expr.Verdict{Kind: expr.VerdictDrop})
}

// queue adds element changes to the pending batch, split into messages of
// at most chunk elements.
func (b *backend) queue(add, del []netip.Addr, exp map[netip.Addr]time.Duration) error {
	for _, op := range []struct {
		addrs []netip.Addr
		fn    func(*nftables.Set, []nftables.SetElement) error
	}{{del, b.conn.SetDeleteElements}, {add, b.conn.SetAddElements}} {
		if len(op.addrs) == 0 {
			continue
		}
		n4 := 0
		for _, a := range op.addrs {
			if a.Is4() {
				n4++
			}
		}
		els := [2][]nftables.SetElement{make([]nftables.SetElement, 0, n4), make([]nftables.SetElement, 0, len(op.addrs)-n4)}
		for _, a := range op.addrs {
			i := 0
			if !a.Is4() {
				i = 1
			}
			els[i] = append(els[i], nftables.SetElement{Key: a.AsSlice(), Timeout: max(exp[a], 0)})
		}
		for i, s := range b.sets {
			for e := els[i]; len(e) > 0; {
				n := min(len(e), b.o.chunk)
				if err := op.fn(s, e[:n]); err != nil {
					return err
				}
				e = e[n:]
			}
		}
	}
	return nil
}

// Apply changes the sets' elements in one batch.
func (b *backend) Apply(add, del, touched []netip.Addr, cfg *enforce.Config) error {
	var exp map[netip.Addr]time.Duration
	if b.o.timeouts {
		// Every address of the block may have a new timeout: destroy
		// (no error if the kernel already timed it out) and add back
		// those still held and not yet expired, in the same batch.
		del = append(slices.Clone(del), touched...)
		add = nil
		var held []netip.Addr
		for _, a := range touched {
			if cfg.Holds(a) > 0 {
				held = append(held, a)
			}
		}
		exp = timeouts(cfg, held, time.Now())
		add = slicesDeleteExpired(held, exp)
		del = enforce.SortAddrs(del)
	}
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	if err := b.fast.apply(byFamily(add), byFamily(del), [2]string{Set4, Set6}, exp, b.o.timeouts); err != nil {
		return fmt.Errorf("update sets of table inet %s: %w", b.table.Name, err)
	}
	return nil
}

func byFamily(as []netip.Addr) [2][]netip.Addr {
	n4 := 0
	for _, a := range as {
		if a.Is4() {
			n4++
		}
	}
	out := [2][]netip.Addr{make([]netip.Addr, 0, n4), make([]netip.Addr, 0, len(as)-n4)}
	for _, a := range as {
		if a.Is4() {
			out[0] = append(out[0], a)
		} else {
			out[1] = append(out[1], a)
		}
	}
	return out
}
