package enforcetest_test

import "net/netip"

type netipAddr = netip.Addr

func parse(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}
