//go:build linux

// Command soak runs a Protector on this host's real kernel sources under a
// sustained fork storm and connect storm, and reports whether it keeps up:
// what the storms made and what the Protector applied (process events and
// connects, per second), losses and resyncs, the live heap, the tree's
// size, goroutines and open file descriptors over time, and at the end
// whether every goroutine and descriptor the agent opened is gone. It is
// the documented load run of issue 11 (figures in BENCHMARKS.md), not part
// of `go test`.
//
//	sudo go run ./internal/soak -duration 10m -forks 20000 -conns 20000
//
// Both storms are processes of their own (this program again, with -role),
// so the agent's process holds only the agent. The fork storm forks
// children that exit at once. The connect storm runs inside a network
// namespace the program creates (and removes), listening on that
// namespace's loopback and dialing itself with reset-closed connections.
// Both are bounded by -duration.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall"
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
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the agent's process here")
	dialers := flag.Int("dialers", 4, "connect-storm dialing threads")
	role := flag.String("role", "", "internal: \"connect\" runs the connect storm (in the namespace), \"fork\" the fork storm")
	flag.Parse()
	switch *role {
	case "connect":
		if err := connectStorm(*conns, *dialers, *duration); err != nil {
			fmt.Fprintln(os.Stderr, "soak: connect storm:", err)
			os.Exit(1)
		}
		return
	case "fork":
		forkStorm(*forks, *duration)
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := run(*duration, *forks, *conns, *dialers, *every); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type sample struct {
	at                 time.Duration
	events             uint64 // events applied, all sources
	procEvents         uint64 // fork, exec and exit events applied (both sources)
	connects           uint64 // connect events applied
	forks, conns       uint64 // what the storms made
	heap               uint64
	goroutines, fds    int
	lost, resyncs      uint64
	live, exited       int // processes in the tree: running, and exited but not yet reaped
	assocs             int
	pcOverflow, ftLost uint64
}

func run(duration time.Duration, forkRate, connRate, dialers int, every time.Duration) error {
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

	// Before anything of the agent exists: its goroutines and descriptors
	// must be back to these once it has shut down.
	gor0, fds0 := runtime.NumGoroutine(), countFDs()
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
	// What the agent applied, by kind: the storms' own counts say what was
	// made, these say what the Protector saw of it.
	var nProc, nConnect atomic.Uint64
	hook := func(_ string, ev *source.Event) {
		switch ev.Kind {
		case source.KindFork, source.KindExec, source.KindExit:
			nProc.Add(1)
		case source.KindConnect:
			nConnect.Add(1)
		}
	}
	p, err := procwall.New(procwall.WithSources(pc, ft), procwall.WithResync(observe), procwall.WithEventHook(hook))
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

	// The storms run as processes of their own (this program again), so the
	// agent's process holds only the agent: the fork storm on the host, the
	// connect storm (listener and dialers) inside the namespace. Each
	// prints its running count every second.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var nForks, nConns atomic.Uint64
	var wg sync.WaitGroup
	spawn := func(count *atomic.Uint64, name string, args ...string) error {
		cmd := exec.CommandContext(rctx, name, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					count.Store(n)
				}
			}
			cmd.Wait()
		}()
		return nil
	}
	if forkRate > 0 {
		if err := spawn(&nForks, self, "-role", "fork", "-forks", fmt.Sprint(forkRate), "-duration", duration.String()); err != nil {
			return err
		}
	}
	if connRate > 0 {
		if err := spawn(&nConns, "ip", "netns", "exec", ns, self, "-role", "connect",
			"-conns", fmt.Sprint(connRate), "-dialers", fmt.Sprint(dialers), "-duration", duration.String()); err != nil {
			return err
		}
	}

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
			procEvents: nProc.Load(), connects: nConnect.Load(),
			forks: nForks.Load(), conns: nConns.Load(), resyncs: m.Resyncs, live: m.Tree.Live, exited: m.Tree.Exited, assocs: m.Assoc.Associations,
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
	fmt.Printf("%8s %9s %9s %9s %9s %9s %10s %6s %7s %4s %4s %5s %6s %8s %7s\n",
		"t", "events/s", "proc/s", "connect/s", "forks/s", "conns/s", "heap", "live", "exited", "gor", "fds", "lost", "resync", "pcOverfl", "ftLost")
	tk := time.NewTicker(every)
	defer tk.Stop()
	rate := func(a, b uint64, dt float64) float64 { return float64(b-a) / dt }
