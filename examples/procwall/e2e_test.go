package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/leakcheck"
	"github.com/procwall/procwall/internal/privtest"
)

// The end-to-end proof of issue 11: a real attack chain contained by real
// nftables rules in a test namespace, and released.
//
// Roles of the re-executed test binary (PROCWALL_E2E_ROLE):
//   - business: connects to 198.51.100.2:8080 every 100 ms and prints "ok"
//     or "fail" per attempt; it first starts a child (the "shell") and
//     prints "child PID".
//   - cli: runs procwall with the arguments after "--".
//   - probe: connects once to the address in PROCWALL_E2E_ADDR, prints
//     "ok" or "fail".
func TestMain(m *testing.M) {
	switch os.Getenv("PROCWALL_E2E_ROLE") {
	case "business":
		business()
		return
	case "cli":
		// `procwall` itself, with the arguments after "--" (a process the
		// test can kill -9).
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, &cmdEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, args)
		stop()
		os.Exit(code)
	case "probe":
		if dial(os.Getenv("PROCWALL_E2E_ADDR")) {
			fmt.Println("ok")
		} else {
			fmt.Println("fail")
		}
		return
	}
	os.Exit(leakcheck.Main(m))
}

func dial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func business() {
	child := exec.Command("sleep", "120")
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("child %d\n", child.Process.Pid)
	defer child.Process.Kill()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if dial("198.51.100.2:8080") {
			fmt.Println("ok")
		} else {
			fmt.Println("fail")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuf is a bytes.Buffer safe for a writer and readers at once.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEndToEndContainment(t *testing.T) {
	privtest.Require(t, privtest.Command("ip"), privtest.Command("nft"),
		privtest.Path("/proc/self/ns/net"))
	client := e2eNetwork(t)

	dir := t.TempDir()
	sock := filepath.Join(dir, "procwall.sock")
	record := filepath.Join(dir, "record.jsonl")
	state := filepath.Join(dir, "state.json")
	// The business process runs under a launcher named as a boundary, as a
	// service manager would start it.
	// A copy, not a symlink: every source must see the launcher under its
	// own name.
	launcher := filepath.Join(dir, "pw-e2e-launcher")
	privtest.CopyExecutable(t, "/bin/sh", launcher)

	// The agent: in-process, as `procwall run` in the client namespace.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuf
	agentDone := make(chan int, 1)
	go func() {
		agentDone <- run(ctx, &cmdEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{
			"run", "-sources", "procconn,ftrace", "-backend", "nft", "-netns", client.Name, "-state", state,
			"-socket", sock, "-o", "json", "-record", record, "-boundary", "pw-e2e-launcher",
		})
	}()
	waitFor(t, 20*time.Second, "agent socket", func() bool { _, err := os.Stat(sock); return err == nil }, &stderr)
	time.Sleep(300 * time.Millisecond) // sources subscribed before the socket opened; let tracing settle

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	childPID, expect := startBusiness(t, client, launcher, &stderr)
	expect("ok", 5)
	bizPID := businessPID(t, childPID)

	// The detector reports the child shell through the socket; it has no
	// traffic of its own, so its main process — the business process — is
	// blocked.
	var blockRec map[string]any
	waitFor(t, 30*time.Second, "a block decision", func() bool {
		recs := report(t, sock, fmt.Sprintf(`{"ts":%q,"type":"risk","pid":%d,"level":"high","reason":"reverse shell"}`,
			time.Now().UTC().Format(time.RFC3339Nano), childPID))
		if len(recs) == 1 && recs[0]["action"] == "block" {
			blockRec = recs[0]
			return true
		}
		return false
	}, &stderr)
	if blockRec["target_pid"] != float64(bizPID) || blockRec["target"] != "main_process" ||
		!strings.Contains(fmt.Sprint(blockRec["addrs"]), "198.51.100.2") || strings.Contains(fmt.Sprint(blockRec["addrs"]), "198.51.100.3") {
		t.Fatalf("block record %v (business pid %d)", blockRec, bizPID)
	}
	expect("fail", 3)
	// A process outside the business lineage still reaches another test
	// host.
	if got := probe(t, client, self, "198.51.100.3:8080"); got != "ok" {
		t.Fatalf("probe to 198.51.100.3 while .2 is blocked: %q", got)
	}
	// The kernel ruleset holds the block.
	if rules := client.MustRun("nft", "list", "table", "inet", "procwall"); !strings.Contains(rules, "198.51.100.2") {
		t.Fatalf("nft ruleset lacks the blocked address:\n%s", rules)
	}

	// Assessed safe: released, and the business process reconnects.
	recs := report(t, sock, fmt.Sprintf(`{"ts":%q,"type":"assess","pid":%d,"safe":true,"reason":"cleaned"}`,
		time.Now().UTC().Format(time.RFC3339Nano), bizPID))
	if len(recs) != 1 || recs[0]["action"] != "release" || recs[0]["target_pid"] != float64(bizPID) {
		t.Fatalf("release records %v", recs)
	}
	expect("ok", 3)

	cancel()
	select {
	case code := <-agentDone:
		if code != 0 {
			t.Fatalf("agent exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop")
	}
	if rules := client.MustRun("nft", "list", "table", "inet", "procwall"); strings.Contains(rules, "198.51.100.2") {
		t.Fatalf("released address still in the ruleset:\n%s", rules)
	}

	// The recording replays to the same decisions.
	live := decisions(t, stdout.String())
	code, replayed, errs := runCLI(t, "replay", "-o", "json", "-boundary", "pw-e2e-launcher", record)
	if code != 0 {
		t.Fatalf("replay of the recording: exit %d: %s", code, errs)
	}
	again := decisions(t, replayed)
	if strings.Join(live, "\n") != strings.Join(again, "\n") {
		t.Fatalf("live decisions:\n%s\nreplayed:\n%s", strings.Join(live, "\n"), strings.Join(again, "\n"))
	}
}

// decisions reduces JSON decision records to "action target_pid target addrs".
func decisions(t *testing.T, out string) []string {
	t.Helper()
	var ds []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		ds = append(ds, fmt.Sprint(m["action"], " ", m["target_pid"], " ", m["target"], " ", m["addrs"]))
	}
	return ds
}

func serverIf(t *testing.T, ns *privtest.NetNS) string {
	t.Helper()
	for _, l := range strings.Split(ns.MustRun("ip", "-o", "link", "show"), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "pwb") {
			return strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		}
	}
	t.Fatal("no veth in the server namespace")
	return ""
}

func businessPID(t *testing.T, child int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func report(t *testing.T, sock, line string) []map[string]any {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, line+"\n")
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK      bool             `json:"ok"`
		Error   string           `json:"error"`
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || !rep.OK {
		t.Fatalf("report reply %s: %v", b, err)
	}
	return rep.Records
}

func probe(t *testing.T, ns *privtest.NetNS, self, addr string) string {
	t.Helper()
	cmd := ns.Command(context.Background(), self)
	cmd.Env = append(os.Environ(), "PROCWALL_E2E_ROLE=probe", "PROCWALL_E2E_ADDR="+addr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool, log *syncBuf) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; agent stderr:\n%s", what, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRunGuardDeniesExec: `procwall run -rules B -guard -guard-exec DIR`
// stops, in the kernel, the execution the bundle denies and lets the
// allowed one run; the verdicts are records on standard output.
func TestRunGuardDeniesExec(t *testing.T) {
	privtest.Require(t, privtest.Path("/proc/self/ns/net"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	tru, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bin, "evil"), tru, 0o755)
	os.WriteFile(filepath.Join(bin, "good"), tru, 0o755)
	bundle := filepath.Join(dir, "bundle.json")
	os.WriteFile(bundle, []byte(`{"format": 1, "version": "guard-1",
  "order": {"general": ["user", "signature", "md5", "sha256", "process", "destination", "target"], "self_protection": ["process", "target"]},
  "rules": [
    {"id": "no-evil", "action": "deny", "ops": ["exec"], "description": "a known-bad tool", "match": {"name": ["evil"]}},
    {"id": "the-rest", "action": "allow", "ops": ["exec"], "description": "anything else", "match": {"exe": ["/"]}}
  ]}`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuf
	done := make(chan int, 1)
	sock := filepath.Join(dir, "pw.sock")
	go func() {
		done <- run(ctx, &cmdEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{
			"run", "-sources", "procconn", "-backend", "dryrun", "-state", filepath.Join(dir, "state.json"),
			"-socket", sock, "-o", "json", "-rules", bundle, "-rules-unsigned", "-guard", "-guard-exec", bin,
		})
	}()
	waitFor(t, 20*time.Second, "the guard", func() bool { return strings.Contains(stderr.String(), "guarding with fanotify") }, &stderr)
	// Started through a shell: the guard lets its own process's children
	// that still run its executable exec unjudged (it cannot be asked
	// about itself), and this test binary is that executable.
	if out, err := exec.Command("/bin/sh", "-c", filepath.Join(bin, "good")).CombinedOutput(); err != nil {
		t.Fatalf("allowed program: %v: %s", err, out)
	}
	out, err := exec.Command("/bin/sh", "-c", filepath.Join(bin, "evil")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("denied program ran: %v: %s\nstdout:\n%s\nstderr:\n%s", err, out, stdout.String(), stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exit %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"action":"deny"`) || !strings.Contains(stdout.String(), `"rule":"no-evil"`) {
		t.Fatalf("no deny record:\n%s", stdout.String())
	}
}

// e2eNetwork makes the test's two namespaces: the client one (returned),
// where the agent, the business process and its probes run, and a server
// one joined to it by a veth, whose test hosts 198.51.100.2 and .3 answer
// TCP on port 8080 until the test ends.
func e2eNetwork(t *testing.T) *privtest.NetNS {
	t.Helper()
	client := privtest.NewNetNS(t)
	server := privtest.NewNetNS(t)
	privtest.Veth(t, client, server, "198.51.100.1/24", "198.51.100.2/24")
	server.MustRun("ip", "addr", "add", "198.51.100.3/24", "dev", serverIf(t, server))

	// The test hosts answer TCP on 198.51.100.2 and .3.
	var lns []net.Listener
	for _, a := range []string{"198.51.100.2:8080", "198.51.100.3:8080"} {
		var ln net.Listener
		if err := server.Do(func() (err error) { ln, err = net.Listen("tcp", a); return err }); err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})

	return client
}

// startBusiness starts the business process (under launcher, in the client
// namespace) and returns its child's pid and a function that waits until
// the business process reports n results in a row equal to want ("ok" or
// "fail"). It is killed when the test ends.
func startBusiness(t *testing.T, client *privtest.NetNS, launcher string, stderr *syncBuf) (int, func(want string, n int)) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	biz := exec.Command(launcher, "-c", fmt.Sprintf("ip netns exec %s %s; true", client.Name, self))
	biz.Env = append(os.Environ(), "PROCWALL_E2E_ROLE=business")
	out, err := biz.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := biz.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		biz.Process.Kill()
		biz.Wait()
	})
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	childPID := 0
	for l := range lines {
		if n, ok := strings.CutPrefix(l, "child "); ok {
			childPID, _ = strconv.Atoi(n)
			break
		}
	}
	if childPID == 0 {
		t.Fatalf("business process did not start its child; agent stderr:\n%s", stderr.String())
	}
	// expect waits until the business process reports n results in a row
	// that equal want.
	expect := func(want string, n int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		run := 0
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("business process ended")
				}
				if l == want {
					run++
				} else {
					run = 0
				}
				if run >= n {
					return
				}
			case <-deadline:
				t.Fatalf("business process never had %d %q in a row; agent stderr:\n%s", n, want, stderr.String())
			}
		}
	}
	return childPID, expect
}

// TestRunKilledDuringBlock: `procwall run` (a process of its own) blocks
// the business process's address for its reported child, then is killed
// with SIGKILL while the block is in force. The block stays in the kernel
// (the business process keeps failing), and the restarted agent finds it
// once — one element in the ruleset, one active block — and releases it on
// a safe assessment, after which the business process connects again.
func TestRunKilledDuringBlock(t *testing.T) {
	privtest.Require(t, privtest.Command("ip"), privtest.Command("nft"),
		privtest.Path("/proc/self/ns/net"))
	client := e2eNetwork(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "procwall.sock")
	state := filepath.Join(dir, "state.json")
	launcher := filepath.Join(dir, "pw-e2e-launcher")
	privtest.CopyExecutable(t, "/bin/sh", launcher)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	agent := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(self, "-test.run=^$", "--", "run", "-sources", "procconn,ftrace", "-backend", "nft",
			"-netns", client.Name, "-state", state, "-socket", sock, "-o", "json", "-boundary", "pw-e2e-launcher")
		cmd.Env = append(os.Environ(), "PROCWALL_E2E_ROLE=cli")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		return cmd
	}
	sockUp := func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	first := agent()
	waitFor(t, 20*time.Second, "agent socket", sockUp, &stderr)
	time.Sleep(300 * time.Millisecond)
	childPID, expect := startBusiness(t, client, launcher, &stderr)
	expect("ok", 5)
	bizPID := businessPID(t, childPID)
	waitFor(t, 30*time.Second, "a block decision", func() bool {
		recs := report(t, sock, fmt.Sprintf(`{"ts":%q,"type":"risk","pid":%d,"level":"high","reason":"reverse shell"}`,
			time.Now().UTC().Format(time.RFC3339Nano), childPID))
		return len(recs) == 1 && recs[0]["action"] == "block" && recs[0]["target_pid"] == float64(bizPID)
	}, &stderr)
	expect("fail", 3)

	// SIGKILL: no shutdown at all. The block stays in the kernel.
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	expect("fail", 5)

	agent()
	waitFor(t, 20*time.Second, "restarted agent socket", sockUp, &stderr)
	if n := strings.Count(client.MustRun("nft", "list", "table", "inet", "procwall"), "198.51.100.2"); n != 1 {
		t.Fatalf("blocked address appears %d times in the ruleset after the restart, want once", n)
	}
	if !strings.Contains(stderr.String(), "active_blocks=1") {
		t.Fatalf("restarted agent does not report the block it found:\n%s", stderr.String())
	}
	recs := report(t, sock, fmt.Sprintf(`{"ts":%q,"type":"assess","pid":%d,"safe":true,"reason":"cleaned"}`,
		time.Now().UTC().Format(time.RFC3339Nano), bizPID))
	if len(recs) != 1 || recs[0]["action"] != "release" || recs[0]["target_pid"] != float64(bizPID) {
		t.Fatalf("release after the restart: %v\n%s", recs, stderr.String())
	}
	expect("ok", 3)
	if rules := client.MustRun("nft", "list", "table", "inet", "procwall"); strings.Contains(rules, "198.51.100.2") {
		t.Fatalf("released address still in the ruleset:\n%s", rules)
	}
}

// TestRunAutoSources: `procwall run` without -sources picks, by feature
// probes, every default source this kernel has — here all three of
// procconn, ftrace and sockdiag — and not nflog, which must be asked for.
func TestRunAutoSources(t *testing.T) {
	privtest.Require(t, privtest.Root, privtest.Path("/sys/kernel/tracing"))
	dir := t.TempDir()
	sock := filepath.Join(dir, "procwall.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuf
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &cmdEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
			[]string{"run", "-backend", "dryrun", "-state", filepath.Join(dir, "state.json"), "-socket", sock})
	}()
	waitFor(t, 20*time.Second, "procwall running", func() bool { return strings.Contains(stderr.String(), "procwall running") }, &stderr)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sources=procconn,ftrace,sockdiag ") {
		t.Fatalf("auto sources on this kernel:\n%s", stderr.String())
	}
}
