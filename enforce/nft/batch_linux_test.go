//go:build linux

package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/enforce/enforcetest"
)

// dumpBatch describes a marshalled nfnetlink batch one message per line,
// with its attributes as nested hex, for golden files.
func dumpBatch(b []byte) string {
	var sb strings.Builder
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b))
		typ, flags, seq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
		fmt.Fprintf(&sb, "msg type=%#04x flags=%#04x seq=%d nfgen=% x\n", typ, flags, seq, b[16:20])
		dumpAttrs(&sb, b[20:l], 1)
		b = b[(l+3)&^3:]
	}
	return sb.String()
}

func dumpAttrs(sb *strings.Builder, b []byte, depth int) {
	for len(b) >= 4 {
		l, typ := int(ne.Uint16(b)), ne.Uint16(b[2:])
		if l < 4 || l > len(b) {
			fmt.Fprintf(sb, "%sBAD ATTRIBUTE % x\n", strings.Repeat("  ", depth), b)
			return
		}
		ind := strings.Repeat("  ", depth)
		if typ&unix.NLA_F_NESTED != 0 {
			fmt.Fprintf(sb, "%sattr %d nested\n", ind, typ&^unix.NLA_F_NESTED)
			dumpAttrs(sb, b[4:l], depth+1)
		} else {
			fmt.Fprintf(sb, "%sattr %d % x\n", ind, typ, b[4:l])
		}
		b = b[(l+3)&^3:]
	}
}

// TestBatchGolden pins the bytes the back-end sends for a change: deletes
// before adds, per family, chunked, with timeouts, and the batch framing.
func TestBatchGolden(t *testing.T) {
	e := &elemBatch{table: "procwall", chunk: 2}
	as := func(ss ...string) []netip.Addr { return addrs(ss...) }
	add := [2][]netip.Addr{as("192.0.2.1", "198.51.100.2", "203.0.113.9"), as("2001:db8::2")}
	del := [2][]netip.Addr{as("198.51.100.7"), nil}
	exp := map[netip.Addr]time.Duration{netip.MustParseAddr("2001:db8::2"): 90 * time.Second}
	var sb strings.Builder
	for _, destroy := range []bool{false, true} {
		n, err := e.build(add, del, [2]string{Set4, Set6}, exp, destroy)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "# destroy=%v: %d messages answered\n%s", destroy, n, dumpBatch(e.buf))
		e.seq = 0
	}
	enforcetest.Golden(t, "batch.golden", sb.String())
}
