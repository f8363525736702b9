//go:build linux

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/iptables"
	"github.com/procwall/procwall/enforce/nft"
	"github.com/procwall/procwall/internal/privtest"
)

// addrs returns n IPv4 addresses counting up from 10.0.0.1. They are only
// set elements and rules inside a namespace of the benchmark's own: no
// packet is sent to them.
func addrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range n {
		v := uint32(10<<24 | (i + 1))
		out[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return out
}

var sizes = []int{1, 1000, 100_000}

func BenchmarkBlock(b *testing.B) {
	privtest.Require(b, privtest.Command("nft"), privtest.Command("iptables-restore"))
	ctx := context.Background()
	for _, n := range sizes {
		as := addrs(n)
		b.Run(fmt.Sprintf("n=%d/backend=nft", n), func(b *testing.B) {
			ns := privtest.NewNetNS(b)
			f, err := ns.Open()
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			e, err := nft.New(nft.WithNetNSFd(int(f.Fd())))
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			i := 0
			for b.Loop() {
				id := fmt.Sprint(i)
				if err := e.Block(ctx, enforce.Block{ID: id, Addrs: as}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.Release(ctx, id); err != nil {
					b.Fatal(err)
				}
				i++
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
		})
		b.Run(fmt.Sprintf("n=%d/backend=nft-f", n), func(b *testing.B) {
			ns := privtest.NewNetNS(b)
			f, err := ns.Open()
			if err != nil {
				b.Fatal(err)
			}
			e, err := nft.New(nft.WithNetNSFd(int(f.Fd()))) // the same empty table
			if err != nil {
				b.Fatal(err)
			}
			e.Close()
			f.Close()
			// The same change as the back-end's Block: add the
			// elements to the existing set, one nft -f transaction.
			p := filepath.Join(b.TempDir(), "add.nft")
			w, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			bw := bufio.NewWriter(w)
			fmt.Fprintf(bw, "add element inet %s %s {", nft.DefaultTable, nft.Set4)
			for i, a := range as {
				if i > 0 {
					bw.WriteString(",")
				}
				if i%16 == 0 {
					bw.WriteString("\n")
				}
				bw.WriteString(a.String())
			}
			bw.WriteString("\n}\n")
			bw.Flush()
			w.Close()
			for b.Loop() {
				if _, err := ns.Run("nft", "-f", p); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				ns.MustRun("nft", "flush", "set", "inet", nft.DefaultTable, nft.Set4)
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
		})
		b.Run(fmt.Sprintf("n=%d/backend=iptables", n), func(b *testing.B) {
			if n > 10_000 && os.Getenv("PROCWALL_BENCH_IPTABLES_100K") != "1" {
				b.Skip("capped: the iptables back-end at 100k addresses (200k rules) takes several seconds per block; PROCWALL_BENCH_IPTABLES_100K=1 runs it")
			}
			ns := privtest.NewNetNS(b)
			e, err := iptables.New(iptables.WithNetNS(ns.Path))
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			i := 0
			for b.Loop() {
				id := fmt.Sprint(i)
				if err := e.Block(ctx, enforce.Block{ID: id, Addrs: as}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.Release(ctx, id); err != nil {
					b.Fatal(err)
				}
				i++
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
		})
	}
	// The iptables back-end at a size it can do in seconds, for the
	// trend.
	b.Run("n=10000/backend=iptables", func(b *testing.B) {
		ns := privtest.NewNetNS(b)
		e, err := iptables.New(iptables.WithNetNS(ns.Path))
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		as := addrs(10_000)
		i := 0
		for b.Loop() {
			id := fmt.Sprint(i)
			if err := e.Block(ctx, enforce.Block{ID: id, Addrs: as}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := e.Release(ctx, id); err != nil {
				b.Fatal(err)
			}
			i++
			b.StartTimer()
		}
		b.ReportMetric(float64(len(as))*float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
	})
}

// iperf runs a 1-second iperf3 TCP test over loopback in ns and returns
// the receiver's throughput in Gbit/s.
func iperf(b *testing.B, ns *privtest.NetNS) float64 {
	b.Helper()
	srv := ns.Command(context.Background(), "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "5301")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Kill() // by pid, if still running
		_ = srv.Wait()
	}()
	var out string
	var err error
	for range 50 { // wait for the server to listen (bounded)
		time.Sleep(50 * time.Millisecond)
		if out, err = ns.Run("iperf3", "-c", "127.0.0.1", "-p", "5301", "-t", "1", "-J"); err == nil {
			break
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		b.Fatal(err)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}

// BenchmarkLoopbackThroughput measures iperf3 TCP throughput over loopback
// in namespaces without procwall's rules, with the nft table and empty sets,
// with 100k addresses blocked by the nft back-end and with 10k by the
// iptables back-end (100k with PROCWALL_BENCH_IPTABLES_100K=1). Each
// iteration runs one iperf3 test in every namespace in turn, so that the
// machine's load drifts the same for all; the figures are Gbit/s per
// configuration and the ratio of each to the namespace without rules.
func BenchmarkLoopbackThroughput(b *testing.B) {
	privtest.Require(b, privtest.Command("nft"), privtest.Command("iptables-restore"), privtest.Command("iperf3"))
	ctx := context.Background()
	big := addrs(100_000)
	nIPT := 10_000
	iptName := "iptables-10k"
	if os.Getenv("PROCWALL_BENCH_IPTABLES_100K") == "1" {
		nIPT, iptName = 100_000, "iptables-100k"
	}
	nftIn := func(ns *privtest.NetNS, as []netip.Addr) {
		f, err := ns.Open()
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		e, err := nft.New(nft.WithNetNSFd(int(f.Fd())))
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		if err := e.Block(ctx, enforce.Block{ID: "big", Addrs: as}); err != nil {
			b.Fatal(err)
		}
	}
	type config struct {
		name string
		ns   *privtest.NetNS
		sum  float64
	}
	cs := []*config{{name: "none"}, {name: "nft-0"}, {name: "nft-100k"}, {name: iptName}}
	for _, c := range cs {
		c.ns = privtest.NewNetNS(b)
	}
	nftIn(cs[1].ns, nil)
	nftIn(cs[2].ns, big)
	e, err := iptables.New(iptables.WithNetNS(cs[3].ns.Path))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Block(ctx, enforce.Block{ID: "big", Addrs: big[:nIPT]}); err != nil {
		b.Fatal(err)
	}
	e.Close()
	for b.Loop() {
		for _, c := range cs {
			c.sum += iperf(b, c.ns)
		}
	}
	for _, c := range cs {
		b.ReportMetric(c.sum/float64(b.N), "Gbit/s:"+c.name)
		if c != cs[0] {
			b.ReportMetric(c.sum/cs[0].sum, "ratio:"+c.name)
		}
	}
}
