//go:build linux

package procconn

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/internal/leakcheck"
	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/internal/storm"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procfs"
)

// helperEnv makes the test binary act as a helper process (see TestMain).
const helperEnv = "PROCCONN_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		flag.Parse()
		if flag.Lookup("test.fuzz").Value.String() == "" && flag.Lookup("test.bench").Value.String() == "" {
			// A watchdog: these tests take seconds; a hang must fail fast
			// with every goroutine's stack, not eat the CI budget.
			time.AfterFunc(100*time.Second, func() {
				debug.SetTraceback("all")
				panic("procconn tests: still running after 100s")
			})
		}
		os.Exit(leakcheck.Main(m))
	case "threads":
		// Start threads (locked goroutines force new OS threads), then
		// exit with code 4.
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				time.Sleep(50 * time.Millisecond)
			}()
		}
		wg.Wait()
		os.Exit(4)
	case "coredump":
		// Not dumpable: the kernel reports the coredump event, then skips
		// the dump. GOTRACEBACK=crash makes the runtime die of the signal.
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			os.Exit(12)
		}
		os.Stderr.Close()
		syscall.Kill(os.Getpid(), syscall.SIGABRT)
		time.Sleep(5 * time.Second)
		os.Exit(13)
	case "storm":
		// A fork storm in a process of its own (the benchmark's listeners
		// keep the test process busy): PROCCONN_STORM is "n rate
		// workers"; print each child's pid, then the elapsed nanoseconds
		// as "elapsed N".
		var n, rate, workers int
		if _, err := fmt.Sscan(os.Getenv("PROCCONN_STORM"), &n, &rate, &workers); err != nil {
			fmt.Fprintln(os.Stderr, "storm helper:", err)
			os.Exit(20)
		}
		start := time.Now()
		pids, err := storm.Parallel(n, rate, 0, workers)
		elapsed := time.Since(start)
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm helper:", err)
			os.Exit(21)
		}
		w := bufio.NewWriter(os.Stdout)
		for _, p := range pids {
			fmt.Fprintln(w, p)
		}
		fmt.Fprintln(w, "elapsed", elapsed.Nanoseconds())
		w.Flush()
		os.Exit(0)
	case "setuid":
		// Change real and effective ids in place (no exec), then exit.
		if err := syscall.Setgid(65534); err != nil {
			os.Exit(10)
		}
		if err := syscall.Setuid(65534); err != nil {
			os.Exit(11)
		}
		os.Exit(0)
	}
	os.Exit(99)
}

// collector reads a Source on its own goroutine into a list.
type collector struct {
	mu     sync.Mutex
	events []source.Event
	errs   []error
	done   chan struct{}
}

func collect(t *testing.T, s *Source) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			ev, err := s.Next()
			if errors.Is(err, os.ErrClosed) {
				return
			}
			c.mu.Lock()
			if err != nil {
				c.errs = append(c.errs, err)
			} else {
				c.events = append(c.events, ev)
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		s.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Error("Next did not return after Close")
		}
	})
	return c
}