loop:
	for {
		select {
		case <-rctx.Done():
			break loop
		case <-tk.C:
			s := take()
			prev := samples[len(samples)-1]
			dt := (s.at - prev.at).Seconds()
			fmt.Printf("%8s %9.0f %9.0f %9.0f %9.0f %9.0f %10d %6d %7d %4d %4d %5d %6d %8d %7d\n", s.at.Round(time.Second),
				rate(prev.events, s.events, dt), rate(prev.procEvents, s.procEvents, dt), rate(prev.connects, s.connects, dt),
				rate(prev.forks, s.forks, dt), rate(prev.conns, s.conns, dt),
				s.heap, s.live, s.exited, s.goroutines, s.fds, s.lost, s.resyncs, s.pcOverflow, s.ftLost)
			samples = append(samples, s)
		}
	}
	wg.Wait()
	if err := <-runDone; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	end := samples[len(samples)-1]
	total := (end.at - base.at).Seconds()
	fmt.Printf("\n%s: made %.0f forks/s and %.0f connections/s; applied %.0f events/s: %.0f process events/s, %.0f connects/s; %d loss reports, %d resyncs\n",
		end.at.Round(time.Second), rate(base.forks, end.forks, total), rate(base.conns, end.conns, total),
		rate(base.events, end.events, total), rate(base.procEvents, end.procEvents, total), rate(base.connects, end.connects, total),
		end.lost, end.resyncs)
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
	fmt.Printf("under load: goroutines %d → %d, open fds %d → %d\n", base.goroutines, end.goroutines, base.fds, end.fds)
	// After shutdown (Run closed the sources, the storms were waited for):
	// what the agent started must be gone. Goroutines the runtime ends
	// asynchronously get a moment.
	var gor1, fds1 int
	for range 50 {
		if gor1, fds1 = runtime.NumGoroutine(), countFDs(); gor1 <= gor0 && fds1 <= fds0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("before start / after shutdown: goroutines %d / %d, open fds %d / %d\n", gor0, gor1, fds0, fds1)
	if gor1 > gor0 || fds1 > fds0 {
		return fmt.Errorf("leak: goroutines %d → %d, open fds %d → %d", gor0, gor1, fds0, fds1)
	}
	return nil
}

// forkStorm forks children that exit at once, at about rate per second
// for d (in bursts of one second, from two threads), printing the
// running count every second.
func forkStorm(rate int, d time.Duration) {
	var n atomic.Uint64
	end := time.Now().Add(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for time.Now().Before(end) {
			pids, _ := storm.Parallel(rate, rate, 0, 2)
			n.Add(uint64(len(pids)))
		}
	}()
	report(&n, done)
}

// connectStorm listens on 127.0.0.1 (of the namespace it runs in) and
// dials that listener at about rate per second for d from dialers
// threads, printing the running count of established connections every
// second. The dialers use blocking system calls, and both sides close
// with SO_LINGER 0 (a reset): every connection is a full handshake, and
// none lingers in TIME_WAIT holding an ephemeral port, which would cap
// the rate at the port range over the TIME_WAIT period.
func connectStorm(rate, dialers int, d time.Duration) error {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return err
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return err
	}
	dst, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return fmt.Errorf("listener address %T", sa)
	}
	linger := &unix.Linger{Onoff: 1, Linger: 0}
	// The acceptor: a blocking accept4 on a thread of its own; it ends
	// when the listener is shut down.
	go func() {
		runtime.LockOSThread()
		for {
			fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err != nil {
				if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
					continue
				}
				return
			}
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, linger)
			unix.Close(fd)
		}
	}()
	var n atomic.Uint64
	end := time.Now().Add(d)
	dialers = max(dialers, 1)
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			per := time.Duration(float64(time.Second) * float64(dialers) / float64(max(rate, 1)))
			next := time.Now()
			for i := 0; ; i++ {
				if i%64 == 0 && !time.Now().Before(end) {
					return
				}
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, linger)
				if err := unix.Connect(fd, dst); err == nil {
					n.Add(1)
				}
				unix.Close(fd)
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
	report(&n, done)
	_ = unix.Shutdown(lfd, unix.SHUT_RDWR)
	return nil
}

// report prints n every second until done is closed, then once more.
func report(n *atomic.Uint64, done <-chan struct{}) {
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
