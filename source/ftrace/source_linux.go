//go:build linux

package ftrace

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
)

// Source reads process and connection events from a tracefs instance of
// its own. Next must be called from one goroutine at a time; Close, Lost,
// Stats, Mode and Instance are safe from any goroutine.
type Source struct {
	cfg      config
	mode     Mode
	inst     string // instance directory
	group    string // kprobe group, "" in tracepoint mode
	probes   []string
	mounted  bool
	proc     *procReader
	offset   int64 // realtime - trace clock, ns
	clock    int32 // the trace clock: CLOCK_BOOTTIME, or CLOCK_MONOTONIC on old kernels
	layout   pageLayout
	dec      decoder
	pageSize int

	mu     sync.Mutex // held by Next while it runs and by Close's tear-down
	closed atomic.Bool
	done   bool // torn down (under mu)
	efd    int  // eventfd: Close wakes Next through it
	epfd   int
	cpus   []*cpuBuf

	held []heldRec // decoded, not yet safe to emit (ordering hold-back)
	out  []heldRec // in time order, ready to emit
	head int

	tasks  map[int32]int32  // task id -> thread-group id, learned from events and /proc
	starts map[int32]uint64 // thread-group id -> start time (ns since boot)

	lastUDP udpKey // the last UDP route lookup, to fold a connect's two

	lossPending uint64
	lossErr     error // first undecodable data since the last loss report
	statsMu     sync.Mutex
	stats       Stats
}

type cpuBuf struct {
	cpu      int
	fd       int
	buf      []byte
	stats    string // per_cpu/cpuN/stats
	lostSeen uint64
	lastTS   uint64 // time of the last record read
}

// maxPagesPerDrain bounds the pages read from one CPU per round (256 KiB
// of 4 KiB pages), and so the records held in memory.
const maxPagesPerDrain = 64

type udpKey struct {
	tid   int32
	dst   netip.AddrPort
	sport uint16
	ts    uint64
}

// heldRec is a decoded record with its exec filename copied out of the
// page.
type heldRec struct {
	r   record
	exe string
	// Read from /proc when the record was decoded, as early as possible:
	// short-lived processes are gone by the time a late reader asks.
	tgid   int32 // connect, send, exit: the task's thread group (0: unknown)
	start  uint64
	ppid   int32
	statOK bool
	argv   []string
	argvOK bool
}

// Open creates the source's tracefs instance (and, in kprobe mode, its
// kprobe events), removes stale ones of dead procwall processes, and starts
// tracing. It needs root (CAP_SYS_ADMIN for tracefs, CAP_SYS_ADMIN to
// mount it when absent). Errors wrap source.ErrNotSupported when the
// kernel lacks tracefs or the needed events.
func Open(opts ...Option) (*Source, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s := &Source{cfg: cfg, efd: -1, epfd: -1, proc: newProcReader(cfg.proc), clock: unix.CLOCK_BOOTTIME,
		tasks: make(map[int32]int32), starts: make(map[int32]uint64)}
	s.offset = clockOffset(unix.CLOCK_BOOTTIME)
	mounted, err := ensureMounted(cfg.root)
	if err != nil {
		return nil, err
	}
	// tracefs at its standard place is shared with every other tracer on
	// the machine (and is where systemd mounts it): once there it stays.
	// Only a private mount point is unmounted again by Close.
	s.mounted = mounted && filepath.Clean(cfg.root) != DefaultRoot
	if err := s.setup(); err != nil {
		s.teardown()
		return nil, err
	}
	return s, nil
}

// clockOffset returns CLOCK_REALTIME - clock in ns.
func clockOffset(clock int32) int64 {
	var rt, bt unix.Timespec
	_ = unix.ClockGettime(clock, &bt)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &rt)
	return rt.Nano() - bt.Nano()
}

func clockNow(clock int32) uint64 {
	var bt unix.Timespec
	_ = unix.ClockGettime(clock, &bt)
	return uint64(bt.Nano())
}

