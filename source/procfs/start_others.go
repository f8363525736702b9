//go:build !linux

package procfs

// StartTime reads the start time (ns since boot) of pid from
// <root>/<pid>/stat. A gone process is an error wrapping [ErrGone].
func (fs FS) StartTime(pid int) (uint64, error) {
	st, err := fs.Stat(pid)
	return st.Start(), err
}
