package fanotify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/rules"
	"github.com/procwall/procwall/source"
)

// Guard answers fanotify permission events. See the package documentation.
type Guard struct {
	cfg  Config
	f    *os.File
	self int32
	// selfExe is our executable, which a child has until its exec.
	selfExe string
	log     *slog.Logger

	allowed, denied, defaulted, selfN, overflows atomic.Uint64
}

// Open creates the fanotify group and marks the configured paths.
func Open(cfg Config) (*Guard, error) {
	if len(cfg.Exec)+len(cfg.Open)+len(cfg.ExecMounts) == 0 {
		return nil, errors.New("fanotify: nothing to watch")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLOEXEC|unix.FAN_CLASS_CONTENT|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			return nil, &source.OpError{Op: "fanotify_init", Err: fmt.Errorf("%w: %w", source.ErrNotSupported, err)}
		}
		return nil, &source.OpError{Op: "fanotify_init", Err: err}
	}
	g := &Guard{cfg: cfg, f: os.NewFile(uintptr(fd), "fanotify"), self: int32(os.Getpid()), log: log}
	g.selfExe, _ = os.Readlink("/proc/self/exe")
	mark := func(flags uint, mask uint64, path string) error {
		if st, err := os.Stat(path); err == nil && st.IsDir() && flags&unix.FAN_MARK_MOUNT == 0 {
			mask |= unix.FAN_EVENT_ON_CHILD
		}
		if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|flags, mask, unix.AT_FDCWD, path); err != nil {
			return &source.OpError{Op: "fanotify_mark " + path, Err: err}
		}
		return nil
	}
	for _, p := range cfg.Exec {
		err = errors.Join(err, mark(0, unix.FAN_OPEN_EXEC_PERM, p))
	}
	for _, p := range cfg.Open {
		err = errors.Join(err, mark(0, unix.FAN_OPEN_PERM, p))
	}
	for _, p := range cfg.ExecMounts {
		err = errors.Join(err, mark(unix.FAN_MARK_MOUNT, unix.FAN_OPEN_EXEC_PERM, p))
	}
	if err != nil {
		g.f.Close()
		return nil, err
	}
	return g, nil
}

// Close closes the group; Serve returns and the kernel allows pending
// events.
func (g *Guard) Close() error { return g.f.Close() }

// Stats returns the answer counters.
func (g *Guard) Stats() Stats {
	return Stats{
		Allowed: g.allowed.Load(), Denied: g.denied.Load(), Defaulted: g.defaulted.Load(),
		Self: g.selfN.Load(), Overflows: g.overflows.Load(),
	}
}

const metaSize = int(unsafe.Sizeof(unix.FanotifyEventMetadata{}))

// meta is the part of struct fanotify_event_metadata the guard uses.
type meta struct {
	mask    uint64
	fd, pid int32
}

// parseMeta decodes the struct fanotify_event_metadata at the start of b
// and returns it with the event's whole length (event_len: the metadata
// and any information records after it), which is where the next event
// starts. It fails on a short buffer, an event length shorter than the
// metadata or longer than b, and a metadata version other than the one
// this package was written for.
func parseMeta(b []byte) (meta, int, error) {
	if len(b) < metaSize {
		return meta{}, 0, fmt.Errorf("%d bytes left, shorter than the %d-byte event metadata", len(b), metaSize)
	}
	evLen := binary.NativeEndian.Uint32(b[0:])
	if evLen < uint32(metaSize) || uint64(evLen) > uint64(len(b)) {
		return meta{}, 0, fmt.Errorf("bad event length %d (%d bytes left)", evLen, len(b))
	}
	if v := b[4]; v != unix.FANOTIFY_METADATA_VERSION {
		return meta{}, 0, fmt.Errorf("fanotify metadata version %d, want %d", v, unix.FANOTIFY_METADATA_VERSION)
	}
	return meta{
		mask: binary.NativeEndian.Uint64(b[8:]),
		fd:   int32(binary.NativeEndian.Uint32(b[16:])),
		pid:  int32(binary.NativeEndian.Uint32(b[20:])),
	}, int(evLen), nil
}

func (g *Guard) respond(fd int32, allow bool) {
	resp := uint32(unix.FAN_DENY)
	if allow {
		resp = unix.FAN_ALLOW
	}
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(fd))
	binary.NativeEndian.PutUint32(b[4:], resp)
	if _, err := g.f.Write(b[:]); err != nil && !errors.Is(err, os.ErrClosed) {
		g.log.Warn("fanotify: cannot answer", "fd", fd, "err", err)
	}
}

