//go:build linux

package ftrace

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
)

// fakeProc writes /proc/<pid>/{stat,status,cmdline} files for tasks
// (tid -> tgid, ppid, starttime ticks, argv).
type fakeTask struct {
	tgid, ppid int
	ticks      uint64
	argv       string
}

func fakeProc(t *testing.T, tasks map[int]fakeTask) string {
	t.Helper()
	root := t.TempDir()
	for tid, ft := range tasks {
		dir := filepath.Join(root, fmt.Sprint(tid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// comm with a space and parentheses, as the kernel allows.
		stat := fmt.Sprintf("%d (my (prog) x) S %d %d %d 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100\n",
			tid, ft.ppid, ft.tgid, ft.tgid, ft.ticks)
		status := fmt.Sprintf("Name:\tprog\nUmask:\t0022\nState:\tS\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n", ft.tgid, tid, ft.ppid)
		for name, body := range map[string]string{"stat": stat, "status": status, "cmdline": ft.argv} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// offlineSource is a Source with no kernel behind it, for the record ->
// event logic.
func offlineSource(t *testing.T, procRoot string) *Source {
	cfg := defaultConfig()
	cfg.proc = procRoot
	return &Source{cfg: cfg, proc: newProcReader(procRoot), layout: defaultLayout,
		dec: *recordedDecoder(t), tasks: map[int32]int32{}, starts: map[int32]uint64{}}
}

// run passes records through enrich and convert, as Next does.
func (s *Source) run(recs ...record) []source.Event {
	var out []source.Event
	for _, r := range recs {
		h := heldRec{r: r}
		if r.Kind == recExec {
			h.exe = string(r.Filename)
		}
		s.enrich(&h)
		if ev, ok := s.convert(&h); ok {
			out = append(out, ev)
		}
	}
	return out
}

func TestConvert(t *testing.T) {
	// 100: a shell; 200: its child process; 201: a thread of 200.
	root := fakeProc(t, map[int]fakeTask{
		100: {tgid: 100, ppid: 1, ticks: 500, argv: "sh\x00"},
		200: {tgid: 200, ppid: 100, ticks: 900, argv: "curl\x00-s\x00http://192.0.2.1/\x00"},
		201: {tgid: 200, ppid: 100, ticks: 901},
	})
	s := offlineSource(t, root)
	dst := netip.MustParseAddrPort("192.0.2.1:80")
	evs := s.run(
		record{Kind: recNewTask, TS: 1, TID: 100, Child: 200, CloneFlags: 0x1200011, HasFlags: true},
		record{Kind: recExec, TS: 2, TID: 200, PID: 200, OldPID: 200, Filename: []byte("/usr/bin/curl")},
		record{Kind: recNewTask, TS: 3, TID: 200, Child: 201, CloneFlags: 0x3d0f00, HasFlags: true}, // a thread
		record{Kind: recConnect, TS: 4, TID: 201, Proto: source.ProtoTCP, Dst: dst},                 // from the thread
		record{Kind: recExit, TS: 5, PID: 201, HasGroup: true, GroupDead: false},                    // thread exits
		record{Kind: recExit, TS: 6, PID: 200, HasGroup: true, GroupDead: true},
	)
	start := uint64(900) * 1e7
	want := []source.Event{
		{Kind: source.KindFork, PID: 200, Start: start, PPID: 100, PStart: 500 * 1e7},
		{Kind: source.KindExec, PID: 200, Start: start, PPID: 100, PStart: 500 * 1e7, Exe: "/usr/bin/curl",
			Argv: []string{"curl", "-s", "http://192.0.2.1/"}},
		{Kind: source.KindConnect, PID: 200, Start: start, Proto: source.ProtoTCP, Dst: dst},
		{Kind: source.KindExit, PID: 200, Start: start},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		g := evs[i]
		if g.Kind != w.Kind || g.PID != w.PID || g.Start != w.Start || g.PPID != w.PPID || g.PStart != w.PStart ||
			g.Exe != w.Exe || fmt.Sprint(g.Argv) != fmt.Sprint(w.Argv) || g.Dst != w.Dst || g.Gone {
			t.Errorf("event %d: %+v\nwant %+v", i, g, w)
		}
		if err := g.Validate(); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
		if d := g.Time.Sub(time.Unix(0, s.offset)); d <= 0 || d > 10 {
			t.Errorf("event %d time %v", i, g.Time)
		}
	}
	if st := s.Stats(); st.Threads != 2 {
		t.Errorf("threads folded: %d, want 2", st.Threads)
	}
	if len(s.tasks) != 1 || s.tasks[100] != 100 || len(s.starts) != 1 { // only the live shell stays
		t.Errorf("tables after exit: tasks %v starts %v", s.tasks, s.starts)
	}

	// A process gone before /proc could be read: exec is Gone, nothing guessed.
	evs = s.run(record{Kind: recExec, TS: 7, TID: 300, PID: 300, OldPID: 300, Filename: []byte("./x")})
	if len(evs) != 1 || !evs[0].Gone || evs[0].Start != 0 || evs[0].Argv != nil {
		t.Errorf("exec of a gone process: %+v", evs)
	}
	// A connect from a task that cannot be attributed is counted, not guessed.
	if evs := s.run(record{Kind: recConnect, TS: 8, TID: 301, Proto: source.ProtoTCP, Dst: dst}); len(evs) != 0 {
		t.Errorf("unattributed connect: %+v", evs)
	}
	if st := s.Stats(); st.Unattributed != 1 {
		t.Errorf("unattributed: %d", st.Unattributed)
	}
	// CLONE_PARENT: the parent is the caller's parent, from /proc.
	evs = s.run(record{Kind: recNewTask, TS: 9, TID: 200, Child: 100, CloneFlags: cloneParent, HasFlags: true})
	if len(evs) != 1 || evs[0].PPID != 1 {
		t.Errorf("CLONE_PARENT fork: %+v", evs)
	}
}

func TestUndecodableIsLoss(t *testing.T) {
	s := offlineSource(t, t.TempDir())
	ex := testFormat(t, "sched_process_exec")
	good := buildRecord(ex, map[string]any{"common_pid": 1, "filename": []byte("/bin/sh"), "pid": 1, "old_pid": 1})
	bad := append([]byte(nil), good...)
	bad[0], bad[1] = 0xff, 0xff // unknown event id
	p := newPage(1)
	p.add(1, bad)
	p.add(1, good)
	s.page(&cpuBuf{cpu: 1}, p.page(false, 0))
	if len(s.held) != 1 || s.lossPending != 1 || s.lossErr == nil {
		t.Fatalf("held %d, pending %d, err %v", len(s.held), s.lossPending, s.lossErr)
	}
	st := s.Stats()
	if st.Lost != 1 || st.Undecodable != 1 || st.Records != 2 {
		t.Fatalf("stats %+v", st)
	}
	err := &lostError{n: 1, cause: s.lossErr}
	if !errors.Is(err, source.ErrLost) || !errors.Is(err, errUnknownEvent) {
		t.Fatalf("%v does not wrap ErrLost and the cause", err)
	}
	// A page the walker cannot frame.
	s.page(&cpuBuf{cpu: 0}, make([]byte, 4))
	if s.lossPending != 2 {
		t.Fatalf("short page: pending %d", s.lossPending)
	}
}

func TestParseStat(t *testing.T) {
	start, ppid, err := parseStat([]byte("42 (a) b) c) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"))
	if err != nil || ppid != 7 || start != 12345*1e7 {
		t.Fatalf("%d %d %v", start, ppid, err)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S 1 2 3", "42 (x) S q 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

// TestCleanStale runs the stale clean-up over a plain directory laid out
// like tracefs: instances of a dead owner and of a reused pid go, those of
// a live owner stay, and the dead owner's kprobes are removed with
// "-:group/event" lines appended to kprobe_events (never truncated).
func TestCleanStale(t *testing.T) {
	root := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID, me := dead.Process.Pid, os.Getpid()
	mk := func(name string, mtime time.Time) {
		p := filepath.Join(root, "instances", name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(fmt.Sprintf("procwall-%d-aa", deadPID), time.Time{})
	mk(fmt.Sprintf("procwall-%d-bb", me), time.Time{})                       // live owner
	mk(fmt.Sprintf("procwall-%d-cc", me), time.Now().Add(-365*24*time.Hour)) // made before this process started: pid reused
	mk("someone-else", time.Time{})                                          // not procwall's
	kprobes := fmt.Sprintf("p:procwall_%d_aa/tcp4_connect tcp_v4_connect\np:procwall_%d_bb/tcp4_connect tcp_v4_connect\np:kprobes/x do_x\n", deadPID, me)
	kp := filepath.Join(root, "kprobe_events")
	if err := os.WriteFile(kp, []byte(kprobes), 0o644); err != nil {
		t.Fatal(err)
	}
	s := offlineSource(t, "/proc")
	removed, err := cleanStale(root, s.proc, clockOffset(unix.CLOCK_BOOTTIME), s.cfg.log)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "instances"))
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != fmt.Sprintf("[procwall-%d-bb someone-else]", me) {
		t.Errorf("instances left: %v (removed %v)", names, removed)
	}
	b, _ := os.ReadFile(kp)
	if want := kprobes + fmt.Sprintf("-:procwall_%d_aa/tcp4_connect", deadPID); string(b) != want {
		t.Errorf("kprobe_events:\n%s\nwant\n%s", b, want)
	}
}

// TestAttributionFromLaterDecodedThread: a thread's connect decoded (from
// one CPU) before its creation (from another), after the thread left
// /proc, is attributed from the creation record once both are decoded.
func TestAttributionFromLaterDecodedThread(t *testing.T) {
	root := fakeProc(t, map[int]fakeTask{500: {tgid: 500, ppid: 1, ticks: 7}})
	s := offlineSource(t, root)
	dst := netip.MustParseAddrPort("198.51.100.9:443")
	conn := heldRec{r: record{Kind: recConnect, TS: 20, TID: 501, Proto: source.ProtoTCP, Dst: dst}}
	thr := heldRec{r: record{Kind: recNewTask, TS: 10, TID: 500, Child: 501, CloneFlags: 0x3d0f00, HasFlags: true}}
	s.enrich(&conn) // CPU0 first: 501 unknown, not in /proc
	s.enrich(&thr)  // then CPU1
	if _, ok := s.convert(&thr); ok {
		t.Fatal("thread creation reported")
	}
	ev, ok := s.convert(&conn)
	if !ok || ev.PID != 500 || ev.Start != 7*1e7 {
		t.Fatalf("connect: %+v %v (stats %+v)", ev, ok, s.Stats())
	}
}

// TestRecycle: recycle keeps the records after the first k in order,
// clears what it dropped, and gives back a buffer a burst left mostly
// unused.
func TestRecycle(t *testing.T) {
	mk := func(n, c int) []heldRec {
		b := make([]heldRec, n, c)
		for i := range b {
			b[i].r.TS = uint64(i)
			b[i].exe = "x"
		}
		return b
	}
	b := mk(10, 16)
	b = recycle(b, 4)
	if len(b) != 6 || b[0].r.TS != 4 || b[5].r.TS != 9 {
		t.Fatalf("kept %d records starting at %d", len(b), b[0].r.TS)
	}
	if tail := b[:10]; tail[6].exe != "" || tail[9].exe != "" {
		t.Fatal("dropped records still referenced")
	}
	big := mk(100, 64*recycleMin)
	small := recycle(big, 90)
	if len(small) != 10 || small[0].r.TS != 90 || cap(small) > recycleMin {
		t.Fatalf("after a burst: %d records from %d, capacity %d", len(small), small[0].r.TS, cap(small))
	}
	busy := mk(60*recycleMin, 64*recycleMin)
	if kept := recycle(busy, 0); cap(kept) != 64*recycleMin || len(kept) != 60*recycleMin {
		t.Fatalf("a well-used buffer was replaced: len %d cap %d", len(kept), cap(kept))
	}
}
