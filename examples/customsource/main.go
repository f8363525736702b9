// Command customsource shows how to write a procwall event source: here
// one that reads the text output of an execsnoop-style tracer (bcc's
// execsnoop, bpftrace scripts) — lines of "TIME PCOMM PID PPID RET ARGS" —
// and turns them into exec events, so that a host that already runs such a
// tracer can feed procwall without another kernel subscription.
//
//	execsnoop -T | go run ./examples/customsource
//
// A Source is a blocking reader: Next returns the next event, io.EOF at
// the end, and an error wrapping os.ErrClosed after Close; it starts no
// goroutines. Errors name the line and what was wrong.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/source"
)

// Execsnoop is a source over execsnoop text output. It is not safe for
// concurrent Next calls; Close may be called from any goroutine.
type Execsnoop struct {
	sc     *bufio.Scanner
	rc     io.Closer
	line   int
	day    time.Time // the date the HH:MM:SS times belong to
	mu     sync.Mutex
	closed bool
}

// NewExecsnoop reads execsnoop lines from r; times (HH:MM:SS) are taken to
// be on day (UTC). If r is an io.Closer, Close closes it to unblock Next.
func NewExecsnoop(r io.Reader, day time.Time) *Execsnoop {
	s := &Execsnoop{sc: bufio.NewScanner(r), day: day.UTC().Truncate(24 * time.Hour)}
	if c, ok := r.(io.Closer); ok {
		s.rc = c
	}
	return s
}

// Name implements source.Source.
func (s *Execsnoop) Name() string { return "execsnoop" }

// Next implements source.Source.
func (s *Execsnoop) Next() (source.Event, error) {
	for s.sc.Scan() {
		s.line++
		text := strings.TrimSpace(s.sc.Text())
		if text == "" || strings.HasPrefix(text, "TIME") || strings.HasPrefix(text, "PCOMM") {
			continue // blank or header
		}
		ev, err := s.parse(text)
		if err != nil {
			return source.Event{}, fmt.Errorf("execsnoop: line %d: %w", s.line, err)
		}
		if ev.Kind == source.KindUnknown {
			continue // a failed exec (RET != 0): no new image
		}
		return ev, nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return source.Event{}, fmt.Errorf("execsnoop: %w", os.ErrClosed)
	}
	if err := s.sc.Err(); err != nil {
		return source.Event{}, fmt.Errorf("execsnoop: line %d: %w", s.line+1, err)
	}
	return source.Event{}, io.EOF
}

// parse reads "TIME PCOMM PID PPID RET ARGS...".
func (s *Execsnoop) parse(text string) (source.Event, error) {
	f := strings.Fields(text)
	if len(f) < 6 {
		return source.Event{}, fmt.Errorf("want TIME PCOMM PID PPID RET ARGS, have %d fields", len(f))
	}
	tod, err := time.Parse("15:04:05", f[0])
	if err != nil {
		return source.Event{}, fmt.Errorf("time %q: want HH:MM:SS", f[0])
	}
	pid, err := strconv.Atoi(f[2])
	if err != nil || pid <= 0 {
		return source.Event{}, fmt.Errorf("pid %q: want a positive number", f[2])
	}
	ppid, err := strconv.Atoi(f[3])
	if err != nil || ppid < 0 {
		return source.Event{}, fmt.Errorf("ppid %q: want a number", f[3])
	}
	ret, err := strconv.Atoi(f[4])
	if err != nil {
		return source.Event{}, fmt.Errorf("ret %q: want a number", f[4])
	}
	if ret != 0 {
		return source.Event{}, nil
	}
	ev := source.Event{
		Time: s.day.Add(time.Duration(tod.Hour())*time.Hour + time.Duration(tod.Minute())*time.Minute +
			time.Duration(tod.Second())*time.Second),
		Kind: source.KindExec, PID: pid, PPID: ppid, Comm: f[1], Exe: f[5], Argv: f[5:],
		Origin: "execsnoop:" + strconv.Itoa(s.line),
	}
	return ev, ev.Validate()
}

// Close implements source.Source.
func (s *Execsnoop) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.rc != nil {
		return s.rc.Close()
	}
	return nil
}

func main() {
	src := NewExecsnoop(os.Stdin, time.Now())
	p, err := procwall.New(procwall.WithSources(src))
	if err != nil {
		fmt.Fprintln(os.Stderr, "customsource:", err)
		os.Exit(1)
	}
	if err := p.Run(context.Background()); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "customsource:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for pr := range p.Tree().All() {
		enc.Encode(map[string]any{"pid": pr.ID.PID, "ppid": pr.Parent.PID, "exe": pr.Exe, "lineage": p.Tree().Lineage(pr.ID)})
	}
}
