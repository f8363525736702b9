//go:build !linux

package nflog

import (
	"fmt"

	"github.com/procwall/procwall/source"
)

// Source reads outbound flows from NFLOG; it exists on Linux only.
type Source struct{}

var errNotSupported = fmt.Errorf("nflog: %w (needs linux)", source.ErrNotSupported)

// Open returns an error wrapping source.ErrNotSupported.
func Open(opts ...Option) (*Source, error) { return nil, errNotSupported }

// Name implements source.Source.
func (s *Source) Name() string { return "nflog" }

// Next returns an error wrapping source.ErrNotSupported.
func (s *Source) Next() (source.Event, error) { return source.Event{}, errNotSupported }

// Close does nothing.
func (s *Source) Close() error { return nil }

// Stats returns zero counters.
func (s *Source) Stats() Stats { return Stats{} }
