package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestReplayDemoJSONMatchesSpec(t *testing.T) {
	code, out, errs := runCLI(t, "replay", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 decision records, have %d:\n%s", len(lines), out)
	}
	required := map[string][]string{
		"block":   {"ts", "action", "risk_pid", "target_pid", "target", "addrs", "reason", "enforcer"},
		"release": {"ts", "action", "target_pid", "target", "addrs", "reason", "enforcer"},
		"none":    {"ts", "action", "risk_pid", "addrs", "reason", "enforcer"},
	}
	var actions []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		a, _ := m["action"].(string)
		actions = append(actions, a)
		for _, f := range required[a] {
			if _, ok := m[f]; !ok {
				t.Errorf("%s record lacks %q: %s", a, f, l)
			}
		}
		if a == "release" {
			if _, ok := m["risk_pid"]; ok {
				t.Errorf("release record carries risk_pid: %s", l)
			}
		}
	}
	if !slices.Equal(actions, []string{"block", "block", "none", "release"}) {
		t.Fatalf("actions %v", actions)
	}
	var first struct {
		TS        string   `json:"ts"`
		RiskPID   int      `json:"risk_pid"`
		TargetPID int      `json:"target_pid"`
		Target    string   `json:"target"`
		Addrs     []string `json:"addrs"`
		Enforcer  string   `json:"enforcer"`
	}
	json.Unmarshal([]byte(lines[0]), &first)
	if first.TS != "2026-11-22T10:05:00Z" || first.RiskPID != 231 || first.TargetPID != 100 || first.Target != "main_process" ||
		!slices.Equal(first.Addrs, []string{"198.51.100.7", "203.0.113.9"}) || first.Enforcer != "dryrun" {
		t.Fatalf("first record %+v", first)
	}
	// The release lists only what is no longer blocked: the miner's block
	// still holds 198.51.100.7.
	if !strings.Contains(lines[3], `"addrs":["203.0.113.9"]`) {
		t.Fatalf("release record %s", lines[3])
	}
}

func TestReplayDemoText(t *testing.T) {
	code, out, errs := runCLI(t, "replay")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"BLOCK   main process nginx (100) for risk process sh (231)",
		"└─ nginx(100) <main>  127.0.0.1, 198.51.100.7, 203.0.113.9",
		"└─ sh(231) <risk>",
		"RELEASE main process nginx (100)",
		"unblocked: 203.0.113.9",
		"summary: 25 events; 2 block, 1 release, 1 none; 1 block(s) active at the end",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestReplayFilesAndBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "trace.jsonl")
	reports := filepath.Join(dir, "reports.jsonl")
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(good, []byte(`{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}
{"ts":"2026-11-22T10:00:01Z","type":"exec","pid":100,"exe":"/usr/sbin/nginx","argv":["nginx"]}
{"ts":"2026-11-22T10:00:02Z","type":"connect","pid":100,"proto":"tcp","dst":"198.51.100.7:443"}
{"ts":"2026-11-22T10:00:03Z","type":"fork","pid":231,"ppid":100}
`), 0o644)
	// A detector's reports in a file of their own, merged by time.
	os.WriteFile(reports, []byte(`{"ts":"2026-11-22T10:00:05Z","type":"risk","pid":231,"level":"high","reason":"shell"}
`), 0o644)
	os.WriteFile(bad, []byte(`{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}
{"ts":"2026-11-22T10:00:01Z","type":"exec","pid":
{"ts":"2026-11-22T10:00:02Z","type":"risk","pid":100,"level":"high"}
`), 0o644)

	code, out, errs := runCLI(t, "replay", "-o", "json", reports, good)
	if code != 0 || !strings.Contains(out, `"action":"block","risk_pid":231,"target_pid":100`) {
		t.Fatalf("merged replay: exit %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = runCLI(t, "replay", "-o", "json", bad)
	if code != 1 || !strings.Contains(errs, "bad.jsonl:2") {
		t.Fatalf("strict bad input: exit %d, stderr %q", code, errs)
	}
	code, out, errs = runCLI(t, "replay", "-o", "json", "-lenient", bad)
	if code != 0 || !strings.Contains(errs, "1 bad line(s) skipped") || !strings.Contains(out, `"action":"none"`) {
		t.Fatalf("lenient bad input: exit %d\nout %s\nerr %s", code, out, errs)
	}
	code, _, errs = runCLI(t, "replay", filepath.Join(dir, "missing.jsonl"))
	if code != 1 || !strings.Contains(errs, "missing.jsonl") {
		t.Fatalf("missing file: exit %d, %q", code, errs)
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage: procwall"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"replay", "-o", "xml"}, 2, "-o must be text or json"},
		{[]string{"replay", "-format", "csv"}, 2, "-format"},
		{[]string{"replay", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"replay", "-h"}, 0, "usage: procwall replay"},
		{[]string{"monitor", "-source", "carrier-pigeon"}, 2, "-source must be one of"},
		{[]string{"help"}, 0, ""},
		// Rule bundles must be signed unless unsigned ones are asked for.
		{[]string{"rules", "guard", "-bundle", "b.json"}, 2, "-bundle needs -key"},
		{[]string{"rules", "guard", "-bundle", "b.json", "-key", "k.pub", "-unsigned"}, 2, "-unsigned and -key exclude each other"},
		{[]string{"run", "-rules", "b.json"}, 2, "-rules needs -rules-key"},
		{[]string{"run", "-rules", "b.json", "-rules-key", "k.pub", "-rules-unsigned"}, 2, "-rules-unsigned and -rules-key exclude each other"},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.msg) {
			t.Errorf("procwall %v: exit %d (want %d), output %q (want %q)", c.args, code, c.code, out+errs, c.msg)
		}
	}
}

