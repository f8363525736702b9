package fanotify

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/rules"
)

var fanotifyFeature = privtest.Feature{Name: "fanotify permission events", Probe: func() error {
	dir, err := os.MkdirTemp("", "fanotify-probe")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	g, err := Open(Config{Exec: []string{dir}})
	if err != nil {
		return err
	}
	return g.Close()
}}

func md5File(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := md5.Sum(data)
	return hex.EncodeToString(s[:])
}

// run starts bin from a shell, so that the exec is not one of our own
// children's (which the guard allows unjudged); the shell does not exec
// the command in its own place because another command follows.
func run(bin string, args ...string) (string, int) {
	cmd := exec.Command("sh", append([]string{"-c", `"$@"; rc=$?; exit $rc`, "sh", bin}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

func serve(t *testing.T, g *Guard, judge JudgeFunc) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.Serve(judge) }()
	t.Cleanup(func() {
		g.Close()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not return after close")
		}
	})
}

// TestExecDenyMD5AllowSigned marks only a temp directory: a binary whose
// MD5 is on the deny list cannot run, one signed with the trusted ed25519
// key runs, and an unknown one is left to the fail-closed default.
func TestExecDenyMD5AllowSigned(t *testing.T) {
	privtest.Require(t, fanotifyFeature)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	good := filepath.Join(dir, "good")
	privtest.CopyExecutable(t, "/usr/bin/true", bad)
	privtest.CopyExecutable(t, "/usr/bin/echo", good)
	pubF, privF, _ := rules.GenerateKey("test")
	_, pub, _ := rules.ParsePublicKey(pubF)
	_, priv, _ := rules.ParsePrivateKey(privF)
	if err := rules.SignFile(priv, "test", good); err != nil {
		t.Fatal(err)
	}
	doc := `{"format":1,"version":"fan-1","rules":[
	 {"id":"signed","action":"allow","match":{"signer":["ed25519:test"]}},
	 {"id":"bad-md5","action":"deny","description":"known bad binary","match":{"md5":["` + md5File(t, bad) + `"]}}]}`
	b, err := rules.ParseBundle([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var recs []rules.Record
	eng := rules.New(rules.WithVerifiers(rules.NewEd25519(rules.Keyring{"test": pub})),
		rules.WithDefaultAction(rules.Deny),
		rules.WithRecorder(func(r rules.Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() }))
	if err := eng.Load(b); err != nil {
		t.Fatal(err)
	}
	g, err := Open(Config{Exec: []string{dir}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, g, EngineJudge(eng))

	if out, rc := run(bad); rc != 126 || !strings.Contains(out, "not permitted") {
		t.Errorf("exec of md5-denied binary: rc %d %q, want 126 operation not permitted", rc, out)
	}
	if out, rc := run(good, "hello"); rc != 0 || strings.TrimSpace(out) != "hello" {
		t.Errorf("exec of signed binary: rc %d %q", rc, out)
	}
	// Unknown binary: no rule, no decider → default deny.
	unknown := filepath.Join(dir, "unknown")
	privtest.CopyExecutable(t, "/usr/bin/printf", unknown)
	if out, rc := run(unknown, "x"); rc != 126 {
		t.Errorf("exec of unknown binary: rc %d %q, want denied by default", rc, out)
	}
	// Binaries outside the marked directory are untouched; our own
	// children are not judged.
	if out, rc := run("/usr/bin/true"); rc != 0 {
		t.Errorf("/usr/bin/true: rc %d %q", rc, out)
	}
	if err := exec.Command(bad).Run(); err != nil {
		t.Errorf("own child: %v", err)
	}
	st := g.Stats()
	if st.Denied < 2 || st.Allowed < 1 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	byRule := map[string]rules.Record{}
	for _, r := range recs {
		byRule[r.Rule] = r
	}
	if r := byRule["bad-md5"]; r.Action != rules.Deny || r.Exe != bad || r.Op != rules.OpExec || r.Version != "fan-1" {
		t.Errorf("bad-md5 record %+v", r)
	}
	if r := byRule["signed"]; r.Action != rules.Allow || r.Exe != good {
		t.Errorf("signed record %+v", r)
	}
}

// TestSelfProtectionDeniesWrite guards a temp directory standing in for
// procwall's configuration: another process cannot write there, procwall
// itself can (and does not deadlock), and the file is unchanged.
func TestSelfProtectionDeniesWrite(t *testing.T) {
	privtest.Require(t, fanotifyFeature, privtest.Command("sh"))
	dir := t.TempDir()
	conf := filepath.Join(dir, "rules.json")
	os.WriteFile(conf, []byte("original\n"), 0o644)
	doc := `{"format":1,"version":"self-1","self_protection":["` + dir + `/"],"rules":[
	 {"id":"protect","action":"deny","points":["self_protection"],"description":"procwall configuration","match":{"target":["` + dir + `/"]}}]}`
	b, err := rules.ParseBundle([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.New()
	if err := eng.Load(b); err != nil {
		t.Fatal(err)
	}
	self, _ := eng.WatchedPaths()
	g, err := Open(Config{Open: self, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var verdicts []rules.Verdict
	serve(t, g, func(ctx context.Context, req *rules.Request) rules.Action {
		v := eng.Judge(ctx, req)
		mu.Lock()
		verdicts = append(verdicts, v)
		mu.Unlock()
		// A judge touching the watched file must not deadlock.
		if _, err := os.ReadFile(conf); err != nil {
			t.Errorf("judge reading the watched file: %v", err)
		}
		return v.Action
	})
	out, err := exec.Command("sh", "-c", "echo evil >> "+conf).CombinedOutput()
	if err == nil {
		t.Errorf("write to self-protected file succeeded: %s", out)
	}
	// Our own process may still read and write it.
	data, err := os.ReadFile(conf)
	if err != nil || string(data) != "original\n" {
		t.Fatalf("content %q, %v", data, err)
	}
	if err := os.WriteFile(conf, []byte("updated\n"), 0o644); err != nil {
		t.Fatalf("own write: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(verdicts) == 0 || verdicts[0].Action != rules.Deny || verdicts[0].Rule != "protect" || verdicts[0].Point != rules.PointSelf {
		t.Errorf("verdicts %+v", verdicts)
	}
	if g.Stats().Self == 0 {
		t.Errorf("own accesses not short-circuited: %+v", g.Stats())
	}
}

// TestTimeoutFailOpenClosed: a judge that never answers in time gets the
// configured default, and the waiting process is released.
func TestTimeoutFailOpenClosed(t *testing.T) {
	privtest.Require(t, fanotifyFeature)
	for _, failOpen := range []bool{false, true} {
		dir := t.TempDir()
		bin := filepath.Join(dir, "true")
		privtest.CopyExecutable(t, "/usr/bin/true", bin)
		g, err := Open(Config{Exec: []string{dir}, Timeout: 100 * time.Millisecond, FailOpen: failOpen})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- g.Serve(func(ctx context.Context, req *rules.Request) rules.Action {
				<-release // ignores ctx
				return rules.Allow
			})
		}()
		start := time.Now()
		out, rc := run(bin)
		if failOpen && rc != 0 || !failOpen && rc != 126 {
			t.Errorf("failOpen=%v: exec: rc %d %q", failOpen, rc, out)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("failOpen=%v: process waited %v", failOpen, time.Since(start))
		}
		if g.Stats().Defaulted != 1 {
			t.Errorf("stats %+v", g.Stats())
		}
		close(release)
		g.Close()
		if err := <-done; !errors.Is(err, os.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	}
}

// TestExecMountMark guards a tmpfs the test mounts (and unmounts): every
// execution on it is judged, by name here.
func TestExecMountMark(t *testing.T) {
	privtest.Require(t, fanotifyFeature, privtest.Command("mount"), privtest.Command("umount"))
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "procwall-test", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	sub := filepath.Join(mnt, "deep", "er")
	os.MkdirAll(sub, 0o755)
	blocked := filepath.Join(sub, "blocked-tool")
	ok := filepath.Join(sub, "fine-tool")
	privtest.CopyExecutable(t, "/usr/bin/true", blocked)
	privtest.CopyExecutable(t, "/usr/bin/true", ok)
	b, err := rules.ParseBundle([]byte(`{"format":1,"version":"m","rules":[
	 {"id":"blocked","action":"deny","match":{"name":["blocked-*"]}},
	 {"id":"fine","action":"allow","match":{"exe":["`+mnt+`/"]}}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := rules.New()
	if err := eng.Load(b); err != nil {
		t.Fatal(err)
	}
	g, err := Open(Config{ExecMounts: []string{mnt}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, g, EngineJudge(eng))
	if out, rc := run(blocked); rc != 126 {
		t.Errorf("blocked tool in a subdirectory of the mount: rc %d %q", rc, out)
	}
	if out, rc := run(ok); rc != 0 {
		t.Errorf("allowed tool: rc %d %q", rc, out)
	}
	if st := g.Stats(); st.Denied != 1 || st.Allowed != 1 {
		t.Errorf("stats %+v", st)
	}
}
