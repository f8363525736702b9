package provenance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// Label returns the text shown for a node: for a process its name, pid
// and (shortened) command line; for a resource its name.
func (n *Node) Label() string {
	if n.Type != TypeProcess {
		return n.Name
	}
	var b strings.Builder
	b.WriteString(n.Name)
	if len(n.Processes) > 0 {
		p := n.Processes[0]
		b.WriteString(" [")
		b.WriteString(strconv.Itoa(p.PID))
		if n.Count > 1 {
			fmt.Fprintf(&b, " +%d", n.Count-1)
		}
		b.WriteString("]")
		if cl := strings.Join(p.Argv, " "); cl != "" {
			if len(cl) > 60 {
				cl = cl[:57] + "..."
			}
			b.WriteString("\n")
			b.WriteString(cl)
		}
	}
	return b.String()
}

func (e *Edge) label() string {
	s := e.Kind.String()
	if len(e.Ports) > 0 {
		ps := make([]string, len(e.Ports))
		for i, p := range e.Ports {
			ps[i] = strconv.Itoa(p)
		}
		s += " :" + strings.Join(ps, ",")
	}
	if e.Count > 1 {
		s += " ×" + strconv.Itoa(e.Count)
	}
	return s
}

// WriteJSON writes the graph as one JSON object and a newline.
func (g *Graph) WriteJSON(w io.Writer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(g); err != nil {
		return &OpError{Op: "write json", Err: err}
	}
	return nil
}

