package provenance

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/privtest"
	"github.com/procwall/procwall/source"
)

func TestRenderJSONDOTMermaid(t *testing.T) {
	_, g := seedGraph(t)
	var buf bytes.Buffer
	if err := g.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Error("JSON output is not one line")
	}
	var back Graph
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Nodes) != len(g.Nodes) || len(back.Edges) != len(g.Edges) || back.Alert != g.Alert || back.Nodes[3].Type != g.Nodes[3].Type {
		t.Error("JSON round trip lost data")
	}
	if err := back.Validate(); err != nil {
		t.Error(err)
	}

	buf.Reset()
	if err := g.WriteDOT(&buf); err != nil {
		t.Fatal(err)
	}
	dot := buf.String()
	if !strings.HasPrefix(dot, "digraph provenance {") || !strings.HasSuffix(dot, "}\n") {
		t.Errorf("DOT framing: %q", dot[:40])
	}
	if got := strings.Count(dot, " -> "); got != len(g.Edges) {
		t.Errorf("DOT has %d edges, want %d", got, len(g.Edges))
	}
	// The alert's command line holds double quotes: escaped.
	if !strings.Contains(dot, `sh -c cd /tmp`) || strings.Contains(dot, `""`) {
		t.Errorf("DOT labels badly quoted")
	}
	for _, name := range []string{"dl.evil.example", "/tmp/a.sh", "203.0.113.10"} {
		if !strings.Contains(dot, name) {
			t.Errorf("DOT lacks %s", name)
		}
	}

	buf.Reset()
	if err := g.WriteMermaid(&buf); err != nil {
		t.Fatal(err)
	}
	mm := buf.String()
	if !strings.HasPrefix(mm, "flowchart LR\n") || strings.Count(mm, "-->")+strings.Count(mm, "-.->") != len(g.Edges) {
		t.Errorf("mermaid output:\n%s", mm)
	}
	if !strings.Contains(mm, "class "+g.Alert+" alert") {
		t.Error("mermaid does not mark the alert")
	}
	for _, line := range strings.Split(mm, "\n") {
		if strings.Count(line, `"`)%2 != 0 {
			t.Errorf("unbalanced quotes in mermaid line %q", line)
		}
	}

	// A broken graph is refused, not rendered.
	bad := *g
	bad.Edges = append([]Edge{{From: "n0", To: "n999", Kind: EdgeSpawned}}, g.Edges...)
	for _, w := range []func(*Graph) error{
		func(g *Graph) error { return g.WriteJSON(&buf) }, func(g *Graph) error { return g.WriteDOT(&buf) },
		func(g *Graph) error { return g.WriteMermaid(&buf) }, func(g *Graph) error { return g.WriteHTML(&buf) },
	} {
		if err := w(&bad); err == nil {
			t.Error("broken graph rendered")
		}
	}
}

func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, "chromium", append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestHTMLInChromium opens the page in headless Chromium: the script must
// have drawn every node (its label as SVG text) and the screenshot must
// show a drawing.
func TestHTMLInChromium(t *testing.T) {
	privtest.Require(t, privtest.Command("chromium"))
	_, g := seedGraph(t)
	page := filepath.Join(t.TempDir(), "graph.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// One run both dumps the DOM after the scripts ran and takes a
	// screenshot.
	shot := filepath.Join(t.TempDir(), "shot.png")
	dom := string(chromium(t, "--screenshot="+shot, "--window-size=1400,1000", "--hide-scrollbars", "--dump-dom", "file://"+page))
	if !strings.Contains(dom, `data-rendered="14"`) {
		t.Fatalf("page not rendered by its script (no data-rendered=14):\n%.2000s", dom)
	}
	for _, n := range g.Nodes {
		// Rendered node groups carry the name; their first text line is
		// the (possibly shortened) label.
		if !strings.Contains(dom, `id="node-`+n.ID+`"`) {
			t.Errorf("node %s (%s) not drawn", n.ID, n.Name)
		}
	}
	for _, label := range []string{">dl.evil.example</text>", ">/tmp/a.sh</text>", ">/tmp/a.sh.txt</text>", ">203.0.113.10</text>",
		">wget [741]</text>", ">curl [746]</text>", ">http://dl.evil.example/b.sh</text>"} {
		if !strings.Contains(dom, label) {
			t.Errorf("rendered DOM lacks %q", label)
		}
	}
	if got := len(regexp.MustCompile(`<g class="edge( res)?" data-kind=`).FindAllString(dom, -1)); got != len(g.Edges) {
		t.Errorf("%d edges drawn, want %d", got, len(g.Edges))
	}
	if !strings.Contains(dom, `class="node process alert"`) {
		t.Error("alert node not marked")
	}

	pf, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colors := map[[3]uint32]bool{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 240 || g>>8 < 240 || bl>>8 < 240 {
				nonWhite++
			}
		}
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	t.Logf("screenshot %dx%d, %d colours, %.1f%% non-white", b.Dx(), b.Dy(), len(colors), 100*float64(nonWhite)/float64(total))
	if b.Dx() < 1000 || len(colors) < 8 || nonWhite*100 < total*3 {
		t.Errorf("screenshot looks empty: %dx%d, %d colours, %d/%d non-white samples", b.Dx(), b.Dy(), len(colors), nonWhite, total)
	}
}

// TestRenderHostileLabels: command lines are attacker-controlled; no
// output format lets them break out of their quoting.
func TestRenderHostileLabels(t *testing.T) {
	tr := NewTree()
	evil := "</script><img src=x onerror=alert(1)>\"]; n0 -> n1 [label=\"x\n|x| class"
	for _, e := range []source.Event{
		{Time: time.Unix(1, 0), Kind: source.KindExec, PID: 5, PPID: 1, Exe: "/tmp/a\"b", Argv: []string{"x", evil}},
		{Time: time.Unix(2, 0), Kind: source.KindFile, PID: 5, Path: "/tmp/" + evil, Op: "create"},
	} {
		if err := tr.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	g, err := tr.Simplify("5", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := g.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<img") || strings.Count(buf.String(), "</script>") != 2 {
		t.Error("label escaped its <script> element")
	}
	buf.Reset()
	g.WriteDOT(&buf)
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, "label=") && strings.Count(strings.ReplaceAll(line, `\"`, ""), `"`)%2 != 0 {
			t.Errorf("DOT line with unbalanced quotes: %s", line)
		}
	}
	// Every line is a statement of its own: a node, or an edge.
	stmt := regexp.MustCompile(`^  n\d+ (-> n\d+ )?\[label="(\\.|[^"\\])*"[^"]*("[^"]*"[^"]*)*\];$`)
	edges := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, "  n") || strings.HasPrefix(line, "  node [") {
			continue
		}
		if !stmt.MatchString(line) {
			t.Errorf("DOT statement malformed: %s", line)
		}
		if strings.HasPrefix(line[strings.IndexByte(line[2:], ' ')+3:], "-> ") {
			edges++
		}
	}
	if edges != len(g.Edges) {
		t.Errorf("DOT has %d edge statements, want %d", edges, len(g.Edges))
	}
	buf.Reset()
	g.WriteMermaid(&buf)
	if strings.Contains(buf.String(), "</script>") || strings.Count(buf.String(), "-->")+strings.Count(buf.String(), "-.->") != len(g.Edges) {
		t.Errorf("mermaid output injected:\n%s", buf.String())
	}
}