// wait polls until cond holds on the events so far, or fails after 10s.
func (c *collector) wait(t *testing.T, what string, cond func([]source.Event) bool) []source.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		evs := slices.Clone(c.events)
		errs := slices.Clone(c.errs)
		c.mu.Unlock()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			for _, e := range evs {
				t.Logf("seen: %v pid %d ppid %d exe %q code %d/%v sig %d reason %q comm %q gone %v", e.Kind, e.PID, e.PPID, e.Exe, e.Code, e.HasCode, e.Signal, e.Reason, e.Comm, e.Gone)
			}
			t.Fatalf("timed out waiting for %s (errors: %v)", what, errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(evs []source.Event, kind source.Kind, pid int) (source.Event, bool) {
	for _, e := range evs {
		if e.Kind == kind && e.PID == pid {
			return e, true
		}
	}
	return source.Event{}, false
}

func has(kind source.Kind, pid int) func([]source.Event) bool {
	return func(evs []source.Event) bool { _, ok := find(evs, kind, pid); return ok }
}

func open(t *testing.T, opts ...Option) *Source {
	t.Helper()
	privtest.Require(t)
	s, err := Open(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Wait()
	return pid
}

func TestLifecycle(t *testing.T) {
	s := open(t, WithDescendantsOf(os.Getpid()))
	if !s.Stats().KernelFilter {
		t.Log("kernel per-socket filter not supported: filtering on arrival")
	}
	c := collect(t, s)
	fs, _ := procfs.NewFS("")

	// A long enough life for /proc to be read: fork, exec with details, exit 0.
	sleep := exec.Command("sleep", "0.3")
	sleep.Dir = "/tmp"
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	sp := sleep.Process.Pid
	want, err := fs.Process(sp)
	if err != nil {
		t.Fatal(err)
	}
	sleep.Wait()

	trueCmd := run(t, exec.Command("/bin/true"))
	exit3 := run(t, exec.Command("/bin/sh", "-c", "exit 3"))
	killed := exec.Command("sleep", "10")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	kp := killed.Process.Pid
	comm := run(t, exec.Command("/bin/sh", "-c", "printf pwcomm > /proc/$$/comm; sleep 0.05"))
	sid := run(t, exec.Command("setsid", "/bin/true"))

	self, _ := os.Executable()
	su := exec.Command(self)
	su.Env = append(os.Environ(), helperEnv+"=setuid")
	suid := run(t, su)
	if su.ProcessState.ExitCode() != 0 {
		t.Fatalf("setuid helper exited %d", su.ProcessState.ExitCode())
	}
	th := exec.Command(self)
	th.Env = append(os.Environ(), helperEnv+"=threads")
	thread := run(t, th)

	// ptrace: attach to a child (once its exec has completed: an exec under
	// ptrace raises SIGTRAP) and detach again; then kill it, which works
	// whatever state it is left in.
	traced := exec.Command("sleep", "10")
	if err := traced.Start(); err != nil {
		t.Fatal(err)
	}
	tp := traced.Process.Pid
	waitSleeping(t, fs, tp)
	ptraceOnce(t, tp)
	traced.Process.Kill()
	traced.Wait()
	// A core-dumping signal; the helper makes itself non-dumpable first, so
	// no core is written whatever core_pattern says.
	abrt := exec.Command(self)
	abrt.Env = append(os.Environ(), helperEnv+"=coredump", "GOTRACEBACK=crash")
	abrt.Dir = t.TempDir()
	cp := run(t, abrt)

	evs := c.wait(t, "all events", func(evs []source.Event) bool {
		for _, p := range []int{sp, trueCmd, exit3, kp, comm, sid, suid, thread, tp, cp} {
			if !has(source.KindExit, p)(evs) {
				return false
			}
		}
		return true
	})

	// sleep: fork with the child's start, exec read from /proc, exit 0.
	fork, _ := find(evs, source.KindFork, sp)
	if fork.PPID != os.Getpid() || fork.Start != want.Start || fork.Gone {
		t.Errorf("fork of sleep = %+v, want ppid %d start %d", fork, os.Getpid(), want.Start)
	}
	ex, _ := find(evs, source.KindExec, sp)
	if ex.Gone || ex.Exe != want.Exe || !slices.Equal(ex.Argv, []string{"sleep", "0.3"}) || ex.Cwd != "/tmp" ||
		ex.PPID != os.Getpid() || ex.Start != want.Start || !ex.HasUID || ex.UID != os.Geteuid() || !strings.HasPrefix(ex.Reason, "cgroup=") {
		t.Errorf("exec of sleep = %+v, want exe %s", ex, want.Exe)
	}
	if e, _ := find(evs, source.KindExit, sp); !e.HasCode || e.Code != 0 || e.Signal != 0 {
		t.Errorf("exit of sleep = %+v", e)
	}
	if !fork.Time.Before(ex.Time) || fork.Time.Sub(time.Now()).Abs() > time.Minute {
		t.Errorf("fork time %v, exec time %v: not in order or not wall time", fork.Time, ex.Time)
	}
	// /bin/true exits at once: its exec is complete or marked gone, never wrong.
	if e, ok := find(evs, source.KindExec, trueCmd); !ok || (!e.Gone && e.Exe != "/usr/bin/true") || (e.Gone && (e.Exe != "" || e.Argv != nil)) {
		t.Errorf("exec of /bin/true = %+v (found %v)", e, ok)
	}
	if e, _ := find(evs, source.KindExit, exit3); !e.HasCode || e.Code != 3 {
		t.Errorf("exit 3 = %+v", e)
	}
	if e, _ := find(evs, source.KindExit, kp); e.HasCode || e.Signal != int(syscall.SIGKILL) {
		t.Errorf("killed exit = %+v", e)
	}
	sawComm := false
	for _, e := range evs {
		if e.Kind == source.KindAttr && e.PID == comm && e.Comm == "pwcomm" {
			sawComm = true
		}
	}
	if !sawComm {
		t.Errorf("no comm event for %d", comm)
	}
	if e, ok := find(evs, source.KindAttr, sid); !ok || e.Reason != "setsid" {
		t.Errorf("setsid event = %+v (found %v)", e, ok)
	}
	var sawUID, sawGID bool
	for _, e := range evs {
		if e.Kind == source.KindAttr && e.PID == suid {
			if e.HasUID && e.UID == 65534 && e.Reason == "ruid=65534 euid=65534" {
				sawUID = true
			}
			if e.Reason == "rgid=65534 egid=65534" {
				sawGID = true
			}
		}
	}
	if !sawUID || !sawGID {
		t.Errorf("setuid helper %d: uid event %v, gid event %v", suid, sawUID, sawGID)
	}
	var attach, detach bool
	for _, e := range evs {
		if e.Kind == source.KindAttr && e.PID == tp {
			attach = attach || e.Reason == fmt.Sprintf("ptrace attach tracer=%d", os.Getpid())
			detach = detach || e.Reason == "ptrace detach"
		}
	}
	if !attach || !detach {
		t.Errorf("ptrace of %d: attach %v, detach %v", tp, attach, detach)
	}
	if e, ok := find(evs, source.KindAttr, cp); !ok || e.Reason != "coredump" {
		t.Errorf("coredump event = %+v (found %v)", e, ok)
	}
	if e, _ := find(evs, source.KindExit, cp); e.HasCode || e.Signal != int(syscall.SIGABRT) {
		t.Errorf("SIGABRT exit = %+v", e)
	}
	// The thread helper: its threads are folded, never forks of processes.
	if e, _ := find(evs, source.KindExit, thread); e.Code != 4 {
		t.Errorf("thread helper exit = %+v", e)
	}
	for _, e := range evs {
		if e.Kind == source.KindFork && e.PPID == thread {
			t.Errorf("thread reported as process: %+v", e)
		}
	}
	if st := s.Stats(); st.Threads == 0 || st.Events == 0 || st.Messages < st.Events {
		t.Errorf("stats = %+v, want folded threads", st)
	}
	// Filtering: nothing outside the test's descendants.
	members := map[int]bool{os.Getpid(): true}
	for _, e := range evs {
		if e.Kind == source.KindFork && members[e.PPID] {
			members[e.PID] = true
		}
		if !members[e.PID] {
			t.Errorf("event of a process outside the test: %+v", e)
		}
	}
}

// waitSleeping waits (at most 5s) until pid runs /usr/bin/sleep and is
// asleep in it.
func waitSleeping(t *testing.T, fs procfs.FS, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		p, err := fs.Process(pid)
		if err == nil && strings.HasSuffix(p.Exe, "/sleep") && p.State == 'S' {
			return
		}
	}
	t.Fatalf("process %d never slept in sleep", pid)
}

// ptraceOnce attaches to pid, waits for it to stop and detaches.
func ptraceOnce(t *testing.T, pid int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := syscall.PtraceAttach(pid); err != nil {
		t.Fatalf("ptrace attach %d: %v", pid, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil {
		t.Fatalf("wait for traced %d: %v", pid, err)
	}
	if err := syscall.PtraceDetach(pid); err != nil {
		t.Fatalf("ptrace detach %d: %v", pid, err)
	}
}

func TestKernelFilter(t *testing.T) {
	s := open(t, WithDescendantsOf(os.Getpid()), WithEvents(EventFork|EventExit))
	c := collect(t, s)
	p := run(t, exec.Command("/bin/true"))
	evs := c.wait(t, "exit", has(source.KindExit, p))
	for _, e := range evs {
		if e.Kind != source.KindFork && e.Kind != source.KindExit {
			t.Errorf("unselected event %+v", e)
		}
	}
	if _, ok := find(evs, source.KindFork, p); !ok {
		t.Error("no fork")
	}
	t.Logf("kernel filter: %v, stats %+v", s.Stats().KernelFilter, s.Stats())
	if _, err := Open(WithEvents(0)); err == nil {
		t.Error("Open with an empty mask succeeded")
	}
}

func TestCloseUnblocks(t *testing.T) {
	s := open(t, WithDescendantsOf(os.Getpid()), WithEvents(EventComm))
	errc := make(chan error, 1)
	go func() {
		_, err := s.Next()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// tracker keeps the test's view of its live children from events, resyncing
// from /proc after a loss.
type tracker struct {
	mu     sync.Mutex // held by the reader while it applies; by drain's closer while it asks ready
	self   int
	live   map[int]bool
	forked map[int]bool
	exited map[int]bool
	losses int
	diffs  []Diff
}

func newTracker() *tracker {
	return &tracker{self: os.Getpid(), live: map[int]bool{}, forked: map[int]bool{}, exited: map[int]bool{}}
}

func (tr *tracker) apply(ev source.Event) {
	switch ev.Kind {
	case source.KindFork:
		if ev.PPID == tr.self {
			tr.live[ev.PID], tr.forked[ev.PID] = true, true
		}
	case source.KindExit:
		if tr.live[ev.PID] || tr.forked[ev.PID] {
			tr.exited[ev.PID] = true
		}
		delete(tr.live, ev.PID)
	}
}

// resync asks the source for the diff against /proc and applies it.
func (tr *tracker) resync(t *testing.T, s *Source) {
	t.Helper()
	tr.losses++
	d, err := s.Resync(func(yield func(source.ProcID) bool) {
		for pid := range tr.live {
			if !yield(source.ProcID{PID: pid}) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range d.Vanished {
		delete(tr.live, id.PID)
	}
	for _, p := range d.Added {
		if p.PPID == tr.self {
			tr.live[p.PID] = true
		}
	}
	tr.diffs = append(tr.diffs, d)
}

// childrenNow is the truth: the test process's children in /proc.
func childrenNow(t *testing.T) []procfs.Process {
	fs, err := procfs.NewFS("")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := fs.Processes()
	var out []procfs.Process
	for _, p := range all {
		if p.PPID == os.Getpid() && !p.Zombie() {
			out = append(out, p)
		}
	}
	return out
}

// drain reads events on the test goroutine (Next and Resync on one
// goroutine) until ready() holds (asked under tr.mu) and the source has
// been quiet for 200ms, or 30s have passed; then the source is closed.
func drain(t *testing.T, s *Source, tr *tracker, ready func() bool) {
	t.Helper()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		limit := time.After(30 * time.Second)
		for {
			select {
			case <-stop:
				return
			case <-limit:
				s.Close()
				return
			case <-tick.C:
				tr.mu.Lock()
				ok := ready()
				tr.mu.Unlock()
				if ok && time.Since(time.Unix(0, last.Load())) > 200*time.Millisecond {
					s.Close()
					return
				}
			}
		}
	}()
	for {
		ev, err := s.Next()
		last.Store(time.Now().UnixNano())
		tr.mu.Lock()
		switch {
		case errors.Is(err, os.ErrClosed):
			tr.mu.Unlock()
			return
		case errors.Is(err, source.ErrLost):
			tr.resync(t, s)
		case err != nil:
			tr.mu.Unlock()
			t.Fatalf("Next: %v", err)
		default:
			tr.apply(ev)
		}
		tr.mu.Unlock()
	}
}

func stormSize() int {
	if testing.Short() {
		return 1000
	}
	return 5000
}

// TestForkStorm forks children as fast as it can while the source is read:
// every child's fork and exit is seen, or the loss is reported and the
// resync against /proc restores the truth.
func TestForkStorm(t *testing.T) {
	for _, kf := range []bool{true, false} {
		t.Run(fmt.Sprintf("kernelfilter=%v", kf), func(t *testing.T) { forkStorm(t, kf) })
	}
}

func forkStorm(t *testing.T, kernelFilter bool) {
	s := open(t, WithDescendantsOf(os.Getpid()), WithEvents(EventFork|EventExit), WithKernelFilter(kernelFilter))
	tr := newTracker()
	var pids []int
	var stormErr error
	finished := make(chan struct{})
	n := stormSize()
	go func() {
		defer close(finished)
		pids, stormErr = storm.Run(n, 0, 0)
	}()
	drain(t, s, tr, func() bool {
		select {
		case <-finished:
			// Every child's fork and exit seen, or a loss reported.
			return (len(tr.forked) >= n && len(tr.exited) >= n) || tr.losses > 0
		default:
			return false
		}
	})
	<-finished
	if stormErr != nil {
		t.Fatal(stormErr)
	}
	st := s.Stats()
	t.Logf("%d children, stats %+v, losses %d", len(pids), st, tr.losses)
	if tr.losses == 0 {
		for _, p := range pids {
			if !tr.forked[p] || !tr.exited[p] {
				t.Fatalf("child %d: fork seen %v, exit seen %v, and no loss reported", p, tr.forked[p], tr.exited[p])
			}
		}
	} else if st.Overflows == 0 && st.Gaps == 0 {
		t.Error("losses without overflows or sequence gaps counted")
	}
	truth := map[int]bool{}
	for _, p := range childrenNow(t) {
		truth[p.PID] = true
	}
	if !maps.Equal(tr.live, truth) {
		t.Errorf("live set %v, /proc says %v", slices.Sorted(maps.Keys(tr.live)), slices.Sorted(maps.Keys(truth)))
	}
}

// TestOverflow provokes loss with a tiny receive buffer and no reader, and
// checks that the loss is reported and the resync converges.
func TestOverflow(t *testing.T) {
	s := open(t, WithDescendantsOf(os.Getpid()), WithEvents(EventFork|EventExit), WithReadBuffer(4096))
	// A long-lived child whose fork the tracker will miss: resync must add it.
	keep := exec.Command("sleep", "30")
	// And one that is known but whose exit will be lost.
	short := exec.Command("sleep", "0.2")
	tr := newTracker()
	if err := short.Start(); err != nil {
		t.Fatal(err)
	}
	tr.live[short.Process.Pid] = true
	if err := keep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keep.Process.Kill(); keep.Wait() })
	short.Wait()
	if _, err := storm.Run(2000, 0, 0); err != nil {
		t.Fatal(err)
	}
	drain(t, s, tr, func() bool { return tr.losses > 0 })
	st := s.Stats()
	if st.Overflows == 0 || tr.losses == 0 {
		t.Fatalf("no loss reported with a %d-byte buffer: stats %+v", st.ReadBuffer, st)
	}
	truth := map[int]bool{}
	for _, p := range childrenNow(t) {
		truth[p.PID] = true
	}
	if !maps.Equal(tr.live, truth) || !truth[keep.Process.Pid] {
		t.Errorf("after resync: live %v, /proc %v (keep %d)", slices.Sorted(maps.Keys(tr.live)), slices.Sorted(maps.Keys(truth)), keep.Process.Pid)
	}
	var vanished, added bool
	for _, d := range tr.diffs {
		for _, id := range d.Vanished {
			vanished = vanished || id.PID == short.Process.Pid
		}
		for _, p := range d.Added {
			added = added || p.PID == keep.Process.Pid
		}
	}
	if !vanished || !added {
		t.Errorf("diffs %v: short %d vanished %v, keep %d added %v", tr.diffs, short.Process.Pid, vanished, keep.Process.Pid, added)
	}
	t.Logf("stats %+v, %d losses", st, tr.losses)
}

// TestNoKernelFilter subscribes the old way (as on kernels before 6.6):
// the mask is applied on arrival, and the kernel's sequence numbers are
// followed to find events it dropped.
func TestNoKernelFilter(t *testing.T) {
	s := open(t, WithDescendantsOf(os.Getpid()), WithEvents(EventFork|EventExit), WithKernelFilter(false))
	if s.Stats().KernelFilter {
		t.Fatal("kernel filter in use although forbidden")
	}
	c := collect(t, s)
	p := run(t, exec.Command("/bin/true"))
	evs := c.wait(t, "fork and exit", func(evs []source.Event) bool {
		return has(source.KindFork, p)(evs) && has(source.KindExit, p)(evs)
	})
	for _, e := range evs {
		if e.Kind != source.KindFork && e.Kind != source.KindExit {
			t.Errorf("unselected event %+v", e)
		}
	}
	if st := s.Stats(); st.Filtered == 0 {
		t.Errorf("exec not dropped on arrival: %+v", st)
	}
	t.Logf("stats %+v", s.Stats())
}

func TestCheckSeq(t *testing.T) {
	s := &Source{seqs: make([]uint64, 1)}
	for i, tc := range []struct {
		cpu, seq uint32
		lost     uint32
	}{
		{0, 5, 0}, {0, 6, 0}, {0, 9, 2}, {0, 10, 0},
		{3, 100, 0}, {3, 99, 0}, {3, 100, 0}, {3, 105, 4},
		{1, 0xffffffff, 0}, {1, 0, 0}, {1, 2, 1},
		{1 << 20, 1, 0},
	} {
		raw := rawEvent{CPU: tc.cpu, Seq: tc.seq}
		if got := s.checkSeq(&raw); got != tc.lost {
			t.Errorf("%d: cpu %d seq %d: lost %d, want %d", i, tc.cpu, tc.seq, got, tc.lost)
		}
	}
}
