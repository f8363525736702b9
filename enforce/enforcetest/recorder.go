package enforcetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/procwall/procwall/enforce"
)

// Recorder is an enforce.Enforcer that passes every call to another
// enforcer and keeps one readable line per call: what was asked and how it
// ended. Its Log suits golden files (see Golden). It is safe for concurrent
// use; the log is in the order the calls returned.
type Recorder struct {
	// E is the enforcer called.
	E enforce.Enforcer

	mu  sync.Mutex
	log []string
}

var _ enforce.Enforcer = (*Recorder)(nil)

// NewRecorder returns a Recorder around e.
func NewRecorder(e enforce.Enforcer) *Recorder { return &Recorder{E: e} }

// Name implements enforce.Enforcer.
func (r *Recorder) Name() string { return r.E.Name() }

// Block implements enforce.Enforcer.
func (r *Recorder) Block(ctx context.Context, b enforce.Block) error {
	err := r.E.Block(ctx, b)
	as := make([]string, len(b.Addrs))
	for i, a := range b.Addrs {
		as[i] = a.String()
	}
	r.add(fmt.Sprintf("block %q [%s]", b.ID, strings.Join(as, " ")), err)
	return err
}

// Release implements enforce.Enforcer.
func (r *Recorder) Release(ctx context.Context, id string) error {
	err := r.E.Release(ctx, id)
	r.add(fmt.Sprintf("release %q", id), err)
	return err
}

// Blocks implements enforce.Enforcer.
func (r *Recorder) Blocks(ctx context.Context) ([]enforce.Block, error) {
	bs, err := r.E.Blocks(ctx)
	r.add(fmt.Sprintf("blocks -> %d", len(bs)), err)
	return bs, err
}

// Close implements enforce.Enforcer.
func (r *Recorder) Close() error {
	err := r.E.Close()
	r.add("close", err)
	return err
}

func (r *Recorder) add(call string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, call+" -> "+outcome(err))
}

// outcome names an error by the sentinel it wraps, so that logs do not
// depend on a back-end's wording.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, enforce.ErrProtected):
		return "ErrProtected"
	case errors.Is(err, enforce.ErrExists):
		return "ErrExists"
	case errors.Is(err, enforce.ErrNotFound):
		return "ErrNotFound"
	case errors.Is(err, os.ErrClosed):
		return "ErrClosed"
	default:
		return "error"
	}
}

// Log returns the recorded lines, each ending in a newline.
func (r *Recorder) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.log) == 0 {
		return ""
	}
	return strings.Join(r.log, "\n") + "\n"
}

// EnvUpdate is the environment variable that makes Golden rewrite golden
// files instead of comparing with them.
const EnvUpdate = "PROCWALL_UPDATE_GOLDEN"

// Golden compares got with the file testdata/name (relative to the test's
// package directory) and fails t with a line diff when they differ. With
// PROCWALL_UPDATE_GOLDEN=1 it writes got to the file instead.
func Golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv(EnvUpdate) == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run with %s=1 to create it)", err, EnvUpdate)
	}
	if string(want) != got {
		t.Errorf("%s differs from what was produced (- golden, + got; %s=1 to accept):\n%s", path, EnvUpdate, Diff(string(want), got))
	}
}

// Diff returns a line diff of a and b: unchanged lines start with two
// spaces, removed lines with "- " and added lines with "+ ". Long runs of
// unchanged lines are shortened.
func Diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// Longest common subsequence, quadratic; golden files are small.
	n, m := len(x), len(y)
	if n*m > 25_000_000 {
		return fmt.Sprintf("(too large to diff: %d and %d lines)", n, m)
	}
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		tag  byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
			lines = append(lines, line{'+', y[j]})
			j++
		default:
			lines = append(lines, line{'-', x[i]})
			i++
		}
	}
	var sb strings.Builder
	const ctx = 2
	skipping := false
	for k, l := range lines {
		if l.tag == ' ' {
			near := false
			for d := -ctx; d <= ctx; d++ {
				if k+d >= 0 && k+d < len(lines) && lines[k+d].tag != ' ' {
					near = true
				}
			}
			if !near {
				if !skipping {
					sb.WriteString("  ...\n")
					skipping = true
				}
				continue
			}
		}
		skipping = false
		sb.WriteByte(l.tag)
		sb.WriteByte(' ')
		sb.WriteString(l.text)
		sb.WriteByte('\n')
	}
	return sb.String()
}
