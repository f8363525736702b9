package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procwall/procwall/source"
)

// DefaultRoot is where the kernel mounts proc.
const DefaultRoot = "/proc"

// ClockTicks is CLK_TCK, the unit of the starttime field of
// /proc/<pid>/stat. It is 100 on every Linux architecture procwall runs on.
const ClockTicks = 100

// TicksToNanos converts a starttime in clock ticks to nanoseconds.
func TicksToNanos(ticks uint64) uint64 { return ticks * (1e9 / ClockTicks) }

// goneError is the type of ErrGone: it also matches os.ErrNotExist.
type goneError struct{}

func (goneError) Error() string { return "process gone" }

// Is reports that a gone process is a kind of "does not exist".
func (goneError) Is(target error) bool { return target == os.ErrNotExist }

// ErrGone is wrapped by the errors of reads of a process that exited (or
// whose pid was reused) before it could be read. errors.Is(err,
// os.ErrNotExist) holds for it too.
var ErrGone error = goneError{}

// ErrThread is wrapped by the error of [FS.Process] when the id names a
// thread that is not its thread group's leader.
var ErrThread = errors.New("not a process: a thread of another thread group")

// ErrParse is wrapped by errors about malformed /proc files.
var ErrParse = errors.New("malformed proc file")

// OpError is an error reading one file of one process.
type OpError struct {
	Op   string // "read stat", "read status", "list", ...
	Path string // the file or directory
	Err  error
}

// Error implements error.
func (e *OpError) Error() string { return e.Op + " " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// FS is a proc file system rooted at a directory. The zero value is not
// usable; call [NewFS]. FS is safe for concurrent use.
type FS struct {
	root string
}

// NewFS returns the proc file system at root ("" means /proc). It fails if
// root is not a directory.
func NewFS(root string) (FS, error) {
	if root == "" {
		root = DefaultRoot
	}
	fi, err := os.Stat(root)
	if err != nil {
		return FS{}, &OpError{Op: "open", Path: root, Err: err}
	}
	if !fi.IsDir() {
		return FS{}, &OpError{Op: "open", Path: root, Err: errors.New("not a directory")}
	}
	return FS{root: root}, nil
}

// Root returns the directory the FS reads.
func (fs FS) Root() string { return fs.root }

func (fs FS) path(pid int, name string) string {
	return filepath.Join(fs.root, strconv.Itoa(pid), name)
}

// Stat is the part of /proc/<pid>/stat that procwall uses.
type Stat struct {
	PID        int
	Comm       string // task name, up to 15 bytes; may hold spaces and parentheses
	State      byte   // R, S, D, Z, X, ...
	PPID       int
	PGID       int
	SessionID  int
	NumThreads int
	Flags      uint32 // field 9: the kernel's task flags (PF_*)
	StartTicks uint64 // field 22: clock ticks since boot
}

// Task flags of interest in Stat.Flags.
const (
	pfExiting = 0x00000004 // PF_EXITING: in do_exit, its memory may already be gone
	pfKthread = 0x00200000 // PF_KTHREAD: a kernel thread
)

// Exiting reports whether the task has begun to exit (PF_EXITING): what is
// read of it may already be missing.
func (s Stat) Exiting() bool { return s.Flags&pfExiting != 0 }

// Kernel reports whether the task is a kernel thread (PF_KTHREAD).
func (s Stat) Kernel() bool { return s.Flags&pfKthread != 0 }

// Start returns the start time in nanoseconds since boot.
func (s Stat) Start() uint64 { return TicksToNanos(s.StartTicks) }

// Process is one process as /proc shows it.
type Process struct {
	PID        int
	TGID       int // equal to PID for a process (thread-group leader)
	PPID       int
	Start      uint64 // ns since boot (see the package documentation)
	Comm       string
	State      byte
	PGID       int
	SessionID  int
	NumThreads int
	Kernel     bool     // a kernel thread
	Exe        string   // empty for kernel threads, zombies, or when unreadable
	Argv       []string // empty for kernel threads and zombies
	UID, EUID  int      // real and effective user id; -1 when unknown
	GID, EGID  int      // real and effective group id; -1 when unknown
	Cwd        string
	Cgroup     string // the unified (v2) cgroup path, else the first hierarchy's
}

// ID returns the process identity.
func (p *Process) ID() source.ProcID { return source.ProcID{PID: p.PID, Start: p.Start} }

// Zombie reports whether the process has exited and waits to be reaped.
func (p *Process) Zombie() bool { return p.State == 'Z' || p.State == 'X' }

// Event returns the process as an exec event at time t with its parent, so
// that a tree can be seeded from it (an exec naming a ppid acts as an
// implicit fork). UID is the effective user id (the one the kernel checks
// permissions against), as in every procwall live source. The cgroup, if
// known, is in Reason as "cgroup=PATH".
func (p *Process) Event(t time.Time) source.Event {
	ev := source.Event{
		Time:   t,
		Kind:   source.KindExec,
		PID:    p.PID,
		Start:  p.Start,
		PPID:   p.PPID,
		Exe:    p.Exe,
		Argv:   p.Argv,
		Comm:   p.Comm,
		Cwd:    p.Cwd,
		Origin: "procfs",
	}
	if p.EUID >= 0 {
		ev.UID, ev.HasUID = p.EUID, true
	}
	if p.Cgroup != "" {
		ev.Reason = "cgroup=" + p.Cgroup
	}
	return ev
}

// Stat reads /proc/<pid>/stat only: the cheapest read that yields a
// process's parent and start time.
func (fs FS) Stat(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, &OpError{Op: "read stat", Path: fs.path(pid, "stat"), Err: fmt.Errorf("pid must be > 0, have %d", pid)}
	}
	return readStat(fs.path(pid, "stat"))
}

