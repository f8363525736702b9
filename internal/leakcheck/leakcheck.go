package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Grace is how long Main waits for goroutines and descriptors to go.
var Grace = 5 * time.Second

// Main runs the tests and checks for leaks; it returns the exit code.
func Main(m *testing.M) int {
	// The runtime's network poller (an epoll and an eventfd) is created on
	// first use and kept: create it before the baseline.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds0 := openFDs()
	g0 := goroutines()
	code := m.Run()
	if code != 0 {
		return code
	}
	var leakedG []string
	var leakedFD []string
	deadline := time.Now().Add(Grace)
	for {
		leakedG = diff(goroutines(), g0)
		leakedFD = diff(openFDs(), fds0)
		if len(leakedG) == 0 && len(leakedFD) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(leakedG) == 0 && len(leakedFD) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) and %d file descriptor(s) leaked by the tests\n", len(leakedG), len(leakedFD))
	for _, g := range leakedG {
		fmt.Fprintf(os.Stderr, "\n%s\n", g)
	}
	for _, f := range leakedFD {
		fmt.Fprintf(os.Stderr, "fd %s\n", f)
	}
	return 1
}

// goroutines returns the stacks of the goroutines, keyed by their entry
// function (ids differ between snapshots), without the runtime's and the
// testing framework's own.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		if len(lines) < 2 {
			continue
		}
		stack := strings.Join(lines[1:], "\n")
		if strings.Contains(stack, "leakcheck.goroutines") || strings.Contains(stack, "testing.(*M).") ||
			strings.Contains(stack, "runtime.goexit") && strings.Count(stack, "\n") <= 1 ||
			strings.Contains(stack, "os/signal.") || strings.Contains(stack, "runtime/trace") {
			continue
		}
		// Key by the creating function and the top frame's function.
		out = append(out, key(lines[1:]))
	}
	slices.Sort(out)
	return out
}

func key(frames []string) string {
	top := frames[0]
	created := ""
	for _, f := range frames {
		if strings.HasPrefix(f, "created by ") {
			created = f
		}
	}
	if i := strings.IndexByte(top, '('); i > 0 {
		top = top[:i]
	}
	return strings.TrimSpace(top) + " / " + created
}

// openFDs lists this process's open descriptors as "n -> target".
func openFDs() []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		out = append(out, e.Name()+" -> "+target)
	}
	slices.Sort(out)
	return out
}

// diff returns the elements of now beyond those of before (multisets).
func diff(now, before []string) []string {
	count := map[string]int{}
	for _, s := range before {
		count[s]++
	}
	var out []string
	for _, s := range now {
		if count[s] > 0 {
			count[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}
