package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBundleErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"syntax", `{"format":1,`, "line 1 column"},
		{"unknown field", `{"format":1,"version":"v","rules":[],"bogus":1}`, `unknown field "bogus"`},
		{"type", `{"format":1,"version":"v","rules":[{"id":"a","action":"allow","priority":"x","match":{"exe":["/a"]}}]}`, "field rules.priority"},
		{"format", `{"format":2,"version":"v","rules":[]}`, "format: must be 1"},
		{"version", `{"format":1,"rules":[]}`, "version: missing"},
		{"no id", `{"format":1,"version":"v","rules":[{"action":"allow","match":{"exe":["/a"]}}]}`, "rules[0].id: missing"},
		{"dup id", `{"format":1,"version":"v","rules":[{"id":"a","action":"allow","match":{"exe":["/a"]}},{"id":"a","action":"deny","match":{"exe":["/b"]}}]}`, "rules[1] (a).id: duplicate of rules[0]"},
		{"action", `{"format":1,"version":"v","rules":[{"id":"a","action":"block","match":{"exe":["/a"]}}]}`, `rules[0] (a).action: unknown action "block"`},
		{"empty match", `{"format":1,"version":"v","rules":[{"id":"a","action":"allow","match":{}}]}`, "no conditions"},
		{"md5", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"md5":["abc"]}}]}`, "rules[0] (a).match.md5[0]"},
		{"md5 upper", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"md5":["D41D8CD98F00B204E9800998ECF8427E"]}}]}`, "lower case"},
		{"dst", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"dst":["300.1.1.1"]}}]}`, `bad address "300.1.1.1"`},
		{"port", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"port":["9-3"]}}]}`, `bad port or range "9-3"`},
		{"relative exe", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"exe":["bin/x"]}}]}`, "must be absolute"},
		{"unknown list", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"md5":["@nope"]}}]}`, `match.md5[0]: unknown list "nope"`},
		{"empty list", `{"format":1,"version":"v","lists":{"e":{"items":[]}},"rules":[{"id":"a","action":"deny","match":{"name":["@e"]}}]}`, "refers only to empty lists"},
		{"bad layer", `{"format":1,"version":"v","order":{"general":["md5","nope"]},"rules":[]}`, `order.general[1]: unknown layer "nope"`},
		{"bad point", `{"format":1,"version":"v","order":{"kernel":["md5"]},"rules":[]}`, `unknown monitor-point type "kernel"`},
		{"layer not ordered", `{"format":1,"version":"v","order":{"self_protection":["process"]},"rules":[{"id":"a","action":"deny","points":["self_protection"],"match":{"md5":["d41d8cd98f00b204e9800998ecf8427e"]}}]}`, `layer "md5" is not in the execution order of "self_protection"`},
		{"user layer", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","layer":"user","match":{"exe":["/a"]}}]}`, "user layer holds remembered"},
		{"op", `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","ops":["read"],"match":{"exe":["/a"]}}]}`, `ops[0]: unknown op "read"`},
		{"list file without location", `{"format":1,"version":"v","lists":{"l":{"path":"l.txt"}},"rules":[]}`, "no location"},
		{"trailing", `{"format":1,"version":"v","rules":[]} {}`, "trailing data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBundle([]byte(c.doc), nil)
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !errors.Is(err, ErrInvalid) && !strings.Contains(c.name, "list file") {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	list := "# version: 7\n# comment\n\nd41d8cd98f00b204e9800998ecf8427e\n"
	os.WriteFile(filepath.Join(dir, "bad.txt"), []byte(list), 0o644)
	doc := func(extra string) string {
		return `{"format":1,"version":"v","lists":{"bad":{"path":"bad.txt"` + extra + `}},"rules":[{"id":"a","action":"deny","match":{"md5":["@bad"]}}]}`
	}
	b, err := ParseBundle([]byte(doc(`,"version":"7"`)), DirLoader(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Lists["bad"].Items; len(got) != 1 || got[0] != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Fatalf("items %q", got)
	}
	if _, err := ParseBundle([]byte(doc(`,"version":"8"`)), DirLoader(dir)); err == nil || !strings.Contains(err.Error(), `has version "7", bundle wants "8"`) {
		t.Errorf("version mismatch: %v", err)
	}
	if _, err := ParseBundle([]byte(doc(`,"sha256":"`+strings.Repeat("0", 64)+`"`)), DirLoader(dir)); err == nil || !strings.Contains(err.Error(), "does not match its sha256") {
		t.Errorf("sha mismatch: %v", err)
	}
	if _, err := ParseBundle([]byte(strings.Replace(doc(""), "bad.txt", "../x", 1)), DirLoader(dir)); err == nil || !strings.Contains(err.Error(), "stay inside") {
		t.Errorf("escape: %v", err)
	}
	if _, err := ParseBundle([]byte(strings.Replace(doc(""), "bad.txt", "missing.txt", 1)), DirLoader(dir)); err == nil || !strings.Contains(err.Error(), "lists.bad: read list") {
		t.Errorf("missing: %v", err)
	}
}

func TestSchemaIsJSON(t *testing.T) {
	if len(Schema) == 0 || !strings.Contains(string(Schema), `"self_protection"`) {
		t.Fatal("schema not embedded")
	}
	// Every field of Match is in the schema.
	for _, f := range (&Match{}).fields() {
		if !strings.Contains(string(Schema), `"`+f.name+`": {"$ref"`) {
			t.Errorf("schema lacks match field %q", f.name)
		}
	}
}

// TestExampleBundle keeps the documented example bundle valid and checks
// a few of its decisions.
func TestExampleBundle(t *testing.T) {
	b, err := LoadBundle("testdata/example-bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Lists["bad-md5"].Items) != 2 {
		t.Fatalf("list file not read: %+v", b.Lists["bad-md5"])
	}
	e := New()
	if err := e.Load(b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  Request
		rule string
	}{
		{Request{Op: OpWrite, Exe: "/usr/bin/vi", Path: "/etc/procwall/rules.json"}, "self-deny"},
		{Request{Op: OpWrite, Exe: "/usr/bin/vi", ParentExe: "/usr/bin/dpkg", Path: "/etc/cron.d/x"}, "pkg-persistence"},
		{Request{Op: OpWrite, Exe: "/usr/bin/vi", Path: "/etc/cron.d/x"}, "persistence"},
		{Request{Op: OpConnect, Exe: "/bin/sh", ParentExe: "/usr/sbin/nginx", Dst: netipMust("192.0.2.1:4444")}, "revshell"},
		{Request{Op: OpConnect, Exe: "/usr/bin/curl", Dst: netipMust("[2001:db8:bad::9]:443")}, "c2"},
	} {
		if v := e.Decide(&c.req); v.Rule != c.rule {
			t.Errorf("%+v: rule %q (%s), want %q", c.req, v.Rule, v.Description, c.rule)
		}
	}
}