// Process reads everything procwall knows about one process. Missing
// optional files (exe of a kernel thread, anything the caller may not read)
// leave their fields empty. If the process is gone before or while it is
// read, the error wraps [ErrGone].
func (fs FS) Process(pid int) (Process, error) {
	st, err := fs.Stat(pid)
	if err != nil {
		return Process{}, err
	}
	p := Process{
		PID: st.PID, TGID: st.PID, PPID: st.PPID, Start: st.Start(), Comm: st.Comm, State: st.State,
		PGID: st.PGID, SessionID: st.SessionID, NumThreads: st.NumThreads, Kernel: st.Kernel(),
		UID: -1, EUID: -1, GID: -1, EGID: -1,
	}
	if st.PID != pid {
		return Process{}, &OpError{Op: "read stat", Path: fs.path(pid, "stat"), Err: fmt.Errorf("%w: names pid %d", ErrParse, st.PID)}
	}
	status, err := readStatus(fs.path(pid, "status"))
	if err != nil {
		return Process{}, err
	}
	p.TGID, p.UID, p.EUID, p.GID, p.EGID = status.TGID, status.UID, status.EUID, status.GID, status.EGID
	if p.TGID == 0 {
		p.TGID = pid
	}
	if p.TGID != pid {
		return Process{}, &OpError{Op: "read status", Path: fs.path(pid, "status"), Err: fmt.Errorf("%w %d", ErrThread, p.TGID)}
	}
	exeGone := false
	if !p.Zombie() {
		if p.Exe, err = readLink(fs.path(pid, "exe")); err != nil && !optional(err) {
			return Process{}, err
		}
		// Only kernel threads have no exe link; a user process loses it
		// when its memory is released on exit.
		exeGone = err != nil && errors.Is(err, os.ErrNotExist) && !p.Kernel
		if p.Cwd, err = readLink(fs.path(pid, "cwd")); err != nil && !optional(err) {
			return Process{}, err
		}
		if p.Argv, err = readCmdline(fs.path(pid, "cmdline")); err != nil && !optional(err) {
			return Process{}, err
		}
	}
	if p.Cgroup, err = readCgroup(fs.path(pid, "cgroup")); err != nil && !optional(err) {
		return Process{}, err
	}
	// Read stat again: if the process went away or the pid now names another
	// process, what was read above cannot be trusted.
	again, err := fs.Stat(pid)
	if err != nil {
		return Process{}, err
	}
	if again.StartTicks != st.StartTicks {
		return Process{}, &OpError{Op: "read stat", Path: fs.path(pid, "stat"), Err: fmt.Errorf("%w: pid %d was reused while it was read", ErrGone, pid)}
	}
	if again.State == 'Z' || again.State == 'X' {
		p.State = again.State
		p.Exe, p.Cwd, p.Argv = "", "", nil
		return p, nil
	}
	if again.Exiting() || exeGone {
		// Exiting: what was read may be partial (no exe, no argv).
		return Process{}, &OpError{Op: "read", Path: fs.path(pid, ""), Err: fmt.Errorf("%w: pid %d is exiting", ErrGone, pid)}
	}
	return p, nil
}

// optional reports whether a read error of an optional file leaves the
// field empty rather than failing the whole process: the file does not
// exist (kernel threads have no exe; a gone process is caught by the second
// stat read) or may not be read by this caller.
func optional(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, ErrGone)
}

func isGone(err error) bool { return errors.Is(err, ErrGone) }