func (s *Source) setup() error {
	root, log := s.cfg.root, s.cfg.log
	if _, err := cleanStale(root, s.proc, s.offset, log); err != nil {
		log.Warn("ftrace: stale clean-up incomplete", "err", err)
	}
	if err := Probe(root, FeatureTracepoints); err != nil {
		return err
	}
	s.mode = s.cfg.mode
	if s.mode == ModeAuto {
		if err := Probe(root, FeatureKprobes); err == nil {
			s.mode = ModeKprobes
		} else {
			log.Debug("ftrace: kprobes unavailable, using tracepoints", "err", err)
			s.mode = ModeTracepoints
		}
	} else if s.mode == ModeKprobes {
		if err := Probe(root, FeatureKprobes); err != nil {
			return err
		}
	}
	hp, err := os.ReadFile(filepath.Join(root, "events/header_page"))
	if err != nil {
		return &source.OpError{Op: "ftrace: read header_page", Err: err}
	}
	if s.layout, err = parseHeaderPage(hp); err != nil {
		return err
	}
	rnd := randHex()
	name := instancePrefix + strconv.Itoa(os.Getpid()) + "-" + rnd
	s.inst = filepath.Join(root, "instances", name)
	if err := os.Mkdir(s.inst, 0o700); err != nil {
		s.inst = ""
		return &source.OpError{Op: "ftrace: create instance", Err: err}
	}
	type ev struct {
		path     string // events/<system>/<event>
		role     role
		optional bool   // the source works without it (logged)
		filter   string // kernel filter, "" for none
	}
	var evs []ev
	if _, err := os.Stat(filepath.Join(s.inst, "events/task/task_newtask/format")); err == nil {
		evs = append(evs, ev{path: "task/task_newtask", role: roleNewTask})
	} else {
		evs = append(evs, ev{path: "sched/sched_process_fork", role: roleFork})
	}
	evs = append(evs, ev{path: "sched/sched_process_exec", role: roleExec}, ev{path: "sched/sched_process_exit", role: roleExit})
	if s.mode == ModeKprobes {
		s.group = strings.ReplaceAll(kprobePrefix+strconv.Itoa(os.Getpid())+"_"+rnd, "-", "_")
		kp := filepath.Join(root, "kprobe_events")
		var kevs []ev
		var kerr error
		for _, d := range kprobeDefs {
			if err := writeFile(kp, kprobeLine(s.group, d)); err != nil {
				kerr = &source.OpError{Op: "ftrace: define kprobe " + d.symbol, Err: err}
				break
			}
			s.probes = append(s.probes, d.event)
			kevs = append(kevs, ev{path: s.group + "/" + d.event, role: d.role})
		}
		if kerr != nil {
			if s.cfg.mode != ModeAuto {
				return kerr
			}
			// Auto: a kernel without one of the functions (IPv6 as a
			// module not loaded, a renamed symbol) falls back whole.
			log.Warn("ftrace: kprobes unusable, using tracepoints", "err", kerr)
			s.removeProbes()
			s.mode = ModeTracepoints
			kevs = nil
		}
		evs = append(evs, kevs...)
	}
	if s.mode == ModeTracepoints {
		// Only connects: TCP_CLOSE -> TCP_SYN_SENT, in the connecting task.
		evs = append(evs, ev{path: "sock/inet_sock_set_state", role: roleSockState,
			filter: fmt.Sprintf("oldstate == %d && newstate == %d", tcpClose, tcpSynSent)})
		if s.cfg.udp {
			// UDP output route lookups, in the sending task's context.
			udp := fmt.Sprintf("proto == 17 && err == 0 && iif == %d", loopbackIfindex)
			evs = append(evs, ev{path: "fib/fib_table_lookup", role: roleFib4, optional: true, filter: udp},
				ev{path: "fib6/fib6_table_lookup", role: roleFib6, optional: true, filter: udp})
		}
	}
	var use []ev
	for _, e := range evs {
		err := s.addEvent(e.path, e.role, e.filter)
		if err != nil && e.optional {
			log.Info("ftrace: optional event unavailable", "event", e.path, "err", err)
			continue
		}
		if err != nil {
			return err
		}
		use = append(use, e)
	}
	evs = use
	// Ring-buffer settings before enabling anything.
	// The boot clock (CLOCK_BOOTTIME), as /proc start times; kernels
	// before 4.19 have only mono (CLOCK_MONOTONIC).
	s.clock = unix.CLOCK_BOOTTIME
	if err := writeFile(filepath.Join(s.inst, "trace_clock"), "boot"); err != nil {
		if err2 := writeFile(filepath.Join(s.inst, "trace_clock"), "mono"); err2 != nil {
			return &source.OpError{Op: "ftrace: set trace clock", Err: errors.Join(err, err2)}
		}
		s.clock = unix.CLOCK_MONOTONIC
		s.offset = clockOffset(s.clock)
	}
	// Wake readers on any data, not when half the buffer is full.
	if err := writeFile(filepath.Join(s.inst, "buffer_percent"), "0"); err != nil {
		log.Debug("ftrace: buffer_percent not set", "err", err)
	}
	if s.cfg.bufferKB > 0 {
		if err := writeFile(filepath.Join(s.inst, "buffer_size_kb"), strconv.Itoa(s.cfg.bufferKB)); err != nil {
			return &source.OpError{Op: "ftrace: set buffer size", Err: err}
		}
	}
	s.pageSize = os.Getpagesize()
	if b, err := os.ReadFile(filepath.Join(s.inst, "buffer_subbuf_size_kb")); err == nil {
		if kb, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && kb > 0 {
			s.pageSize = kb * 1024
		}
	}
	// Readers first, so nothing enabled goes unread.
	if err := s.openReaders(); err != nil {
		return err
	}
	for _, e := range evs {
		if err := writeFile(filepath.Join(s.inst, "events", e.path, "enable"), "1"); err != nil {
			return &source.OpError{Op: "ftrace: enable " + e.path, Err: err}
		}
	}
	if err := writeFile(filepath.Join(s.inst, "tracing_on"), "1"); err != nil {
		return &source.OpError{Op: "ftrace: tracing_on", Err: err}
	}
	log.Debug("ftrace: tracing", "instance", s.inst, "mode", s.mode.String(), "cpus", len(s.cpus))
	return nil
}