func TestReplayWarnAndChains(t *testing.T) {
	code, out, errs := runCLI(t, "replay", "-o", "json", "-warn", "-chains")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		count[m["action"].(string)]++
	}
	if count["block"] != 2 || count["release"] != 1 || count["warn"] == 0 || count["chain"] == 0 {
		t.Fatalf("actions %v", count)
	}
	code, out, _ = runCLI(t, "replay", "-warn", "-chains")
	if code != 0 || !strings.Contains(out, "WARN    nginx (100)") || !strings.Contains(out, "CHAIN   chain-1 from sh (231)") {
		t.Fatalf("text report:\n%s", out)
	}
}

func TestRunRulesErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bundle.json")
	os.WriteFile(bad, []byte(`{"format": 1, "version": "x", "rules": [{"id": "a", "action": "block"}]}`), 0o644)
	code, _, errs := runCLI(t, "run", "-rules", bad, "-rules-unsigned", "-backend", "dryrun", "-state", filepath.Join(dir, "s.json"))
	if code != 1 || !strings.Contains(errs, "-rules") || !strings.Contains(errs, `unknown action "block"`) {
		t.Fatalf("bad bundle: exit %d, %q", code, errs)
	}
	code, _, errs = runCLI(t, "run", "-rules", bad, "-backend", "dryrun")
	if code != 2 || !strings.Contains(errs, "-rules needs -rules-key") {
		t.Fatalf("unsigned bundle without consent: exit %d, %q", code, errs)
	}
	if code, _, errs := runCLI(t, "run", "-guard"); code != 2 || !strings.Contains(errs, "need -rules") {
		t.Fatalf("-guard without -rules: exit %d, %q", code, errs)
	}
	code, _, errs = runCLI(t, "run", "-rules", filepath.Join(dir, "missing.json"), "-rules-unsigned", "-backend", "dryrun")
	if code != 1 || !strings.Contains(errs, "missing.json") {
		t.Fatalf("missing bundle: exit %d, %q", code, errs)
	}
	// With a cache directory but nothing cached yet: both reasons.
	code, _, errs = runCLI(t, "run", "-rules", filepath.Join(dir, "missing.json"), "-rules-unsigned", "-backend", "dryrun",
		"-rules-cache", filepath.Join(dir, "cache"))
	if code != 1 || !strings.Contains(errs, "missing.json") || !strings.Contains(errs, "cached bundle") {
		t.Fatalf("missing bundle, empty cache: exit %d, %q", code, errs)
	}
	for _, c := range []struct{ flag, loc, want string }{
		{"", "https://rules.example/b.json", defaultRulesCache},
		{"", "/etc/procwall/b.json", ""},
		{"-", "https://rules.example/b.json", ""},
		{"/srv/c", "/etc/procwall/b.json", "/srv/c"},
	} {
		if got := rulesCacheDir(c.flag, c.loc); got != c.want {
			t.Errorf("rulesCacheDir(%q, %q) = %q, want %q", c.flag, c.loc, got, c.want)
		}
	}
	if code, _, errs := runCLI(t, "run", "-boundary", "[x"); code != 2 || !strings.Contains(errs, "bad pattern") {
		t.Fatalf("bad -boundary: exit %d, %q", code, errs)
	}
}
