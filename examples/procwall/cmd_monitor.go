package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// monitorOptions is what a live source's constructor gets from
// `procwall monitor`.
type monitorOptions struct {
	// PID, when > 0, asks the source to report only that process and its
	// descendants (sources may filter in the kernel or leave it to monitor).
	PID    int
	Logger *slog.Logger
}

// monitorSources maps a -source name to its constructor. Each live source
// registers itself from an init function in a file monitor_<name>.go.
var monitorSources = map[string]func(monitorOptions) (source.Source, error){}

func init() {
	register(&command{
		name:    "monitor",
		summary: "print live events from one source",
		run:     runMonitor,
	})
}

func runMonitor(ctx context.Context, env *cmdEnv, args []string) error {
	names := make([]string, 0, len(monitorSources))
	for n := range monitorSources {
		names = append(names, n)
	}
	slices.Sort(names)
	fs := newFlags(env, "monitor", "-source NAME [-o text|json] [-duration D] [-pid P]")
	src := fs.String("source", "", "event source: "+strings.Join(names, ", "))
	out := fs.String("o", "text", "output: text (for people) or json (native trace format, replayable)")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	pid := fs.Int("pid", 0, "only this process and its descendants")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	mk, ok := monitorSources[*src]
	if !ok {
		return usagef("-source must be one of %s, have %q", strings.Join(names, ", "), *src)
	}
	if *out != "text" && *out != "json" {
		return usagef("-o must be text or json, have %q", *out)
	}
	logger := slog.New(slog.NewTextHandler(env.stderr, nil))
	s, err := mk(monitorOptions{PID: *pid, Logger: logger})
	if err != nil {
		return err
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	defer s.Close()

	write := newEventWriter(env.stdout, *out)
	filter := newPIDFilter(*pid)
	n := 0
	for {
		ev, err := s.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || ctx.Err() != nil {
				fmt.Fprintf(env.stderr, "procwall monitor: %d events\n", n)
				return nil
			}
			if errors.Is(err, source.ErrLost) {
				// The source stays usable: say so and go on.
				logger.Warn("events lost", "source", *src, "err", err)
				continue
			}
			return err
		}
		if !filter.keep(&ev) {
			continue
		}
		n++
		if err := write(&ev); err != nil {
			return err
		}
	}
}

// pidFilter keeps events of one process and its descendants, learning the
// descendants from fork events.
type pidFilter struct {
	root int
	in   map[int]bool
}

func newPIDFilter(pid int) *pidFilter {
	return &pidFilter{root: pid, in: map[int]bool{pid: true}}
}

func (f *pidFilter) keep(ev *source.Event) bool {
	if f.root <= 0 {
		return true
	}
	if (ev.Kind == source.KindFork || ev.Kind == source.KindExec) && f.in[ev.PPID] {
		f.in[ev.PID] = true
	}
	keep := f.in[ev.PID]
	if ev.Kind == source.KindExit && ev.PID != f.root {
		delete(f.in, ev.PID)
	}
	return keep
}

// formatEventText renders one event as an aligned line for people.
func formatEventText(ev *source.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-7s %7d", ev.Time.Format(time.TimeOnly+".000000"), ev.Kind, ev.PID)
	switch ev.Kind {
	case source.KindFork:
		fmt.Fprintf(&b, " parent %d", ev.PPID)
	case source.KindExec:
		fmt.Fprintf(&b, " %s", ev.Exe)
		if len(ev.Argv) > 0 {
			fmt.Fprintf(&b, " %q", ev.Argv)
		}
	case source.KindExit:
		if ev.HasCode {
			fmt.Fprintf(&b, " code %d", ev.Code)
		}
		if ev.Signal != 0 {
			fmt.Fprintf(&b, " signal %d", ev.Signal)
		}
	case source.KindConnect, source.KindSend, source.KindAccept:
		fmt.Fprintf(&b, " %s %s", ev.Proto, ev.Dst)
		if ev.Src.IsValid() {
			fmt.Fprintf(&b, " from %s", ev.Src)
		}
	case source.KindAttr:
		if ev.HasUID {
			fmt.Fprintf(&b, " uid %d", ev.UID)
		}
		if ev.Comm != "" {
			fmt.Fprintf(&b, " comm %s", ev.Comm)
		}
	case source.KindRisk:
		fmt.Fprintf(&b, " %s %s", ev.Level, ev.Reason)
	case source.KindAssess:
		fmt.Fprintf(&b, " safe=%t %s", ev.Safe, ev.Reason)
	case source.KindFile:
		fmt.Fprintf(&b, " %s %s", ev.Op, ev.Path)
	case source.KindDNS:
		fmt.Fprintf(&b, " %s %v", ev.Query, ev.Answers)
	}
	if ev.Reason != "" && ev.Kind != source.KindRisk && ev.Kind != source.KindAssess {
		fmt.Fprintf(&b, " (%s)", ev.Reason)
	}
	return b.String()
}
