//go:build !linux

package procconn

import (
	"fmt"
	"iter"

	"github.com/procwall/procwall/source"
)

// Source is the proc connector event source. It exists only on Linux;
// elsewhere [Open] returns an error wrapping source.ErrNotSupported.
type Source struct{}

// Open fails: the proc connector is a Linux interface.
func Open(opts ...Option) (*Source, error) {
	return nil, fmt.Errorf("procconn: open: %w", source.ErrNotSupported)
}

// Name implements source.Source.
func (s *Source) Name() string { return "procconn" }

// Next implements source.Source.
func (s *Source) Next() (source.Event, error) {
	return source.Event{}, fmt.Errorf("procconn: read: %w", source.ErrNotSupported)
}

// Resync fails: the proc connector is a Linux interface.
func (s *Source) Resync(known iter.Seq[source.ProcID]) (Diff, error) {
	return Diff{}, fmt.Errorf("procconn: resync: %w", source.ErrNotSupported)
}

// Close implements source.Source.
func (s *Source) Close() error { return nil }

// Stats returns the source's counters.
func (s *Source) Stats() Stats { return Stats{} }
