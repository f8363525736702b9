package replay

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// readAll reads r to the end and closes it; it returns the events and the
// first error other than io.EOF.
func readAll(t testing.TB, r *Reader) ([]source.Event, error) {
	t.Helper()
	defer r.Close()
	var evs []source.Event
	for i := 0; i < 1_000_000; i++ {
		ev, err := r.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	t.Fatal("reader does not end")
	return nil, nil
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestNativeGood(t *testing.T) {
	t0 := mustTime(t, "2026-11-22T10:00:00Z")
	tests := []struct {
		name string
		line string
		want source.Event
	}{
		{"fork", `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}`,
			source.Event{Time: t0, Kind: source.KindFork, PID: 100, PPID: 1}},
		{"fork ppid 0 and start", `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":0,"start":12345}`,
			source.Event{Time: t0, Kind: source.KindFork, PID: 100, Start: 12345}},
		{"exec argv", `{"ts":"2026-11-22T10:00:00.1Z","type":"exec","pid":100,"ppid":7,"exe":"/usr/sbin/nginx","argv":["nginx","-g","daemon off;"],"uid":33,"cwd":"/"}`,
			source.Event{Time: t0.Add(100 * time.Millisecond), Kind: source.KindExec, PID: 100, PPID: 7, Exe: "/usr/sbin/nginx",
				Argv: []string{"nginx", "-g", "daemon off;"}, UID: 33, HasUID: true, Cwd: "/"}},
		{"exec cmdline", `{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":100,"exe":"/bin/sh","cmdline":"sh -c 'echo \"a b\"' x\\ y \"q\\\"d\" ''"}`,
			source.Event{Time: t0, Kind: source.KindExec, PID: 100, Exe: "/bin/sh", Argv: []string{"sh", "-c", `echo "a b"`, "x y", `q"d`, ""}}},
		{"exit code", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":100,"code":3}`,
			source.Event{Time: t0, Kind: source.KindExit, PID: 100, Code: 3, HasCode: true}},
		{"exit no code", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":100}`,
			source.Event{Time: t0, Kind: source.KindExit, PID: 100}},
		{"connect v4", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"proto":"tcp","dst":"198.51.100.7:443","src":"192.0.2.1:40000"}`,
			source.Event{Time: t0, Kind: source.KindConnect, PID: 100, Proto: source.ProtoTCP,
				Dst: netip.MustParseAddrPort("198.51.100.7:443"), Src: netip.MustParseAddrPort("192.0.2.1:40000")}},
		{"send v6 bytes", `{"ts":"2026-11-22T10:00:00Z","type":"send","pid":100,"proto":"udp","dst":"[2001:db8::1]:53","bytes":64}`,
			source.Event{Time: t0, Kind: source.KindSend, PID: 100, Proto: source.ProtoUDP,
				Dst: netip.MustParseAddrPort("[2001:db8::1]:53"), Bytes: 64}},
		{"accept", `{"ts":"2026-11-22T10:00:00Z","type":"accept","pid":100,"proto":"tcp","src":"192.0.2.1:80","dst":"203.0.113.9:51000"}`,
			source.Event{Time: t0, Kind: source.KindAccept, PID: 100, Proto: source.ProtoTCP,
				Src: netip.MustParseAddrPort("192.0.2.1:80"), Dst: netip.MustParseAddrPort("203.0.113.9:51000")}},
		{"risk", `{"ts":"2026-11-22T10:05:00Z","type":"risk","pid":231,"level":"high","reason":"reverse shell"}`,
			source.Event{Time: t0.Add(5 * time.Minute), Kind: source.KindRisk, PID: 231, Level: source.LevelHigh, Reason: "reverse shell"}},
		{"assess", `{"ts":"2026-11-22T10:00:00Z","type":"assess","pid":231,"safe":true,"reason":"clean"}`,
			source.Event{Time: t0, Kind: source.KindAssess, PID: 231, Safe: true, Reason: "clean"}},
		{"file", `{"ts":"2026-11-22T10:00:00Z","type":"file","pid":231,"path":"/tmp/x","op":"create"}`,
			source.Event{Time: t0, Kind: source.KindFile, PID: 231, Path: "/tmp/x", Op: "create"}},
		{"dns", `{"ts":"2026-11-22T10:00:00Z","type":"dns","pid":231,"query":"example.net","answers":["192.0.2.5","2001:db8::5"]}`,
			source.Event{Time: t0, Kind: source.KindDNS, PID: 231, Query: "example.net",
				Answers: []netip.Addr{netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("2001:db8::5")}}},
		{"unknown and foreign fields ignored", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":100,"dst":"junk","colour":"blue","nested":{"a":[1]}}`,
			source.Event{Time: t0, Kind: source.KindExit, PID: 100}},
		{"time zone offset", `{"ts":"2026-11-22T11:00:00+01:00","type":"exit","pid":100}`,
			source.Event{Time: t0, Kind: source.KindExit, PID: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "# a comment\n\n   \n" + tt.line + "\r\n"
			evs, err := readAll(t, New("t.jsonl", strings.NewReader(in), WithFormat(FormatNative)))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			got := evs[0]
			if got.Origin != "t.jsonl:4" {
				t.Errorf("Origin = %q, want t.jsonl:4", got.Origin)
			}
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			got.Origin, got.Time = "", time.Time{}
			tt.want.Time = time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestNativeBad(t *testing.T) {
	const pre = `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}` + "\n# comment\n\n"
	tests := []struct {
		name    string
		line    string
		field   string // the FieldError's field, or ""
		is      error
		contain string
	}{
		{"malformed JSON", `{"ts":"2026-11-22T10:00:00Z","type":"fork",`, "", ErrMalformed, "malformed JSON"},
		{"trailing garbage", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1} x`, "", ErrMalformed, "malformed JSON"},
		{"not an object", `[1,2]`, "", ErrMalformed, "want an object"},
		{"plain text", `hello world`, "", ErrMalformed, "malformed JSON"},
		{"unknown type", `{"ts":"2026-11-22T10:00:00Z","type":"teleport","pid":100}`, "type", ErrInvalid, `"teleport"`},
		{"attr type not in format", `{"ts":"2026-11-22T10:00:00Z","type":"attr","pid":100}`, "type", ErrInvalid, `"attr"`},
		{"missing type", `{"ts":"2026-11-22T10:00:00Z","pid":100}`, "type", ErrInvalid, "missing"},
		{"missing ts", `{"type":"exit","pid":100}`, "ts", ErrInvalid, "missing"},
		{"bad ts", `{"ts":"yesterday","type":"exit","pid":100}`, "ts", ErrInvalid, `"yesterday"`},
		{"ts without zone", `{"ts":"2026-11-22T10:00:00","type":"exit","pid":100}`, "ts", ErrInvalid, "RFC 3339"},
		{"ts wrong JSON type", `{"ts":12,"type":"exit","pid":100}`, "ts", ErrInvalid, "number"},
		{"missing pid", `{"ts":"2026-11-22T10:00:00Z","type":"exit"}`, "pid", ErrInvalid, "missing"},
		{"pid 0", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":0}`, "pid", ErrInvalid, "have 0"},
		{"pid negative", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":-4}`, "pid", ErrInvalid, "have -4"},
		{"pid string", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":"12"}`, "pid", ErrInvalid, "string"},
		{"pid fraction", `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1.5}`, "pid", ErrInvalid, "number"},
		{"fork missing ppid", `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100}`, "ppid", ErrInvalid, "missing"},
		{"fork self parent", `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":100}`, "", ErrInvalid, "names itself"},
		{"fork negative ppid", `{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":-1}`, "", ErrInvalid, "ppid must be >= 0"},
		{"exec argv and cmdline", `{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":100,"argv":["a"],"cmdline":"a"}`, "cmdline", ErrInvalid, "together"},
		{"exec bad cmdline", `{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":100,"cmdline":"sh -c 'oops"}`, "cmdline", ErrInvalid, "unterminated single quote"},
		{"exec argv not strings", `{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":100,"argv":[1]}`, "argv", ErrInvalid, "number"},
		{"exec negative uid", `{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":100,"uid":-1}`, "uid", ErrInvalid, "-1"},
		{"connect missing dst", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"proto":"tcp"}`, "dst", ErrInvalid, "missing"},
		{"connect bad dst", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"proto":"tcp","dst":"198.51.100.7"}`, "dst", ErrInvalid, `"198.51.100.7"`},
		{"connect v6 without brackets", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"dst":"2001:db8::1:443"}`, "dst", ErrInvalid, `"2001:db8::1:443"`},
		{"connect bad port", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"dst":"198.51.100.7:99999"}`, "dst", ErrInvalid, "99999"},
		{"connect bad src", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"dst":"198.51.100.7:1","src":"x"}`, "src", ErrInvalid, `"x"`},
		{"connect bad proto", `{"ts":"2026-11-22T10:00:00Z","type":"connect","pid":100,"proto":"carrier-pigeon","dst":"198.51.100.7:1"}`, "proto", ErrInvalid, "carrier-pigeon"},
		{"send missing dst", `{"ts":"2026-11-22T10:00:00Z","type":"send","pid":100}`, "dst", ErrInvalid, "missing"},
		{"send negative bytes", `{"ts":"2026-11-22T10:00:00Z","type":"send","pid":100,"dst":"198.51.100.7:1","bytes":-1}`, "bytes", ErrInvalid, "-1"},
		{"accept missing dst", `{"ts":"2026-11-22T10:00:00Z","type":"accept","pid":100,"src":"192.0.2.1:80"}`, "dst", ErrInvalid, "missing"},
		{"risk missing level", `{"ts":"2026-11-22T10:00:00Z","type":"risk","pid":100}`, "level", ErrInvalid, "missing"},
		{"risk bad level", `{"ts":"2026-11-22T10:00:00Z","type":"risk","pid":100,"level":"apocalyptic"}`, "level", ErrInvalid, "apocalyptic"},
		{"risk level none", `{"ts":"2026-11-22T10:00:00Z","type":"risk","pid":100,"level":"none"}`, "level", ErrInvalid, `"none"`},
		{"assess missing safe", `{"ts":"2026-11-22T10:00:00Z","type":"assess","pid":100,"reason":"x"}`, "safe", ErrInvalid, "missing"},
		{"assess safe string", `{"ts":"2026-11-22T10:00:00Z","type":"assess","pid":100,"safe":"yes"}`, "safe", ErrInvalid, "string"},
		{"file missing path", `{"ts":"2026-11-22T10:00:00Z","type":"file","pid":100,"op":"create"}`, "path", ErrInvalid, "missing"},
		{"file bad op", `{"ts":"2026-11-22T10:00:00Z","type":"file","pid":100,"path":"/x","op":"chmod"}`, "op", ErrInvalid, "chmod"},
		{"dns missing query", `{"ts":"2026-11-22T10:00:00Z","type":"dns","pid":100}`, "query", ErrInvalid, "missing"},
		{"dns bad answer", `{"ts":"2026-11-22T10:00:00Z","type":"dns","pid":100,"query":"a","answers":["192.0.2.1","nope"]}`, "answers[1]", ErrInvalid, `"nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := pre + tt.line + "\n" + `{"ts":"2026-11-22T10:00:01Z","type":"exit","pid":100}` + "\n"
			// Strict: one event, then the error for line 4, sticky.
			r := New("bad.jsonl", strings.NewReader(in))
			evs, err := readAll(t, r)
			if len(evs) != 1 {
				t.Errorf("strict: got %d events before the error, want 1", len(evs))
			}
			checkParseError(t, err, "bad.jsonl", 4, tt.field, tt.is, tt.contain)
			if _, err2 := r.Next(); err2 == nil || err2 == io.EOF {
				t.Errorf("after the error Next returned %v", err2)
			}
			if errs := r.Errors(); len(errs) != 1 || errs[0] != err {
				t.Errorf("strict Errors() = %v, want [%v]", errs, err)
			}
			if st := r.Stats(); st.ParseErrors != 1 {
				t.Errorf("strict ParseErrors = %d, want 1", st.ParseErrors)
			}

			// Lenient: both good events, the error kept and counted.
			r = New("bad.jsonl", strings.NewReader(in), WithLenient(true))
			evs, err = readAll(t, r)
			if err != nil {
				t.Fatalf("lenient: %v", err)
			}
			if len(evs) != 2 || evs[1].Origin != "bad.jsonl:5" {
				t.Errorf("lenient: got %v, want 2 events, the second from line 5", evs)
			}
			errs := r.Errors()
			if len(errs) != 1 {
				t.Fatalf("lenient Errors() = %v, want one", errs)
			}
			checkParseError(t, errs[0], "bad.jsonl", 4, tt.field, tt.is, tt.contain)
			st := r.Stats()
			if st.ParseErrors != 1 || st.Events != 2 || st.Lines != 5 {
				t.Errorf("lenient Stats = %+v, want 1 error, 2 events, 5 lines", st)
			}
		})
	}
}

func checkParseError(t *testing.T, err error, file string, line int, field string, is error, contain string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if pe.File != file || pe.Line != line {
		t.Errorf("error at %s:%d, want %s:%d (%v)", pe.File, pe.Line, file, line, err)
	}
	if !strings.HasPrefix(err.Error(), file+":"+strconv.Itoa(line)+": ") {
		t.Errorf("error text %q does not start with %s:%d: ", err, file, line)
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("error %v is not %v", err, is)
	}
	if field != "" {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("error %v does not name field %q", err, field)
		}
	}
	if !strings.Contains(err.Error(), contain) {
		t.Errorf("error %q does not contain %q", err, contain)
	}
}

func TestSplitCommandLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"a b  c", []string{"a", "b", "c"}, false},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}, false},
		{`'it'\''s'`, []string{"it's"}, false},
		{`"a\"b\\c\$d\x"`, []string{`a"b\c$d\x`}, false},
		{`a\ b`, []string{"a b"}, false},
		{`''`, []string{""}, false},
		{`x''y`, []string{"xy"}, false},
		{"a\\\nb", []string{"ab"}, false},
		{`'unterminated`, nil, true},
		{`"unterminated`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommandLine(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("split(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLongLine(t *testing.T) {
	long := `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1,"pad":"` + strings.Repeat("x", 300) + `"}`
	good := `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":2}`
	in := good + "\n" + long + "\n" + good + "\n" + long // last line without newline
	r := New("long", strings.NewReader(in), WithLenient(true), withMaxLine(200))
	evs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Origin != "long:3" {
		t.Fatalf("got %+v", evs)
	}
	errs := r.Errors()
	if len(errs) != 2 {
		t.Fatalf("errors %v", errs)
	}
	checkParseError(t, errs[0], "long", 2, "", ErrLineTooLong, "line too long")
	checkParseError(t, errs[1], "long", 4, "", ErrLineTooLong, "line too long")
}

func TestClose(t *testing.T) {
	r := New("t", strings.NewReader(`{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":2}`))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.Name() != "replay" {
		t.Fatal(r.Name())
	}
	var _ source.Source = r
}