// addEvent reads an event's format into the decoder and sets its filter.
func (s *Source) addEvent(path string, r role, filter string) error {
	b, err := os.ReadFile(filepath.Join(s.inst, "events", path, "format"))
	if err != nil {
		return &source.OpError{Op: "ftrace: read format of " + path, Err: err}
	}
	f, err := ParseFormat(b)
	if err != nil {
		return fmt.Errorf("ftrace: %s: %w", path, err)
	}
	if filter != "" {
		if err := writeFile(filepath.Join(s.inst, "events", path, "filter"), filter); err != nil {
			return &source.OpError{Op: "ftrace: set filter of " + path, Err: err}
		}
	}
	if err := s.dec.add(r, f); err != nil {
		return fmt.Errorf("ftrace: %w", err)
	}
	return nil
}

func (s *Source) openReaders() error {
	var err error
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return &source.OpError{Op: "ftrace: eventfd", Err: err}
	}
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return &source.OpError{Op: "ftrace: epoll", Err: err}
	}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, s.efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}); err != nil {
		return &source.OpError{Op: "ftrace: epoll add", Err: err}
	}
	ents, err := os.ReadDir(filepath.Join(s.inst, "per_cpu"))
	if err != nil {
		return &source.OpError{Op: "ftrace: list per_cpu", Err: err}
	}
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "cpu")
		if !ok {
			continue
		}
		cpu, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		dir := filepath.Join(s.inst, "per_cpu", e.Name())
		fd, err := unix.Open(filepath.Join(dir, "trace_pipe_raw"), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return &source.OpError{Op: "ftrace: open " + e.Name() + " trace_pipe_raw", Err: err}
		}
		c := &cpuBuf{cpu: cpu, fd: fd, buf: make([]byte, s.pageSize), stats: filepath.Join(dir, "stats")}
		s.cpus = append(s.cpus, c)
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(len(s.cpus) - 1)}); err != nil {
			return &source.OpError{Op: "ftrace: epoll add " + e.Name(), Err: err}
		}
	}
	if len(s.cpus) == 0 {
		return &source.OpError{Op: "ftrace: open readers", Err: errors.New("no per_cpu directories")}
	}
	return nil
}

// Name implements source.Source.
func (s *Source) Name() string { return "ftrace" }

// Mode returns the mode the source runs in (never ModeAuto).
func (s *Source) Mode() Mode { return s.mode }

