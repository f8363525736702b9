package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

const benchEvents = 10000

// nativeTrace returns a native trace of n events of mixed kinds.
func nativeTrace(tb testing.TB, n int) []byte {
	b := NewBuilder(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	for i := 0; i < (n+4)/5; i++ { // five events per process
		pid := 1000 + i
		b.Fork(pid, 1).Exec(pid, "/usr/bin/curl", "curl", "-s", "http://198.51.100.7/x").UID(33).Cwd("/var/www").
			Connect(pid, "tcp", "198.51.100.7:80").DNS(pid, "example.net", "192.0.2.1").Exit(pid, 0)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// sysmonTrace returns a syslog file of n Sysmon events of mixed ids.
func sysmonTrace(n int) []byte {
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		ts := fmt.Sprintf("2022-11-24 08:%02d:%02d.%03d", i/60000%60, i/1000%60, i%1000)
		pid := 1000 + i/3
		fmt.Fprintf(&buf, "Nov 24 08:30:01 web1 sysmon: <Event><System><Provider Name=\"Linux-Sysmon\" Guid=\"{ff032593-a8d3-4f13-b0d6-01fc615a0f97}\"/>"+
			"<EventID>%d</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"+
			"<TimeCreated SystemTime=\"2022-11-24T08:30:01.468923000Z\"/><EventRecordID>%d</EventRecordID><Correlation/>"+
			"<Execution ProcessID=\"1001\" ThreadID=\"1001\"/><Channel>Linux-Sysmon/Operational</Channel><Computer>web1</Computer>"+
			"<Security UserId=\"0\"/></System><EventData><Data Name=\"RuleName\">-</Data><Data Name=\"UtcTime\">%s</Data>"+
			"<Data Name=\"ProcessGuid\">{4d5b0b3a-2b39-637f-d1b2-%012d}</Data><Data Name=\"ProcessId\">%d</Data><Data Name=\"Image\">/usr/bin/curl</Data>",
			[]int{1, 3, 5}[i%3], i, ts, pid, pid)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&buf, "<Data Name=\"CommandLine\">curl -s http://198.51.100.7/x</Data><Data Name=\"CurrentDirectory\">/var/www</Data>"+
				"<Data Name=\"User\">www-data</Data><Data Name=\"ParentProcessGuid\">{4d5b0b3a-2b00-637f-a1b2-5a1a3f550000}</Data>"+
				"<Data Name=\"ParentProcessId\">1</Data><Data Name=\"ParentImage\">/usr/sbin/nginx</Data><Data Name=\"ParentCommandLine\">nginx</Data>")
		case 1:
			fmt.Fprintf(&buf, "<Data Name=\"Protocol\">tcp</Data><Data Name=\"Initiated\">true</Data><Data Name=\"SourceIp\">192.0.2.10</Data>"+
				"<Data Name=\"SourcePort\">49152</Data><Data Name=\"DestinationIp\">198.51.100.7</Data><Data Name=\"DestinationPort\">80</Data>")
		}
		buf.WriteString("</EventData></Event>\n")
	}
	return buf.Bytes()
}

func benchRead(b *testing.B, data []byte, opts ...Option) {
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		r := New("bench", bytes.NewReader(data), opts...)
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNative reads a native trace (10,000 events) to the end.
func BenchmarkNative(b *testing.B) { benchRead(b, nativeTrace(b, benchEvents)) }

// BenchmarkNativeBaseline is the floor for BenchmarkNative: scanning the
// same lines and decoding each into a map with encoding/json, no checks.
func BenchmarkNativeBaseline(b *testing.B) {
	data := nativeTrace(b, benchEvents)
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSysmon reads a syslog file of 10,000 Sysmon XML events.
func BenchmarkSysmon(b *testing.B) { benchRead(b, sysmonTrace(benchEvents)) }

// BenchmarkSysmonBaseline is the floor for BenchmarkSysmon: scanning the
// same lines and xml.Unmarshal of each event, no mapping.
func BenchmarkSysmonBaseline(b *testing.B) {
	data := sysmonTrace(benchEvents)
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var xe xmlEvent
			if err := xml.Unmarshal(line[strings.Index(string(line), "<Event"):], &xe); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMerge4 merges four native traces of 2,500 events each.
func BenchmarkMerge4(b *testing.B) {
	data := nativeTrace(b, benchEvents/4)
	b.SetBytes(4 * int64(len(data)))
	n := 0
	for b.Loop() {
		r := Merge(New("a", bytes.NewReader(data)), New("b", bytes.NewReader(data)),
			New("c", bytes.NewReader(data)), New("d", bytes.NewReader(data)))
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestBenchTracesValid(t *testing.T) {
	for name, data := range map[string][]byte{"native": nativeTrace(t, 100), "sysmon": sysmonTrace(100)} {
		r := New(name, bytes.NewReader(data))
		evs, err := readAll(t, r)
		if err != nil || len(evs) < 100 {
			t.Errorf("%s: %d events, %v", name, len(evs), err)
		}
	}
}
