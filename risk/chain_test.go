package risk

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// multiStage: an attacker (203.0.113.66) gets a shell (231) in nginx
// (100) in window 0; in window 1 the shell runs curl (300), which fetches
// from 203.0.113.9 and exits; in window 2 a process outside the lineage
// (python3, 400) takes over 203.0.113.9. 500 is unrelated noise.
func multiStage() *replay.Builder {
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		At(warnT0.Add(5*time.Second)).Accept(100, "tcp", "192.0.2.10:80", "203.0.113.66:5555").
		Fork(231, 100).Exec(231, "/bin/sh", "sh", "-i").
		At(warnT0.Add(10*time.Second)).Risk(231, "high", "reverse shell").
		At(warnT0.Add(65*time.Second)).Fork(300, 231).Exec(300, "/usr/bin/curl", "curl").
		Connect(300, "tcp", "203.0.113.9:80").
		Fork(500, 1).Exec(500, "/usr/bin/dig").Connect(500, "udp", "192.0.2.53:53").
		At(warnT0.Add(90*time.Second)).Exit(300, 0).
		At(warnT0.Add(130*time.Second)).Fork(400, 1).Exec(400, "/usr/bin/python3", "python3").
		Connect(400, "tcp", "203.0.113.9:443")
	return b
}

func newChains(t testing.TB, g *Graph, mod func(*ChainConfig)) *Chains {
	t.Helper()
	cfg := DefaultChainConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewChains(g, cfg)
	if err != nil {
		t.Fatalf("NewChains: %v", err)
	}
	return c
}

func nodeNames(c Chain) []string {
	var out []string
	for _, n := range c.Nodes {
		name := n.Addr
		if n.Node == "process" {
			name = strings.TrimSpace(n.Name + " " + strconv.Itoa(n.PID))
		}
		out = append(out, n.Role+":"+name)
	}
	return out
}

func TestChainMultiStage(t *testing.T) {
	g := feedGraph(t, multiStage())
	c := newChains(t, g, nil)
	id, err := c.Flag(procNode(231), warnT0.Add(10*time.Second), "reverse shell")
	if err != nil || id != "chain-1" {
		t.Fatalf("Flag: %q %v", id, err)
	}
	// Flagging a node already in the chain returns the same chain.
	if id2, err := c.Flag(procNode(231), warnT0.Add(11*time.Second), "again"); err != nil || id2 != id {
		t.Errorf("second Flag: %q %v", id2, err)
	}
	recs := c.Window(warnT0.Add(5 * time.Minute))
	if len(recs) != 3 {
		for _, r := range recs {
			t.Logf("%d: %v", r.Window, nodeNames(r))
		}
		t.Fatalf("got %d records, want 3 (baseline, window 1, window 2)", len(recs))
	}
	base, w1, w2 := recs[0], recs[1], recs[2]
	if base.Window != 0 || base.Added != 0 || w1.Window != 1 || w2.Window != 2 {
		t.Errorf("windows %d/%d/%d added %d", base.Window, w1.Window, w2.Window, base.Added)
	}
	wantBase := []string{"origin:sh 231", "upstream:nginx 100", "upstream:1", "upstream:203.0.113.66"}
	if got := nodeNames(base); strings.Join(got, ",") != strings.Join(wantBase, ",") {
		t.Errorf("baseline nodes %v, want %v", got, wantBase)
	}
	if w1.Added != 2 {
		t.Errorf("window 1 added %d, want curl and 203.0.113.9: %v", w1.Added, nodeNames(w1))
	}
	want := append(wantBase, "downstream:curl 300", "downstream:203.0.113.9", "downstream:python3 400")
	if got := nodeNames(w2); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("final nodes %v, want %v", got, want)
	}
	byName := map[string]ChainNode{}
	for _, n := range w2.Nodes {
		byName[n.Name+n.Addr] = n
	}
	curl, addr, py := byName["curl"], byName["203.0.113.9"], byName["python3"]
	if curl.Hop != 1 || curl.From != "sh (231)" || curl.Evidence[0].Kind != "child" || curl.Confidence != 0.9 || curl.Window != 1 {
		t.Errorf("curl = %+v", curl)
	}
	if addr.Hop != 2 || addr.From != "curl (300)" || addr.Evidence[0].Kind != "connected" || addr.Confidence != 0.72 {
		t.Errorf("203.0.113.9 = %+v", addr)
	}
	if py.Hop != 3 || py.Evidence[0].Kind != "took_over" || py.Confidence != 0.504 || py.Window != 2 {
		t.Errorf("python3 = %+v", py)
	}
	if up := byName["203.0.113.66"]; up.Role != "upstream" || up.Evidence[0].Kind != "accepted_from" {
		t.Errorf("attacker address = %+v", up)
	}
	if w2.Path != "pid 1 → nginx (100) → sh (231) → curl (300) → 203.0.113.9 → python3 (400)" {
		t.Errorf("path = %q", w2.Path)
	}
	for _, n := range w2.Nodes {
		if n.PID == 500 {
			t.Errorf("unrelated process in the chain: %+v", n)
		}
	}
	// Nothing new: no more records; after IdleWindows the chain is dropped.
	if more := c.Window(warnT0.Add(10 * time.Minute)); len(more) != 0 {
		t.Errorf("records without growth: %+v", more)
	}
	if got := c.Tracked(); len(got) != 1 {
		t.Errorf("tracked %v", got)
	}
	c.Window(warnT0.Add(2 * time.Hour))
	if got := c.Tracked(); len(got) != 0 {
		t.Errorf("idle chain still tracked: %v", got)
	}
}

