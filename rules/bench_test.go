package rules

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchEngine builds an engine over 10k rules of every indexed kind and a
// set of requests, half of which match nothing (a full scan for the
// linear baseline).
func benchEngine(b *testing.B) (*Engine, []*Request) {
	b.Helper()
	dir := b.TempDir()
	exe, sum, _ := writeExe(b, dir, "app", "benchmark executable")
	other, _, _ := writeExe(b, dir, "other", "another executable")
	var rs []string
	add := func(format string, args ...any) { rs = append(rs, fmt.Sprintf(format, args...)) }
	for i := range 4000 {
		add(`{"id":"md5-%d","action":"deny","match":{"md5":["%032x"]}}`, i, i+1)
	}
	for i := range 1000 {
		add(`{"id":"sha-%d","action":"deny","match":{"sha256":["%064x"]}}`, i, i+1)
	}
	for i := range 2000 {
		add(`{"id":"exe-%d","action":"allow","priority":%d,"match":{"exe":["/opt/app%d/bin/run"],"user":["%d"]}}`, i, i%7, i, i%50)
	}
	for i := range 1000 {
		add(`{"id":"name-%d","action":"deny","match":{"name":["tool%d"]}}`, i, i)
	}
	for i := range 1500 {
		add(`{"id":"dst-%d","action":"deny","ops":["connect"],"match":{"dst":["10.%d.%d.0/24"]}}`, i, i/256, i%256)
	}
	for i := range 490 {
		add(`{"id":"target-%d","action":"deny","ops":["write"],"match":{"target":["/etc/app%d/"]}}`, i, i)
	}
	// A few rules that need a scan (wildcards), and the matching ones.
	for i := range 8 {
		add(`{"id":"glob-%d","action":"deny","match":{"cmdline":["*--evil%d*"]}}`, i, i)
	}
	add(`{"id":"hit-md5","action":"allow","match":{"md5":["%s"]}}`, sum)
	add(`{"id":"hit-dst","action":"deny","ops":["connect"],"match":{"dst":["198.51.100.0/24"],"port":["443"]}}`)
	doc := `{"format":1,"version":"bench","rules":[` + strings.Join(rs, ",\n") + `]}`
	b2, err := ParseBundle([]byte(doc), nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(b2.Rules) != 10000 {
		b.Fatalf("%d rules", len(b2.Rules))
	}
	e := New()
	if err := e.Load(b2); err != nil {
		b.Fatal(err)
	}
	// Events of running processes (identity known): digests come from
	// the per-process memo, no system call.
	reqs := []*Request{
		{Op: OpConnect, PID: 100, Start: 1, Exe: exe, Dst: netip.MustParseAddrPort("192.0.2.7:80"), UID: 1000, HasUID: true},          // md5 hit
		{Op: OpConnect, PID: 101, Start: 1, Exe: other, Dst: netip.MustParseAddrPort("198.51.100.7:443"), UID: 1000, HasUID: true},    // dst hit
		{Op: OpConnect, PID: 102, Start: 1, Exe: other, Dst: netip.MustParseAddrPort("203.0.113.9:80"), UID: 1000, HasUID: true},      // miss
		{Op: OpWrite, PID: 103, Start: 1, Exe: other, Path: "/var/lib/x/y", Argv: []string{"other", "--quiet"}, UID: 0, HasUID: true}, // miss
	}
	// Cached digests: the executable is hashed once here.
	for _, r := range reqs {
		e.Decide(r)
	}
	return e, reqs
}

func BenchmarkDecide(b *testing.B) {
	e, reqs := benchEngine(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.decide(reqs[i%len(reqs)], false)
		i++
	}
}

// BenchmarkDecideExec judges exec events: the file is checked by stat
// for changes on every event (digests themselves are cached).
func BenchmarkDecideExec(b *testing.B) {
	e, reqs := benchEngine(b)
	req := &Request{Op: OpExec, Exe: reqs[0].Exe, Path: reqs[0].Exe}
	e.Decide(req)
	b.ReportAllocs()
	for b.Loop() {
		e.decide(req, false)
	}
}

func BenchmarkDecideLinear(b *testing.B) {
	e, reqs := benchEngine(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.decide(reqs[i%len(reqs)], true)
		i++
	}
}

// BenchmarkHash compares HashFile with md5sum and sha256sum on a 1 GiB
// file (64 MiB with -short) in the temporary directory, created when the
// benchmark runs and removed after it.
func BenchmarkHash(b *testing.B) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	path := filepath.Join(b.TempDir(), "hash-bench.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(path) })
	buf := make([]byte, 8<<20)
	rand.Read(buf)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	goHash := func(md, sha bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := HashFile(f, size, md, sha); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		}
	}
	tool := func(name string) func(b *testing.B) {
		return func(b *testing.B) {
			if _, err := exec.LookPath(name); err != nil {
				b.Skip(err)
			}
			b.SetBytes(size)
			for b.Loop() {
				if out, err := exec.Command(name, path).CombinedOutput(); err != nil {
					b.Fatalf("%s: %v %s", name, err, out)
				}
			}
		}
	}
	b.Run("md5/go", goHash(true, false))
	b.Run("md5/md5sum", tool("md5sum"))
	b.Run("sha256/go", goHash(false, true))
	b.Run("sha256/sha256sum", tool("sha256sum"))
	b.Run("both/go", goHash(true, true))
}
