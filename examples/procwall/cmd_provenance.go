package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/procwall/procwall/proctree/provenance"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

func init() {
	register(&command{
		name:    "provenance",
		summary: "simplified provenance graph around an alert (seed 002)",
		run:     runProvenance,
	})
}

func runProvenance(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "provenance", "[-alert ID] [-o json|dot|mermaid|html] [-rules FILE] [-export-rule FILE] [-match RULE] [-format F] [-lenient] FILE...")
	alert := fs.String("alert", "", "the alert's process: node id/GUID, pid or pid@start (default: the most severe risk event of the trace)")
	out := fs.String("o", "json", "output: json, dot, mermaid or html (a self-contained page)")
	rulesFile := fs.String("rules", "", `drop rules, JSON {"drop":[{"image":"bash"},...]} (default: drop bash and su)`)
	exportRule := fs.String("export-rule", "", "also write the graph's feature rule (JSON) to this file, for other hosts")
	match := fs.String("match", "", "instead of a graph: match the trace against this feature rule and print one JSON line per alert")
	keepDup := fs.Bool("keep-duplicates", false, "keep identical sibling processes as separate nodes")
	format := fs.String("format", "auto", "trace format: auto, native or sysmon")
	lenient := fs.Bool("lenient", false, "skip unparsable lines (counted on stderr) instead of stopping")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no trace FILE given")
	}
	switch *out {
	case "json", "dot", "mermaid", "html":
	default:
		return usagef("-o must be json, dot, mermaid or html, have %q", *out)
	}
	f, err := replay.ParseFormat(*format)
	if err != nil {
		return usagef("-format: %v", err)
	}
	var opts provenance.Options
	if *rulesFile != "" {
		if opts.Rules, err = provenance.LoadRules(*rulesFile); err != nil {
			return err
		}
	}
	opts.KeepDuplicates = *keepDup

	r, err := replay.Open(fs.Args(), replay.WithFormat(f), replay.WithLenient(*lenient))
	if err != nil {
		return err
	}
	defer r.Close()
	report := func() {
		if errs := r.Errors(); len(errs) > 0 {
			fmt.Fprintf(env.stderr, "procwall provenance: %d bad input lines skipped; first: %v\n", len(errs), errs[0])
		}
	}

	if *match != "" {
		rule, err := provenance.LoadFeatureRule(*match)
		if err != nil {
			return err
		}
		m, err := provenance.NewMatcher(rule)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.stdout)
		n := 0
		for ctx.Err() == nil {
			e, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			ms, err := m.Observe(e)
			if err != nil {
				if *lenient {
					fmt.Fprintf(env.stderr, "procwall provenance: skipped: %v\n", err)
					continue
				}
				return err
			}
			for _, x := range ms {
				n++
				if err := enc.Encode(matchRecord(x)); err != nil {
					return err
				}
			}
		}
		report()
		fmt.Fprintf(env.stderr, "procwall provenance: %d processes seen, %d alerts for rule %q\n", m.Tree().Len(), n, rule.Name)
		return ctx.Err()
	}

	tr := provenance.NewTree()
	for ctx.Err() == nil {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := tr.Add(e); err != nil {
			if *lenient {
				fmt.Fprintf(env.stderr, "procwall provenance: skipped: %v\n", err)
				continue
			}
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	report()
	id := *alert
	if id == "" {
		best := -1
		for i, a := range tr.Alerts() {
			if best < 0 || a.Level > tr.Alerts()[best].Level {
				best = i
			}
		}
		if best < 0 {
			return usagef("no -alert given and the trace has no risk event")
		}
		a := tr.Alerts()[best]
		id = a.ID
		fmt.Fprintf(env.stderr, "procwall provenance: alert %s (%s: %s)\n", id, a.Level, a.Reason)
	}
	g, err := tr.Simplify(id, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "procwall provenance: %v\n", g)
	if *exportRule != "" {
		rule, err := provenance.DeriveRule(g, "provenance-"+g.AlertID)
		if err != nil {
			return err
		}
		rule.Created = time.Now().UTC().Truncate(time.Second)
		data, err := json.MarshalIndent(rule, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*exportRule, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	switch *out {
	case "dot":
		return g.WriteDOT(env.stdout)
	case "mermaid":
		return g.WriteMermaid(env.stdout)
	case "html":
		return g.WriteHTML(env.stdout)
	default:
		return g.WriteJSON(env.stdout)
	}
}

// matchJSON is the JSON line `provenance -match` prints per alert.
type matchJSON struct {
	Rule      string       `json:"rule"`
	Level     source.Level `json:"level"`
	TS        string       `json:"ts"`
	Anchor    string       `json:"anchor"`
	AnchorPID int          `json:"anchor_pid"`
	Process   string       `json:"process"`
	PID       int          `json:"pid"`
	Features  []int        `json:"features"`
}

func matchRecord(m provenance.Match) matchJSON {
	return matchJSON{
		Rule: m.Rule, Level: m.Level, TS: m.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"),
		Anchor: m.Anchor.ID(), AnchorPID: m.Anchor.PID, Process: m.Process.ID(), PID: m.Process.PID, Features: m.Features,
	}
}
