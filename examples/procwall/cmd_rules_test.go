package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os/exec"
	"sync"
	"time"

	"context"
	"encoding/json"
	"github.com/procwall/procwall/internal/privtest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procwall/procwall/rules"
)

const testBundle = `{"format":1,"version":"cli-1","rules":[
 {"id":"nc","action":"deny","match":{"name":["nc"]}},
 {"id":"web","action":"allow","match":{"dst":["198.51.100.0/24"],"port":["443"]}}]}`

func TestRulesCheckSign(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "bundle.json")
	os.WriteFile(b, []byte(testBundle), 0o644)
	code, out, errs := runCLI(t, "rules", "check", b)
	if code != 0 || !strings.Contains(out, "ok: version cli-1, unsigned, 2 rules (destination 1, process 1)") {
		t.Fatalf("check: %d %q %q", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(testBundle, `"deny"`, `"drop"`, 1)), 0o644)
	code, out, _ = runCLI(t, "rules", "check", "-o", "json", bad)
	var res checkResult
	json.Unmarshal([]byte(out), &res)
	if code != 1 || res.OK || !strings.Contains(res.Error, `rules[0] (nc).action: unknown action "drop"`) {
		t.Fatalf("bad: %d %q", code, out)
	}
	key := filepath.Join(dir, "k")
	if code, _, errs := runCLI(t, "rules", "sign", "-genkey", "ops", "-key", key); code != 0 {
		t.Fatal(errs)
	}
	signed := filepath.Join(dir, "bundle.signed")
	if code, _, errs := runCLI(t, "rules", "sign", "-key", key, "-out", signed, b); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs = runCLI(t, "rules", "check", "-key", key+".pub", signed)
	if code != 0 || !strings.Contains(out, "signed by ops") {
		t.Fatalf("signed check: %d %q %q", code, out, errs)
	}
	// With a key, unsigned bundles fail; a tampered one fails.
	if code, out, _ := runCLI(t, "rules", "check", "-key", key+".pub", b); code != 1 || !strings.Contains(out, "not a signed document") {
		t.Fatalf("unsigned with key: %d %q", code, out)
	}
	data, _ := os.ReadFile(signed)
	os.WriteFile(signed, []byte(strings.Replace(string(data), `"sig": "`, `"sig": "AA`, 1)), 0o644)
	if code, out, _ := runCLI(t, "rules", "check", "-key", key+".pub", signed); code != 1 || !strings.Contains(out, "does not verify") {
		t.Fatalf("tampered: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "rules", "sign", "-key", key, bad); code != 1 {
		t.Fatal("signed an invalid bundle")
	}
	if code, _, _ := runCLI(t, "rules", "frob"); code != 2 {
		t.Fatal("bad subcommand not a usage error")
	}
}

func TestRulesServeETag(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bundle.json"), []byte(testBundle), 0o644)
	ts := httptest.NewServer(etagHandler(dir, discardLogger()))
	defer ts.Close()
	e := rules.New()
	u := &rules.Updater{Engine: e, AllowUnsigned: true}
	src := &rules.HTTPSource{URL: ts.URL + "/bundle.json"}
	if ch, err := u.Update(context.Background(), src); !ch || err != nil || e.Version() != "cli-1" {
		t.Fatal(ch, err, e.Version())
	}
	if ch, err := u.Update(context.Background(), src); ch || err != nil {
		t.Fatal("not 304:", ch, err)
	}
	resp, err := http.Get(ts.URL + "/../etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("path escape: %s", resp.Status)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRulesGuard runs `procwall rules guard` on a temp directory: a
// binary on the bundle's md5 deny list cannot run while the guard runs,
// and the denial is a JSON decision record.
func TestRulesGuard(t *testing.T) {
	privtest.Require(t, privtest.Command("sh"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "miner")
	data, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	sum := md5.Sum(data)
	bundle := filepath.Join(t.TempDir(), "bundle.json")
	os.WriteFile(bundle, []byte(`{"format":1,"version":"guard-1","rules":[{"id":"miner","action":"deny","description":"known miner","match":{"md5":["`+hex.EncodeToString(sum[:])+`"]}}]}`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb},
			[]string{"rules", "guard", "-bundle", bundle, "-unsigned", "-exec", dir, "-o", "json", "-timeout", "5s", "-ask-timeout", "1s"})
	}()
	denied := false
	for range 500 {
		if !strings.Contains(errb.String(), "rules guard: running") {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		cmd := exec.Command("sh", "-c", `"$0"; rc=$?; exit $rc`, bin)
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 126 {
			denied = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("guard exit %d: %s", code, errb.String())
	}
	if !denied {
		t.Fatalf("execution not denied; stderr:\n%s", errb.String())
	}
	var rec rules.Record
	line, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Action != rules.Deny || rec.Rule != "miner" || rec.Exe != bin || rec.Version != "guard-1" {
		t.Fatalf("record %q: %+v %v", line, rec, err)
	}
}