// Serve reads and answers events until Close. It returns an error for
// which errors.Is(err, os.ErrClosed) holds after Close, or the read error.
func (g *Guard) Serve(judge JudgeFunc) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, g.cfg.MaxInFlight)
	buf := make([]byte, 64<<10)
	for {
		n, err := g.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return fmt.Errorf("fanotify: %w", os.ErrClosed)
			}
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return &source.OpError{Op: "read", Err: err}
		}
		for off := 0; off < n; {
			m, size, err := parseMeta(buf[off:n])
			if err != nil {
				return &source.OpError{Op: "parse", Err: fmt.Errorf("event at offset %d of a %d-byte read: %w", off, n, err)}
			}
			off += size
			mask, fd, pid := m.mask, m.fd, m.pid
			if mask&unix.FAN_Q_OVERFLOW != 0 || fd < 0 {
				g.overflows.Add(1)
				continue
			}
			if pid == g.self || mask&unix.FAN_OPEN_EXEC_PERM != 0 && g.startingChild(pid) {
				// Our own access, or the exec of a child we are
				// starting: allow at once, never judge. (Go starts
				// programs with vfork: the starting thread is held
				// until the child's exec is answered, and the
				// runtime cannot stop the world meanwhile.)
				g.selfN.Add(1)
				g.respond(fd, true)
				unix.Close(int(fd))
				continue
			}
			slots <- struct{}{}
			wg.Go(func() {
				g.handle(fd, pid, mask, judge, func() { <-slots })
			})
		}
	}
}

// handle judges one event and answers it exactly once; release frees the
// in-flight slot once answered.
func (g *Guard) handle(fd, pid int32, mask uint64, judge JudgeFunc, release func()) {
	file := os.NewFile(uintptr(fd), "fanotify-event")
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd)))
	if err != nil {
		g.answerDefault(fd, fmt.Errorf("resolve path: %w", err))
		release()
		file.Close()
		return
	}
	req := &rules.Request{Time: time.Now().UTC(), PID: int(pid), Path: path}
	procExe, _ := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	if st, err := os.Stat("/proc/" + strconv.Itoa(int(pid))); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			req.UID, req.HasUID = int(s.Uid), true
		}
	}
	if mask&unix.FAN_OPEN_EXEC_PERM != 0 {
		req.Op, req.Exe, req.ExeFile = rules.OpExec, path, file
		req.ParentExe = procExe // the program calling execve
	} else {
		req.Op, req.Exe = rules.OpOpen, procExe
		if cmd, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cmdline"); err == nil {
			req.Argv = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout)
	defer cancel()
	done := make(chan rules.Action, 1)
	go func() {
		a := rules.ActionNone
		defer func() {
			if r := recover(); r != nil {
				g.log.Error("fanotify: judge panicked", "panic", r)
				a = rules.ActionNone
			}
			done <- a
		}()
		a = judge(ctx, req)
	}()
	select {
	case a := <-done:
		if a == rules.ActionNone {
			g.answerDefault(fd, errors.New("judge failed"))
		} else {
			if a == rules.Allow {
				g.allowed.Add(1)
			} else {
				g.denied.Add(1)
			}
			g.respond(fd, a == rules.Allow)
		}
		release()
		file.Close()
	case <-ctx.Done():
		g.answerDefault(fd, fmt.Errorf("no verdict within %v for pid %d on %s", g.cfg.Timeout, pid, path))
		release()
		// The judge may still read the descriptor: close after it ends.
		<-done
		file.Close()
	}
}

func (g *Guard) answerDefault(fd int32, why error) {
	g.defaulted.Add(1)
	action := "deny"
	if g.cfg.FailOpen {
		action = "allow"
	}
	g.log.Warn("fanotify: answering by default", "action", action, "why", why)
	g.respond(fd, g.cfg.FailOpen)
}

// startingChild reports whether pid is a child of ours that has not yet
// replaced our image: one we are starting a program in.
func (g *Guard) startingChild(pid int32) bool {
	if parentOf(pid) != g.self {
		return false
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	return err == nil && exe == g.selfExe
}

// parentOf returns the parent pid of pid, or -1.
func parentOf(pid int32) int32 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return -1
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return -1
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return int32(n)
}