func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r', '\t':
			b.WriteByte(' ')
		default:
			if r < 0x20 {
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var dotShapes = [numTypes]string{
	TypeProcess: `shape=box, style="rounded,filled", fillcolor="#dbe9f6"`,
	TypeFile:    `shape=note, style=filled, fillcolor="#fff3c4"`,
	TypeURL:     `shape=cds, style=filled, fillcolor="#e3f1d8"`,
	TypeDomain:  `shape=ellipse, style=filled, fillcolor="#d8f1ec"`,
	TypeAddress: `shape=hexagon, style=filled, fillcolor="#f3dcef"`,
}

// WriteDOT writes the graph in Graphviz DOT.
func (g *Graph) WriteDOT(w io.Writer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph provenance {\n  rankdir=LR;\n  label=%s;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
		dotQuote("provenance of alert "+g.AlertID))
	for i := range g.Nodes {
		n := &g.Nodes[i]
		attrs := dotShapes[n.Type%numTypes]
		if n.Role == RoleAlert {
			attrs = `shape=box, style="rounded,filled,bold", fillcolor="#f4a6a6", penwidth=2`
		}
		fmt.Fprintf(bw, "  %s [label=%s, %s];\n", n.ID, dotQuote(n.Label()), attrs)
	}
	for i := range g.Edges {
		e := &g.Edges[i]
		style := ""
		if e.Kind != EdgeSpawned {
			style = ", style=dashed"
		}
		fmt.Fprintf(bw, "  %s -> %s [label=%s%s];\n", e.From, e.To, dotQuote(e.label()), style)
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return &OpError{Op: "write dot", Err: err}
	}
	return nil
}

// mermaidText escapes a label for a quoted Mermaid label.
func mermaidText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString("#quot;")
		case '<':
			b.WriteString("#lt;")
		case '>':
			b.WriteString("#gt;")
		case '#':
			b.WriteString("#35;")
		case '\n':
			b.WriteString("<br/>")
		case '\r', '\t':
			b.WriteByte(' ')
		default:
			if r < 0x20 {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// WriteMermaid writes the graph as a Mermaid flowchart.
func (g *Graph) WriteMermaid(w io.Writer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("flowchart LR\n")
	for i := range g.Nodes {
		n := &g.Nodes[i]
		l := `"` + mermaidText(n.Label()) + `"`
		switch n.Type {
		case TypeProcess:
			fmt.Fprintf(bw, "  %s[%s]\n", n.ID, l)
		case TypeFile:
			fmt.Fprintf(bw, "  %s[/%s/]\n", n.ID, l)
		case TypeURL:
			fmt.Fprintf(bw, "  %s>%s]\n", n.ID, l)
		case TypeDomain:
			fmt.Fprintf(bw, "  %s([%s])\n", n.ID, l)
		default:
			fmt.Fprintf(bw, "  %s{{%s}}\n", n.ID, l)
		}
	}
	for i := range g.Edges {
		e := &g.Edges[i]
		arrow := "-->"
		if e.Kind != EdgeSpawned {
			arrow = "-.->"
		}
		fmt.Fprintf(bw, "  %s %s|%s| %s\n", e.From, arrow, `"`+mermaidText(e.label())+`"`, e.To)
	}
	bw.WriteString("  classDef alert fill:#f4a6a6,stroke:#a00,stroke-width:2px\n")
	bw.WriteString("  classDef process fill:#dbe9f6\n  classDef file fill:#fff3c4\n  classDef url fill:#e3f1d8\n  classDef domain fill:#d8f1ec\n  classDef address fill:#f3dcef\n")
	for i := range g.Nodes {
		n := &g.Nodes[i]
		c := n.Type.String()
		if n.Role == RoleAlert {
			c = "alert"
		}
		fmt.Fprintf(bw, "  class %s %s\n", n.ID, c)
	}
	if err := bw.Flush(); err != nil {
		return &OpError{Op: "write mermaid", Err: err}
	}
	return nil
}

// WriteHTML writes a self-contained HTML page that draws the graph as SVG
// with inline JavaScript: no network access is needed to open it. The
// graph's JSON is embedded in the page; the script lays the nodes out in
// columns (processes by generation, each resource one column right of the
// first process that names it) and renders every node label as SVG text.
func (g *Graph) WriteHTML(w io.Writer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(g) // escapes <, > and & so the JSON is safe inside <script>
	if err != nil {
		return &OpError{Op: "write html", Err: err}
	}
	err = htmlPage.Execute(w, struct {
		Title string
		Data  template.JS
	}{Title: "provenance of alert " + g.AlertID, Data: template.JS(data)})
	if err != nil {
		return &OpError{Op: "write html", Err: err}
	}
	return nil
}

var htmlPage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font: 13px Helvetica, Arial, sans-serif; margin: 0; background: #fafafa; color: #222; }
header { padding: 8px 14px; background: #2d3e50; color: #fff; }
header h1 { font-size: 16px; margin: 0 0 2px 0; }
#stats { font-size: 12px; opacity: .85; }
#graph { overflow: auto; }
.legend span { display: inline-block; margin-right: 10px; padding: 1px 6px; border-radius: 3px; color: #222; }
svg text { font: 11px Helvetica, Arial, sans-serif; }
.node rect, .node ellipse, .node polygon { stroke: #555; stroke-width: 1; }
.node.alert rect { stroke: #a00; stroke-width: 3; }
.edge path { fill: none; stroke: #777; stroke-width: 1.2; }
.edge.res path { stroke-dasharray: 4 3; }
.edge text { fill: #555; font-size: 10px; }
#detail { position: fixed; right: 10px; bottom: 10px; max-width: 480px; background: #fff; border: 1px solid #bbb; padding: 6px 10px; font-size: 12px; white-space: pre-wrap; display: none; }
</style>
</head>
<body>
<header><h1>{{.Title}}</h1><div id="stats"></div>
<div class="legend"><span style="background:#f4a6a6">alert</span><span style="background:#dbe9f6">process</span><span style="background:#fff3c4">file</span><span style="background:#e3f1d8">url</span><span style="background:#d8f1ec">domain</span><span style="background:#f3dcef">address</span></div>
</header>
<div id="graph"></div>
<div id="detail"></div>
<script id="graph-data" type="application/json">{{.Data}}</script>
<script>
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var g = JSON.parse(document.getElementById("graph-data").textContent);
  var colors = {process: "#dbe9f6", file: "#fff3c4", url: "#e3f1d8", domain: "#d8f1ec", address: "#f3dcef"};
  var byId = {}, col = {}, preds = {};
  g.nodes.forEach(function (n) { byId[n.id] = n; preds[n.id] = []; });
  g.edges.forEach(function (e) { if (preds[e.to]) preds[e.to].push(e.from); });
  // Columns: processes by generation along spawned edges (dropped
  // processes leave no gap); resources one column right of their first
  // predecessor; empty columns removed.
  var kids = {}, hasParent = {};
  g.edges.forEach(function (e) {
    if (e.kind !== "spawned") return;
    (kids[e.from] = kids[e.from] || []).push(e.to);
    hasParent[e.to] = true;
  });
  var queue = [];
  g.nodes.forEach(function (n) { if (n.type === "process" && !hasParent[n.id]) { col[n.id] = 0; queue.push(n.id); } });
  for (var qi = 0; qi < queue.length; qi++) {
    (kids[queue[qi]] || []).forEach(function (k) {
      if (col[k] === undefined) { col[k] = col[queue[qi]] + 1; queue.push(k); }
    });
  }
  for (var pass = 0; pass < 4; pass++) {
    g.nodes.forEach(function (n) {
      if (n.type === "process") return;
      var c = null;
      preds[n.id].forEach(function (p) { if (col[p] !== undefined && (c === null || col[p] + 1 < c)) c = col[p] + 1; });
      if (c !== null) col[n.id] = c;
    });
  }
  g.nodes.forEach(function (n) { if (col[n.id] === undefined) col[n.id] = 0; });
  var used = [], dense = {};
  g.nodes.forEach(function (n) { used[col[n.id]] = true; });
  for (var ci = 0, k = 0; ci < used.length; ci++) if (used[ci]) dense[ci] = k++;
  g.nodes.forEach(function (n) { col[n.id] = dense[col[n.id]]; });
  var columns = [];
  g.nodes.forEach(function (n) { (columns[col[n.id]] = columns[col[n.id]] || []).push(n); });
  var W = 230, H = 54, PADX = 30, PADY = 20, pos = {}, maxRows = 0;
  for (var c = 0; c < columns.length; c++) {
    var list = columns[c] || [];
    // Order by the mean row of predecessors to keep edges short.
    list.forEach(function (n) {
      var ps = preds[n.id].filter(function (p) { return pos[p]; });
      n._key = ps.length ? ps.reduce(function (s, p) { return s + pos[p].row; }, 0) / ps.length : 0;
    });
    list.sort(function (a, b) { return a._key - b._key; });
    list.forEach(function (n, i) { pos[n.id] = {x: PADX + c * (W + 60), y: PADY + i * (H + 18), row: i}; });
    if (list.length > maxRows) maxRows = list.length;
  }
  var width = PADX * 2 + columns.length * (W + 60), height = PADY * 2 + maxRows * (H + 18);
  var svg = document.createElementNS(SVG, "svg");
  // Fit the window's width (never enlarged, never below half size).
  var scale = Math.min(1, Math.max(0.5, (window.innerWidth - 20) / width));
  svg.setAttribute("width", Math.round(width * scale)); svg.setAttribute("height", Math.round(height * scale));
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  var defs = document.createElementNS(SVG, "defs");
  defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker>';
  svg.appendChild(defs);
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function label(n) {
    if (n.type !== "process") return [n.name];
    var p = (n.processes || [])[0] || {};
    var first = n.name + " [" + p.pid + (n.count > 1 ? " +" + (n.count - 1) : "") + "]";
    var cl = (p.argv || []).join(" ");
    if (cl.length > 38) cl = cl.slice(0, 35) + "...";
    return cl ? [first, cl] : [first];
  }
  function clip(s) { return s.length > 38 ? s.slice(0, 17) + "..." + s.slice(s.length - 18) : s; }
  var edgeLayer = el("g", {"class": "edges"}, svg), nodeLayer = el("g", {"class": "nodes"}, svg);
  g.edges.forEach(function (e) {
    var a = pos[e.from], b = pos[e.to];
    if (!a || !b) return;
    var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    if (b.x <= a.x) { x1 = a.x + W / 2; y1 = a.y + H; x2 = b.x + W / 2; y2 = b.y; }
    var grp = el("g", {"class": "edge" + (e.kind === "spawned" ? "" : " res"), "data-kind": e.kind}, edgeLayer);
    var mx = (x1 + x2) / 2;
    el("path", {d: "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2, "marker-end": "url(#arrow)"}, grp);
    var t = el("text", {x: mx, y: (y1 + y2) / 2 - 3, "text-anchor": "middle"}, grp);
    t.textContent = e.kind + (e.ports ? " :" + e.ports.join(",") : "") + (e.count > 1 ? " \u00d7" + e.count : "");
  });
  var detail = document.getElementById("detail");
  g.nodes.forEach(function (n) {
    var p = pos[n.id];
    var grp = el("g", {"class": "node " + n.type + (n.role === "alert" ? " alert" : ""), id: "node-" + n.id, "data-type": n.type, "data-name": n.name, transform: "translate(" + p.x + "," + p.y + ")"}, nodeLayer);
    var fill = n.role === "alert" ? "#f4a6a6" : colors[n.type] || "#eee";
    if (n.type === "domain" || n.type === "address") {
      el("ellipse", {cx: W / 2, cy: H / 2, rx: W / 2, ry: H / 2, fill: fill}, grp);
    } else {
      el("rect", {width: W, height: H, rx: n.type === "process" ? 8 : 2, fill: fill}, grp);
    }
    var lines = label(n);
    lines.forEach(function (s, i) {
      var t = el("text", {x: W / 2, y: H / 2 + (i - (lines.length - 1) / 2) * 14 + 4, "text-anchor": "middle"}, grp);
      t.textContent = clip(s);
    });
    var title = el("title", {}, grp);
    title.textContent = n.type + ": " + n.name;
    grp.addEventListener("click", function () {
      detail.style.display = "block";
      detail.textContent = JSON.stringify(n, function (k, v) { return k === "_key" ? undefined : v; }, 2);
    });
  });
  document.getElementById("graph").appendChild(svg);
  var s = g.stats || {};
  document.getElementById("stats").textContent = g.nodes.length + " nodes, " + g.edges.length + " edges; full tree " +
    s.tree_processes + " processes, " + s.ancestors + " ancestors, " + s.descendants + " descendants, " + s.dropped + " dropped by rules";
  document.body.setAttribute("data-rendered", String(g.nodes.length));
})();
</script>
</body>
</html>
`))
