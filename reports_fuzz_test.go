package procwall

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// FuzzReportLine drives the report socket's line protocol with arbitrary
// input: no panic, and every accepted line yields well-formed records.
func FuzzReportLine(f *testing.F) {
	f.Add(`{"ts":"2026-11-22T10:05:00Z","type":"risk","pid":231,"level":"high","reason":"x"}`)
	f.Add(`{"ts":"2026-11-22T10:09:00Z","type":"assess","pid":100,"safe":true}`)
	f.Add(`{"ts":"2026-11-22T10:09:00Z","type":"assess","pid":100}`)
	f.Add(`{"ts":"bad","type":"risk","pid":-1,"level":"none"}`)
	f.Add(`{"type":"fork"}`)
	f.Add("\x00\xff{")
	f.Fuzz(func(t *testing.T, line string) {
		p, err := New()
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		for _, ev := range []source.Event{
			{Time: t0, Kind: source.KindFork, PID: 100, PPID: 1},
			{Time: t0, Kind: source.KindExec, PID: 100, Exe: "/usr/sbin/nginx"},
			{Time: t0, Kind: source.KindConnect, PID: 100, Proto: source.ProtoTCP},
			{Time: t0, Kind: source.KindFork, PID: 231, PPID: 100},
		} {
			_ = p.Handle(context.Background(), ev)
		}
		s := &ReportServer{log: slog.New(slog.DiscardHandler)}
		recs, err := s.handleLine(context.Background(), p, Cred{PID: 1}, 1, line)
		if err != nil {
			return
		}
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("record does not marshal: %v", err)
			}
			var m map[string]any
			if json.Unmarshal(b, &m) != nil || m["action"] != r.RecordAction() {
				t.Fatalf("record %s", b)
			}
		}
	})
}
