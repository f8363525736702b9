package procfs

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

func fixture(t *testing.T) FS {
	t.Helper()
	fs, err := NewFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestNewFS(t *testing.T) {
	if _, err := NewFS("testdata/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewFS(missing) = %v, want ErrNotExist", err)
	}
	if _, err := NewFS("testdata/proc/stat"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("NewFS(file) = %v, want not a directory", err)
	}
	if runtime.GOOS == "linux" {
		fs, err := NewFS("")
		if err != nil || fs.Root() != "/proc" {
			t.Errorf("NewFS(\"\") = %v, %v", fs.Root(), err)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Stat
		err  string
	}{
		{in: "100 (a (b) c) S 1 100 101 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 2 0 2500 1000\n",
			want: Stat{PID: 100, Comm: "a (b) c", State: 'S', PPID: 1, PGID: 100, SessionID: 101, NumThreads: 2, Flags: 4194560, StartTicks: 2500}},
		{in: "7 ()) Z 1 1 1 0 -1 4 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615",
			want: Stat{PID: 7, Comm: ")", State: 'Z', PPID: 1, PGID: 1, SessionID: 1, NumThreads: 1, Flags: 4, StartTicks: 18446744073709551615}},
		{in: "5 (a) S 1 1 1 0 -1 x 0 0 0 0 0 0 0 0 20 0 1 0 9", err: "bad flags"},
		{in: "", err: "no (comm)"},
		{in: "x (a) S 1", err: "bad pid"},
		{in: "5 (a) S 1 1 1", err: "truncated"},
		{in: "5 (a) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9", err: "bad state"},
		{in: "5 (a) S x 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9", err: "bad field 4"},
		{in: "5 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -9", err: "bad starttime"},
	} {
		got, err := parseStat(strings.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrParse) {
				t.Errorf("parseStat(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCmdlineCgroupStatus(t *testing.T) {
	argv, err := parseCmdline(strings.NewReader("a\x00b c\x00\x00\x00"))
	if err != nil || !slices.Equal(argv, []string{"a", "b c"}) {
		t.Errorf("parseCmdline = %q, %v", argv, err)
	}
	argv, err = parseCmdline(strings.NewReader(""))
	if err != nil || argv != nil {
		t.Errorf("parseCmdline(empty) = %q, %v", argv, err)
	}
	cg, err := parseCgroup(strings.NewReader("3:cpu:/a\n0::/b/c\n"))
	if err != nil || cg != "/b/c" {
		t.Errorf("parseCgroup = %q, %v", cg, err)
	}
	cg, err = parseCgroup(strings.NewReader("3:cpu:/a\n1:name=systemd:/s\n"))
	if err != nil || cg != "/a" {
		t.Errorf("parseCgroup(v1) = %q, %v", cg, err)
	}
	if _, err := parseCgroup(strings.NewReader("garbage\n")); !errors.Is(err, ErrParse) {
		t.Errorf("parseCgroup(garbage) = %v", err)
	}
	if _, err := parseStatus(strings.NewReader("Name:\tx\nPid:\t1\n")); !errors.Is(err, ErrParse) {
		t.Errorf("parseStatus(no uid) = %v", err)
	}
	if _, err := parseStatus(strings.NewReader("Pid:\tone\n")); !errors.Is(err, ErrParse) {
		t.Errorf("parseStatus(bad pid) = %v", err)
	}
	bt, err := parseBootTime(strings.NewReader("cpu 1\nbtime 1763900000\n"))
	if err != nil || bt.Unix() != 1763900000 {
		t.Errorf("parseBootTime = %v, %v", bt, err)
	}
	if _, err := parseBootTime(strings.NewReader("cpu 1\n")); !errors.Is(err, ErrParse) {
		t.Errorf("parseBootTime(none) = %v", err)
	}
}

func TestFixtureProcess(t *testing.T) {
	fs := fixture(t)
	p, err := fs.Process(100)
	if err != nil {
		t.Fatal(err)
	}
	want := Process{PID: 100, TGID: 100, PPID: 1, Start: 25_000_000_000, Comm: "a (b) c", State: 'S',
		PGID: 100, SessionID: 100, NumThreads: 2, Exe: "/usr/bin/dash", Argv: []string{"sh", "-c", "sleep 1; echo (x)"},
		UID: 1000, EUID: 1000, GID: 1000, EGID: 1000, Cwd: "/home/u", Cgroup: "/user.slice/user-1000.slice/session-1.scope"}
	if !equalProc(p, want) {
		t.Errorf("Process(100) =\n%+v\nwant\n%+v", p, want)
	}
	ev := p.Event(time.Unix(5, 0))
	if ev.Kind != source.KindExec || ev.PID != 100 || ev.PPID != 1 || ev.Start != 25_000_000_000 || ev.Exe != "/usr/bin/dash" ||
		!ev.HasUID || ev.UID != 1000 || ev.Reason != "cgroup=/user.slice/user-1000.slice/session-1.scope" || ev.Cwd != "/home/u" {
		t.Errorf("Event = %+v", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("Event invalid: %v", err)
	}

	// A kernel thread: no exe, no argv, not an error.
	k, err := fs.Process(2)
	if err != nil || k.Exe != "" || k.Argv != nil || k.PPID != 0 || !k.Kernel {
		t.Errorf("Process(2) = %+v, %v", k, err)
	}
	// A zombie: state Z, no exe.
	z, err := fs.Process(101)
	if err != nil || !z.Zombie() || z.Exe != "" {
		t.Errorf("Process(101) = %+v, %v", z, err)
	}
	// Malformed stat: a parse error naming the file.
	if _, err := fs.Process(102); !errors.Is(err, ErrParse) || !strings.Contains(err.Error(), "102/stat") {
		t.Errorf("Process(102) = %v, want ErrParse naming 102/stat", err)
	}
	// A thread id.
	if _, err := fs.Process(103); !errors.Is(err, ErrThread) {
		t.Errorf("Process(103) = %v, want ErrThread", err)
	}
	// Vanished mid-read (status missing): gone, also ErrNotExist.
	if _, err := fs.Process(104); !errors.Is(err, ErrGone) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Process(104) = %v, want ErrGone", err)
	}
	// Exiting (PF_EXITING), or a user process whose memory (exe) is gone:
	// what could be read is partial, so it is reported gone.
	for _, pid := range []int{106, 107} {
		if _, err := fs.Process(pid); !errors.Is(err, ErrGone) {
			t.Errorf("Process(%d) = %v, want ErrGone", pid, err)
		}
	}
	// Never existed.
	if _, err := fs.Process(999); !errors.Is(err, ErrGone) {
		t.Errorf("Process(999) = %v, want ErrGone", err)
	}
	if _, err := fs.Process(0); err == nil {
		t.Error("Process(0) succeeded")
	}
	v1, err := fs.Process(105)
	if err != nil || v1.Cgroup != "/docker/abc" || v1.Cwd != "" {
		t.Errorf("Process(105) = %+v, %v", v1, err)
	}
	bt, err := fs.BootTime()
	if err != nil || bt.Unix() != 1763900000 {
		t.Errorf("BootTime = %v, %v", bt, err)
	}
}

func equalProc(a, b Process) bool {
	if !slices.Equal(a.Argv, b.Argv) {
		return false
	}
	type flat struct {
		PID, TGID, PPID             int
		Start                       uint64
		Comm, Exe, Cwd, Cgroup      string
		State                       byte
		PGID, SessionID, NumThreads int
		UID, EUID, GID, EGID        int
	}
	f := func(p Process) flat {
		return flat{p.PID, p.TGID, p.PPID, p.Start, p.Comm, p.Exe, p.Cwd, p.Cgroup, p.State, p.PGID, p.SessionID, p.NumThreads, p.UID, p.EUID, p.GID, p.EGID}
	}
	return f(a) == f(b)
}

func TestFixtureSnapshot(t *testing.T) {
	fs := fixture(t)
	procs, err := fs.Processes()
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	// 102 is malformed (reported), 103 a thread and 104 gone (left out).
	if !slices.Equal(pids, []int{1, 2, 100, 101, 105}) {
		t.Errorf("Processes pids = %v", pids)
	}
	if err == nil || !errors.Is(err, ErrParse) || !strings.Contains(err.Error(), "102") {
		t.Errorf("Processes error = %v, want the malformed 102", err)
	}

	src := NewSnapshotSource(fs)
	var got []string
	var errs int
	for {
		ev, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs++
			continue
		}
		got = append(got, ev.ID().String())
	}
	// Parents first: 1, its child 100 (start 2500), 100's children 101
	// (2600) and 105 (2700); then root 2.
	want := []string{"1@50000000", "100@25000000000", "101@26000000000", "105@27000000000", "2@50000000"}
	if !slices.Equal(got, want) || errs != 1 {
		t.Errorf("snapshot events = %v (%d errors), want %v (1 error)", got, errs, want)
	}
	src.Close()
	if _, err := src.Next(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close = %v", err)
	}
}

func TestParentsFirstCycle(t *testing.T) {
	procs := []Process{{PID: 5, PPID: 6}, {PID: 6, PPID: 5}, {PID: 7, PPID: 6}, {PID: 1}}
	got := ParentsFirst(procs)
	var pids []int
	for _, p := range got {
		pids = append(pids, p.PID)
	}
	if !slices.Equal(pids, []int{1, 5, 6, 7}) {
		t.Errorf("ParentsFirst = %v", pids)
	}
}

// TestLive reads the real /proc and finds this test process with the right
// parent and start time, and a child it started.
func TestLive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	fs, err := NewFS("")
	if err != nil {
		t.Fatal(err)
	}
	self, err := fs.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.PPID != os.Getppid() || self.Start == 0 || self.Exe == "" || len(self.Argv) == 0 || self.UID != os.Getuid() {
		t.Errorf("self = %+v (ppid want %d)", self, os.Getppid())
	}
	exe, _ := os.Executable()
	if self.Exe != exe {
		t.Errorf("self exe = %q, want %q", self.Exe, exe)
	}
	cmd := exec.Command("sleep", "10")
	before := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	child, err := fs.Process(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if child.PPID != os.Getpid() || child.Start < self.Start {
		t.Errorf("child = %+v, self start %d", child, self.Start)
	}
	// The child's start, as an offset from boot, matches when we started it.
	bt, err := fs.BootTime()
	if err != nil {
		t.Fatal(err)
	}
	started := bt.Add(time.Duration(child.Start))
	if d := started.Sub(before); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("child start %v is %v away from %v", started, d, before)
	}
	procs, err := fs.Processes()
	if err != nil {
		t.Logf("snapshot errors (tolerated on a live system): %v", err)
	}
	found := false
	for _, p := range procs {
		if p.PID == cmd.Process.Pid {
			found = p.Start == child.Start
		}
		if p.TGID != p.PID {
			t.Errorf("snapshot lists thread %d of %d", p.PID, p.TGID)
		}
	}
	if !found {
		t.Errorf("snapshot lacks child %d", cmd.Process.Pid)
	}
	// A reaped child is gone.
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := fs.Process(cmd.Process.Pid); !errors.Is(err, ErrGone) {
		t.Errorf("Process(reaped) = %v, want ErrGone", err)
	}
	// A thread of this process is not a process.
	for _, tid := range threadIDs(t) {
		if tid == os.Getpid() {
			continue
		}
		if _, err := fs.Process(tid); !errors.Is(err, ErrThread) && !errors.Is(err, ErrGone) {
			t.Errorf("Process(thread %d) = %v, want ErrThread", tid, err)
		}
	}
}

func threadIDs(t *testing.T) []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, e := range ents {
		if n, ok := atoi([]byte(e.Name())); ok {
			ids = append(ids, n)
		}
	}
	return ids
}

func BenchmarkParseStat(b *testing.B) {
	in := []byte("100 (a (b) c) S 1 100 101 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 2 0 2500 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStatBytes(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStartTime(t *testing.T) {
	fs := fixture(t)
	if s, err := fs.StartTime(100); err != nil || s != 25_000_000_000 {
		t.Errorf("StartTime(100) = %d, %v", s, err)
	}
	if _, err := fs.StartTime(102); !errors.Is(err, ErrParse) {
		t.Errorf("StartTime(102) = %v, want ErrParse", err)
	}
	if _, err := fs.StartTime(999); !errors.Is(err, ErrGone) {
		t.Errorf("StartTime(999) = %v, want ErrGone", err)
	}
	for _, in := range []string{"1 (a) S 1", "1 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 x", "1 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999"} {
		if _, ok := parseStartTime([]byte(in)); ok {
			t.Errorf("parseStartTime(%q) succeeded", in)
		}
	}
	if runtime.GOOS == "linux" {
		live, _ := NewFS("")
		self, err := live.Stat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s, err := live.StartTime(os.Getpid()); err != nil || s != self.Start() {
			t.Errorf("StartTime(self) = %d, %v, want %d", s, err, self.Start())
		}
	}
}

// BenchmarkStartTime reads this process's start time: StartTime (raw
// system calls) against Stat (os.Open, the baseline) in the same run.
func BenchmarkStartTime(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("needs /proc")
	}
	fs, _ := NewFS("")
	pid := os.Getpid()
	b.Run("StartTime", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fs.StartTime(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Stat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fs.Stat(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
}