func TestChainSharedAndFanout(t *testing.T) {
	// While curl (300) is alive, 600 starts using its address: shared, a
	// weak link (0.72·0.35 = 0.252). A MinConfidence above it keeps 600
	// out; an address with too many users is not followed at all.
	b := replay.NewBuilder(warnT0)
	b.Fork(231, 1).Exec(231, "/bin/sh").
		At(warnT0.Add(65*time.Second)).Fork(300, 231).Exec(300, "/usr/bin/curl").Connect(300, "tcp", "203.0.113.9:80").
		At(warnT0.Add(130*time.Second)).Fork(600, 1).Exec(600, "/usr/bin/apt").Connect(600, "tcp", "203.0.113.9:80")
	g := feedGraph(t, b)

	c := newChains(t, g, nil)
	if _, err := c.Flag(procNode(231), warnT0.Add(time.Second), "shell"); err != nil {
		t.Fatal(err)
	}
	recs := c.Window(warnT0.Add(5 * time.Minute))
	last := recs[len(recs)-1]
	var apt *ChainNode
	for i, n := range last.Nodes {
		if n.PID == 600 {
			apt = &last.Nodes[i]
		}
	}
	if apt == nil || apt.Evidence[0].Kind != "shared_addr" || apt.Confidence != 0.252 {
		t.Fatalf("600 = %+v in %v", apt, nodeNames(last))
	}

	c = newChains(t, g, func(cc *ChainConfig) { cc.MinConfidence = 0.3 })
	if _, err := c.Flag(procNode(231), warnT0.Add(time.Second), "shell"); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Window(warnT0.Add(5 * time.Minute)) {
		for _, n := range r.Nodes {
			if n.PID == 600 {
				t.Errorf("weak link admitted under MinConfidence 0.3: %+v", n)
			}
		}
	}

	c = newChains(t, g, func(cc *ChainConfig) { cc.MaxAddrFanout = 1 })
	if _, err := c.Flag(procNode(231), warnT0.Add(time.Second), "shell"); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Window(warnT0.Add(5 * time.Minute)) {
		for _, n := range r.Nodes {
			if n.PID == 600 {
				t.Errorf("common address followed: %+v", n)
			}
		}
	}
}

