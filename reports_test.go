package procwall_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall"
)

type reply struct {
	OK      bool             `json:"ok"`
	Error   string           `json:"error"`
	Records []map[string]any `json:"records"`
}

func startReportServer(t *testing.T, opts ...procwall.ReportOption) (*procwall.Protector, string) {
	t.Helper()
	return startReportServerAt(t, filepath.Join(t.TempDir(), "run", "procwall.sock"), opts...)
}

// startReportServerAt is startReportServer with the socket at path.
func startReportServerAt(t *testing.T, path string, opts ...procwall.ReportOption) (*procwall.Protector, string) {
	t.Helper()
	p, err := procwall.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Events() {
		p.Handle(context.Background(), e)
	}
	srv, err := procwall.ListenReports(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, p) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file left behind: %v", err)
		}
	})
	return p, path
}

func converse(t *testing.T, path string, lines ...string) []reply {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var out []reply
	r := bufio.NewReader(c)
	for _, l := range lines {
		if _, err := c.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
		b, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading reply to %q: %v", l, err)
		}
		var rep reply
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
		out = append(out, rep)
	}
	return out
}

func TestReportSocket(t *testing.T) {
	p, path := startReportServer(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file %v mode %v", err, fi.Mode())
	}
	reps := converse(t, path,
		`{"ts":"2026-11-22T10:05:00Z","type":"risk","pid":231,"level":"high","reason":"web shell"}`,
		`{"ts":"2026-11-22T10:05:01Z","type":"risk","pid":231,"level":"severe"}`,
		`{"ts":"2026-11-22T10:05:02Z","type":"fork","pid":5,"ppid":1}`,
		`not json`,
		`{"ts":"2026-11-22T10:09:00Z","type":"assess","pid":100,"safe":true,"reason":"clean"}`,
	)
	if !reps[0].OK || len(reps[0].Records) != 1 || reps[0].Records[0]["action"] != "block" ||
		reps[0].Records[0]["target_pid"] != float64(100) {
		t.Fatalf("risk reply %+v", reps[0])
	}
	if reps[1].OK || !strings.Contains(reps[1].Error, "line 2") || !strings.Contains(reps[1].Error, "severe") {
		t.Fatalf("bad level reply %+v", reps[1])
	}
	if reps[2].OK || !strings.Contains(reps[2].Error, "only risk and assess") {
		t.Fatalf("fork reply %+v", reps[2])
	}
	if reps[3].OK || !strings.Contains(reps[3].Error, "line 4") {
		t.Fatalf("garbage reply %+v", reps[3])
	}
	if !reps[4].OK || reps[4].Records[0]["action"] != "release" {
		t.Fatalf("assess reply %+v", reps[4])
	}
	if len(p.ActiveBlocks()) != 0 {
		t.Fatal("block not released")
	}
}

func TestReportSocketRefusesPeers(t *testing.T) {
	p, path := startReportServer(t, procwall.WithPeerCheck(procwall.AllowUIDs(424242)))
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The server answers a refused peer at once and hangs up; whatever the
	// peer writes is never applied.
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var rep reply
	if err := json.Unmarshal(b, &rep); err != nil || rep.OK || !strings.Contains(rep.Error, "refused") ||
		!strings.Contains(rep.Error, "may not send reports") {
		t.Fatalf("reply %s: %v", b, err)
	}
	c.Write([]byte(`{"ts":"2026-11-22T10:05:00Z","type":"risk","pid":231,"level":"high"}` + "\n"))
	time.Sleep(50 * time.Millisecond)
	if len(p.ActiveBlocks()) != 0 {
		t.Fatal("a refused peer's report was applied")
	}
}

func TestReportSocketStaleAndBusy(t *testing.T) {
	_, path := startReportServer(t)
	if _, err := procwall.ListenReports(path); err == nil || !strings.Contains(err.Error(), "another server is listening") {
		t.Fatalf("second listener: %v", err)
	}
	other := filepath.Join(t.TempDir(), "file")
	os.WriteFile(other, nil, 0o600)
	if _, err := procwall.ListenReports(other); err == nil || !strings.Contains(err.Error(), "non-socket file") {
		t.Fatalf("listener over a file: %v", err)
	}
}

func TestMetricsPrometheus(t *testing.T) {
	res := replayTrace(t, webServer().Fork(231, 101).Exec(231, "/bin/sh", "sh").Risk(231, "high", "x"),
		procwall.WithRulesVersion(func() string { return "2026.11.3" }))
	var b strings.Builder
	if err := res.p.Metrics().WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`procwall_decisions_total{action="block"} 1`,
		`procwall_events_total{source="replay"} 10`,
		"# TYPE procwall_active_blocks gauge\nprocwall_active_blocks 1\n",
		"procwall_tree_live_processes 4\n",
		`procwall_rules_info{version="2026.11.3"} 1`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}
