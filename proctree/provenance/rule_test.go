package provenance

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// otherHost rewrites the seed's events as if they came from another host:
// other pids and GUIDs, another time, and the whole attack moved under a
// different parent chain.
func otherHost(evs []source.Event, pidOff int) []source.Event {
	out := make([]source.Event, 0, len(evs))
	for _, e := range evs {
		e.Time = e.Time.Add(48 * time.Hour)
		if e.PID > 1 {
			e.PID += pidOff
		}
		if e.PPID > 1 {
			e.PPID += pidOff
		}
		if e.GUID != "" {
			e.GUID = "h2-" + e.GUID
		}
		out = append(out, e)
	}
	return out
}

func TestDeriveRuleAndMatch(t *testing.T) {
	_, g := seedGraph(t)
	r, err := DeriveRule(g, "seed002-download-and-run")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", data)
	r2, err := ParseFeatureRule(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Feature{
		{Kind: EdgeExecuted, Type: TypeFile, Value: "a.sh", Process: "dash"},
		{Kind: EdgeDownloaded, Type: TypeFile, Value: "a.sh.txt"},
		{Kind: EdgeResolved, Type: TypeDomain, Value: "dl.evil.example"},
		{Kind: EdgeConnected, Type: TypeAddress, Value: "203.0.113.10", Port: 4444, Process: "nc.traditional"},
		{Kind: EdgeDownloaded, Type: TypeFile, Value: ".b.sh", Process: "curl"},
	}
	for _, w := range want {
		found := false
		for _, f := range r2.Features {
			if f == w {
				found = true
			}
		}
		if !found {
			t.Errorf("feature %+v missing", w)
		}
	}
	seed := seedEvents(t, "testdata/seed002.jsonl")

	// The same attack on another host raises exactly one alert.
	m, err := NewMatcher(r2)
	if err != nil {
		t.Fatal(err)
	}
	var matches []Match
	for _, e := range otherHost(seed, 5000) {
		ms, err := m.Observe(e)
		if err != nil {
			t.Fatal(err)
		}
		matches = append(matches, ms...)
	}
	if len(matches) != 1 {
		t.Fatalf("%d matches, want 1: %+v", len(matches), matches)
	}
	mt := matches[0]
	if mt.Rule != r2.Name || len(mt.Features) != len(r2.Features) || mt.Anchor.GUID != "h2-n5" {
		t.Errorf("match %+v: want anchor h2-n5 (the alert's counterpart) with all features", mt)
	}
	if mt.Process.GUID != "h2-n12" {
		t.Errorf("completed by %q, want the nc process h2-n12", mt.Process.GUID)
	}

	// A host doing part of it (the download, no reverse shell) and the
	// seed's unrelated activity raise nothing.
	m, _ = NewMatcher(r2)
	for _, e := range otherHost(seed, 9000) {
		if e.Exe == "/usr/bin/nc.traditional" || e.Dst.Port() == 4444 {
			continue
		}
		if ms, _ := m.Observe(e); len(ms) > 0 {
			t.Fatalf("partial attack matched: %+v", ms)
		}
	}
	// Each feature half of the attack in separate lineages: no match.
	m, _ = NewMatcher(r2)
	for i, e := range otherHost(seed, 12000) {
		if e.Exe == "/usr/bin/nc.traditional" {
			e.PPID = 1 // the reverse shell in another lineage
		}
		if ms, _ := m.Observe(e); len(ms) > 0 {
			t.Fatalf("event %d: split lineages matched: %+v", i, ms)
		}
	}
	// With MinMatch lowered, the partial attack matches.
	r3 := *r2
	r3.MinMatch = len(r3.Features) - 1
	m, _ = NewMatcher(&r3)
	n := 0
	for _, e := range otherHost(seed, 9000) {
		if e.Exe == "/usr/bin/nc.traditional" || e.Dst.Port() == 4444 {
			continue
		}
		ms, _ := m.Observe(e)
		n += len(ms)
	}
	if n != 1 {
		t.Errorf("min_match %d: %d matches, want 1", r3.MinMatch, n)
	}
}

func TestFeatureRuleValidate(t *testing.T) {
	good := `{"schema":"` + RuleSchema + `","name":"x","level":"high","within":2,"min_match":1,"features":[{"kind":"connected","type":"address","value":"203.0.113.0/24"}]}`
	r, err := ParseFeatureRule([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMatcher(r)
	ms, err := m.Observe(source.Event{Time: time.Unix(1, 0), Kind: source.KindConnect, PID: 7, Dst: mustAddrPort("203.0.113.77:443")})
	if err != nil || len(ms) != 1 {
		t.Errorf("prefix feature: %v %+v", err, ms)
	}
	bad := map[string]string{
		"schema":    strings.Replace(good, RuleSchema, "v0", 1),
		"kind":      strings.Replace(good, `"connected"`, `"teleported"`, 1),
		"type":      strings.Replace(good, `"type":"address"`, `"type":"process"`, 1),
		"prefix":    strings.Replace(good, "203.0.113.0/24", "203.0.113.0/99", 1),
		"min_match": strings.Replace(good, `"min_match":1`, `"min_match":5`, 1),
		"json":      good[:20],
		"rules":     strings.Replace(good, `"features"`, `"simplify":[{"image":"["}],"features"`, 1),
	}
	for name, s := range bad {
		if _, err := ParseFeatureRule([]byte(s)); !errors.Is(err, ErrBadRule) {
			t.Errorf("%s: error %v, want ErrBadRule", name, err)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{{"*.evil.example", "dl.evil.example", true}, {"a?c", "abc", true}, {"a*", "b", false}, {"*", "", true},
		{"http://*/x.sh", "http://h/p/x.sh", true}, {"a*b*c", "aXbYbZc", true}, {"a*b", "ab/c", false}} {
		if wildcard(c.p, c.s) != c.ok {
			t.Errorf("wildcard(%q, %q) != %v", c.p, c.s, c.ok)
		}
	}
}

func TestRulesParse(t *testing.T) {
	if _, err := ParseRules([]byte(`[{"image":"bash"},{"commandline":"^id "}]`)); err != nil {
		t.Error(err)
	}
	for _, s := range []string{`{"drop":[{}]}`, `{"drop":[{"image":"["}]}`, `{"drop":[{"commandline":"("}]}`,
		`{"drop":[{"image":"x","resources":"keep"}]}`, `{"dorp":[]}`, `nope`} {
		if _, err := ParseRules([]byte(s)); !errors.Is(err, ErrBadRule) {
			t.Errorf("ParseRules(%s): %v, want ErrBadRule", s, err)
		}
	}
}

func TestTreeIdentity(t *testing.T) {
	tr := NewTree()
	ts := time.Unix(100, 0)
	add := func(e source.Event) {
		t.Helper()
		e.Time = ts
		ts = ts.Add(time.Second)
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	add(source.Event{Kind: source.KindFork, PID: 10, PPID: 1})
	add(source.Event{Kind: source.KindExec, PID: 10, Exe: "/usr/bin/a", Argv: []string{"a"}})
	add(source.Event{Kind: source.KindExit, PID: 10})
	add(source.Event{Kind: source.KindFork, PID: 10, PPID: 1}) // reused pid
	add(source.Event{Kind: source.KindExec, PID: 10, Exe: "/usr/bin/b", Argv: []string{"b"}})
	add(source.Event{Kind: source.KindExec, PID: 11, PPID: 10, Start: 5, Exe: "/usr/bin/c"})
	add(source.Event{Kind: source.KindExec, PID: 11, PPID: 10, Start: 6, Exe: "/usr/bin/d"})
	if tr.Len() != 5 {
		t.Fatalf("%d processes, want 5 (init placeholder, a, b, c, d)", tr.Len())
	}
	p, err := tr.Resolve("10")
	if err != nil || p.Exe != "/usr/bin/b" {
		t.Errorf("Resolve(10) = %+v %v, want the most recent (b)", p, err)
	}
	p, err = tr.Resolve("11@5")
	if err != nil || p.Exe != "/usr/bin/c" || p.PPID != 10 {
		t.Errorf("Resolve(11@5) = %+v %v", p, err)
	}
	if _, err := tr.Resolve("12"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(12): %v, want ErrNotFound", err)
	}
	g, err := tr.Simplify("11@6", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Stats.Ancestors != 2 || g.Process.Exe != "/usr/bin/d" {
		t.Errorf("graph of 11@6: %v", g)
	}
	if err := tr.Add(source.Event{Kind: source.KindExec, PID: 0, Time: ts}); !errors.Is(err, ErrBadEvent) {
		t.Errorf("bad event: %v", err)
	}
	if err := tr.Add(source.Event{Kind: source.KindFork, PID: 3, PPID: 3, Time: ts, Origin: "x.jsonl:7"}); !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), "x.jsonl:7") {
		t.Errorf("bad event: %v (want ErrBadEvent naming x.jsonl:7)", err)
	}
	// The live-tree seam.
	lt := NewTree()
	for i, name := range []string{"init", "sshd", "bash", "curl"} {
		if err := lt.AddProcess(Process{ProcessInfo: ProcessInfo{PID: i + 1, PPID: i, Exe: "/usr/bin/" + name, Argv: []string{name}}}); err != nil {
			t.Fatal(err)
		}
	}
	g, err = lt.Simplify(strconv.Itoa(4), Options{})
	if err != nil || g.Stats.Ancestors != 3 || g.Stats.Dropped != 1 {
		t.Errorf("AddProcess tree: %v %v", g, err)
	}
}