func TestChainRiskBoostAndErrors(t *testing.T) {
	b := replay.NewBuilder(warnT0)
	b.Fork(231, 1).Exec(231, "/bin/sh").
		At(warnT0.Add(65*time.Second)).Fork(300, 231).Exec(300, "/tmp/x").Risk(300, "high", "miner")
	g := feedGraph(t, b)
	c := newChains(t, g, nil)
	if _, err := c.Flag(procNode(231), warnT0, "shell"); err != nil {
		t.Fatal(err)
	}
	recs := c.Window(warnT0.Add(2 * time.Minute))
	n := recs[len(recs)-1].Nodes
	x := n[len(n)-1]
	// 0.9 from the fork, boosted by the report: 1 − 0.1·0.5 = 0.95.
	if x.PID != 300 || x.Confidence != 0.95 || x.Evidence[1].Kind != "risk" {
		t.Errorf("boosted node = %+v", x)
	}

	if _, err := c.Flag(procNode(999), warnT0, "x"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown pid: %v", err)
	}
	if _, err := c.Flag(AddrNode(netip.MustParseAddr("203.0.113.77")), warnT0, "x"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown addr: %v", err)
	}
	if _, err := c.Flag(Node{}, warnT0, "x"); err == nil {
		t.Error("invalid node accepted")
	}
	c = newChains(t, g, func(cc *ChainConfig) { cc.MaxChains = 1 })
	if _, err := c.Flag(procNode(231), warnT0, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Flag(procNode(1), warnT0, "x"); err != nil {
		t.Errorf("a node already in the chain (upstream pid 1) is not a new chain: %v", err)
	}
	_ = g.Observe(source.Event{Time: warnT0.Add(3 * time.Minute), Kind: source.KindFork, PID: 700, PPID: 1})
	if _, err := c.Flag(procNode(700), warnT0, "x"); !errors.Is(err, ErrTooManyChains) {
		t.Errorf("over MaxChains: %v", err)
	}
	for name, mod := range map[string]func(*ChainConfig){
		"window":   func(cc *ChainConfig) { cc.Window = 0 },
		"weight":   func(cc *ChainConfig) { cc.ChildWeight = 2 },
		"lookback": func(cc *ChainConfig) { cc.Lookback = -1 },
		"nodes":    func(cc *ChainConfig) { cc.MaxNodes = 0 },
	} {
		cfg := DefaultChainConfig()
		mod(&cfg)
		if _, err := NewChains(g, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestChainAddrOrigin(t *testing.T) {
	// A flagged address: processes that start using it join downstream.
	b := replay.NewBuilder(warnT0)
	b.Fork(10, 1).Exec(10, "/usr/bin/curl").Connect(10, "tcp", "203.0.113.9:80").Exit(10, 0).
		At(warnT0.Add(70*time.Second)).Fork(11, 1).Exec(11, "/usr/bin/wget").Connect(11, "tcp", "203.0.113.9:80")
	g := feedGraph(t, b)
	c := newChains(t, g, nil)
	if _, err := c.Flag(AddrNode(netip.MustParseAddr("203.0.113.9")), warnT0.Add(time.Second), "blocked"); err != nil {
		t.Fatal(err)
	}
	recs := c.Window(warnT0.Add(3 * time.Minute))
	if len(recs) != 2 {
		t.Fatalf("records: %d", len(recs))
	}
	// Baseline: curl (10) used it in the baseline window; window 1: wget
	// (11) starts using it after curl exited: it took it over.
	got := nodeNames(recs[1])
	if strings.Join(got, ",") != "origin:203.0.113.9,downstream:curl 10,downstream:wget 11" {
		t.Errorf("nodes %v", got)
	}
	if ev := recs[1].Nodes[2].Evidence[0]; ev.Kind != "took_over" {
		t.Errorf("wget evidence %+v, want took_over", ev)
	}
}

func TestChainJSON(t *testing.T) {
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx").
		Fork(231, 100).Exec(231, "/bin/sh").
		At(warnT0.Add(61*time.Second)).Fork(300, 231).Exec(300, "/usr/bin/curl")
	g := feedGraph(t, b)
	c := newChains(t, g, func(cc *ChainConfig) { cc.UpstreamDepth = 1 })
	if _, err := c.Flag(procNode(231), warnT0.Add(2*time.Second), "reverse shell"); err != nil {
		t.Fatal(err)
	}
	recs := c.Window(warnT0.Add(2 * time.Minute))
	if len(recs) != 2 {
		t.Fatalf("records: %d", len(recs))
	}
	got, err := json.Marshal(&recs[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ts":"2026-11-22T10:02:00Z","action":"chain","chain":"chain-1","origin":"sh (231)","flagged":"2026-11-22T10:00:02Z",` +
		`"reason":"reverse shell","window":1,"window_start":"2026-11-22T10:01:00Z","window_end":"2026-11-22T10:02:00Z","added":1,` +
		`"path":"nginx (100) → sh (231) → curl (300)","nodes":[` +
		`{"node":"process","pid":231,"name":"sh","role":"origin","hop":0,"window":0,"confidence":1,"evidence":[{"kind":"flagged","ts":"2026-11-22T10:00:02Z","detail":"reverse shell"}]},` +
		`{"node":"process","pid":100,"name":"nginx","role":"upstream","hop":1,"from":"sh (231)","window":0,"confidence":0.8,"evidence":[{"kind":"ancestor","ts":"2026-11-22T10:00:00Z","from":"sh (231)","detail":"parent of sh (231)"}]},` +
		`{"node":"process","pid":300,"name":"curl","role":"downstream","hop":1,"from":"sh (231)","window":1,"confidence":0.9,"evidence":[{"kind":"child","ts":"2026-11-22T10:01:01Z","from":"sh (231)","detail":"forked by sh (231)"}]}]}`
	if string(got) != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	var r recordIface = &recs[1]
	if r.RecordAction() != "chain" {
		t.Errorf("RecordAction = %q", r.RecordAction())
	}
}
