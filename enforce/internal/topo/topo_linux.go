//go:build linux

package topo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/privtest"
)

// Port is the TCP and UDP port the server answers on.
const Port = 7007

// Server addresses.
var (
	V4a = netip.MustParseAddr("198.51.100.2")
	V4b = netip.MustParseAddr("198.51.100.3")
	V6a = netip.MustParseAddr("2001:db8::2")
	V6b = netip.MustParseAddr("2001:db8::3")
)

// Topo is the pair of namespaces.
type Topo struct {
	Client, Server *privtest.NetNS
}

// New builds the topology and starts the servers; cleanup removes it.
func New(t *testing.T) *Topo {
	t.Helper()
	c, s := privtest.NewNetNS(t), privtest.NewNetNS(t)
	ifc, ifs := privtest.Veth(t, c, s, "198.51.100.1/24", "198.51.100.2/24")
	s.AddAddr(ifs, "198.51.100.3/24")
	c.AddAddr(ifc, "2001:db8::1/64")
	s.AddAddr(ifs, "2001:db8::2/64")
	s.AddAddr(ifs, "2001:db8::3/64")
	var closers []io.Closer
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	})
	err := s.Do(func() error {
		for _, a := range []netip.Addr{V4a, V4b, V6a, V6b} {
			ap := netip.AddrPortFrom(a, Port).String()
			ln, err := net.Listen("tcp", ap)
			if err != nil {
				return err
			}
			pc, err := net.ListenPacket("udp", ap)
			if err != nil {
				ln.Close()
				return err
			}
			closers = append(closers, ln, pc)
			wg.Go(func() { serveTCP(ln) })
			wg.Go(func() { serveUDP(pc) })
		}
		return nil
	})
	if err != nil {
		t.Fatalf("start servers: %v", err)
	}
	return &Topo{Client: c, Server: s}
}

func serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err == nil {
				_, _ = c.Write(buf[:n])
			}
		}()
	}
}

func serveUDP(pc net.PacketConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// Timeout bounds one request.
const Timeout = time.Second

// Reach sends one echo request over proto ("tcp" or "udp") from the client
// namespace to a and returns nil if the answer came back.
func (tp *Topo) Reach(proto string, a netip.Addr) error {
	return tp.Client.Do(func() error {
		c, err := net.DialTimeout(proto, netip.AddrPortFrom(a, Port).String(), Timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(Timeout))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 8)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "ping" {
			return errors.New("bad echo")
		}
		return nil
	})
}

// Expect checks that the client reaches exactly the server addresses not
// in blocked, over TCP and UDP.
func (tp *Topo) Expect(t *testing.T, blocked ...netip.Addr) {
	t.Helper()
	for _, a := range []netip.Addr{V4a, V4b, V6a, V6b} {
		isBlocked := false
		for _, b := range blocked {
			isBlocked = isBlocked || b == a
		}
		for _, proto := range []string{"tcp", "udp"} {
			err := tp.Reach(proto, a)
			switch {
			case isBlocked && err == nil:
				t.Errorf("%s to %s got through, want it blocked", proto, a)
			case !isBlocked && err != nil:
				t.Errorf("%s to %s: %v, want it to get through", proto, a, err)
			}
		}
	}
}

// String describes the topology.
func (tp *Topo) String() string {
	return fmt.Sprintf("client %s, server %s", tp.Client.Name, tp.Server.Name)
}
