package replay

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

func TestBuilder(t *testing.T) {
	t0 := mustTime(t, "2026-11-22T10:00:00Z")
	b := NewBuilder(t0)
	b.Fork(100, 1).Start(5000).
		Exec(100, "/usr/sbin/nginx", "nginx", "-g", "daemon off;").UID(33).Cwd("/srv").
		Connect(100, "tcp", "198.51.100.7:443").
		After(5*time.Minute).Risk(231, "high", "reverse shell").
		Assess(100, true, "clean").
		At(t0.Add(time.Hour)).Exit(100, 0).GUID("{g}")
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	evs := b.Events()
	wantTimes := []time.Time{t0, t0.Add(time.Millisecond), t0.Add(2 * time.Millisecond),
		t0.Add(2*time.Millisecond + 5*time.Minute), t0.Add(2*time.Millisecond + 5*time.Minute + time.Millisecond), t0.Add(time.Hour)}
	wantKinds := []source.Kind{source.KindFork, source.KindExec, source.KindConnect, source.KindRisk, source.KindAssess, source.KindExit}
	if len(evs) != len(wantKinds) {
		t.Fatalf("got %d events", len(evs))
	}
	for i, ev := range evs {
		if ev.Kind != wantKinds[i] || !ev.Time.Equal(wantTimes[i]) {
			t.Errorf("event %d: %v at %v, want %v at %v", i, ev.Kind, ev.Time, wantKinds[i], wantTimes[i])
		}
	}
	if evs[0].Start != 5000 || evs[1].UID != 33 || !evs[1].HasUID || evs[1].Cwd != "/srv" || evs[5].GUID != "{g}" {
		t.Errorf("modifiers not applied: %+v", evs)
	}
	if evs[2].Dst != netip.MustParseAddrPort("198.51.100.7:443") || evs[2].Proto != source.ProtoTCP {
		t.Errorf("connect: %+v", evs[2])
	}
	if evs[3].Level != source.LevelHigh || evs[4].Safe != true {
		t.Errorf("risk/assess: %+v %+v", evs[3], evs[4])
	}
	// Events returns a copy.
	evs[0].PID = 9
	if b.Events()[0].PID != 100 {
		t.Error("Events does not copy")
	}

	// Source replays them.
	got, err := readAll(t, b.Source())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b.Events()) {
		t.Errorf("Source gives %+v\nwant %+v", got, b.Events())
	}
}

func TestBuilderErrors(t *testing.T) {
	t0 := mustTime(t, "2026-11-22T10:00:00Z")
	tests := []struct {
		name    string
		build   func(b *Builder)
		contain string
	}{
		{"bad dst", func(b *Builder) { b.Connect(100, "tcp", "not-an-address") }, `"not-an-address"`},
		{"bad src", func(b *Builder) { b.Accept(100, "tcp", "192.0.2.1", "198.51.100.1:5") }, `field src`},
		{"bad proto", func(b *Builder) { b.Send(100, "xyz", "198.51.100.1:5", 1) }, `"xyz"`},
		{"bad level", func(b *Builder) { b.Risk(100, "extreme", "") }, `"extreme"`},
		{"pid 0", func(b *Builder) { b.Exit(0, 0) }, "pid must be > 0"},
		{"self parent", func(b *Builder) { b.Fork(5, 5) }, "names itself"},
		{"bad answer", func(b *Builder) { b.DNS(100, "a.example", "1.2.3") }, `"1.2.3"`},
		{"missing query", func(b *Builder) { b.DNS(100, "") }, "missing query"},
		{"bad op", func(b *Builder) { b.File(100, "chmod", "/x") }, `"chmod"`},
		{"missing path", func(b *Builder) { b.File(100, "create", "") }, "missing path"},
		{"Set invalidates", func(b *Builder) { b.Exit(100, 1).Set(func(e *source.Event) { e.PID = -1 }) }, "pid must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(t0).Fork(100, 1)
			tt.build(b)
			b.Exit(100, 0).UID(7) // later calls still work
			err := b.Err()
			if err == nil || !strings.Contains(err.Error(), tt.contain) || !strings.HasPrefix(err.Error(), "builder:2: ") {
				t.Fatalf("Err() = %v, want builder:2: ... %s", err, tt.contain)
			}
			evs := b.Events()
			if len(evs) != 2 || evs[0].Kind != source.KindFork || evs[1].Kind != source.KindExit {
				t.Fatalf("events %+v, want fork and exit only", evs)
			}
			if _, err := b.WriteTo(io.Discard); err == nil {
				t.Error("WriteTo succeeded despite the error")
			}
			r := b.Source()
			if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), tt.contain) {
				t.Errorf("Source().Next() = %v, want the builder error", err)
			}
			// A modifier after a failed call applies to nothing.
			b2 := NewBuilder(t0).Fork(100, 1)
			tt.build(b2)
			b2.Start(77)
			if b2.Events()[0].Start != 0 {
				t.Error("modifier after a failed call changed an earlier event")
			}
		})
	}
	// Modifiers without events are no-ops.
	b := NewBuilder(t0).Start(1).GUID("x").UID(1).Cwd("/").Parent(1, 2).Set(nil)
	if b.Err() != nil || len(b.Events()) != 0 {
		t.Error("modifiers on an empty builder")
	}
}

