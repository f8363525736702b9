package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
)

const sample = `TIME     PCOMM            PID    PPID   RET ARGS
10:00:01 nginx            100    1        0 /usr/sbin/nginx -g daemon off;
10:00:02 sh               231    100      0 /bin/sh -c id
10:00:02 nosuch           232    231     -2 /usr/bin/nosuch
10:00:03 id               233    231      0 /usr/bin/id
`

func TestExecsnoopSource(t *testing.T) {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	s := NewExecsnoop(strings.NewReader(sample), day)
	var got []source.Event
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if len(got) != 3 || got[1].PID != 231 || got[1].PPID != 100 || got[1].Exe != "/bin/sh" ||
		strings.Join(got[1].Argv, " ") != "/bin/sh -c id" || !got[1].Time.Equal(day.Add(10*time.Hour+2*time.Second)) {
		t.Fatalf("events %+v", got)
	}
}

func TestExecsnoopBadLines(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"10:00:01 x 100", "want TIME PCOMM PID PPID RET ARGS"},
		{"ten x 100 1 0 /bin/x", `time "ten"`},
		{"10:00:01 x -4 1 0 /bin/x", `pid "-4"`},
		{"10:00:01 x 100 y 0 /bin/x", `ppid "y"`},
		{"10:00:01 x 100 100 0 /bin/x", "names itself as parent"},
	} {
		s := NewExecsnoop(strings.NewReader("\n"+c.line+"\n"), time.Now())
		_, err := s.Next()
		if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want line 2 and %q", c.line, err, c.want)
		}
	}
}

func TestExecsnoopCloseUnblocks(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := NewExecsnoop(r, time.Now())
	done := make(chan error, 1)
	go func() { _, err := s.Next(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

func TestExecsnoopFeedsContainment(t *testing.T) {
	p, err := procwall.New(procwall.WithSources(NewExecsnoop(strings.NewReader(sample), time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.Tree().Lineage(proctree.ID{PID: 233}); got != "?(1) > nginx(100) > sh(231) > id(233)" {
		t.Fatalf("lineage %q", got)
	}
	m, _ := p.Tree().MainProcess(proctree.ID{PID: 233})
	if m.ID.PID != 100 {
		t.Fatalf("main process %+v", m)
	}
}
