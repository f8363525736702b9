package rules

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Terminal is an interactive [Decider] on a terminal (or any line-based
// reader and writer): it prints each question with the risk level and
// reads one answer line:
//
//	a | d              allow / deny this event only
//	A | D              allow / deny this program always
//	a restart | d restart   until procwall restarts
//	a 10m | d 2h       for a duration
//
// Questions are asked one at a time. A line typed after a question timed
// out answers the next question. Safe for concurrent use.
type Terminal struct {
	out io.Writer

	mu    sync.Mutex // one question at a time
	start sync.Once
	in    *bufio.Reader
	lines chan string
	err   error
}

// NewTerminal returns a terminal decider reading answers from in and
// writing questions to out.
func NewTerminal(in io.Reader, out io.Writer) *Terminal {
	return &Terminal{in: bufio.NewReader(in), out: out, lines: make(chan string)}
}

// read runs in a goroutine that lives as long as in has lines.
func (t *Terminal) read() {
	for {
		line, err := t.in.ReadString('\n')
		if line != "" {
			t.lines <- line
		}
		if err != nil {
			t.err = err
			close(t.lines)
			return
		}
	}
}

// Decide implements Decider.
func (t *Terminal) Decide(ctx context.Context, q Question) (Answer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start.Do(func() { go t.read() })
	r := &q.Request
	var what string
	switch r.Op {
	case OpConnect:
		what = fmt.Sprintf("connect to %v", r.Dst)
	case OpExec:
		what = "execute " + r.Exe
	default:
		what = fmt.Sprintf("%v %s", r.Op, r.Path)
	}
	fmt.Fprintf(t.out, "\nprocwall: %s wants to %s (pid %d, %s)\n", r.Exe, what, r.PID, q.Verdict.Point)
	fmt.Fprintf(t.out, "  risk: %v", q.Verdict.Level)
	if len(q.Verdict.Reasons) > 0 {
		fmt.Fprintf(t.out, " (%s)", strings.Join(q.Verdict.Reasons, ", "))
	}
	if dl, ok := ctx.Deadline(); ok {
		fmt.Fprintf(t.out, "; answer within %v", time.Until(dl).Round(time.Second))
	}
	fmt.Fprint(t.out, "\n  [a]llow / [d]eny once, [A]/[D] always, 'a restart', 'a 10m': ")
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(t.out, "\n  (no answer in time)")
			return Answer{}, ctx.Err()
		case line, ok := <-t.lines:
			if !ok {
				return Answer{}, fmt.Errorf("terminal: %w", t.err)
			}
			a, err := ParseAnswer(line)
			if err == nil {
				return a, nil
			}
			fmt.Fprintf(t.out, "  %v; try again: ", err)
		}
	}
}

// ParseAnswer parses a terminal answer line (see [Terminal]).
func ParseAnswer(line string) (Answer, error) {
	f := strings.Fields(line)
	if len(f) == 0 || len(f) > 2 {
		return Answer{}, fmt.Errorf("want a, d, A, D, 'a restart' or 'a DURATION', have %q", strings.TrimSpace(line))
	}
	var a Answer
	switch f[0] {
	case "a", "allow":
		a.Action = Allow
	case "d", "deny":
		a.Action = Deny
	case "A":
		a.Action, a.Remember = Allow, Always
	case "D":
		a.Action, a.Remember = Deny, Always
	default:
		return Answer{}, fmt.Errorf("want a, d, A or D, have %q", f[0])
	}
	if len(f) == 2 {
		switch f[1] {
		case "always":
			a.Remember = Always
		case "restart":
			a.Remember = UntilRestart
		case "once":
			a.Remember = Once
		default:
			d, err := time.ParseDuration(f[1])
			if err != nil || d <= 0 {
				return Answer{}, fmt.Errorf("want always, restart, once or a duration such as 10m, have %q", f[1])
			}
			a.Remember, a.Duration = For, d
		}
	}
	return a, nil
}