// roundTrip writes events with the Writer and reads them back.
func roundTrip(t *testing.T, evs []source.Event) []source.Event {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range evs {
		ok, err := w.Write(&evs[i])
		if err != nil || !ok {
			t.Fatalf("Write(%+v) = %v, %v", evs[i], ok, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, New("rt", &buf))
	if err != nil {
		t.Fatalf("%v\ntrace:\n%s", err, buf.String())
	}
	return got
}

func normalize(evs []source.Event) []source.Event {
	out := make([]source.Event, len(evs))
	for i, ev := range evs {
		ev.Time = ev.Time.UTC()
		ev.Origin = ""
		out[i] = ev
	}
	return out
}

func TestBuilderWriteToRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	b := NewBuilder(t0).
		Fork(100, 1).Start(99).
		Exec(100, "/usr/sbin/nginx", "nginx", "-g", "daemon off;").UID(0).Cwd("/").
		Fork(231, 100).
		Exec(231, "/bin/sh").Parent(100, 0).
		Connect(231, "tcp", "[2001:db8::7]:443").
		Send(231, "udp", "198.51.100.9:53", 42).
		Accept(100, "tcp", "192.0.2.1:80", "203.0.113.4:40000").
		DNS(231, "example.net", "192.0.2.7", "2001:db8::8").
		File(231, "write", "/tmp/x").
		After(time.Minute).Risk(231, "critical", "reverse shell").
		Assess(231, false, "").
		Exit(231, 137)
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	var buf bytes.Buffer
	n, err := b.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer %d)", n, err, buf.Len())
	}
	got, err := readAll(t, New("built.jsonl", &buf))
	if err != nil {
		t.Fatal(err)
	}
	if want := normalize(b.Events()); !reflect.DeepEqual(normalize(got), want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", normalize(got), want)
	}
}

func TestWriterRoundTripEveryKind(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	evs := []source.Event{
		{Kind: source.KindFork, PID: 10, PPID: 0, Start: 1},
		{Kind: source.KindExec, PID: 10, PPID: 1, Exe: "/bin/x", Argv: []string{"x", "", "a b"}, Cwd: "/tmp", UID: 1000, HasUID: true},
		{Kind: source.KindExec, PID: 11},
		{Kind: source.KindExit, PID: 10, Code: 0, HasCode: true},
		{Kind: source.KindExit, PID: 11},
		{Kind: source.KindConnect, PID: 10, Proto: source.ProtoTCP, Dst: netip.MustParseAddrPort("198.51.100.1:22"), Src: netip.MustParseAddrPort("192.0.2.2:5000")},
		{Kind: source.KindConnect, PID: 10, Proto: source.ProtoSCTP, Dst: netip.MustParseAddrPort("[2001:db8::1]:22")},
		{Kind: source.KindSend, PID: 10, Proto: source.ProtoUDP, Dst: netip.MustParseAddrPort("203.0.113.1:53"), Bytes: 512},
		{Kind: source.KindSend, PID: 10, Proto: source.Proto(99), Dst: netip.MustParseAddrPort("203.0.113.1:0")},
		{Kind: source.KindAccept, PID: 10, Proto: source.ProtoTCP, Dst: netip.MustParseAddrPort("203.0.113.1:3333"), Src: netip.MustParseAddrPort("[2001:db8::2]:80")},
		{Kind: source.KindRisk, PID: 10, Level: source.LevelLow},
		{Kind: source.KindRisk, PID: 10, Level: source.LevelCritical, Reason: "x\"y\n"},
		{Kind: source.KindAssess, PID: 10, Safe: true, Reason: "ok"},
		{Kind: source.KindAssess, PID: 10},
		{Kind: source.KindFile, PID: 10, Path: "/etc/passwd", Op: "delete"},
		{Kind: source.KindFile, PID: 10, Path: "/p"},
		{Kind: source.KindDNS, PID: 10, Query: "a.example", Answers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{Kind: source.KindDNS, PID: 10, Query: "b.example"},
	}
	seen := map[source.Kind]bool{}
	for i := range evs {
		evs[i].Time = t0.Add(time.Duration(i) * 1500 * time.Microsecond)
		seen[evs[i].Kind] = true
	}
	for k := source.KindFork; k <= source.KindDNS; k++ {
		if !seen[k] {
			t.Errorf("kind %v not covered", k)
		}
	}
	got := roundTrip(t, evs)
	if !reflect.DeepEqual(normalize(got), normalize(evs)) {
		for i := range evs {
			if i < len(got) && !reflect.DeepEqual(normalize(got[i:i+1]), normalize(evs[i:i+1])) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], evs[i])
			}
		}
		t.Fatalf("got %d events, want %d", len(got), len(evs))
	}
	// attr events are not written.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if ok, err := w.Write(&source.Event{Kind: source.KindAttr, PID: 1, Time: t0}); ok || err != nil {
		t.Errorf("attr Write = %v, %v", ok, err)
	}
	w.Flush()
	if buf.Len() != 0 {
		t.Errorf("attr written: %q", buf.String())
	}
}

func TestBuilderSourceIsReader(t *testing.T) {
	b := NewBuilder(time.Unix(0, 0)).Fork(2, 1)
	var s source.Source = b.Source()
	if s.Name() != "replay" {
		t.Fatal(s.Name())
	}
	s.Close()
	if _, err := s.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close = %v", err)
	}
}
