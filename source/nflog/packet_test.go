package nflog

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/procwall/procwall/source"
)

func ipv4(proto byte, src, dst string, sport, dport uint16, opts int) []byte {
	ihl := 20 + opts
	b := make([]byte, ihl+8)
	b[0] = 0x40 | byte(ihl/4)
	b[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[ihl:], sport)
	binary.BigEndian.PutUint16(b[ihl+2:], dport)
	return b
}

func ipv6(next byte, src, dst string, ext []byte, sport, dport uint16) []byte {
	b := make([]byte, 40, 40+len(ext)+8)
	b[0] = 0x60
	b[6] = next
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	b = append(b, ext...)
	var l4 [8]byte
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	return append(b, l4[:]...)
}

func TestParsePacket(t *testing.T) {
	f, err := parsePacket(ipv4(6, "198.51.100.2", "198.51.100.1", 40000, 443, 4))
	if err != nil {
		t.Fatal(err)
	}
	if f.proto != source.ProtoTCP || f.src != netip.MustParseAddrPort("198.51.100.2:40000") || f.dst != netip.MustParseAddrPort("198.51.100.1:443") {
		t.Fatalf("v4 tcp with options = %+v", f)
	}
	// IPv6 UDP behind a hop-by-hop header (8 bytes, next header UDP).
	hbh := []byte{17, 0, 0, 0, 0, 0, 0, 0}
	f, err = parsePacket(ipv6(0, "2001:db8::2", "2001:db8::1", hbh, 5353, 53))
	if err != nil {
		t.Fatal(err)
	}
	if f.proto != source.ProtoUDP || f.src != netip.MustParseAddrPort("[2001:db8::2]:5353") || f.dst != netip.MustParseAddrPort("[2001:db8::1]:53") {
		t.Fatalf("v6 udp = %+v", f)
	}
	// First fragment: ports present.
	frag := []byte{6, 0, 0, 1, 0, 0, 0, 9}
	if f, err = parsePacket(ipv6(44, "::1", "::1", frag, 1, 2)); err != nil || f.proto != source.ProtoTCP || f.dst.Port() != 2 {
		t.Fatalf("first fragment = %+v, %v", f, err)
	}

	bad := map[string][]byte{
		"empty":         nil,
		"short v4":      ipv4(6, "192.0.2.1", "192.0.2.2", 1, 2, 0)[:19],
		"bad ihl":       append([]byte{0x41}, make([]byte, 30)...),
		"v4 icmp":       ipv4(1, "192.0.2.1", "192.0.2.2", 1, 2, 0),
		"v4 no ports":   ipv4(17, "192.0.2.1", "192.0.2.2", 1, 2, 0)[:22],
		"short v6":      make([]byte, 39),
		"v6 later frag": ipv6(44, "::1", "::1", []byte{6, 0, 0, 0x10, 0, 0, 0, 9}, 1, 2),
		"truncated ext": ipv6(60, "::1", "::1", []byte{17, 5}, 1, 2)[:44],
		"version 5":     append([]byte{0x50}, make([]byte, 40)...),
	}
	fragV4 := ipv4(17, "192.0.2.1", "192.0.2.2", 1, 2, 0)
	binary.BigEndian.PutUint16(fragV4[6:], 100)
	bad["v4 later frag"] = fragV4
	bad["short v6"][0] = 0x60
	for name, b := range bad {
		if _, err := parsePacket(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzParsePacket: no input panics, and accepted packets are TCP or UDP.
func FuzzParsePacket(f *testing.F) {
	f.Add(ipv4(6, "198.51.100.2", "198.51.100.1", 40000, 443, 0))
	f.Add(ipv6(0, "2001:db8::2", "2001:db8::1", []byte{17, 0, 0, 0, 0, 0, 0, 0}, 1, 2))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := parsePacket(b)
		if err == nil && fl.proto != source.ProtoTCP && fl.proto != source.ProtoUDP {
			t.Fatalf("accepted protocol %v", fl.proto)
		}
	})
}
