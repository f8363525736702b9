package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// demoTrace is replayed when no file is given: a web shell inside a web
// server, contained by lineage and released.
//
//go:embed demo.jsonl
var demoTrace []byte

func init() {
	register(&command{
		name:    "replay",
		summary: "replay recorded traces through a Protector (dry run) and print its decisions",
		run:     runReplay,
	})
}

func runReplay(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "replay", "[-format auto|native|sysmon] [-o text|json] [-lenient] [FILE...]")
	format := fs.String("format", "auto", "trace format: auto, native or sysmon (auto detects each file)")
	out := fs.String("o", "text", "output: text (a readable report) or json (decision records, one per line)")
	lenient := fs.Bool("lenient", false, "count and skip bad lines instead of stopping at the first")
	verbose := fs.Bool("v", false, "log every decision and anomaly to standard error")
	boundary := addBoundaryFlag(fs)
	analysis := addAnalysisFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	boundaries, err := parseBoundaries(*boundary)
	if err != nil {
		return err
	}
	f, err := replay.ParseFormat(*format)
	if err != nil {
		return usagef("-format: %v", err)
	}
	if *out != "text" && *out != "json" {
		return usagef("-o must be text or json, have %q", *out)
	}
	opts := []replay.Option{replay.WithFormat(f), replay.WithLenient(*lenient)}
	var r *replay.Reader
	title := "demo trace (embedded; pass FILE... to replay your own)"
	if fs.NArg() == 0 {
		r = replay.New("demo.jsonl", bytes.NewReader(demoTrace), opts...)
	} else {
		r, err = replay.Open(fs.Args(), opts...)
		if err != nil {
			return err
		}
		title = strings.Join(fs.Args(), ", ")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))

	var (
		p      *procwall.Protector
		hook   func(procwall.Record)
		report *textReport
		encErr error
	)
	switch *out {
	case "json":
		enc := json.NewEncoder(env.stdout)
		enc.SetEscapeHTML(false)
		hook = func(rec procwall.Record) {
			if err := enc.Encode(rec); err != nil && encErr == nil {
				encErr = err
			}
		}
	default:
		report = &textReport{w: env.stdout}
		hook = func(rec procwall.Record) { report.add(p, rec) }
	}
	popts := []procwall.Option{
		procwall.WithSources(r),
		procwall.WithEnforcer(dryrun.New()),
		procwall.WithRecordHook(hook),
		procwall.WithLogger(logger),
	}
	if boundaries != nil {
		popts = append(popts, procwall.WithTreeOptions(proctree.WithBoundaries(boundaries...)))
	}
	popts = append(popts, analysis.options()...)
	p, err = procwall.New(popts...)
	if err != nil {
		return err
	}
	if report != nil {
		report.header(title)
	}
	runErr := p.Run(ctx)
	if encErr != nil {
		return encErr
	}
	if report != nil {
		report.footer(p, r)
	}
	for _, e := range r.Errors() {
		fmt.Fprintf(env.stderr, "procwall replay: skipped: %v\n", e)
	}
	if n := len(r.Errors()); n > 0 {
		fmt.Fprintf(env.stderr, "procwall replay: %d bad line(s) skipped (lenient mode)\n", n)
	}
	return runErr
}

// textReport renders decisions for people: each with the tree around it.
type textReport struct {
	w     io.Writer
	count map[string]int
}

func (t *textReport) header(title string) {
	fmt.Fprintf(t.w, "procwall replay: %s\n", title)
	t.count = map[string]int{}
}

func (t *textReport) add(p *procwall.Protector, rec procwall.Record) {
	t.count[rec.RecordAction()]++
	var d *risk.Decision
	switch r := rec.(type) {
	case *risk.Decision:
		d = r
	case *risk.Warning:
		t.warning(r)
		return
	case *risk.Chain:
		t.chain(r)
		return
	default:
		b, _ := json.Marshal(rec)
		fmt.Fprintf(t.w, "\n%s\n", b)
		return
	}
	fmt.Fprintf(t.w, "\n%s  %-7s ", d.Time.UTC().Format("2006-01-02 15:04:05"), strings.ToUpper(d.Action))
	switch d.Action {
	case risk.ActionBlock:
		if d.Target == risk.TargetRiskProcess {
			fmt.Fprintf(t.w, "risk process %s (its own traffic)\n", name(p, d.TargetPID, d.TargetStart))
		} else {
			fmt.Fprintf(t.w, "main process %s for risk process %s\n",
				name(p, d.TargetPID, d.TargetStart), name(p, d.RiskPID, d.RiskStart))
		}
	case risk.ActionRelease:
		fmt.Fprintf(t.w, "%s %s\n", strings.ReplaceAll(d.Target, "_", " "), name(p, d.TargetPID, d.TargetStart))
	default:
		who := d.RiskPID
		if who == 0 {
			who = d.TargetPID
		}
		fmt.Fprintf(t.w, "nothing done about %s\n", name(p, who, 0))
	}
	if d.Report != "" {
		lvl := ""
		if d.Level != "" && d.Action != risk.ActionRelease {
			lvl = " (" + d.Level + ")"
		}
		fmt.Fprintf(t.w, "  report:   %s%s\n", d.Report, lvl)
	}
	fmt.Fprintf(t.w, "  why:      %s\n", d.Reason)
	switch d.Action {
	case risk.ActionBlock:
		fmt.Fprintf(t.w, "  blocked:  %s  (block %s, enforcer %s)\n", strings.Join(d.Addrs, ", "), d.Block, d.Enforcer)
	case risk.ActionRelease:
		un := strings.Join(d.Addrs, ", ")
		if un == "" {
			un = "(none: every address is still held by another block)"
		}
		fmt.Fprintf(t.w, "  unblocked: %s  (block %s, enforcer %s)\n", un, d.Block, d.Enforcer)
	}
	if d.TargetPID != 0 || d.RiskPID != 0 {
		t.tree(p, d)
	}
}

