package sockdiag

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/source"
)

// BenchmarkSnapshot10k: a namespace holds 10,000 TCP sockets of this
// process (5,000 connections, both ends) plus a listener. It compares a
// dump with attribution against `ss -tanp` (and `ss -tan`, no process
// lookup) on the same sockets, run in the namespace by `ip netns exec`.
func BenchmarkSnapshot10k(b *testing.B) {
	privtest.Require(b, privtest.Command("ss"), privtest.Command("ip"))
	const conns = 5000
	ns := privtest.NewNetNS(b)
	var c *Conn
	err := ns.Do(func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		b.Cleanup(func() { l.Close() })
		accepted := make(chan error, 1)
		go func() {
			for range conns {
				a, err := l.Accept()
				if err != nil {
					accepted <- err
					return
				}
				b.Cleanup(func() { a.Close() })
			}
			accepted <- nil
		}()
		for range conns {
			d, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return err
			}
			b.Cleanup(func() { d.Close() })
		}
		if err := <-accepted; err != nil {
			return err
		}
		c, err = Dial()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })

	b.Run("sockdiag/dump", func(b *testing.B) {
		for b.Loop() {
			ss, err := c.Sockets()
			if err != nil {
				b.Fatal(err)
			}
			if len(ss) < 2*conns {
				b.Fatalf("%d sockets", len(ss))
			}
		}
		b.ReportMetric(2*conns, "sockets/op")
	})
	b.Run("sockdiag/snapshot-warm", func(b *testing.B) {
		if _, err := c.Snapshot(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			evs, err := c.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) != 2*conns {
				b.Fatalf("%d events, want %d", len(evs), 2*conns)
			}
		}
		b.ReportMetric(2*conns, "sockets/op")
	})
	b.Run("sockdiag/snapshot-cold", func(b *testing.B) {
		for b.Loop() {
			c.own = newOwners(c.cfg.procRoot)
			c.byCookie = nil
			evs, err := c.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) != 2*conns {
				b.Fatalf("%d events, want %d", len(evs), 2*conns)
			}
		}
		b.ReportMetric(2*conns, "sockets/op")
	})
	for _, args := range [][]string{{"ss", "-tanpH"}, {"ss", "-tanH"}} {
		b.Run(strings.Join(args, " "), func(b *testing.B) {
			for b.Loop() {
				out, err := ns.Run(args...)
				if err != nil {
					b.Fatal(err)
				}
				if n := strings.Count(out, "\n"); n < 2*conns {
					b.Fatalf("ss printed %d lines", n)
				}
			}
			b.ReportMetric(2*conns, "sockets/op")
		})
	}
}

// BenchmarkFindHolders: the per-packet attribution of the nflog source —
// an exact sock_diag lookup of a flow by its ends and the holder check —
// among 2,000 TCP sockets of this process in a namespace.
func BenchmarkFindHolders(b *testing.B) {
	privtest.Require(b, privtest.Command("ip"))
	const conns = 1000
	ns := privtest.NewNetNS(b)
	var c *Conn
	var flows [][2]netip.AddrPort
	err := ns.Do(func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		b.Cleanup(func() { l.Close() })
		go func() {
			for {
				a, err := l.Accept()
				if err != nil {
					return
				}
				b.Cleanup(func() { a.Close() })
			}
		}()
		for range conns {
			d, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return err
			}
			b.Cleanup(func() { d.Close() })
			flows = append(flows, [2]netip.AddrPort{
				d.LocalAddr().(*net.TCPAddr).AddrPort(), d.RemoteAddr().(*net.TCPAddr).AddrPort()})
		}
		c, err = Dial()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	i := 0
	for b.Loop() {
		f := flows[i%conns]
		i++
		s, err := c.Find(source.ProtoTCP, f[0], f[1])
		if err != nil {
			b.Fatal(err)
		}
		ids, err := c.Holders(s.Inode)
		if err != nil || len(ids) != 1 {
			b.Fatalf("holders %v, %v", ids, err)
		}
	}
	st := c.Stats()
	b.ReportMetric(float64(st.ProcScans), "procscans")
}
