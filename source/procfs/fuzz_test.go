package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzParseStat: /proc/<pid>/stat lines (and the other /proc files the
// package reads) of any shape either parse or fail with ErrParse, never
// panic; where both the full parser and the allocation-free start-time
// reader accept a line, they agree on the start time.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("100 (a (b) c) S 1 100 101 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 2 0 2500 1000\n"))
	f.Add([]byte("7 ()) Z 1 1 1 0 -1 4 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615"))
	f.Add([]byte("5 (a) S 1 1 1"))
	f.Add([]byte("Name:\tsh\nPid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"))
	f.Add([]byte("0::/user.slice\n1:name=systemd:/init.scope\n"))
	f.Add([]byte("sh\x00-c\x00true\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStatBytes(b)
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("parseStatBytes error %v does not wrap ErrParse", err)
		}
		if start, ok := parseStartTime(b); ok && err == nil && start != st.StartTicks {
			t.Fatalf("start time: parseStartTime %d, parseStatBytes %d", start, st.StartTicks)
		}
		// Line-oriented files: a malformed line is ErrParse, a line past
		// the scanner's limit is bufio.ErrTooLong.
		if _, err := parseStatus(bytes.NewReader(b)); err != nil && !errors.Is(err, ErrParse) && !errors.Is(err, bufio.ErrTooLong) {
			t.Fatalf("parseStatus error %v does not wrap ErrParse", err)
		}
		if _, err := parseCgroup(bytes.NewReader(b)); err != nil && !errors.Is(err, ErrParse) && !errors.Is(err, bufio.ErrTooLong) {
			t.Fatalf("parseCgroup error %v does not wrap ErrParse", err)
		}
		argv, err := parseCmdline(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if joined := bytes.Join(toBytes(argv), []byte{0}); !bytes.Equal(joined, bytes.TrimRight(b, "\x00")) {
			t.Fatalf("parseCmdline(%q) = %q: joining it back gives %q", b, argv, joined)
		}
	})
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
