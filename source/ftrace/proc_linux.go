//go:build linux

package ftrace

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// clkTck is USER_HZ, the unit of /proc/<pid>/stat's starttime. It is 100
// on every Linux architecture Go supports.
const clkTck = 100

// procReader reads process details from a procfs mount with raw syscalls
// and one reused buffer.
type procReader struct {
	root string // "/proc"
	buf  []byte
	path []byte
}

func newProcReader(root string) *procReader {
	return &procReader{root: root, buf: make([]byte, 8192)}
}

// read reads /proc/<pid>/<name> into r.buf and returns the bytes.
func (r *procReader) read(pid int32, name string) ([]byte, error) {
	r.path = append(r.path[:0], r.root...)
	r.path = append(r.path, '/')
	r.path = strconv.AppendInt(r.path, int64(pid), 10)
	r.path = append(r.path, '/')
	r.path = append(r.path, name...)
	r.path = append(r.path, 0)
	fd, err := unix.Open(unsafe.String(&r.path[0], len(r.path)-1), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return r.buf[:n], nil
}

// stat returns a process's start time (ns since boot, at clock-tick
// resolution) and parent pid from /proc/<pid>/stat.
func (r *procReader) stat(pid int32) (start uint64, ppid int32, err error) {
	b, err := r.read(pid, "stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

var errBadStat = errors.New("malformed /proc/<pid>/stat")

// parseStat extracts fields 4 (ppid) and 22 (starttime) of a stat line;
// the comm field (2) may hold spaces and parentheses, so fields are counted
// after its last ')'.
func parseStat(b []byte) (start uint64, ppid int32, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errBadStat
	}
	rest := b[i+1:]
	field := 2
	var pp, st []byte
	for len(rest) > 0 {
		rest = bytes.TrimLeft(rest, " ")
		j := bytes.IndexByte(rest, ' ')
		var tok []byte
		if j < 0 {
			tok, rest = rest, nil
		} else {
			tok, rest = rest[:j], rest[j:]
		}
		field++
		switch field {
		case 4:
			pp = tok
		case 22:
			st = tok
		}
		if field == 22 {
			break
		}
	}
	if pp == nil || st == nil {
		return 0, 0, errBadStat
	}
	p, err := strconv.ParseInt(string(pp), 10, 32)
	if err != nil {
		return 0, 0, errBadStat
	}
	s, err := strconv.ParseUint(string(bytes.TrimSpace(st)), 10, 64)
	if err != nil {
		return 0, 0, errBadStat
	}
	return s * (1e9 / clkTck), int32(p), nil
}

// tgid returns the thread-group id of task tid from /proc/<tid>/status.
func (r *procReader) tgid(tid int32) (int32, error) {
	b, err := r.read(tid, "status")
	if err != nil {
		return 0, err
	}
	i := bytes.Index(b, []byte("\nTgid:"))
	if i < 0 {
		return 0, errBadStat
	}
	v := b[i+6:]
	if j := bytes.IndexByte(v, '\n'); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 32)
	if err != nil {
		return 0, errBadStat
	}
	return int32(n), nil
}

// cmdline returns a process's argv from /proc/<pid>/cmdline. An empty
// result with no error is a kernel thread or a process that has exited
// past the point of having an address space.
func (r *procReader) cmdline(pid int32) ([]string, error) {
	b, err := r.read(pid, "cmdline")
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// alive reports whether pid exists.
func (r *procReader) alive(pid int) bool {
	_, err := os.Stat(r.root + "/" + strconv.Itoa(pid))
	return err == nil
}
