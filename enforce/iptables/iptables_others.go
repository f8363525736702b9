//go:build !linux

package iptables

import (
	"context"
	"io"
	"net/netip"

	"github.com/procwall/procwall/enforce"
)

// Enforcer is the iptables back-end; on this system New fails.
type Enforcer struct{}

// New returns ErrNotSupported on this system.
func New(opts ...Option) (*Enforcer, error) { return nil, ErrNotSupported }

// Name implements enforce.Enforcer.
func (e *Enforcer) Name() string { return "iptables" }

// Block implements enforce.Enforcer.
func (e *Enforcer) Block(context.Context, enforce.Block) error { return ErrNotSupported }

// Release implements enforce.Enforcer.
func (e *Enforcer) Release(context.Context, string) error { return ErrNotSupported }

// Blocks implements enforce.Enforcer.
func (e *Enforcer) Blocks(context.Context) ([]enforce.Block, error) { return nil, ErrNotSupported }

// Close implements enforce.Enforcer.
func (e *Enforcer) Close() error { return ErrNotSupported }

// Config returns ErrNotSupported.
func (e *Enforcer) Config() (*enforce.Config, error) { return nil, ErrNotSupported }

// Render returns ErrNotSupported.
func (e *Enforcer) Render(io.Writer, bool) error { return ErrNotSupported }

// Remove returns ErrNotSupported.
func (e *Enforcer) Remove() error { return ErrNotSupported }

// Counter is the count of one drop rule.
type Counter struct {
	Chain          string
	Addr           netip.Addr
	Packets, Bytes uint64
}

// Counters returns ErrNotSupported.
func (e *Enforcer) Counters(context.Context) ([]Counter, error) { return nil, ErrNotSupported }