// Instance returns the tracefs instance directory the source created.
func (s *Source) Instance() string { return s.inst }

// Lost returns how many records the kernel dropped so far.
func (s *Source) Lost() uint64 {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats.Lost
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

func (s *Source) count(f func(*Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

// lostError is the error Next returns after loss; it wraps source.ErrLost
// and says how many records were lost, and why when the source could not
// decode them.
type lostError struct {
	n     uint64
	cause error // undecodable data, or nil for ring-buffer overrun
}

func (e *lostError) Error() string {
	why := "ring buffer overrun"
	if e.cause != nil {
		why = "undecodable: " + e.cause.Error()
	}
	return "ftrace: " + strconv.FormatUint(e.n, 10) + " records lost (" + why + "): " + source.ErrLost.Error()
}

func (e *lostError) Unwrap() []error {
	if e.cause != nil {
		return []error{source.ErrLost, e.cause}
	}
	return []error{source.ErrLost}
}

// Next returns the next event in time order. It blocks until one is
// available or Close is called (then the error wraps os.ErrClosed). When
// the kernel overran the ring buffer, Next returns an error wrapping
// source.ErrLost once; the source stays usable.
//
// Threads are folded into their thread group: a thread's creation and a
// non-last thread's exit produce no event, and every event names the
// thread-group id (the process id) as PID.
func (s *Source) Next() (source.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() || s.done {
			return source.Event{}, &source.OpError{Op: "ftrace: next", Err: os.ErrClosed}
		}
		if s.lossPending > 0 {
			n, cause := s.lossPending, s.lossErr
			s.lossPending, s.lossErr = 0, nil
			s.count(func(st *Stats) { st.LossReports++ })
			return source.Event{}, &lostError{n: n, cause: cause}
		}
		for s.head < len(s.out) {
			h := &s.out[s.head]
			s.head++
			if ev, ok := s.convert(h); ok {
				s.count(func(st *Stats) { st.Events++ })
				return ev, nil
			}
		}
		s.out, s.head = recycle(s.out, len(s.out)), 0
		if err := s.drain(); err != nil {
			return source.Event{}, err
		}
		if len(s.out) > 0 || s.lossPending > 0 {
			continue
		}
		timeout := -1
		if len(s.held) > 0 {
			timeout = int((s.cfg.holdNS + 999999) / 1e6)
		}
		var evs [8]unix.EpollEvent
		_, err := unix.EpollWait(s.epfd, evs[:], timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return source.Event{}, &source.OpError{Op: "ftrace: epoll_wait", Err: err}
		}
	}
}

// drain reads every CPU's buffer until empty, then moves the records that
// can no longer be preceded by an unread one to s.out in time order.
func (s *Source) drain() error {
	var watermark uint64 = ^uint64(0)
	for _, c := range s.cpus {
		now := clockNow(s.clock)
		if now < watermark {
			watermark = now
		}
		for pages := 0; ; pages++ {
			if pages == maxPagesPerDrain {
				// Bound memory in a storm: leave the rest for the next
				// round, and emit nothing of this round newer than what
				// was read from this CPU.
				if c.lastTS < watermark {
					watermark = c.lastTS
				}
				break
			}
			n, err := unix.Read(c.fd, c.buf)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) {
					break
				}
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return &source.OpError{Op: "ftrace: read cpu" + strconv.Itoa(c.cpu), Err: err}
			}
			if n == 0 {
				break
			}
			s.page(c, c.buf[:n])
		}
	}
	if len(s.held) == 0 {
		return nil
	}
	slices.SortStableFunc(s.held, func(a, b heldRec) int {
		switch {
		case a.r.TS < b.r.TS:
			return -1
		case a.r.TS > b.r.TS:
			return 1
		}
		return 0
	})
	// A record is reserved (timestamped) a little before it is committed
	// and visible; hold back the ones too close to the moment a CPU was
	// read, so a later read cannot yield an earlier record.
	cut := uint64(0)
	if hold := uint64(s.cfg.holdNS); watermark > hold {
		cut = watermark - hold
	}
	i := 0
	for i < len(s.held) && s.held[i].r.TS <= cut {
		i++
	}
	s.out = append(s.out, s.held[:i]...)
	s.held = recycle(s.held, i)
	return nil
}

