package rules

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

func mustBundle(t testing.TB, doc string) *Bundle {
	t.Helper()
	b, err := ParseBundle([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEngine(t testing.TB, doc string, opts ...Option) *Engine {
	t.Helper()
	e := New(opts...)
	if err := e.Load(mustBundle(t, doc)); err != nil {
		t.Fatal(err)
	}
	return e
}

// writeExe writes a file with content and returns its path and digests.
func writeExe(t testing.TB, dir, name, content string) (path, md5hex, shahex string) {
	t.Helper()
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	m := md5.Sum([]byte(content))
	s := sha256.Sum256([]byte(content))
	return path, hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// fakeVerifier signs files by path.
type fakeVerifier map[string]string

func (f fakeVerifier) Name() string { return "fake" }
func (f fakeVerifier) Verify(file *File) (string, error) {
	return f[file.Path], nil
}

func TestFirstMatchAndOrder(t *testing.T) {
	dir := t.TempDir()
	exe, sum, _ := writeExe(t, dir, "tool", "tool v1")
	doc := `{"format":1,"version":"v1","rules":[
	 {"id":"proc-allow","action":"allow","match":{"exe":["` + exe + `"]}},
	 {"id":"md5-deny","action":"deny","match":{"md5":["` + sum + `"]}},
	 {"id":"md5-allow-hi","action":"allow","priority":5,"match":{"md5":["` + sum + `"]}},
	 {"id":"self-name","action":"deny","points":["self_protection"],"match":{"name":["tool"]}}
	],"self_protection":["/opt/procwall/"]}`
	e := mustEngine(t, doc)
	req := &Request{Op: OpExec, Exe: exe, Path: exe}
	// md5 layer runs before process layer; within md5 higher priority first.
	if v := e.Decide(req); v.Action != Allow || v.Rule != "md5-allow-hi" || v.Point != PointGeneral || v.By != "rule" {
		t.Errorf("general: %+v", v)
	}
	// Same executable writing a self-protected file: self-protection order.
	w := &Request{Op: OpWrite, Exe: exe, Path: "/opt/procwall/rules.json"}
	if v := e.Decide(w); v.Point != PointSelf || v.Rule != "md5-allow-hi" {
		t.Errorf("self: %+v", v)
	}
	// A custom order: process before md5 → the process rule wins.
	doc2 := strings.Replace(doc, `"rules":[`, `"order":{"general":["process","md5"],"self_protection":["process"]},"rules":[`, 1)
	doc2 = strings.Replace(doc2, `"points":["self_protection"],`, `"points":["self_protection"],"priority":9,`, 1)
	e2 := mustEngine(t, doc2)
	if v := e2.Decide(req); v.Rule != "proc-allow" {
		t.Errorf("custom order: %+v", v)
	}
	if v := e2.Decide(w); v.Rule != "self-name" || v.Action != Deny {
		t.Errorf("custom order self: %+v", v)
	}
	// Linear scan agrees.
	for _, en := range []*Engine{e, e2} {
		for _, r := range []*Request{req, w} {
			if a, b := en.decide(r, false), en.decide(r, true); a.Rule != b.Rule {
				t.Errorf("index %q, linear %q", a.Rule, b.Rule)
			}
		}
	}
	// Nothing matches → ask.
	if v := e.Decide(&Request{Op: OpConnect, Exe: "/nonexistent", Dst: netip.MustParseAddrPort("192.0.2.1:80")}); v.Action != Ask || v.Rule != "" || !strings.Contains(v.Description, "no rule matched") {
		t.Errorf("unmatched: %+v", v)
	}
}

func TestEveryFilter(t *testing.T) {
	dir := t.TempDir()
	exe, sum, sha := writeExe(t, dir, "agent", "agent body")
	other, _, _ := writeExe(t, dir, "other", "other body")
	doc := `{"format":1,"version":"v","lists":{"signers":{"items":["vendor:acme"]},"nets":{"items":["198.51.100.0/24","2001:db8::/32"]}},"rules":[
	 {"id":"signer","action":"allow","ops":["exec"],"match":{"signer":["@signers"]}},
	 {"id":"signer-wild","action":"allow","ops":["open"],"match":{"signer":["vendor:*"]}},
	 {"id":"md5","action":"deny","ops":["exec"],"match":{"md5":["` + sum + `"]}},
	 {"id":"sha","action":"deny","ops":["write"],"match":{"sha256":["` + sha + `"]}},
	 {"id":"exe-dir","action":"allow","ops":["connect"],"match":{"exe":["` + dir + `/"],"port":["22"]}},
	 {"id":"name","action":"deny","ops":["connect"],"match":{"name":["nc","ncat"]}},
	 {"id":"cmdline","action":"deny","ops":["connect"],"match":{"cmdline":["* -e /bin/sh*"]}},
	 {"id":"parent-name","action":"deny","ops":["connect"],"match":{"parent":["nginx"]}},
	 {"id":"parent-path","action":"allow","ops":["connect"],"match":{"parent":["/usr/sbin/sshd"]}},
	 {"id":"user","action":"allow","ops":["connect"],"match":{"user":["1234","backup"]}},
	 {"id":"dst","action":"deny","ops":["connect"],"match":{"dst":["@nets"]}},
	 {"id":"port","action":"allow","ops":["connect"],"match":{"port":["8000-8999"]}},
	 {"id":"target","action":"deny","ops":["write"],"match":{"target":["/etc/cron.d/","/root/.ssh/authorized_keys"]}},
	 {"id":"target-glob","action":"allow","ops":["write"],"match":{"target":["/var/log/*.log"]}}
	]}`
	e := mustEngine(t, doc, WithVerifiers(fakeVerifier{other: "vendor:acme"}))
	dst := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	cases := []struct {
		name string
		req  Request
		rule string
	}{
		{"signer", Request{Op: OpExec, Exe: other}, "signer"},
		{"signer wildcard", Request{Op: OpOpen, Exe: other, Path: "/x"}, "signer-wild"},
		{"md5", Request{Op: OpExec, Exe: exe}, "md5"},
		{"sha256", Request{Op: OpWrite, Exe: exe, Path: "/tmp/f"}, "sha"},
		{"exe dir + port", Request{Op: OpConnect, Exe: exe, Dst: dst("192.0.2.1:22")}, "exe-dir"},
		{"exe dir, wrong port", Request{Op: OpConnect, Exe: exe, Dst: dst("192.0.2.1:23")}, ""},
		{"name", Request{Op: OpConnect, Exe: "/usr/bin/nc", Dst: dst("192.0.2.1:1")}, "name"},
		{"cmdline", Request{Op: OpConnect, Exe: "/usr/bin/busybox", Argv: []string{"busybox", "nc", "-e", "/bin/sh", "x"}, Dst: dst("192.0.2.1:1")}, "cmdline"},
		{"parent name", Request{Op: OpConnect, Exe: "/bin/sh", ParentExe: "/usr/sbin/nginx", Dst: dst("192.0.2.1:1")}, "parent-name"},
		{"parent path", Request{Op: OpConnect, Exe: "/bin/sh", ParentExe: "/usr/sbin/sshd", Dst: dst("192.0.2.1:1")}, "parent-path"},
		{"uid", Request{Op: OpConnect, Exe: "/bin/x", UID: 1234, HasUID: true, Dst: dst("192.0.2.1:1")}, "user"},
		{"user name", Request{Op: OpConnect, Exe: "/bin/x", User: "backup", Dst: dst("192.0.2.1:1")}, "user"},
		{"dst v4", Request{Op: OpConnect, Exe: "/bin/x", Dst: dst("198.51.100.9:443")}, "dst"},
		{"dst v4-mapped", Request{Op: OpConnect, Exe: "/bin/x", Dst: dst("[::ffff:198.51.100.9]:443")}, "dst"},
		{"dst v6", Request{Op: OpConnect, Exe: "/bin/x", Dst: dst("[2001:db8::1]:443")}, "dst"},
		{"port range", Request{Op: OpConnect, Exe: "/bin/x", Dst: dst("203.0.113.1:8080")}, "port"},
		{"port outside", Request{Op: OpConnect, Exe: "/bin/x", Dst: dst("203.0.113.1:9000")}, ""},
		{"target dir", Request{Op: OpWrite, Exe: "/bin/x", Path: "/etc/cron.d/evil"}, "target"},
		{"target exact", Request{Op: OpWrite, Exe: "/bin/x", Path: "/root/.ssh/authorized_keys"}, "target"},
		{"target glob", Request{Op: OpWrite, Exe: "/bin/x", Path: "/var/log/app/x.log"}, "target-glob"},
		{"target none", Request{Op: OpWrite, Exe: "/bin/x", Path: "/etc/passwd"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, linear := range []bool{false, true} {
				v := e.decide(&c.req, linear)
				if v.Rule != c.rule {
					t.Errorf("linear=%v: rule %q (%s), want %q", linear, v.Rule, v.Description, c.rule)
				}
				if c.rule == "" && v.Action != Ask {
					t.Errorf("unmatched gives %v", v.Action)
				}
			}
		})
	}
}

func TestDigestCacheRehash(t *testing.T) {
	dir := t.TempDir()
	exe, sum1, _ := writeExe(t, dir, "x", "one")
	c := NewDigestCache(0)
	f, err := c.Get(exe, nil)
	if err != nil || f.MD5 != sum1 {
		t.Fatalf("%v %+v", err, f)
	}
	if _, err := c.Get(exe, nil); err != nil || c.Hashes() != 1 {
		t.Fatalf("second get hashed again: %d", c.Hashes())
	}
	// Same size, new content: mtime/ctime change → rehash.
	time.Sleep(10 * time.Millisecond)
	_, sum2, _ := writeExe(t, dir, "x", "two")
	f, err = c.Get(exe, nil)
	if err != nil || f.MD5 != sum2 || c.Hashes() != 2 {
		t.Fatalf("after change: %v md5 %s hashes %d", err, f.MD5, c.Hashes())
	}
	// Through an open descriptor.
	fd, _ := os.Open(exe)
	defer fd.Close()
	if f, err := c.Get(exe, fd); err != nil || f.MD5 != sum2 || c.Hashes() != 2 {
		t.Fatalf("fd: %v %d", err, c.Hashes())
	}
	if _, err := c.Get(filepath.Join(dir, "missing"), nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	// Bounded.
	small := NewDigestCache(2)
	for i := range 5 {
		p, _, _ := writeExe(t, dir, "f"+string(rune('a'+i)), strings.Repeat("z", i+1))
		if _, err := small.Get(p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(small.m); n > 2 {
		t.Errorf("cache holds %d > 2", n)
	}
}

func TestJudgeDeciderAndUserRules(t *testing.T) {
	dir := t.TempDir()
	exe, _, _ := writeExe(t, dir, "app", "app")
	store := filepath.Join(dir, "user.json")
	users, err := OpenUserRules(store)
	if err != nil {
		t.Fatal(err)
	}
	var answer Answer
	var asked []Question
	dec := DeciderFunc(func(ctx context.Context, q Question) (Answer, error) {
		asked = append(asked, q)
		return answer, nil
	})
	var recs []Record
	doc := `{"format":1,"version":"v9","rules":[{"id":"deny-nc","action":"deny","match":{"name":["nc"]}}]}`
	e := mustEngine(t, doc, WithDecider(dec), WithUserRules(users), WithRecorder(func(r Record) { recs = append(recs, r) }))
	req := &Request{Op: OpConnect, PID: 7, Exe: exe, Dst: netip.MustParseAddrPort("192.0.2.5:443")}

	// Once: asked, not remembered.
	answer = Answer{Action: Deny}
	if v := e.Judge(context.Background(), req); v.Action != Deny || v.By != "decider" {
		t.Fatalf("once: %+v", v)
	}
	if len(asked) != 1 || asked[0].Verdict.Level == source.LevelNone || len(asked[0].Verdict.Reasons) == 0 {
		t.Fatalf("question lacks risk: %+v", asked)
	}
	// The exe in a temp dir, unsigned, just written: high risk.
	if asked[0].Verdict.Level < source.LevelHigh && !strings.HasPrefix(exe, "/tmp/") {
		t.Logf("level %v (temp dir %s)", asked[0].Verdict.Level, dir)
	}
	// Always: remembered, persisted, decides without asking next time.
	answer = Answer{Action: Allow, Remember: Always}
	if v := e.Judge(context.Background(), req); v.Action != Allow || !strings.HasPrefix(v.Rule, "user:") {
		t.Fatalf("always: %+v", v)
	}
	if v := e.Judge(context.Background(), req); v.By != "user" || v.Action != Allow || len(asked) != 2 {
		t.Fatalf("remembered: %+v asked %d", v, len(asked))
	}
	// A bundle rule that matches is still overridden by the user layer
	// (user first in the general order).
	nc := &Request{Op: OpConnect, Exe: "/usr/bin/nc", Dst: req.Dst}
	if v := e.Decide(nc); v.Rule != "deny-nc" {
		t.Fatalf("nc: %+v", v)
	}
	reopened, err := OpenUserRules(store)
	if err != nil {
		t.Fatal(err)
	}
	if l := reopened.List(); len(l) != 1 || l[0].Exe != exe || l[0].Action != Allow {
		t.Fatalf("persisted: %+v", l)
	}
	// Until restart: not persisted.
	exe2, _, _ := writeExe(t, dir, "app2", "app2")
	answer = Answer{Action: Deny, Remember: UntilRestart}
	r2 := &Request{Op: OpExec, Exe: exe2}
	e.Judge(context.Background(), r2)
	if v := e.Decide(r2); v.By != "user" || v.Action != Deny {
		t.Fatalf("until restart: %+v", v)
	}
	if l, _ := OpenUserRules(store); len(l.List()) != 1 {
		t.Fatalf("until-restart rule persisted: %+v", l.List())
	}
	// For a duration: expires.
	exe3, _, _ := writeExe(t, dir, "app3", "app3")
	answer = Answer{Action: Deny, Remember: For, Duration: time.Hour}
	r3 := &Request{Op: OpExec, Exe: exe3}
	e.Judge(context.Background(), r3)
	if _, ok := users.Lookup(r3, time.Now().Add(59*time.Minute)); !ok {
		t.Error("duration rule gone early")
	}
	if _, ok := users.Lookup(r3, time.Now().Add(61*time.Minute)); ok {
		t.Error("duration rule did not expire")
	}
	if l, _ := OpenUserRules(store); len(l.List()) != 2 {
		t.Fatalf("duration rule not persisted: %+v", l.List())
	}
	if len(recs) != 5 || recs[0].Action != Deny || recs[0].Version != "v9" || recs[0].Dst != "192.0.2.5:443" {
		t.Fatalf("records: %+v", recs)
	}
	js, _ := json.Marshal(recs[0])
	for _, k := range []string{`"action":"deny"`, `"pid":7`, `"point":"general"`, `"op":"connect"`, `"by":"decider"`, `"level":`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("record %s lacks %s", js, k)
		}
	}
	if err := users.Remove("1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := users.Lookup(req, time.Now()); ok {
		t.Error("removed rule still applies")
	}
}

func TestJudgeTimeoutAndDefaults(t *testing.T) {
	block := DeciderFunc(func(ctx context.Context, q Question) (Answer, error) {
		time.Sleep(5 * time.Second) // ignores ctx on purpose
		return Answer{Action: Allow}, nil
	})
	doc := `{"format":1,"version":"v","rules":[{"id":"x","action":"ask","match":{"exe":["/bin/ask"]}}]}`
	e := mustEngine(t, doc, WithDecider(block), WithAskTimeout(50*time.Millisecond), WithDefaultAction(Deny))
	start := time.Now()
	v := e.Judge(context.Background(), &Request{Op: OpExec, Exe: "/bin/ask"})
	if v.Action != Deny || v.By != "timeout" {
		t.Fatalf("timeout: %+v", v)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("judge waited for a decider ignoring its context")
	}
	// No decider: default action.
	e2 := mustEngine(t, doc, WithDefaultAction(Allow))
	if v := e2.Judge(context.Background(), &Request{Op: OpExec, Exe: "/bin/ask"}); v.Action != Allow || v.By != "default" {
		t.Fatalf("no decider: %+v", v)
	}
	// A decider answering nonsense: default.
	bad := DeciderFunc(func(ctx context.Context, q Question) (Answer, error) { return Answer{Action: Ask}, nil })
	e3 := mustEngine(t, doc, WithDecider(bad), WithDefaultAction(Deny))
	if v := e3.Judge(context.Background(), &Request{Op: OpExec, Exe: "/bin/ask"}); v.Action != Deny || v.By != "default" {
		t.Fatalf("bad answer: %+v", v)
	}
}

func TestFromEvent(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	r, err := FromEvent(&source.Event{Time: ts, Kind: source.KindExec, PID: 5, Exe: "/bin/ls", Argv: []string{"ls"}, UID: 3, HasUID: true, ParentExe: "/bin/sh"})
	if err != nil || r.Op != OpExec || r.Path != "/bin/ls" || r.UID != 3 || r.ParentExe != "/bin/sh" {
		t.Fatalf("exec: %v %+v", err, r)
	}
	r, err = FromEvent(&source.Event{Kind: source.KindConnect, PID: 5, Dst: netip.MustParseAddrPort("192.0.2.1:80"), Proto: source.ProtoTCP})
	if err != nil || r.Op != OpConnect || r.Dst.Port() != 80 {
		t.Fatalf("connect: %v %+v", err, r)
	}
	r, err = FromEvent(&source.Event{Kind: source.KindFile, PID: 5, Path: "/etc/cron.d/x", Op: "write"})
	if err != nil || r.Op != OpWrite || r.Path != "/etc/cron.d/x" {
		t.Fatalf("file: %v %+v", err, r)
	}
	for _, ev := range []source.Event{{Kind: source.KindExit, PID: 1}, {Kind: source.KindExec, PID: 1}, {Kind: source.KindConnect, PID: 1}, {Kind: source.KindFile, PID: 1}} {
		if _, err := FromEvent(&ev); err == nil {
			t.Errorf("%v event without its fields: no error", ev.Kind)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "", true}, {"*", "/a/b", true}, {"/tmp/*", "/tmp/a/b", true}, {"/tmp/*", "/tmpx", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*.log", "/var/x.log", true}, {"*.log", "/var/x.logs", false},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"", "", true}, {"", "a", false},
	} {
		if got := wildcard(c.p, c.s); got != c.ok {
			t.Errorf("wildcard(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	for in, want := range map[string]Answer{
		"a\n": {Action: Allow}, "d": {Action: Deny}, "A": {Action: Allow, Remember: Always},
		"D": {Action: Deny, Remember: Always}, "a restart": {Action: Allow, Remember: UntilRestart},
		"d 10m": {Action: Deny, Remember: For, Duration: 10 * time.Minute}, "allow always": {Action: Allow, Remember: Always},
	} {
		if got, err := ParseAnswer(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "a -1m", "a b c", "a soon"} {
		if _, err := ParseAnswer(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestTerminal(t *testing.T) {
	inR, inW, _ := os.Pipe()
	defer inW.Close()
	var out strings.Builder
	term := NewTerminal(inR, &syncWriter{b: &out})
	q := Question{Request: Request{Op: OpExec, Exe: "/tmp/x", PID: 3}, Verdict: Verdict{Action: Ask, Point: PointGeneral, Level: source.LevelHigh, Reasons: []string{"runs from /tmp"}}}
	go inW.WriteString("huh\nD\n")
	a, err := term.Decide(context.Background(), q)
	if err != nil || a.Action != Deny || a.Remember != Always {
		t.Fatalf("%+v %v", a, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := term.Decide(ctx, q); err == nil {
		t.Fatal("no timeout")
	}
	s := out.String()
	for _, want := range []string{"/tmp/x wants to execute /tmp/x", "risk: high (runs from /tmp)", "try again", "no answer in time"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	req := &Request{Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Op: OpConnect, PID: 9, Start: 77, Exe: "/bin/x", Dst: netip.MustParseAddrPort("[2001:db8::1]:443")}
	rec := NewRecord(req, Verdict{Action: Deny, Point: PointSelf, Rule: "r", By: "rule", Description: "why", Level: source.LevelHigh, Reasons: []string{"runs from /tmp"}}, "v7")
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ts":"2026-11-22T10:00:00Z","action":"deny","pid":9,"start":77,"exe":"/bin/x","point":"self_protection","op":"connect","dst":"[2001:db8::1]:443","rule":"r","by":"rule","reason":"why (risk: runs from /tmp)","level":"high","version":"v7"}`
	if string(data) != want {
		t.Fatalf("record\n%s\nwant\n%s", data, want)
	}
	var back Record
	if err := json.Unmarshal(data, &back); err != nil || back != rec {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, rec)
	}
}
