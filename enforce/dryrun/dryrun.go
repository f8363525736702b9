package dryrun

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/procwall/procwall/enforce"
)

// Op is one change a real back-end would have made to its packet filter.
type Op struct {
	// Kind is "add" (start dropping Addrs) or "del" (stop dropping Addrs).
	Kind string
	// Block is the ID of the block whose Block or Release caused the change.
	Block string
	// Addrs are the addresses added to or removed from the drop set.
	Addrs []netip.Addr
}

// Enforcer is the dry-run back-end.
type Enforcer struct {
	mu        sync.Mutex
	cfg       *enforce.Config
	protected *enforce.Protected
	ops       []Op
	closed    bool
}

// Option configures an Enforcer.
type Option func(*Enforcer)

// WithProtected replaces the protected networks (default:
// enforce.DefaultProtected()).
func WithProtected(p *enforce.Protected) Option { return func(e *Enforcer) { e.protected = p } }

// New returns a dry-run enforcer with no blocks.
func New(opts ...Option) *Enforcer {
	e := &Enforcer{cfg: enforce.NewConfig(), protected: enforce.DefaultProtected()}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Name implements enforce.Enforcer.
func (e *Enforcer) Name() string { return "dryrun" }

// Block implements enforce.Enforcer.
func (e *Enforcer) Block(ctx context.Context, b enforce.Block) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("dryrun: block: %w", os.ErrClosed)
	}
	if err := e.protected.Check(b.Addrs); err != nil {
		return fmt.Errorf("dryrun: block %q: %w", b.ID, err)
	}
	added, err := e.cfg.Add(b)
	if err != nil {
		return fmt.Errorf("dryrun: %w", err)
	}
	if len(added) > 0 {
		e.ops = append(e.ops, Op{Kind: "add", Block: b.ID, Addrs: added})
	}
	return nil
}

// Release implements enforce.Enforcer.
func (e *Enforcer) Release(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("dryrun: release: %w", os.ErrClosed)
	}
	removed, _, err := e.cfg.Remove(id)
	if err != nil {
		return fmt.Errorf("dryrun: %w", err)
	}
	if len(removed) > 0 {
		e.ops = append(e.ops, Op{Kind: "del", Block: id, Addrs: removed})
	}
	return nil
}

// Blocks implements enforce.Enforcer.
func (e *Enforcer) Blocks(ctx context.Context) ([]enforce.Block, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("dryrun: blocks: %w", os.ErrClosed)
	}
	return e.cfg.Blocks(), nil
}

// Dropped returns the addresses a real back-end would drop now, sorted.
func (e *Enforcer) Dropped() []netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Addrs()
}

// Ops returns the changes recorded so far, oldest first.
func (e *Enforcer) Ops() []Op {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Op, len(e.ops))
	for i, op := range e.ops {
		op.Addrs = slices.Clone(op.Addrs)
		out[i] = op
	}
	return out
}

// Close implements enforce.Enforcer.
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}