// recycleMin is the capacity in records the record buffers keep at least.
const recycleMin = 1024

// recycle drops the first k records of b and returns the rest at the
// start of a buffer, releasing what the records dropped referred to. A
// buffer that a storm grew and that is now less than a quarter used is
// replaced by a smaller one, so that its memory follows the current load
// rather than the largest burst ever seen.
func recycle(b []heldRec, k int) []heldRec {
	used := len(b)
	if c := cap(b); c > recycleMin && used*4 < c {
		nb := make([]heldRec, 0, max(2*used, recycleMin))
		return append(nb, b[k:]...)
	}
	n := copy(b, b[k:])
	clear(b[n:used])
	return b[:n]
}

// page decodes one ring-buffer page into s.held. A page or record the
// decoder cannot read is not fatal: it is counted as lost (with the
// error, in the ErrLost error Next returns) and reading goes on.
func (s *Source) page(c *cpuBuf, p []byte) {
	var it pageIter
	if err := it.reset(s.layout, p); err != nil {
		s.badData(c, err)
		return
	}
	if it.Missed {
		s.noteLoss(c, it.Count)
	}
	var n uint64
	for {
		ts, data, ok, err := it.next()
		if err != nil {
			// The entry framing is broken: the rest of the page is lost.
			s.badData(c, err)
			break
		}
		if !ok {
			break
		}
		n++
		c.lastTS = ts
		var h heldRec
		if err := s.dec.decode(ts, data, &h.r); err != nil {
			s.badData(c, err)
			continue
		}
		if h.r.Kind == recExec {
			h.exe = string(h.r.Filename)
			h.r.Filename = nil
		}
		s.enrich(&h)
		s.held = append(s.held, h)
	}
	s.count(func(st *Stats) { st.Records += n })
}

// badData accounts a page or record that could not be decoded.
func (s *Source) badData(c *cpuBuf, err error) {
	s.lossPending++
	if s.lossErr == nil {
		s.lossErr = fmt.Errorf("cpu%d: %w", c.cpu, err)
	}
	s.count(func(st *Stats) { st.Lost++; st.Undecodable++ })
	s.cfg.log.Warn("ftrace: undecodable ring-buffer data", "cpu", c.cpu, "err", err)
}

// noteLoss accounts a page that the kernel flagged as following lost
// records, from the CPU's overrun counters.
func (s *Source) noteLoss(c *cpuBuf, stored uint64) {
	total, err := readLostCounters(c.stats)
	var delta uint64
	if err == nil && total > c.lostSeen {
		delta = total - c.lostSeen
		c.lostSeen = total
	}
	if delta == 0 {
		delta = max(stored, 1)
	}
	s.lossPending += delta
	s.count(func(st *Stats) { st.Lost += delta })
	s.cfg.log.Warn("ftrace: ring buffer overrun", "cpu", c.cpu, "lost", delta)
	// Exits may be among the lost records: forget learned tasks so that
	// nothing stale outlives the loss; they are re-read from /proc.
	clear(s.tasks)
	clear(s.starts)
}

// readLostCounters sums overrun, commit overrun and dropped events of a
// per_cpu stats file.
func readLostCounters(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var total uint64
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "overrun", "commit overrun", "dropped events":
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err == nil {
				total += n
			}
		}
	}
	return total, nil
}

// enrich reads what a record needs from /proc right after it is decoded.
func (s *Source) enrich(h *heldRec) {
	r := &h.r
	var err error
	switch r.Kind {
	case recNewTask:
		// Learn the new task's thread group now, not when the record is
		// delivered: records decoded in the same round (a short-lived
		// child's connect) are attributed from it even when the task is
		// gone from /proc by then.
		if r.HasFlags && r.CloneFlags&cloneThread != 0 {
			if g, ok := s.tgid(r.TID); ok {
				s.remember(r.Child, g)
			}
			return
		}
		if r.HasFlags {
			s.remember(r.Child, r.Child)
		}
		h.start, h.ppid, err = s.proc.stat(r.Child)
		h.statOK = err == nil
		if h.statOK {
			s.starts[r.Child] = h.start
		}
	case recExec:
		h.start, h.ppid, err = s.proc.stat(r.PID)
		h.statOK = err == nil
		h.argv, err = s.proc.cmdline(r.PID)
		h.argvOK = err == nil && h.argv != nil
	case recExit:
		if r.HasGroup && !r.GroupDead {
			return
		}
		if g, ok := s.tgid(r.PID); ok {
			h.tgid = g
			h.start = s.start(g)
		}
	case recConnect, recSend:
		if g, ok := s.tgid(r.TID); ok {
			h.tgid = g
			h.start = s.start(g)
		}
	}
}

