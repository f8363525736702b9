package provenance

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// seedEvents reads seed 002's records (testdata/seed002.jsonl) into
// events, mapping the fields the way spec/events.md maps Sysmon's.
func seedEvents(t testing.TB, file string) []source.Event {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []source.Event
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r struct {
			EventNum          int             `json:"eventnum"`
			NodeID            string          `json:"nodeid"`
			ProcessID         int             `json:"processid"`
			ParentProcessID   int             `json:"parentprocessid"`
			Image             string          `json:"image"`
			CommandLine       string          `json:"commandline"`
			ParentImage       string          `json:"parentimage"`
			ParentCommandLine string          `json:"parentcommandline"`
			CurrentDirectory  string          `json:"currentdirectory"`
			UTCTime           string          `json:"utctime"`
			QueryName         string          `json:"queryname"`
			QueryResults      string          `json:"queryresults"`
			DestinationIP     string          `json:"destinationip"`
			DestinationPort   json.RawMessage `json:"destinationport"`
			TargetFilename    string          `json:"targetfilename"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		ts, err := time.Parse("2006-01-02 15:04:05.000", r.UTCTime)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, line, err)
		}
		e := source.Event{Time: ts, PID: r.ProcessID, GUID: r.NodeID, Origin: file + ":" + strconv.Itoa(line)}
		switch r.EventNum {
		case 1:
			e.Kind = source.KindExec
			e.PPID, e.Exe, e.Argv, e.Cwd = r.ParentProcessID, r.Image, splitCmd(r.CommandLine), r.CurrentDirectory
			e.ParentExe, e.ParentArgv = r.ParentImage, splitCmd(r.ParentCommandLine)
		case 3:
			e.Kind = source.KindConnect
			port, _ := strconv.Atoi(strings.Trim(string(r.DestinationPort), `"`))
			e.Dst = netip.AddrPortFrom(netip.MustParseAddr(r.DestinationIP), uint16(port))
			e.Proto = source.ProtoTCP
		case 11:
			e.Kind, e.Path, e.Op = source.KindFile, r.TargetFilename, "create"
		case 22:
			e.Kind, e.Query = source.KindDNS, r.QueryName
			for a := range strings.SplitSeq(r.QueryResults, ";") {
				if ip, err := netip.ParseAddr(strings.TrimSpace(a)); err == nil {
					e.Answers = append(e.Answers, ip)
				}
			}
		default:
			t.Fatalf("%s:%d: unexpected eventnum %d", file, line, r.EventNum)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func splitCmd(s string) []string {
	if s == "" {
		return nil
	}
	cmds, err := ParseShell(s)
	if err == nil && len(cmds) == 1 && len(cmds[0].Redirs) == 0 {
		return cmds[0].Args
	}
	return strings.Fields(s)
}

func seedGraph(t *testing.T) (*Tree, *Graph) {
	t.Helper()
	tr := NewTree()
	for _, e := range seedEvents(t, "testdata/seed002.jsonl") {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := LoadRules("testdata/seed002-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := tr.Simplify("n5", Options{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return tr, g
}

func edgeBetween(g *Graph, from, to *Node, kind EdgeKind) *Edge {
	for i := range g.Edges {
		e := &g.Edges[i]
		if e.From == from.ID && e.To == to.ID && e.Kind == kind {
			return e
		}
	}
	return nil
}

func mustFind(t *testing.T, g *Graph, typ NodeType, name string) *Node {
	t.Helper()
	n, ok := g.Find(typ, name)
	if !ok {
		t.Fatalf("no %v node %q in graph", typ, name)
	}
	return n
}

// TestSeedExample reproduces seed 002's example: a download-and-run chain
// where "mv a.sh.txt a.sh" and "id -u" are dropped (with the shells bash
// and su), resources are split out of the command lines, and the same file
// and the same domain end up as one node each.
func TestSeedExample(t *testing.T) {
	tr, g := seedGraph(t)
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Log(g)
	for _, n := range g.Nodes {
		t.Logf("%s %-7v %q", n.ID, n.Type, n.Name)
	}
	for _, e := range g.Edges {
		t.Logf("%s -%s-> %s %v x%d", e.From, e.Kind, e.To, e.Ports, e.Count)
	}
	// Step 1: only ancestors and descendants of the alert.
	if got, want := g.Stats.TreeProcesses, tr.Len(); got != want {
		t.Errorf("tree processes %d, want %d", got, want)
	}
	if g.Stats.Ancestors != 5 || g.Stats.Descendants != 7 {
		t.Errorf("ancestors %d descendants %d, want 5 and 7", g.Stats.Ancestors, g.Stats.Descendants)
	}
	procs := map[string]int{}
	for _, n := range g.Nodes {
		if n.Type == TypeProcess {
			procs[n.Name]++
		}
	}
	// Step 2: bash, su, mv and id are dropped; the alert (sh) stays.
	want := map[string]int{"systemd": 1, "sshd": 1, "dash": 1, "wget": 1, "chmod": 1, "curl": 1, "nc.traditional": 1}
	if len(procs) != len(want) {
		t.Errorf("process nodes %v, want %v", procs, want)
	}
	for k, v := range want {
		if procs[k] != v {
			t.Errorf("process nodes %v, want %v", procs, want)
			break
		}
	}
	if g.Stats.Dropped != 6 {
		t.Errorf("dropped %d, want 6 (bash, su, bash, mv, bash ./a.sh, id)", g.Stats.Dropped)
	}
	for _, unrelated := range []string{"ls", "cron", "vim.basic"} {
		if procs[unrelated] > 0 {
			t.Errorf("unrelated process %s kept", unrelated)
		}
	}
	if _, ok := g.Find(TypeDomain, "updates.example.org"); ok {
		t.Error("unrelated domain updates.example.org in graph")
	}
	alert, _ := g.Node(g.Alert)
	if alert.Name != "dash" || alert.Role != RoleAlert {
		t.Errorf("alert node %+v", alert)
	}
	wget := mustFind(t, g, TypeProcess, "wget")
	curl := mustFind(t, g, TypeProcess, "curl")
	nc := mustFind(t, g, TypeProcess, "nc.traditional")
	sshd := mustFind(t, g, TypeProcess, "sshd")
	// Re-linking: sshd spawned the alert (bash, su, bash dropped); the
	// alert spawned curl and nc (bash ./a.sh dropped).
	for _, c := range []struct{ a, b *Node }{{sshd, alert}, {alert, wget}, {alert, curl}, {alert, nc}} {
		if edgeBetween(g, c.a, c.b, EdgeSpawned) == nil {
			t.Errorf("no spawned edge %s -> %s", c.a.Name, c.b.Name)
		}
	}
	// Steps 3 and 4: one node per file, domain and address.
	txt := mustFind(t, g, TypeFile, "/tmp/a.sh.txt")
	sh := mustFind(t, g, TypeFile, "/tmp/a.sh")
	dom := mustFind(t, g, TypeDomain, "dl.evil.example")
	addr := mustFind(t, g, TypeAddress, "203.0.113.10")
	u1 := mustFind(t, g, TypeURL, "http://dl.evil.example/a.sh.txt")
	u2 := mustFind(t, g, TypeURL, "http://dl.evil.example/b.sh")
	b := mustFind(t, g, TypeFile, "/tmp/.b.sh")
	count := map[resKey]int{}
	for _, n := range g.Nodes {
		count[resKey{n.Type, n.Name}]++
	}
	for k, c := range count {
		if k.t != TypeProcess && c != 1 {
			t.Errorf("%v %q has %d nodes", k.t, k.name, c)
		}
	}
	checks := []struct {
		from, to *Node
		kind     EdgeKind
	}{
		{wget, u1, EdgeFetched},
		{wget, txt, EdgeDownloaded},
		{wget, txt, EdgeWrote}, // the file-creation event
		{wget, dom, EdgeResolved},
		{wget, addr, EdgeConnected},
		{alert, txt, EdgeDownloaded}, // from the alert's own sh -c line
		{alert, sh, EdgeExecuted},    // ./a.sh, and the dropped bash ./a.sh hoisted
		{alert, sh, EdgeWrote},       // mv a.sh.txt a.sh hoisted from the dropped mv
		{curl, u2, EdgeFetched},
		{curl, b, EdgeDownloaded},
		{curl, dom, EdgeResolved},
		{nc, addr, EdgeConnected},
		{u1, dom, EdgeHost},
		{u2, dom, EdgeHost},
		{dom, addr, EdgeResolvesTo},
	}
	for _, c := range checks {
		if edgeBetween(g, c.from, c.to, c.kind) == nil {
			t.Errorf("no %v edge %s -> %s", c.kind, c.from.Name, c.to.Name)
		}
	}
	if e := edgeBetween(g, nc, addr, EdgeConnected); e != nil && (len(e.Ports) != 1 || e.Ports[0] != 4444) {
		t.Errorf("nc connected ports %v, want [4444]", e.Ports)
	}
	// The domain node is shared by both downloads and both DNS lookups.
	in := 0
	for _, e := range g.Edges {
		if e.To == dom.ID {
			in++
		}
	}
	if in < 4 {
		t.Errorf("domain node has %d incoming edges, want >= 4 (two URLs, two lookups)", in)
	}
	checkPreservation(t, tr, g, "n5", Options{Rules: g.Rules})
}

// TestSeedDefaultRules: with the default rules only bash and su go.
func TestSeedDefaultRules(t *testing.T) {
	tr := NewTree()
	for _, e := range seedEvents(t, "testdata/seed002.jsonl") {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	g, err := tr.Simplify("n5", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Stats.Dropped != 4 {
		t.Errorf("dropped %d, want 4 (bash, su, bash, bash ./a.sh)", g.Stats.Dropped)
	}
	mustFind(t, g, TypeProcess, "mv")
	mustFind(t, g, TypeProcess, "id")
	checkPreservation(t, tr, g, "n5", Options{})
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
