package replay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// checkReader reads everything from a reader over data and asserts the
// package's promises: no panic, every event valid and with an origin, every
// error a *ParseError naming an existing line, and every non-blank line
// accounted for.
func checkReader(t *testing.T, data []byte, opts ...Option) {
	lines := bytes.Count(data, []byte{'\n'})
	if len(data) > 0 && data[len(data)-1] != '\n' {
		lines++
	}
	r := New("fuzz", bytes.NewReader(data), append(opts, WithLenient(true))...)
	for i := 0; ; i++ {
		if i > len(data)+1 {
			t.Fatalf("more events than bytes")
		}
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("lenient Next: %v", err)
		}
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("accepted an invalid event %+v: %v", ev, verr)
		}
		if !strings.HasPrefix(ev.Origin, "fuzz:") {
			t.Fatalf("origin %q", ev.Origin)
		}
	}
	for _, err := range r.Errors() {
		var pe *ParseError
		if !errors.As(err, &pe) || pe.File != "fuzz" || pe.Line < 1 || pe.Line > lines {
			t.Fatalf("error %v is not a *ParseError on one of %d lines", err, lines)
		}
	}
	if st := r.Stats(); st.Lines != lines {
		t.Fatalf("Stats.Lines = %d, want %d", st.Lines, lines)
	}
	// Strict mode stops at the first error, which is the lenient first one.
	rs := New("fuzz", bytes.NewReader(data), opts...)
	var err error
	for i := 0; i <= len(data)+1; i++ {
		if _, err = rs.Next(); err != nil {
			break
		}
	}
	if errs := r.Errors(); len(errs) > 0 {
		if err == nil || err.Error() != errs[0].Error() {
			t.Fatalf("strict error %v, lenient first %v", err, errs[0])
		}
	} else if err != io.EOF {
		t.Fatalf("strict error %v with no lenient errors", err)
	}
}

func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for line := range bytes.SplitSeq(b, []byte{'\n'}) {
			f.Add(line)
		}
	}
}

func FuzzNative(f *testing.F) {
	addFiles(f, "testdata/example.jsonl")
	for _, s := range []string{
		`{"ts":"2026-11-22T10:00:00Z","type":"exec","pid":1,"cmdline":"a 'b c' \"d\\\"\" e\\ f"}`,
		`{"ts":"2026-11-22T10:00:00Z","type":"dns","pid":1,"query":"q","answers":["::1"]}`,
		`{"ts":"2026-11-22T10:00:00Z","type":"accept","pid":1,"dst":"[::1%eth0]:1"}`,
		`{"ts":"2026-11-22T10:00:00Z","type":"fork","pid":1,"ppid":1}`,
		`{"ts":"0000-01-01T00:00:00Z","type":"exit","pid":1}`,
		"{}\n\n#x\n[", "\xff\xfe", `{"pid":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReader(t, data, WithFormat(FormatNative))
		checkReader(t, data) // auto-detected
	})
}

func FuzzSysmon(f *testing.F) {
	addFiles(f, "testdata/sysmon_syslog.log", "testdata/seed002.jsonl")
	for _, s := range []string{
		xmlExec, xmlExec + xmlExec, "<Event>\n<System>\n</System>\n</Event>",
		"<Event><System><EventID>3</EventID></System><EventData><Data Name=\"UtcTime\">2022-11-24 08:30:01</Data>" +
			"<Data Name=\"ProcessId\">2</Data><Data Name=\"Initiated\">false</Data><Data Name=\"SourceIp\">::ffff:1.2.3.4</Data></EventData></Event>",
		"<Event><![CDATA[x]]></Event>", "<Event", "</Event><Event>", "<Event/>", `{"EventID":1,"a":{"b":{"c":{}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReader(t, data, WithFormat(FormatSysmon))
		checkReader(t, data, WithFormat(FormatSysmon), withMaxLine(64))
	})
}

// FuzzSplitCommandLine checks that quoting arguments and splitting the
// result gives them back, and that splitting never panics.
func FuzzSplitCommandLine(f *testing.F) {
	f.Add("a", "b c", `d'e"f\g`)
	f.Add("", "$x `y`", "\n\t")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		splitCommandLine(a + b + c)
		argv := []string{a, b, c}
		var q []string
		for _, s := range argv {
			q = append(q, quoteArg(s))
		}
		got, err := splitCommandLine(strings.Join(q, " "))
		if err != nil || !reflect.DeepEqual(got, argv) {
			t.Fatalf("split(join(quote(%q))) = %q, %v", argv, got, err)
		}
	})
}