// tgid returns the thread-group id of a task.
func (s *Source) tgid(tid int32) (int32, bool) {
	if g, ok := s.tasks[tid]; ok {
		return g, true
	}
	g, err := s.proc.tgid(tid)
	if err != nil {
		return 0, false
	}
	s.remember(tid, g)
	return g, true
}

const maxTasks = 1 << 20

func (s *Source) remember(tid, tgid int32) {
	if len(s.tasks) >= maxTasks {
		clear(s.tasks)
	}
	s.tasks[tid] = tgid
}

// start returns a process's start time, cached, and its parent from
// /proc when it had to be read.
func (s *Source) start(pid int32) uint64 {
	if st, ok := s.starts[pid]; ok {
		return st
	}
	st, _, err := s.proc.stat(pid)
	if err != nil {
		return 0
	}
	if len(s.starts) >= maxTasks {
		clear(s.starts)
	}
	s.starts[pid] = st
	return st
}

func (s *Source) evTime(ts uint64) time.Time { return time.Unix(0, s.offset+int64(ts)) }

// convert turns a record into an event, keeping the task table. ok is
// false for records that report nothing.
func (s *Source) convert(h *heldRec) (source.Event, bool) {
	r := &h.r
	switch r.Kind {
	case recNewTask:
		return s.convertNewTask(h)
	case recExec:
		pid := r.PID
		if r.OldPID != pid {
			delete(s.tasks, r.OldPID)
		}
		s.remember(pid, pid)
		ev := source.Event{Time: s.evTime(r.TS), Kind: source.KindExec, PID: int(pid), Exe: h.exe, Origin: "ftrace"}
		if h.statOK {
			if _, ok := s.starts[pid]; !ok {
				s.starts[pid] = h.start
			}
			if h.ppid > 0 && h.ppid != pid {
				ev.PPID = int(h.ppid)
				ev.PStart = s.start(h.ppid)
			}
		}
		ev.Start = s.starts[pid]
		if h.argvOK {
			ev.Argv = h.argv
		} else {
			ev.Gone = true
		}
		return ev, true
	case recExit:
		g, ok := h.tgid, h.tgid > 0
		if !ok {
			g, ok = s.tgid(r.PID)
		}
		delete(s.tasks, r.PID)
		if r.HasGroup {
			if !r.GroupDead {
				s.count(func(st *Stats) { st.Threads++ })
				return source.Event{}, false
			}
		} else if !ok || g != r.PID {
			s.count(func(st *Stats) { st.Threads++ })
			return source.Event{}, false
		}
		if !ok {
			s.count(func(st *Stats) { st.Unattributed++ })
			return source.Event{}, false
		}
		start := h.start
		if st, ok := s.starts[g]; ok {
			start = st
		}
		ev := source.Event{Time: s.evTime(r.TS), Kind: source.KindExit, PID: int(g), Start: start, Origin: "ftrace"}
		delete(s.starts, g)
		delete(s.tasks, g)
		return ev, true
	case recConnect, recSend:
		if r.Kind == recSend && r.Proto == source.ProtoUDP && s.mode == ModeTracepoints {
			// connect() of a UDP socket looks its route up twice (to pick
			// the source address, then with it): report it once.
			last := s.lastUDP
			s.lastUDP = udpKey{tid: r.TID, dst: r.Dst, sport: r.SPort, ts: r.TS}
			if last.tid == r.TID && last.dst == r.Dst && last.sport == r.SPort && r.TS-last.ts < 1e6 {
				s.count(func(st *Stats) { st.Skipped++ })
				return source.Event{}, false
			}
		}
		g := h.tgid
		if g <= 0 {
			// Not known when decoded: the thread's creation may have been
			// read later in the same round from another CPU (and the thread
			// gone from /proc by then); it is learned by now.
			var ok bool
			if g, ok = s.tgid(r.TID); !ok {
				s.count(func(st *Stats) { st.Unattributed++ })
				return source.Event{}, false
			}
		}
		k := source.KindConnect
		if r.Kind == recSend {
			k = source.KindSend
		}
		start := h.start
		if st, ok := s.starts[g]; ok {
			start = st
		} else if start == 0 {
			start = s.start(g)
		}
		return source.Event{Time: s.evTime(r.TS), Kind: k, PID: int(g), Start: start,
			Proto: r.Proto, Dst: r.Dst, Src: r.Src, Origin: "ftrace"}, true
	case recSkip:
		s.count(func(st *Stats) { st.Skipped++ })
	}
	return source.Event{}, false
}

