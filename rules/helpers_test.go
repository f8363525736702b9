package rules

import (
	"net/netip"
	"strings"
	"sync"
)

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
