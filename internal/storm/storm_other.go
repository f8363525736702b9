//go:build !(linux && amd64)

package storm

import (
	"os/exec"
	"strconv"
)

// ForkExit starts a shell that exits at once with code, waits for it and
// returns its pid.
func ForkExit(code int) (int, error) {
	cmd := exec.Command("/bin/sh", "-c", "exit "+strconv.Itoa(code))
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Wait()
	return pid, nil
}
