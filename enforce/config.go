package enforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ConfigVersion is the version of the persisted interception configuration
// document.
const ConfigVersion = 1

// Config is the interception configuration: the declarative set of active
// blocks. The addresses to drop are the union of the blocks' addresses; an
// address stays dropped while any block holds it. Back-ends render a Config
// for their packet filter, persist it with Save and reconcile the kernel
// against it at start-up.
//
// A Config is a plain value and not safe for concurrent use.
type Config struct {
	blocks map[string]*Block
	holds  map[netip.Addr]int // address -> number of blocks holding it
}

// NewConfig returns an empty configuration.
func NewConfig() *Config {
	return &Config{blocks: make(map[string]*Block), holds: make(map[netip.Addr]int)}
}

// Len returns the number of active blocks.
func (c *Config) Len() int { return len(c.blocks) }

// Get returns the block with that ID.
func (c *Config) Get(id string) (Block, bool) {
	b, ok := c.blocks[id]
	if !ok {
		return Block{}, false
	}
	return cloneBlock(*b), true
}

// Add adds a block. Its addresses are sorted and deduplicated. It returns
// the addresses that were not dropped before and are now (those the packet
// filter must add). A block with an active ID or without an ID is an error.
func (c *Config) Add(b Block) (added []netip.Addr, err error) {
	if b.ID == "" {
		return nil, fmt.Errorf("block has no id")
	}
	if _, ok := c.blocks[b.ID]; ok {
		return nil, fmt.Errorf("block %q: %w", b.ID, ErrExists)
	}
	b = cloneBlock(b)
	b.Addrs = SortAddrs(b.Addrs)
	for _, a := range b.Addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("block %q: invalid address", b.ID)
		}
	}
	for _, a := range b.Addrs {
		if c.holds[a] == 0 {
			added = append(added, a)
		}
		c.holds[a]++
	}
	c.blocks[b.ID] = &b
	return added, nil
}

// Remove removes the block with that ID and returns it with the addresses
// that no block holds any more (those the packet filter must remove).
func (c *Config) Remove(id string) (removed []netip.Addr, b Block, err error) {
	p, ok := c.blocks[id]
	if !ok {
		return nil, Block{}, fmt.Errorf("block %q: %w", id, ErrNotFound)
	}
	delete(c.blocks, id)
	for _, a := range p.Addrs {
		c.holds[a]--
		if c.holds[a] <= 0 {
			delete(c.holds, a)
			removed = append(removed, a)
		}
	}
	return removed, *p, nil
}

// Holds reports how many active blocks hold a.
func (c *Config) Holds(a netip.Addr) int { return c.holds[a.Unmap()] }

// Addrs returns every dropped address, sorted.
func (c *Config) Addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(c.holds))
	for a := range c.holds {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// Blocks returns the active blocks sorted by ID.
func (c *Config) Blocks() []Block {
	out := make([]Block, 0, len(c.blocks))
	for _, b := range c.blocks {
		out = append(out, cloneBlock(*b))
	}
	slices.SortFunc(out, func(a, b Block) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Expired returns the IDs of blocks whose Expires is set and not after now,
// sorted.
func (c *Config) Expired(now time.Time) []string {
	var ids []string
	for id, b := range c.blocks {
		if !b.Expires.IsZero() && !b.Expires.After(now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	n := NewConfig()
	for _, b := range c.Blocks() {
		_, _ = n.Add(b)
	}
	return n
}

func cloneBlock(b Block) Block {
	b.Addrs = slices.Clone(b.Addrs)
	return b
}

type configDoc struct {
	Version int     `json:"version"`
	Blocks  []Block `json:"blocks"`
}

// MarshalJSON encodes the configuration as a versioned document.
func (c *Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configDoc{Version: ConfigVersion, Blocks: c.Blocks()})
}

// UnmarshalJSON decodes a document written by MarshalJSON, replacing c's
// contents.
func (c *Config) UnmarshalJSON(data []byte) error {
	var doc configDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("interception configuration: %w", err)
	}
	if doc.Version != ConfigVersion {
		return fmt.Errorf("interception configuration: version %d, want %d", doc.Version, ConfigVersion)
	}
	n := NewConfig()
	for i, b := range doc.Blocks {
		if _, err := n.Add(b); err != nil {
			return fmt.Errorf("interception configuration: blocks[%d]: %w", i, err)
		}
	}
	*c = *n
	return nil
}

// Save writes the configuration to path atomically: a temporary file in the
// same directory is written and synced, then renamed over path, and the
// directory is synced. A crash leaves either the old or the new document.
func (c *Config) Save(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save interception configuration: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("save interception configuration: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save interception configuration: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save interception configuration: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save interception configuration: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save interception configuration: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadConfig reads a configuration saved by Save. A missing file is an
// empty configuration and no error.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return NewConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("load interception configuration: %w", err)
	}
	c := NewConfig()
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
