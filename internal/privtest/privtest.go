package privtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// EnvPrivileged is the environment variable that turns skips into failures.
const EnvPrivileged = "PROCWALL_TEST_PRIVILEGED"

// Strict reports whether missing privileges fail tests instead of skipping
// them.
func Strict() bool { return os.Getenv(EnvPrivileged) == "1" }

// Feature is something a test needs from the machine.
type Feature struct {
	Name  string
	Probe func() error // nil error: present
}

// Root is the feature "running as root on Linux".
var Root = Feature{Name: "root", Probe: func() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("needs linux, have %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (euid 0)")
	}
	return nil
}}

// Command is the feature "the named program is on PATH".
func Command(name string) Feature {
	return Feature{Name: "command " + name, Probe: func() error {
		_, err := exec.LookPath(name)
		return err
	}}
}

// Path is the feature "the named file or directory exists".
func Path(p string) Feature {
	return Feature{Name: p, Probe: func() error {
		_, err := os.Stat(p)
		return err
	}}
}

// Require skips t (or fails it under PROCWALL_TEST_PRIVILEGED=1) unless the
// process runs as root and every feature is present.
func Require(t testing.TB, features ...Feature) {
	t.Helper()
	for _, f := range append([]Feature{Root}, features...) {
		if err := f.Probe(); err != nil {
			msg := fmt.Sprintf("privileged test: %s unavailable: %v", f.Name, err)
			if Strict() {
				t.Fatalf("%s (%s=1, so this fails instead of skipping)", msg, EnvPrivileged)
			}
			t.Skip(msg)
		}
	}
}

// CopyExecutable copies the file from to the path to with mode 0755, for
// tests that need a program under a name or in a directory of their own
// (a symbolic link would not do: /proc/PID/exe resolves it).
func CopyExecutable(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
