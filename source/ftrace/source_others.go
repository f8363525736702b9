//go:build !linux

package ftrace

import (
	"fmt"
	"runtime"

	"github.com/procwall/procwall/source"
)

// Source reads process and connection events from tracefs. On this
// operating system it is never returned: Open fails.
type Source struct{}

// Open returns an error wrapping source.ErrNotSupported: tracefs is Linux's.
func Open(opts ...Option) (*Source, error) {
	return nil, fmt.Errorf("ftrace: %s: %w", runtime.GOOS, source.ErrNotSupported)
}

// Probe returns an error wrapping source.ErrNotSupported.
func Probe(root string, f Feature) error {
	return fmt.Errorf("ftrace probe %v: %s: %w", f, runtime.GOOS, source.ErrNotSupported)
}

// Name implements source.Source.
func (s *Source) Name() string { return "ftrace" }

// Next implements source.Source.
func (s *Source) Next() (source.Event, error) { return source.Event{}, source.ErrNotSupported }

// Close implements source.Source.
func (s *Source) Close() error { return nil }

// Mode returns ModeAuto.
func (s *Source) Mode() Mode { return ModeAuto }

// Instance returns "".
func (s *Source) Instance() string { return "" }

// Lost returns 0.
func (s *Source) Lost() uint64 { return 0 }

// Stats returns zero counters.
func (s *Source) Stats() Stats { return Stats{} }
