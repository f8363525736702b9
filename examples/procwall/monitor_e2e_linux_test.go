package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/privtest"
)

// TestMonitorTraceReplays records, with `monitor -source S -o json` on the
// live kernel, a child of this test that exits with code 3, and checks
// that the recording holds its fork and exit (with the code, from the
// proc connector), and
// that `replay` reads it back (strict: the first bad line would fail it).
func TestMonitorTraceReplays(t *testing.T) {
	privtest.Require(t, privtest.Root)
	for _, src := range []string{"procconn", "ftrace"} {
		t.Run(src, func(t *testing.T) {
			type result struct {
				code        int
				out, errout string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errs := runCLI(t, "monitor", "-source", src, "-o", "json", "-duration", "3s", "-pid", strconv.Itoa(os.Getpid()))
				done <- result{code, out, errs}
			}()
			time.Sleep(time.Second) // the source subscribed
			cmd := exec.Command("/bin/sh", "-c", "exit 3")
			if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 3 {
				t.Fatalf("child: %v", err)
			}
			child := cmd.Process.Pid
			r := <-done
			if r.code != 0 {
				t.Fatalf("monitor exit %d: %s", r.code, r.errout)
			}
			var forked, exited, code3 bool
			for line := range strings.Lines(r.out) {
				var ev struct {
					Type string `json:"type"`
					PID  int    `json:"pid"`
					Code *int   `json:"code"`
				}
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("monitor line %q: %v", line, err)
				}
				if ev.PID != child {
					continue
				}
				switch ev.Type {
				case "fork":
					forked = true
				case "exit":
					exited = true
					code3 = ev.Code != nil && *ev.Code == 3
				}
			}
			// The sched_process_exit tracepoint carries no exit code; the
			// proc connector's exit event does.
			if !forked || !exited || src == "procconn" && !code3 {
				t.Fatalf("child %d: fork seen %v, exit seen %v (code 3: %v), in:\n%s", child, forked, exited, code3, r.out)
			}
			trace := filepath.Join(t.TempDir(), "trace.jsonl")
			if err := os.WriteFile(trace, []byte(r.out), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runCLI(t, "replay", "-o", "json", trace)
			if code != 0 || strings.Contains(errs, "skipped") {
				t.Fatalf("replay of the recording: exit %d: %s", code, errs)
			}
		})
	}
}
