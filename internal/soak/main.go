//go:build linux

// Command soak runs a Protector on this host's real kernel sources under a
// sustained fork storm and connect storm, and reports whether it keeps up:
// events per second, losses and resyncs, heap, goroutines and open file
// descriptors over time. It is the documented load run of issue 11
// (figures in BENCHMARKS.md), not part of `go test`.
//
//	sudo go run ./internal/soak -duration 10m -forks 20000 -conns 20000
//
// The connect storm runs inside a network namespace it creates (and
// removes) against a listener on that namespace's loopback; the fork storm
// forks children that exit at once. Both are bounded by -duration.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/internal/netns"
	"github.com/procwall/procwall/internal/storm"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/ftrace"
	"github.com/procwall/procwall/source/procconn"
	"github.com/procwall/procwall/source/procfs"
)

var memprofile *string

func main() {
	duration := flag.Duration("duration", time.Minute, "how long to run")
	forks := flag.Int("forks", 20000, "target forks per second")
	conns := flag.Int("conns", 20000, "target TCP connections per second")
	every := flag.Duration("every", 10*time.Second, "sampling interval")
	memprofile = flag.String("memprofile", "", "write a heap profile here at the end")
	role := flag.String("role", "", "internal: \"connect\" runs the connect storm (in the namespace) against -addr")
	addr := flag.String("addr", "", "internal: the listener the connect storm dials")
	flag.Parse()
	if *role == "connect" {
		connectStorm(*addr, *conns, *duration)
		return
	}
	if err := run(*duration, *forks, *conns, *every); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type sample struct {
	at                 time.Duration
	events             uint64
	forks, conns       uint64
	heap               uint64
	goroutines, fds    int
	lost, resyncs      uint64
	live, assocs       int
	pcOverflow, ftLost uint64
}

func run(duration time.Duration, forkRate, connRate int, every time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ns := fmt.Sprintf("pw-soak-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up: %v: %s", err, out)
	}

	pc, err := procconn.Open()
	if err != nil {
		return err
	}
	ft, err := ftrace.Open()
	if err != nil {
		pc.Close()
		return err
	}
	pfs, err := procfs.NewFS(procfs.DefaultRoot)
	if err != nil {
		return err
	}
	observe := func() ([]proctree.Observed, error) {
		procs, err := pfs.Processes()
		if err != nil {
			return nil, err
		}
		out := make([]proctree.Observed, 0, len(procs))
		for _, p := range procs {
			out = append(out, proctree.Observed{PID: p.PID, PPID: p.PPID, Start: p.Start, Exe: p.Exe, Comm: p.Comm})
		}
		return out, nil
	}
	p, err := procwall.New(procwall.WithSources(pc, ft), procwall.WithResync(observe))
	if err != nil {
		return err
	}
	if obs, err := observe(); err == nil {
		p.Seed(time.Now(), obs)
	}
	rctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- p.Run(rctx) }()

	// The connect storm's listener, on the namespace's loopback.
	var ln net.Listener
	if err := inNetNS(ns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var nForks, nConns atomic.Uint64
	var wg sync.WaitGroup
	// Fork storm: bursts of one second each.
	if forkRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				pids, _ := storm.Parallel(forkRate, forkRate, 0, 2)
				nForks.Add(uint64(len(pids)))
			}
		}()
	}
	// Connect storm: a process of its own (this program again) inside the
	// namespace, reporting its running count on standard output.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cs := exec.CommandContext(rctx, "ip", "netns", "exec", ns, self, "-role", "connect",
		"-addr", ln.Addr().String(), "-conns", fmt.Sprint(connRate), "-duration", duration.String())
	csOut, err := cs.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cs.Start(); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(csOut)
		for sc.Scan() {
			if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				nConns.Store(n)
			}
		}
		cs.Wait()
	}()

	start := time.Now()
	var samples []sample
	var maxHeap uint64
	take := func() sample {
		// The live heap as the last collection marked it
		// (/gc/heap/live:bytes): HeapAlloc would also count what the agent
		// allocated since (tens of MB/s under this load). Two collections:
		// objects allocated while the first one marked survive it.
		runtime.GC()
		runtime.GC()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		m := p.Metrics()
		s := sample{at: time.Since(start), heap: live[0].Value.Uint64(), goroutines: runtime.NumGoroutine(), fds: countFDs(),
			forks: nForks.Load(), conns: nConns.Load(), resyncs: m.Resyncs, live: m.Tree.Live, assocs: m.Assoc.Associations,
			pcOverflow: pc.Stats().Overflows, ftLost: ft.Stats().Lost}
		for _, n := range m.Events {
			s.events += n
		}
		for _, n := range m.Lost {
			s.lost += n
		}
		// The heap profile of the largest sample, to see what holds it.
		if *memprofile != "" && s.heap > maxHeap {
			maxHeap = s.heap
			if f, err := os.Create(*memprofile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		return s
	}
	base := take()
	samples = append(samples, base)
	fmt.Printf("%8s %10s %9s %9s %10s %9s %5s %5s %7s %7s %9s %9s\n",
		"t", "events/s", "forks/s", "conns/s", "heap", "live", "gor", "fds", "lost", "resync", "pcOverfl", "ftLost")
	tk := time.NewTicker(every)
	defer tk.Stop()
loop:
	for {
		select {
		case <-rctx.Done():
			break loop
		case <-tk.C:
			s := take()
			prev := samples[len(samples)-1]
			dt := (s.at - prev.at).Seconds()
			fmt.Printf("%8s %10.0f %9.0f %9.0f %10d %9d %5d %5d %7d %7d %9d %9d\n", s.at.Round(time.Second),
				float64(s.events-prev.events)/dt, float64(s.forks-prev.forks)/dt, float64(s.conns-prev.conns)/dt,
				s.heap, s.live, s.goroutines, s.fds, s.lost, s.resyncs, s.pcOverflow, s.ftLost)
			samples = append(samples, s)
		}
	}
	wg.Wait()
	if err := <-runDone; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	end := samples[len(samples)-1]
	total := end.at.Seconds()
	fmt.Printf("\n%s: %.0f forks/s, %.0f connections/s, %.0f events/s applied; %d loss reports, %d resyncs\n",
		end.at.Round(time.Second), float64(end.forks)/total, float64(end.conns)/total, float64(end.events)/total, end.lost, end.resyncs)
	// Heap stability: the mean of the last quarter of the samples against
	// the mean of the quarter after warm-up, and the band of all of them.
	if n := len(samples); n >= 8 {
		mean := func(ss []sample) float64 {
			var t float64
			for _, s := range ss {
				t += float64(s.heap)
			}
			return t / float64(len(ss))
		}
		q := n / 4
		early, late := mean(samples[q:2*q]), mean(samples[n-q:])
		lo, hi := samples[q].heap, samples[q].heap
		for _, s := range samples[q:] {
			lo, hi = min(lo, s.heap), max(hi, s.heap)
		}
		fmt.Printf("heap after warm-up: mean %.1f MB early, %.1f MB late (%+.1f%%); band %.1f–%.1f MB\n",
			early/1e6, late/1e6, 100*(late-early)/early, float64(lo)/1e6, float64(hi)/1e6)
	}
	fmt.Printf("goroutines %d → %d, open fds %d → %d\n", base.goroutines, end.goroutines, base.fds, end.fds)
	return nil
}

// connectStorm dials addr at about rate per second for d, from several
// goroutines, printing the running count of connections every second.
func connectStorm(addr string, rate int, d time.Duration) {
	var n atomic.Uint64
	end := time.Now().Add(d)
	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per := time.Duration(float64(time.Second) * workers / float64(max(rate, 1)))
			next := time.Now()
			dl := net.Dialer{Timeout: time.Second}
			for time.Now().Before(end) {
				if c, err := dl.Dial("tcp", addr); err == nil {
					c.Close()
					n.Add(1)
				}
				next = next.Add(per)
				if w := time.Until(next); w > 0 {
					time.Sleep(w)
				} else if w < -time.Second {
					next = time.Now()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-done:
			fmt.Println(n.Load())
			return
		case <-tk.C:
			fmt.Println(n.Load())
		}
	}
}

// inNetNS runs fn on an OS thread inside the named namespace.
func inNetNS(name string, fn func() error) error { return netns.Do("/run/netns/"+name, fn) }

func countFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return -1
	}
	return len(names) - 1
}

var _ source.Source = (*procconn.Source)(nil)
