package sockdiag

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/procwall/procwall/source"
)

// fdRef is one file descriptor of one process.
type fdRef struct {
	pid, fd int
}

// owners maps socket inodes to the file descriptors that hold them, read
// from <root>/<pid>/fd. It is not safe for concurrent use; Conn guards it.
type owners struct {
	root    string
	byInode map[uint64][]fdRef
	// hot lists the pids that most recently held a looked-up socket, most
	// recent first: a new socket of a busy process is found by reading
	// that process's fds before scanning all of /proc.
	hot []int
	// counters
	scans, verified, stale, hotHits uint64
}

// maxHot bounds the hot pid list.
const maxHot = 16

// touch moves pid to the front of the hot list.
func (o *owners) touch(pid int) {
	for i, p := range o.hot {
		if p == pid {
			copy(o.hot[1:i+1], o.hot[:i])
			o.hot[0] = pid
			return
		}
	}
	if len(o.hot) < maxHot {
		o.hot = append(o.hot, 0)
	}
	copy(o.hot[1:], o.hot[:len(o.hot)-1])
	o.hot[0] = pid
}

// scanPID reads one process's fds into the map (replacing what the map
// said of them) and reports whether it could.
func (o *owners) scanPID(pid int) bool {
	dir := o.root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	fds, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return false
	}
	for _, f := range fds {
		fd, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		t, err := os.Readlink(dir + "/" + f)
		if err != nil {
			continue
		}
		n, ok := socketInode(t)
		if !ok {
			continue
		}
		ref := fdRef{pid: pid, fd: fd}
		refs := o.byInode[n]
		known := false
		for _, r := range refs {
			if r == ref {
				known = true
				break
			}
		}
		if !known {
			o.byInode[n] = append(refs, ref)
		}
	}
	return true
}

func newOwners(root string) *owners {
	return &owners{root: root, byInode: map[uint64][]fdRef{}}
}

// socketInode parses a link target "socket:[<inode>]".
func socketInode(target string) (uint64, bool) {
	rest, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// verify reports whether the fd still refers to the socket inode.
func (o *owners) verify(r fdRef, inode uint64) bool {
	t, err := os.Readlink(o.root + "/" + strconv.Itoa(r.pid) + "/fd/" + strconv.Itoa(r.fd))
	if err != nil {
		return false
	}
	n, ok := socketInode(t)
	return ok && n == inode
}

// scan rebuilds the map from every process's fds. Processes that exit or
// cannot be read during the scan are skipped: their sockets are reported
// as unattributed by the caller, not guessed.
func (o *owners) scan() error {
	o.scans++
	d, err := os.Open(o.root)
	if err != nil {
		return &source.OpError{Op: "read proc", Err: err}
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return &source.OpError{Op: "read proc", Err: err}
	}
	m := make(map[uint64][]fdRef, len(o.byInode))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		dir := o.root + "/" + name + "/fd"
		fdd, err := os.Open(dir)
		if err != nil {
			continue
		}
		fds, _ := fdd.Readdirnames(-1)
		fdd.Close()
		for _, f := range fds {
			fd, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			t, err := os.Readlink(dir + "/" + f)
			if err != nil {
				continue
			}
			if n, ok := socketInode(t); ok {
				m[n] = append(m[n], fdRef{pid: pid, fd: fd})
			}
		}
	}
	o.byInode = m
	return nil
}

// resolve returns, for each wanted inode, the pids of the processes that
// hold it (deduplicated, in scan order). Cached holders are verified; if
// any wanted inode has no valid cached holder, /proc is scanned once.
func (o *owners) resolve(want []uint64) (map[uint64][]int, error) {
	out := make(map[uint64][]int, len(want))
	var missing []uint64
	for _, ino := range want {
		if ino == 0 {
			continue
		}
		refs := o.byInode[ino]
		var pids []int
		for _, r := range refs {
			if o.verify(r, ino) {
				o.verified++
				pids = appendPID(pids, r.pid)
			} else {
				o.stale++
			}
		}
		if len(pids) == 0 || len(pids) != len(refs) {
			// Unknown, or something changed: rescan for a full picture
			// (new holders may have appeared besides stale ones going).
			missing = append(missing, ino)
			continue
		}
		out[ino] = pids
	}
	if len(missing) == 0 {
		return out, nil
	}
	// A few new sockets: try the processes that held the last ones.
	if len(missing) <= maxHot {
		for _, pid := range slices.Clone(o.hot) {
			o.scanPID(pid)
		}
		left := missing[:0:0]
		for _, ino := range missing {
			var pids []int
			for _, r := range o.byInode[ino] {
				if o.verify(r, ino) {
					pids = appendPID(pids, r.pid)
				}
			}
			if len(pids) > 0 {
				out[ino] = pids
				o.hotHits++
				for _, p := range pids {
					o.touch(p)
				}
			} else {
				left = append(left, ino)
			}
		}
		missing = left
		if len(missing) == 0 {
			return out, nil
		}
	}
	if err := o.scan(); err != nil {
		return out, err
	}
	for _, ino := range missing {
		var pids []int
		for _, r := range o.byInode[ino] {
			pids = appendPID(pids, r.pid)
		}
		if len(pids) > 0 {
			out[ino] = pids
			for _, p := range pids {
				o.touch(p)
			}
		}
	}
	return out, nil
}

func appendPID(pids []int, pid int) []int {
	for _, p := range pids {
		if p == pid {
			return pids
		}
	}
	return append(pids, pid)
}

// startTime reads a process's start time from <root>/<pid>/stat: field 22
// (clock ticks since boot) × 10 ms, in nanoseconds; 0 when unreadable.
func startTime(root string, pid int) uint64 {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	n, err := parseStatStart(b)
	if err != nil {
		return 0
	}
	return n
}

// parseStatStart extracts field 22 of /proc/<pid>/stat in nanoseconds. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted after the last ')'.
func parseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want >= 20", len(f))
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: start time %q: %w", f[19], err)
	}
	return ticks * (1e9 / 100), nil
}
