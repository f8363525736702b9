//go:build linux

package procconn

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// BenchmarkVsForkstat is the side-by-side comparison with forkstat (Debian
// package forkstat): for each rate, a bounded fork storm of one second
// (children of a helper process that exit at once) runs while procwall's
// procconn source and `forkstat -e fork,exit` listen at the same time. Each
// listener's count of the storm children's fork and exit events is
// reported (procwall_events, forkstat_events, of expected_events), with the
// rate achieved and procwall's overflows. The storm runs in a helper
// process, so the listeners and the forking do not share one scheduler. It needs root and forkstat and is
// skipped otherwise; run it with
//
//	go test -run '^$' -bench VsForkstat -benchtime 1x ./source/procconn/
func BenchmarkVsForkstat(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("forkstat"); err != nil {
		b.Skip("needs forkstat (Debian package forkstat)")
	}
	for _, rate := range []int{5000, 20000, 50000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
			for b.Loop() {
				r := compareOnce(b, rate, rate, true)
				b.ReportMetric(float64(r.expected), "expected_events")
				b.ReportMetric(float64(r.procwall), "procwall_events")
				b.ReportMetric(float64(r.forkstat), "forkstat_events")
				b.ReportMetric(float64(r.overflows), "procwall_overflows")
				b.ReportMetric(r.achieved, "forks/s")
			}
		})
	}
	// procwall alone, the storm unpaced: the highest rate this machine
	// reaches, and whether procwall keeps up without loss.
	// And without reading each child's start time from /proc
	// (WithForkStart(false)), to show what that read costs.
	for _, start := range []bool{true, false} {
		name := "procwall-only-unpaced"
		if !start {
			name += "-nostart"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r := compareOnce(b, 50000, 0, false, WithForkStart(start))
				b.ReportMetric(float64(r.expected), "expected_events")
				b.ReportMetric(float64(r.procwall), "procwall_events")
				b.ReportMetric(float64(r.overflows), "procwall_overflows")
				b.ReportMetric(r.achieved, "forks/s")
			}
		})
	}
}

type comparison struct {
	expected, procwall, forkstat int
	overflows                    uint64
	achieved                     float64
}

type pidKind struct {
	pid  int
	exit bool
}

func compareOnce(b *testing.B, n, rate int, withForkstat bool, opts ...Option) comparison {
	b.Helper()
	fsSeen := map[pidKind]bool{}
	stopForkstat := func() {}
	if withForkstat {
		stopForkstat = startForkstat(b, fsSeen)
	}
	s, err := Open(append([]Option{WithEvents(EventFork | EventExit)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	pwSeen := map[pidKind]bool{}
	pwDone := make(chan struct{})
	go func() {
		defer close(pwDone)
		for {
			ev, err := s.Next()
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err != nil {
				continue // losses are counted in Stats
			}
			switch ev.Kind {
			case source.KindFork:
				pwSeen[pidKind{ev.PID, false}] = true
			case source.KindExit:
				pwSeen[pidKind{ev.PID, true}] = true
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)

	pids, elapsed := runStorm(b, n, rate, 4)
	time.Sleep(time.Second) // let both listeners drain
	s.Close()
	<-pwDone
	stopForkstat()

	r := comparison{expected: 2 * len(pids), overflows: s.Stats().Overflows, achieved: float64(len(pids)) / elapsed.Seconds()}
	for _, p := range pids {
		for _, exit := range []bool{false, true} {
			if pwSeen[pidKind{p, exit}] {
				r.procwall++
			}
			if fsSeen[pidKind{p, exit}] {
				r.forkstat++
			}
		}
	}
	return r
}

// runStorm forks n children at about rate per second (0: unpaced) from
// workers threads of a helper process (this test binary again, see
// TestMain), so that the storm does not compete with the listeners for
// this process's scheduler, and returns the children's pids and how long
// the storm took.
func runStorm(b *testing.B, n, rate, workers int) ([]int, time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=storm", fmt.Sprintf("PROCCONN_STORM=%d %d %d", n, rate, workers))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("storm helper: %v", err)
	}
	var pids []int
	var elapsed time.Duration
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if ns, ok := strings.CutPrefix(line, "elapsed "); ok {
			v, err := strconv.ParseInt(ns, 10, 64)
			if err != nil {
				b.Fatalf("storm helper: %q: %v", line, err)
			}
			elapsed = time.Duration(v)
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil {
			b.Fatalf("storm helper: %q: %v", line, err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != n || elapsed <= 0 {
		b.Fatalf("storm helper: %d pids of %d, elapsed %v", len(pids), n, elapsed)
	}
	return pids, elapsed
}

// startForkstat runs `forkstat -l -e fork,exit`, recording the fork (child)
// and exit lines it prints into seen, and returns when it is listening. The
// returned function stops it and waits for its output to be read.
func startForkstat(b *testing.B, seen map[pidKind]bool) func() {
	fsCmd := exec.Command("forkstat", "-l", "-e", "fork,exit")
	out, err := fsCmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := fsCmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	fsDone := make(chan struct{})
	go func() {
		defer close(fsDone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[1] == "Event" {
				once.Do(func() { close(ready) })
			}
			if len(f) < 4 {
				continue
			}
			pid, err := strconv.Atoi(f[2])
			if err != nil {
				continue
			}
			switch {
			case f[1] == "fork" && f[3] == "child":
				seen[pidKind{pid, false}] = true
			case f[1] == "exit":
				seen[pidKind{pid, true}] = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		fsCmd.Process.Kill()
		b.Fatal("forkstat printed no header")
	}

	return func() {
		fsCmd.Process.Signal(syscall.SIGINT)
		fsCmd.Wait()
		<-fsDone
	}
}