// All yields every process in the snapshot, in ascending pid order. A
// process that vanishes while it is read is left out; any other error is
// yielded with the pid's zero Process (PID set) and the iteration goes on.
// An error listing the root ends the iteration.
func (fs FS) All() iter.Seq2[Process, error] {
	return func(yield func(Process, error) bool) {
		pids, err := fs.PIDs()
		if err != nil {
			yield(Process{}, err)
			return
		}
		for _, pid := range pids {
			p, err := fs.Process(pid)
			if err != nil {
				if isGone(err) || errors.Is(err, ErrThread) {
					continue
				}
				if !yield(Process{PID: pid}, err) {
					return
				}
				continue
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

// Processes returns every process in the snapshot, in ascending pid order.
// Processes that could not be read for another reason than having exited
// are left out and named in the returned error (errors.Join of each); the
// slice holds all the others.
func (fs FS) Processes() ([]Process, error) {
	var out []Process
	var errs []error
	for p, err := range fs.All() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// PIDs lists the process ids in the root directory, ascending. The kernel
// lists thread-group leaders only, never other threads.
func (fs FS) PIDs() ([]int, error) {
	d, err := os.Open(fs.root)
	if err != nil {
		return nil, &OpError{Op: "list", Path: fs.root, Err: err}
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, &OpError{Op: "list", Path: fs.root, Err: err}
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '1' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids, nil
}

// BootTime reads the boot time (btime of <root>/stat, whole seconds).
func (fs FS) BootTime() (time.Time, error) {
	p := filepath.Join(fs.root, "stat")
	f, err := os.Open(p)
	if err != nil {
		return time.Time{}, &OpError{Op: "read", Path: p, Err: err}
	}
	defer f.Close()
	t, err := parseBootTime(f)
	if err != nil {
		return time.Time{}, &OpError{Op: "read", Path: p, Err: err}
	}
	return t, nil
}

func parseBootTime(r io.Reader) (time.Time, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n <= 0 {
				return time.Time{}, fmt.Errorf("%w: btime %q", ErrParse, v)
			}
			return time.Unix(n, 0), nil
		}
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, fmt.Errorf("%w: no btime line", ErrParse)
}

// goneErr turns a read error into one wrapping ErrGone when it means the
// process is gone: the file vanished (ENOENT) or the task is dead (ESRCH).
func readErr(op, path string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		err = fmt.Errorf("%w: %w", ErrGone, err)
	}
	return &OpError{Op: op, Path: path, Err: err}
}

// readFile reads a small proc file. Proc files report a size of 0, so it
// reads until EOF.
func readFile(op, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, readErr(op, path, err)
	}
	return b, nil
}

func readStat(path string) (Stat, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stat{}, readErr("read stat", path, err)
	}
	defer f.Close()
	st, err := parseStat(f)
	if err != nil {
		return Stat{}, readErr("read stat", path, err)
	}
	return st, nil
}

// parseStat parses /proc/<pid>/stat. The comm field is enclosed in
// parentheses and may itself hold spaces and parentheses, so it runs from
// the first '(' to the last ')'.
func parseStat(r io.Reader) (Stat, error) {
	var buf [1024]byte
	n, err := io.ReadFull(r, buf[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Stat{}, err
	}
	return parseStatBytes(buf[:n])
}

// parseStatBytes parses the bytes of /proc/<pid>/stat without allocating
// except for the comm string.
func parseStatBytes(b []byte) (Stat, error) {
	var st Stat
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open <= 0 || close < open {
		return st, fmt.Errorf("%w: stat: no (comm)", ErrParse)
	}
	pid, ok := atoi(bytes.TrimSpace(b[:open]))
	if !ok || pid <= 0 {
		return st, fmt.Errorf("%w: stat: bad pid %q", ErrParse, bytes.TrimSpace(b[:open]))
	}
	st.PID = pid
	st.Comm = string(b[open+1 : close])
	rest := b[close+1:]
	// Fields after comm are numbered from 3 (state).
	field := 3
	for len(rest) > 0 && field <= 22 {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		tok := rest[:end]
		rest = rest[end:]
		if len(tok) == 0 {
			break
		}
		switch field {
		case 3:
			if len(tok) != 1 {
				return st, fmt.Errorf("%w: stat: bad state %q", ErrParse, tok)
			}
			st.State = tok[0]
		case 9:
			v, err := strconv.ParseUint(string(tok), 10, 32)
			if err != nil {
				return st, fmt.Errorf("%w: stat: bad flags %q", ErrParse, tok)
			}
			st.Flags = uint32(v)
		case 4, 5, 6, 20:
			v, ok := atoi(tok)
			if !ok {
				return st, fmt.Errorf("%w: stat: bad field %d %q", ErrParse, field, tok)
			}
			switch field {
			case 4:
				st.PPID = v
			case 5:
				st.PGID = v
			case 6:
				st.SessionID = v
			case 20:
				st.NumThreads = v
			}
		case 22:
			v, err := strconv.ParseUint(string(tok), 10, 64)
			if err != nil {
				return st, fmt.Errorf("%w: stat: bad starttime %q", ErrParse, tok)
			}
			st.StartTicks = v
		}
		field++
	}
	if field <= 22 {
		return st, fmt.Errorf("%w: stat: truncated after field %d", ErrParse, field-1)
	}
	return st, nil
}

// parseStartTime returns field 22 (starttime) of a stat line without
// allocating.
func parseStartTime(b []byte) (uint64, bool) {
	close := bytes.LastIndexByte(b, ')')
	if close < 0 {
		return 0, false
	}
	rest := b[close+1:]
	for field := 3; field < 22; field++ {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end <= 0 {
			return 0, false
		}
		rest = rest[end:]
	}
	rest = bytes.TrimLeft(rest, " ")
	var v uint64
	i := 0
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
		d := uint64(rest[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if i == 0 || (i < len(rest) && rest[i] != ' ' && rest[i] != '\n') {
		return 0, false
	}
	return v, true
}

// atoi parses a decimal int (optionally negative) without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// status is the part of /proc/<pid>/status that procwall uses.
type status struct {
	Name                  string
	TGID, PID, PPID       int
	UID, EUID, GID, EGID  int
	hasUID, hasGID, hasID bool
}

func readStatus(path string) (status, error) {
	f, err := os.Open(path)
	if err != nil {
		return status{}, readErr("read status", path, err)
	}
	defer f.Close()
	s, err := parseStatus(f)
	if err != nil {
		return status{}, readErr("read status", path, err)
	}
	return s, nil
}

func parseStatus(r io.Reader) (status, error) {
	s := status{UID: -1, EUID: -1, GID: -1, EGID: -1}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			s.Name = val
		case "Tgid", "Pid", "PPid":
			n, err := strconv.Atoi(val)
			if err != nil {
				return s, fmt.Errorf("%w: status: bad %s %q", ErrParse, key, val)
			}
			switch key {
			case "Tgid":
				s.TGID = n
			case "Pid":
				s.PID, s.hasID = n, true
			case "PPid":
				s.PPID = n
			}
		case "Uid", "Gid":
			f := strings.Fields(val)
			if len(f) < 2 {
				return s, fmt.Errorf("%w: status: bad %s %q", ErrParse, key, val)
			}
			r, err1 := strconv.Atoi(f[0])
			e, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil {
				return s, fmt.Errorf("%w: status: bad %s %q", ErrParse, key, val)
			}
			if key == "Uid" {
				s.UID, s.EUID, s.hasUID = r, e, true
			} else {
				s.GID, s.EGID, s.hasGID = r, e, true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if !s.hasID || !s.hasUID || !s.hasGID {
		return s, fmt.Errorf("%w: status: missing Pid, Uid or Gid line", ErrParse)
	}
	return s, nil
}

func readLink(path string) (string, error) {
	s, err := os.Readlink(path)
	if err != nil {
		return "", readErr("readlink", path, err)
	}
	return s, nil
}

func readCmdline(path string) ([]string, error) {
	b, err := readFile("read cmdline", path)
	if err != nil {
		return nil, err
	}
	return parseCmdline(bytes.NewReader(b))
}

// parseCmdline splits /proc/<pid>/cmdline at NUL bytes. An empty file (a
// kernel thread or a zombie) yields nil. A process that rewrote its
// arguments into one space-separated string is returned as one element.
func parseCmdline(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	parts := bytes.Split(b, []byte{0})
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = string(p)
	}
	return argv, nil
}

func readCgroup(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", readErr("read cgroup", path, err)
	}
	defer f.Close()
	s, err := parseCgroup(f)
	if err != nil {
		return "", readErr("read cgroup", path, err)
	}
	return s, nil
}

// parseCgroup returns the unified hierarchy's path ("0::PATH") from
// /proc/<pid>/cgroup, else the path of the first line.
func parseCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	first, have := "", false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			return "", fmt.Errorf("%w: cgroup: bad line %q", ErrParse, line)
		}
		_, path, ok := strings.Cut(rest, ":")
		if !ok {
			return "", fmt.Errorf("%w: cgroup: bad line %q", ErrParse, line)
		}
		if id == "0" && strings.HasPrefix(rest, ":") {
			return path, nil
		}
		if !have {
			first, have = path, true
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return first, nil
}