// name is "exe (pid)" for a pid the tree knows, else "pid N".
func name(p *procwall.Protector, pid int, start uint64) string {
	if pr, ok := p.Tree().Get(proctree.ID{PID: pid, Start: start}); ok {
		return fmt.Sprintf("%s (%d)", pr.Name(), pid)
	}
	return fmt.Sprintf("pid %d", pid)
}

// tree prints the lineage above the decision's target and the target's
// subtree, with addresses and marks.
func (t *textReport) tree(p *procwall.Protector, d *risk.Decision) {
	tr := p.Tree()
	focus := proctree.ID{PID: d.TargetPID, Start: d.TargetStart}
	if d.TargetPID == 0 {
		focus = proctree.ID{PID: d.RiskPID, Start: d.RiskStart}
	}
	fp, ok := tr.Get(focus)
	if !ok {
		return
	}
	focus = fp.ID
	riskID, _ := tr.Resolve(proctree.ID{PID: d.RiskPID, Start: d.RiskStart})
	addrs := func(id proctree.ID) []string {
		as := p.Associations().Addrs(id)
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	mark := func(id proctree.ID) string {
		var m []string
		if d.RiskPID != 0 && id == riskID {
			m = append(m, "risk")
		}
		if id == focus && d.Target == risk.TargetMainProcess {
			m = append(m, "main")
		}
		return strings.Join(m, ",")
	}
	fmt.Fprintln(t.w, "  tree:")
	anc := tr.Ancestors(focus)
	slices.Reverse(anc)
	indent := "    "
	for i, a := range anc {
		if i == 0 {
			fmt.Fprintf(t.w, "%s%s\n", indent, a.Label())
		} else {
			fmt.Fprintf(t.w, "%s└─ %s\n", indent, a.Label())
			indent += "   "
		}
	}
	var b strings.Builder
	_ = tr.Render(&b, proctree.RenderOptions{Root: focus, Addrs: addrs, Mark: mark, HideExited: false})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i, l := range lines {
		if len(anc) > 0 {
			if i == 0 {
				l = "└─ " + l
			} else {
				l = "   " + l
			}
		}
		fmt.Fprintf(t.w, "%s%s\n", indent, l)
	}
}

func (t *textReport) warning(w *risk.Warning) {
	who := w.Addr
	if w.PID != 0 {
		who = fmt.Sprintf("%s (%d)", w.Name, w.PID)
	}
	fmt.Fprintf(t.w, "\n%s  WARN    %s: probability %.3f below threshold %.3f (trend %+.2f, %d related, %d warning)\n",
		w.Time.UTC().Format("2006-01-02 15:04:05"), who, w.Probability, w.Threshold, w.Trend, w.Related, w.Warning)
	for _, d := range w.Drivers {
		name := d.Addr
		if d.PID != 0 {
			name = fmt.Sprintf("%s (%d)", d.Name, d.PID)
		}
		fmt.Fprintf(t.w, "  driver:   %s, %s via %s, safety %.3f\n", name, d.Relation, d.Via, d.Probability)
	}
}

func (t *textReport) chain(c *risk.Chain) {
	fmt.Fprintf(t.w, "\n%s  CHAIN   %s from %s (window %d, %d new node(s))\n  path:     %s\n",
		c.Time.UTC().Format("2006-01-02 15:04:05"), c.ID, c.Origin, c.Window, c.Added, c.Path)
}

func (t *textReport) footer(p *procwall.Protector, r *replay.Reader) {
	st := r.Stats()
	active := p.ActiveBlocks()
	fmt.Fprintf(t.w, "\nsummary: %d events; %d block, %d release, %d none", st.Events,
		t.count[risk.ActionBlock], t.count[risk.ActionRelease], t.count[risk.ActionNone])
	if n := t.count["warn"] + t.count["chain"]; n > 0 {
		fmt.Fprintf(t.w, ", %d warn, %d chain", t.count["warn"], t.count["chain"])
	}
	fmt.Fprintf(t.w, "; %d block(s) active at the end", len(active))
	if len(active) > 0 {
		var ids []string
		for _, b := range active {
			ids = append(ids, fmt.Sprintf("%s on pid %d: %s", b.ID, b.Target.PID, joinAddrList(b.Addrs)))
		}
		fmt.Fprintf(t.w, " (%s)", strings.Join(ids, "; "))
	}
	fmt.Fprintln(t.w)
}

func joinAddrList[T fmt.Stringer](as []T) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

var _ source.Source = (*replay.Reader)(nil)
