package risk

import "syscall"

// cpuNanos is the CPU time (user + system) the process has used, so that
// benchmarks can report CPU per operation next to wall time on a loaded
// machine.
func cpuNanos() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
