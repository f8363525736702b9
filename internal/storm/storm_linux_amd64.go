package storm

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// vforkExit is implemented in assembly: clone(CLONE_VM|CLONE_VFORK|SIGCHLD)
// whose child calls exit_group(code) without touching the shared stack.
// The parent resumes when the child has exited.
func vforkExit(code uintptr) (pid uintptr, errno uintptr)

// ForkExit creates one child process that exits at once with code, reaps
// it and returns its pid.
func ForkExit(code int) (int, error) {
	pid, errno := vforkExit(uintptr(code))
	if errno != 0 {
		return 0, syscall.Errno(errno)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(pid), &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return int(pid), err
		}
		if !ws.Exited() || ws.ExitStatus() != code&0xff {
			return int(pid), fmt.Errorf("child %d ended with status %#x, want exit code %d", pid, uint32(ws), code)
		}
		return int(pid), nil
	}
}
