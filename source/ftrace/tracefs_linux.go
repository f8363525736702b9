//go:build linux

package ftrace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
)

const tracefsMagic = 0x74726163 // TRACEFS_MAGIC

// instancePrefix starts the names of the instances procwall creates:
// procwall-<owner pid>-<random hex>.
const instancePrefix = "procwall-"

var (
	instanceRE = regexp.MustCompile(`^procwall-([0-9]+)-[0-9a-f]+$`)
	groupRE    = regexp.MustCompile(`^procwall_([0-9]+)_[0-9a-f]+$`)
)

// isTracefs reports whether dir is a tracefs mount.
func isTracefs(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, err
	}
	return uint32(st.Type) == tracefsMagic, nil
}

// ensureMounted mounts tracefs at root when nothing is mounted there. It
// reports whether it mounted.
func ensureMounted(root string) (bool, error) {
	ok, err := isTracefs(root)
	if err != nil {
		return false, &source.OpError{Op: "ftrace: stat " + root, Err: err}
	}
	if ok {
		return false, nil
	}
	if err := unix.Mount("nodev", root, "tracefs", 0, ""); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return false, fmt.Errorf("ftrace: mount tracefs at %s: %w (%w)", root, source.ErrNotSupported, err)
		}
		return false, &source.OpError{Op: "ftrace: mount tracefs at " + root, Err: err}
	}
	return true, nil
}

// Probe caches: definitive answers only (nil or ErrNotSupported), keyed by
// feature and tracefs root, like cilium/ebpf's feature probes.
var probeCache sync.Map // probeKey -> error (nil stored as probeOK)

type probeKey struct {
	f    Feature
	root string
}

type probeOK struct{}

// Probe reports whether the kernel behind the tracefs mount at root has
// feature f. The answer is three-way: nil (supported), an error wrapping
// source.ErrNotSupported (not supported), or another error (inconclusive:
// tracefs not mounted, no permission). Definitive answers are cached for
// the life of the process. root "" means /sys/kernel/tracing.
func Probe(root string, f Feature) error {
	if root == "" {
		root = DefaultRoot
	}
	k := probeKey{f, root}
	if v, ok := probeCache.Load(k); ok {
		if _, ok := v.(probeOK); ok {
			return nil
		}
		return v.(error)
	}
	err := probe(root, f)
	switch {
	case err == nil:
		probeCache.Store(k, probeOK{})
	case errors.Is(err, source.ErrNotSupported):
		probeCache.Store(k, err)
	}
	return err
}

func probe(root string, f Feature) error {
	ok, err := isTracefs(root)
	if err != nil {
		return fmt.Errorf("ftrace probe %v: %w", f, err)
	}
	if !ok {
		return fmt.Errorf("ftrace probe %v: no tracefs mounted at %s", f, root)
	}
	need := func(p string) error {
		_, err := os.Stat(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ftrace probe %v: %s missing: %w", f, p, source.ErrNotSupported)
		}
		if err != nil {
			return fmt.Errorf("ftrace probe %v: %w", f, err)
		}
		return nil
	}
	switch f {
	case FeatureTracepoints:
		for _, p := range []string{"instances", "events/header_page",
			"events/sched/sched_process_exec/format", "events/sched/sched_process_exit/format",
			"events/sock/inet_sock_set_state/format"} {
			if err := need(p); err != nil {
				return err
			}
		}
		if need("events/task/task_newtask/format") != nil {
			if err := need("events/sched/sched_process_fork/format"); err != nil {
				return err
			}
		}
		return nil
	case FeatureKprobes:
		if err := need("kprobe_events"); err != nil {
			return err
		}
		readme, err := os.ReadFile(filepath.Join(root, "README"))
		if err != nil {
			return fmt.Errorf("ftrace probe %v: %w", f, err)
		}
		if !strings.Contains(string(readme), "$arg<N>") {
			return fmt.Errorf("ftrace probe %v: kprobes cannot fetch function arguments ($argN) on this kernel: %w", f, source.ErrNotSupported)
		}
		return nil
	}
	return fmt.Errorf("ftrace probe: unknown feature %d", int(f))
}

// writeFile writes s to a tracefs control file without truncating it
// (tracefs files take one command per write; kprobe_events in particular
// would drop every probe on O_TRUNC).
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, err)
	}
	return nil
}

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// removeInstance removes an instance directory, retrying briefly while a
// reader still holds one of its files (rmdir returns EBUSY).
func removeInstance(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &source.OpError{Op: "ftrace: remove instance " + dir, Err: err}
}

// staleOwner reports whether the procwall object named with owner pid and
// created at created is stale: its owner is dead, or the pid now belongs
// to a process that started after the object was made.
func staleOwner(proc *procReader, pid int, created time.Time, bootOffset int64) bool {
	start, _, err := proc.stat(int32(pid))
	if err != nil {
		return !proc.alive(pid)
	}
	if created.IsZero() {
		return false
	}
	startWall := time.Unix(0, bootOffset+int64(start))
	// Start times have clock-tick (10 ms) resolution; allow slack.
	return startWall.After(created.Add(2 * time.Second))
}

// cleanStale removes instances and kprobe events of procwall processes
// that are gone. It returns the names it removed.
func cleanStale(root string, proc *procReader, bootOffset int64, log *slog.Logger) (removed []string, err error) {
	ents, rerr := os.ReadDir(filepath.Join(root, "instances"))
	if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return nil, &source.OpError{Op: "ftrace: list instances", Err: rerr}
	}
	for _, e := range ents {
		m := instanceRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		var created time.Time
		if fi, err := e.Info(); err == nil {
			created = fi.ModTime()
		}
		if !staleOwner(proc, pid, created, bootOffset) {
			continue
		}
		dir := filepath.Join(root, "instances", e.Name())
		if rerr := removeInstance(dir); rerr != nil {
			log.Warn("ftrace: stale instance not removed", "instance", e.Name(), "err", rerr)
			err = errors.Join(err, rerr)
			continue
		}
		log.Info("ftrace: removed stale instance", "instance", e.Name(), "owner", pid)
		removed = append(removed, e.Name())
	}
	kp := filepath.Join(root, "kprobe_events")
	text, kerr := os.ReadFile(kp)
	if kerr != nil {
		if !errors.Is(kerr, fs.ErrNotExist) {
			err = errors.Join(err, &source.OpError{Op: "ftrace: read kprobe_events", Err: kerr})
		}
		return removed, err
	}
	for _, ge := range parseKprobeEvents(string(text), kprobePrefix) {
		m := groupRE.FindStringSubmatch(ge[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		var created time.Time
		if fi, err := os.Stat(filepath.Join(root, "events", ge[0])); err == nil {
			created = fi.ModTime()
		}
		if !staleOwner(proc, pid, created, bootOffset) {
			continue
		}
		if werr := writeFile(kp, kprobeRemoveLine(ge[0], ge[1])); werr != nil {
			log.Warn("ftrace: stale kprobe not removed", "probe", ge[0]+"/"+ge[1], "err", werr)
			err = errors.Join(err, &source.OpError{Op: "ftrace: remove kprobe", Err: werr})
			continue
		}
		log.Info("ftrace: removed stale kprobe", "probe", ge[0]+"/"+ge[1], "owner", pid)
		removed = append(removed, ge[0]+"/"+ge[1])
	}
	return removed, err
}
