//go:build !linux

package risk

func cpuNanos() (int64, bool) { return 0, false }
