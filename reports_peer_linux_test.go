package procwall_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/internal/privtest"
)

// TestReportSocketOtherUsers connects to the report socket as another
// user (nobody, uid 65534) — once as a member of the socket's group,
// once not — and checks who gets through: the filesystem permissions keep
// a non-member out, the member is admitted by the default peer check
// (AllowGroup), and with the socket opened to everybody (0666) and no
// group, the peer check alone refuses a stranger.
func TestReportSocketOtherUsers(t *testing.T) {
	privtest.Require(t, privtest.Root)
	const gid = 4242 // need not exist in /etc/group
	// A directory everybody may traverse, holding a copy of this test
	// binary that nobody can run where go test built it (the build
	// directory is private to root).
	dir, err := os.MkdirTemp("", "procwall-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peer")
	privtest.CopyExecutable(t, os.Args[0], bin)
	peer := func(path string, groups ...uint32) string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), "PROCWALL_TEST_REPORT_PEER="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}

	// Group access: socket 0660 root:4242 in a directory ListenReports
	// creates (and gives to the group).
	p, path := startReportServerAt(t, filepath.Join(dir, "run", "procwall.sock"),
		procwall.WithSocketMode(0o660), procwall.WithSocketGroup(gid))
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Sys().(*syscall.Stat_t).Gid != gid {
		t.Fatalf("socket directory: %v, want group %d", err, gid)
	}
	if out := peer(path); !strings.Contains(out, "permission denied") {
		t.Fatalf("a user outside the group: %q, want the connection denied by the filesystem", out)
	}
	if len(p.ActiveBlocks()) != 0 {
		t.Fatal("a denied peer's report was applied")
	}
	if out := peer(path, gid); !strings.Contains(out, `"ok":true`) || !strings.Contains(out, `"action":"block"`) {
		t.Fatalf("a group member: %q, want the report accepted", out)
	}
	if len(p.ActiveBlocks()) != 1 {
		t.Fatal("the group member's report was not applied")
	}

	// No group, socket open to all: the peer check refuses a stranger.
	p2, path2 := startReportServerAt(t, filepath.Join(dir, "open", "procwall.sock"), procwall.WithSocketMode(0o666))
	if err := os.Chmod(filepath.Dir(path2), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := peer(path2, gid); !strings.Contains(out, "refused") || !strings.Contains(out, "may not send reports") {
		t.Fatalf("a stranger on an open socket: %q, want refused by the peer check", out)
	}
	if len(p2.ActiveBlocks()) != 0 {
		t.Fatal("a refused peer's report was applied")
	}
}
