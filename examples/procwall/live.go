package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/ftrace"
	"github.com/procwall/procwall/source/nflog"
	"github.com/procwall/procwall/source/procconn"
	"github.com/procwall/procwall/source/procfs"
	"github.com/procwall/procwall/source/sockdiag"
)

// addBoundaryFlag adds -boundary: executable patterns that end lineage
// walks, besides the defaults.
func addBoundaryFlag(fs *flag.FlagSet) *string {
	return fs.String("boundary", "", "comma-separated executable base names (glob patterns) that end lineage walks, added to "+
		strings.Join(proctree.DefaultBoundaries, ","))
}

// parseBoundaries returns the default boundaries plus those of -boundary,
// or nil when the flag is empty.
func parseBoundaries(flagValue string) ([]string, error) {
	if strings.TrimSpace(flagValue) == "" {
		return nil, nil
	}
	out := append([]string(nil), proctree.DefaultBoundaries...)
	for _, x := range strings.Split(flagValue, ",") {
		if x = strings.TrimSpace(x); x != "" {
			if _, err := path.Match(x, ""); err != nil {
				return nil, usagef("-boundary: bad pattern %q: %v", x, err)
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// analysisFlags turn on early warning and attack chains.
type analysisFlags struct{ warn, chains *bool }

func addAnalysisFlags(fs *flag.FlagSet) analysisFlags {
	return analysisFlags{
		warn:   fs.Bool("warn", false, "association-based early warning: emit warn records (seed 004)"),
		chains: fs.Bool("chains", false, "attack chains across one-minute windows: emit chain records (seed 003)"),
	}
}

func (a analysisFlags) options() []procwall.Option {
	var o []procwall.Option
	if *a.warn {
		o = append(o, procwall.WithWarning(risk.DefaultWarnConfig()))
	}
	if *a.chains {
		o = append(o, procwall.WithChains(risk.DefaultChainConfig()))
	}
	return o
}

// observeProcs takes a /proc snapshot as the tree's Observed processes.
func observeProcs(fs procfs.FS) ([]proctree.Observed, error) {
	procs, err := fs.Processes()
	if err != nil {
		return nil, err
	}
	out := make([]proctree.Observed, 0, len(procs))
	for _, p := range procs {
		o := proctree.Observed{PID: p.PID, PPID: p.PPID, Start: p.Start, Exe: p.Exe, Argv: p.Argv, Comm: p.Comm, Cwd: p.Cwd}
		if p.UID >= 0 {
			o.UID, o.HasUID = p.UID, true
		}
		out = append(out, o)
	}
	return out, nil
}

// netnsFd opens a named network namespace (ip netns), or returns -1 for
// the current one.
func netnsFd(name string) (*os.File, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %q: %w (create it with ip netns add)", name, err)
	}
	return f, nil
}

// liveSource is one live source picked by name.
type liveSource struct {
	name string
	open func() (source.Source, error)
	// auto says whether "auto" includes it.
	auto bool
}

// openSources opens the named sources ("auto": every one whose probe
// passes). Sources that "auto" picked but that cannot open on this kernel
// are skipped with a log line; a named one that fails is an error.
func openSources(spec string, nsFd int, log *slog.Logger) ([]source.Source, error) {
	all := []liveSource{
		{name: "procconn", auto: true, open: func() (source.Source, error) { return procconn.Open() }},
		{name: "ftrace", auto: true, open: func() (source.Source, error) { return ftrace.Open(ftrace.WithLogger(log)) }},
		{name: "sockdiag", auto: true, open: func() (source.Source, error) {
			var opts []sockdiag.Option
			if nsFd >= 0 {
				opts = append(opts, sockdiag.WithNetNS(nsFd))
			}
			return sockdiag.NewSource(5*time.Second, opts...)
		}},
		{name: "nflog", auto: false, open: func() (source.Source, error) {
			opts := []nflog.Option{nflog.WithLogger(log)}
			if nsFd >= 0 {
				opts = append(opts, nflog.WithNetNS(nsFd))
			}
			return nflog.Open(opts...)
		}},
	}
	want := map[string]bool{}
	auto := spec == "" || spec == "auto"
	if !auto {
		for _, n := range strings.Split(spec, ",") {
			n = strings.TrimSpace(n)
			found := false
			for _, s := range all {
				if s.name == n {
					found = true
				}
			}
			if !found {
				return nil, usagef("-sources: unknown source %q (have procconn, ftrace, sockdiag, nflog, auto)", n)
			}
			want[n] = true
		}
	}
	var out []source.Source
	for _, s := range all {
		if !(auto && s.auto) && !want[s.name] {
			continue
		}
		src, err := s.open()
		if err != nil {
			if auto && errors.Is(err, source.ErrNotSupported) {
				log.Warn("source not available on this kernel; skipped", "source", s.name, "err", err)
				continue
			}
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("source %s: %w", s.name, err)
		}
		out = append(out, src)
	}
	if len(out) == 0 {
		return nil, errors.New("no event source could be opened")
	}
	return out, nil
}