func (s *Source) convertNewTask(h *heldRec) (source.Event, bool) {
	r := &h.r
	parentTask := r.TID
	if !r.HasFlags && r.Parent > 0 {
		parentTask = r.Parent
	}
	pg, ok := s.tgid(parentTask)
	if !ok {
		pg = 0
	}
	thread := false
	if r.HasFlags {
		thread = r.CloneFlags&cloneThread != 0
	} else {
		g, err := s.proc.tgid(r.Child)
		if err != nil {
			s.count(func(st *Stats) { st.Unattributed++ })
			return source.Event{}, false
		}
		thread = g != r.Child
		if thread {
			pg = g
		}
	}
	if thread {
		if pg > 0 {
			s.remember(r.Child, pg)
		}
		s.count(func(st *Stats) { st.Threads++ })
		return source.Event{}, false
	}
	s.remember(r.Child, r.Child)
	ev := source.Event{Time: s.evTime(r.TS), Kind: source.KindFork, PID: int(r.Child), Origin: "ftrace"}
	ppid := h.ppid
	if h.statOK {
		s.starts[r.Child] = h.start
		ev.Start = h.start
	}
	if r.HasFlags && r.CloneFlags&cloneParent != 0 {
		// The new process's parent is the caller's parent.
		if !h.statOK {
			s.count(func(st *Stats) { st.Unattributed++ })
			return source.Event{}, false
		}
		pg = ppid
	}
	if pg <= 0 {
		if !h.statOK {
			s.count(func(st *Stats) { st.Unattributed++ })
			return source.Event{}, false
		}
		pg = ppid
	}
	ev.PPID = int(pg)
	ev.PStart = s.start(pg)
	return ev, true
}

// Close stops tracing, unblocks a pending Next and removes the instance
// and kprobe events the source created (and unmounts tracefs if Open
// mounted it at a root other than DefaultRoot). It is safe to call more
// than once and from any goroutine.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.efd >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(s.efd, one[:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.teardown()
}

// removeProbes removes the kprobe events the source defined.
func (s *Source) removeProbes() error {
	var errs []error
	kp := filepath.Join(s.cfg.root, "kprobe_events")
	for _, p := range s.probes {
		if err := writeFile(kp, kprobeRemoveLine(s.group, p)); err != nil {
			errs = append(errs, &source.OpError{Op: "ftrace: remove kprobe", Err: err})
		}
	}
	s.probes = nil
	return errors.Join(errs...)
}

// teardown releases everything; s.mu is held (or s is not yet shared).
func (s *Source) teardown() error {
	if s.done {
		return nil
	}
	s.done = true
	var errs []error
	for _, c := range s.cpus {
		unix.Close(c.fd)
	}
	s.cpus = nil
	if s.epfd >= 0 {
		unix.Close(s.epfd)
		s.epfd = -1
	}
	if s.efd >= 0 {
		unix.Close(s.efd)
		s.efd = -1
	}
	if s.inst != "" {
		_ = writeFile(filepath.Join(s.inst, "tracing_on"), "0")
		if err := removeInstance(s.inst); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.removeProbes(); err != nil {
		errs = append(errs, err)
	}
	if s.mounted {
		if err := unix.Unmount(s.cfg.root, 0); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, &source.OpError{Op: "ftrace: unmount " + s.cfg.root, Err: err})
		}
		s.mounted = false
	}
	return errors.Join(errs...)
}
