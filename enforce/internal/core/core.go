package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/procwall/procwall/enforce"
)

// Backend changes one packet filter.
type Backend interface {
	// Apply starts dropping add and stops dropping del (disjoint, sorted),
	// as one transaction where the filter allows it. touched are all the
	// addresses of the block being added or released (a superset of add
	// and del); cfg is the configuration after the change.
	Apply(add, del, touched []netip.Addr, cfg *enforce.Config) error
	// Sync makes the packet filter hold exactly cfg: everything procwall
	// owns in it is replaced.
	Sync(cfg *enforce.Config) error
	// Close releases the back-end's resources; the packet filter keeps
	// its rules.
	Close() error
}

// Core implements enforce.Enforcer over a Backend.
type Core struct {
	name   string
	mu     sync.Mutex
	cfg    *enforce.Config
	prot   *enforce.Protected
	state  string
	be     Backend
	closed bool
}

// Open loads the state file (if state is not empty), checks it against the
// protected set, and reconciles the back-end with it.
func Open(name, state string, prot *enforce.Protected, be Backend) (*Core, error) {
	c := &Core{name: name, prot: prot, state: state, be: be, cfg: enforce.NewConfig()}
	if state != "" {
		cfg, err := enforce.LoadConfig(state)
		if err != nil {
			return nil, c.err("open", "", err)
		}
		for _, b := range cfg.Blocks() {
			if err := prot.Check(b.Addrs); err != nil {
				return nil, c.err("open", b.ID, fmt.Errorf("state file %s: %w", state, err))
			}
		}
		c.cfg = cfg
	}
	if err := be.Sync(c.cfg); err != nil {
		return nil, c.err("reconcile", "", err)
	}
	return c, nil
}

func (c *Core) err(op, id string, err error) error {
	return &enforce.OpError{Backend: c.name, Op: op, ID: id, Err: err}
}

// Name implements enforce.Enforcer.
func (c *Core) Name() string { return c.name }

// Block implements enforce.Enforcer.
func (c *Core) Block(ctx context.Context, b enforce.Block) error {
	if err := ctx.Err(); err != nil {
		return c.err("block", b.ID, err)
	}
	if b.ID == "" {
		return c.err("block", "", errors.New("block has no id"))
	}
	for _, a := range b.Addrs {
		if !a.IsValid() {
			return c.err("block", b.ID, errors.New("invalid (zero) address"))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.err("block", b.ID, os.ErrClosed)
	}
	if err := c.prot.Check(b.Addrs); err != nil {
		return c.err("block", b.ID, err)
	}
	added, err := c.cfg.Add(b)
	if err != nil {
		if errors.Is(err, enforce.ErrExists) {
			err = enforce.ErrExists
		}
		return c.err("block", b.ID, err)
	}
	nb, _ := c.cfg.Get(b.ID)
	touched := nb.Addrs
	if err := c.be.Apply(added, nil, touched, c.cfg); err != nil {
		_, _, _ = c.cfg.Remove(b.ID)
		return c.err("block", b.ID, err)
	}
	if err := c.save(); err != nil {
		_, _, _ = c.cfg.Remove(b.ID)
		if rerr := c.be.Apply(nil, added, touched, c.cfg); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return c.err("block", b.ID, err)
	}
	return nil
}

// Release implements enforce.Enforcer.
func (c *Core) Release(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return c.err("release", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.err("release", id, os.ErrClosed)
	}
	removed, old, err := c.cfg.Remove(id)
	if err != nil {
		return c.err("release", id, enforce.ErrNotFound)
	}
	if err := c.be.Apply(nil, removed, old.Addrs, c.cfg); err != nil {
		_, _ = c.cfg.Add(old)
		return c.err("release", id, err)
	}
	if err := c.save(); err != nil {
		_, _ = c.cfg.Add(old)
		if rerr := c.be.Apply(removed, nil, old.Addrs, c.cfg); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return c.err("release", id, err)
	}
	return nil
}

// Blocks implements enforce.Enforcer.
func (c *Core) Blocks(ctx context.Context) ([]enforce.Block, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.err("blocks", "", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.err("blocks", "", os.ErrClosed)
	}
	return c.cfg.Blocks(), nil
}

// Config returns a copy of the interception configuration.
func (c *Core) Config() (*enforce.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.err("config", "", os.ErrClosed)
	}
	return c.cfg.Clone(), nil
}

// Do runs fn with the lock held, unless the Core is closed.
func (c *Core) Do(op string, fn func(cfg *enforce.Config) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.err(op, "", os.ErrClosed)
	}
	if err := fn(c.cfg); err != nil {
		return c.err(op, "", err)
	}
	return nil
}

// Close implements enforce.Enforcer. The packet filter keeps the blocks.
func (c *Core) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.err("close", "", os.ErrClosed)
	}
	c.closed = true
	if err := c.be.Close(); err != nil {
		return c.err("close", "", err)
	}
	return nil
}

func (c *Core) save() error {
	if c.state == "" {
		return nil
	}
	return c.cfg.Save(c.state)
}
