//go:build !linux

package fanotify

import (
	"fmt"

	"github.com/procwall/procwall/source"
)

// Guard is not available on this operating system.
type Guard struct{}

// Open returns an error wrapping source.ErrNotSupported off Linux.
func Open(cfg Config) (*Guard, error) {
	return nil, fmt.Errorf("fanotify: %w", source.ErrNotSupported)
}

// Serve returns source.ErrNotSupported.
func (g *Guard) Serve(judge JudgeFunc) error { return source.ErrNotSupported }

// Close does nothing.
func (g *Guard) Close() error { return nil }

// Stats returns zeros.
func (g *Guard) Stats() Stats { return Stats{} }
