package replay

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// sysmonState is a Sysmon input's state across lines: an XML event that
// started on an earlier line and has not ended yet.
type sysmonState struct {
	open    bool   // an <Event> is being accumulated
	buf     []byte // lines joined by '\n'; the open event starts at buf[off]
	off     int
	accLine int // the line buf[off] is on
	scan    int // buf[off+1 : off+scan] holds no event start or end
}

func (s *sysmonState) accumulating() bool { return s.open }

var (
	eventEnd   = []byte("</Event>")
	eventStart = []byte("<Event")
)

// sysmonLine handles one line of a Sysmon trace (not blank or a comment,
// unless it continues an XML event).
func (d *lineDecoder) sysmonLine(line []byte) {
	s := &d.sys
	if s.open {
		if s.off > 0 {
			s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
			s.off = 0
		}
		s.buf = append(s.buf, '\n')
		s.buf = append(s.buf, line...)
		d.drainXML()
		return
	}
	t := trimSpace(line)
	if t[0] == '{' {
		d.sysmonJSON(t)
		return
	}
	i := indexEventStart(t)
	if i < 0 {
		if t[0] == '<' && !xmlNoise(t) {
			d.fail(d.line, &malformedError{"XML", errors.New("no <Event> element")})
			return
		}
		// Another program's syslog line, or an XML prologue.
		d.in.mu.Lock()
		d.in.st.OtherLines++
		d.in.mu.Unlock()
		return
	}
	s.open = true
	s.buf = append(s.buf[:0], t[i:]...)
	s.off, s.scan, s.accLine = 0, 1, d.line
	d.drainXML()
}

// xmlNoise reports whether t is XML around events that carries none: a
// declaration or an <Events> wrapper tag.
func xmlNoise(t []byte) bool {
	return bytes.HasPrefix(t, []byte("<?xml")) || bytes.Equal(t, []byte("<Events>")) ||
		bytes.Equal(t, []byte("</Events>")) || bytes.HasPrefix(t, []byte("<Events "))
}

// drainXML parses every complete event at the start of the open text,
// which always starts with "<Event". It searches only what was not searched
// before (with an overlap for a tag split across lines) and never moves
// bytes, so its cost is linear in the input.
func (d *lineDecoder) drainXML() {
	s := &d.sys
	for s.open {
		a := s.buf[s.off:]
		from := max(1, s.scan-len(eventEnd))
		end := bytes.Index(a[from:], eventEnd)
		if end >= 0 {
			end += from
		}
		if nxt := indexEventStart(a[from:]); nxt >= 0 && (end < 0 || nxt+from < end) {
			d.fail(s.accLine, &malformedError{"XML", errors.New("<Event> not closed before the next <Event>")})
			d.shift(nxt + from)
			continue
		}
		if end < 0 {
			s.scan = len(a)
			if len(a) > d.maxLine {
				d.fail(s.accLine, fmt.Errorf("%w: <Event> not closed within %d bytes", ErrLineTooLong, d.maxLine))
				d.closeAcc()
			}
			return
		}
		n := end + len(eventEnd)
		d.xmlEvent(a[:n], s.accLine)
		rest := a[n:]
		j := indexEventStart(rest)
		junk := rest
		if j >= 0 {
			junk = rest[:j]
		}
		if tj := trimSpace(junk); len(tj) > 0 && !xmlNoise(tj) {
			d.fail(s.accLine+bytes.Count(a[:n], []byte{'\n'}),
				&malformedError{"XML", fmt.Errorf("unexpected text after </Event>: %q", clip(tj))})
		}
		if j < 0 {
			d.closeAcc()
			return
		}
		d.shift(n + j)
	}
}

// shift drops the first k bytes of the open text.
func (d *lineDecoder) shift(k int) {
	s := &d.sys
	s.accLine += bytes.Count(s.buf[s.off:s.off+k], []byte{'\n'})
	s.off += k
	s.scan = 1
}

func (d *lineDecoder) closeAcc() {
	s := &d.sys
	s.open = false
	s.buf, s.off = s.buf[:0], 0
	if cap(s.buf) > 1<<20 {
		s.buf = nil
	}
}

// sysmonEOF reports an XML event still open at the end of the input.
func (d *lineDecoder) sysmonEOF() {
	if d.sys.open {
		d.fail(d.sys.accLine, &malformedError{"XML", errors.New("<Event> not closed at end of input")})
		d.closeAcc()
	}
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// indexEventStart returns the index of the first "<Event" start tag in b
// (not <EventData> or <EventID>), or -1.
func indexEventStart(b []byte) int {
	off := 0
	for {
		i := bytes.Index(b[off:], eventStart)
		if i < 0 {
			return -1
		}
		j := off + i + len(eventStart)
		if j >= len(b) {
			return -1
		}
		switch b[j] {
		case '>', ' ', '\t', '\r', '\n', '/':
			return off + i
		}
		off = j
	}
}

// xmlEvent is what the reader uses of a Sysmon XML event; element order
// and other elements do not matter.
type xmlEvent struct {
	System struct {
		EventID     string `xml:"EventID"`
		TimeCreated struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
	} `xml:"System"`
	Data []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"EventData>Data"`
}

func (d *lineDecoder) xmlEvent(seg []byte, line int) {
	var xe xmlEvent
	if err := xml.Unmarshal(seg, &xe); err != nil {
		d.fail(line, &malformedError{"XML", err})
		return
	}
	f := make(fields, len(xe.Data)+2)
	for _, dt := range xe.Data {
		k := strings.ToLower(dt.Name)
		if _, dup := f[k]; !dup {
			f[k] = dt.Value
		}
	}
	if xe.System.EventID == "" {
		d.fail(line, fieldErr("EventID", "missing"))
		return
	}
	f["eventid"] = xe.System.EventID
	if xe.System.TimeCreated.SystemTime != "" {
		f["\x00systemtime"] = xe.System.TimeCreated.SystemTime
	}
	d.sysmonEvent(f, line)
}

// sysmonJSON handles a JSON object with Sysmon field names in any case,
// flat or nested.
func (d *lineDecoder) sysmonJSON(t []byte) {
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		d.fail(d.line, jsonErr(err))
		return
	}
	if dec.More() {
		d.fail(d.line, &malformedError{"JSON", errors.New("text after the object")})
		return
	}
	f := make(fields, len(m))
	flatten(f, m)
	if _, ok := f["eventid"]; !ok {
		if v, ok := f["eventnum"]; ok {
			f["eventid"] = v
		} else {
			d.fail(d.line, fieldErr("EventID", "missing (neither EventID nor eventnum)"))
			return
		}
	}
	d.sysmonEvent(f, d.line)
}

// flatten adds m's scalar members to f under their lower-case names,
// members of nested objects after the outer ones; the first occurrence of a
// name wins.
func flatten(f fields, m map[string]any) {
	var nested []map[string]any
	for k, v := range m {
		k = strings.ToLower(k)
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = strconv.FormatBool(v)
		case map[string]any:
			nested = append(nested, v)
			continue
		default: // null, arrays
			continue
		}
		if _, dup := f[k]; !dup {
			f[k] = s
		}
	}
	for _, n := range nested {
		flatten(f, n)
	}
}

// fields holds a Sysmon event's fields by lower-case name.
type fields map[string]string

func (f fields) get(name string) (string, bool) {
	v, ok := f[strings.ToLower(name)]
	return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
}

// sysmonEvent maps one Sysmon event (its fields, event id in "eventid") to
// an event, counts it as skipped, or queues an error.
func (d *lineDecoder) sysmonEvent(f fields, line int) {
	idStr := strings.TrimSpace(f["eventid"])
	id, err := strconv.Atoi(idStr)
	if err != nil {
		d.fail(line, fieldErr("EventID", fmt.Sprintf("%q is not a number", idStr)))
		return
	}
	switch id {
	case 1, 3, 5, 11, 22, 23:
	default:
		d.in.mu.Lock()
		if d.in.st.Skipped == nil {
			d.in.st.Skipped = make(map[int]int)
		}
		d.in.st.Skipped[id]++
		d.in.mu.Unlock()
		return
	}
	ev, err := sysmonToEvent(f, id)
	if err != nil {
		d.fail(line, err)
		return
	}
	ev.Origin = d.origin(line)
	d.queue = append(d.queue, item{ev: ev})
}

// UtcTime layouts; the first is Sysmon's.
var sysmonTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
}

func parseSysmonTime(s string) (time.Time, bool) {
	for _, l := range sysmonTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func sysmonToEvent(f fields, id int) (source.Event, error) {
	var ev source.Event
	if s, ok := f.get("UtcTime"); ok {
		t, ok := parseSysmonTime(s)
		if !ok {
			return ev, fieldErr("UtcTime", fmt.Sprintf("%q is not a time like 2022-11-24 08:30:01.467", s))
		}
		ev.Time = t
	} else if s, ok := f.get("\x00systemtime"); ok {
		t, ok := parseSysmonTime(s)
		if !ok {
			return ev, fieldErr("TimeCreated", fmt.Sprintf("SystemTime %q is not an RFC 3339 time", s))
		}
		ev.Time = t
	} else {
		return ev, fieldErr("UtcTime", "missing")
	}
	pid, err := intField(f, "ProcessId", true)
	if err != nil {
		return ev, err
	}
	if pid <= 0 {
		return ev, fieldErr("ProcessId", fmt.Sprintf("must be > 0, have %d", pid))
	}
	ev.PID = pid
	ev.GUID, _ = f.get("ProcessGuid")
	if ev.GUID == "" {
		ev.GUID, _ = f.get("nodeid")
	}

	switch id {
	case 1:
		ev.Kind = source.KindExec
		ev.Exe, _ = f.get("Image")
		if s, ok := f.get("CommandLine"); ok {
			ev.Argv = splitLoose(s)
		}
		ev.Cwd, _ = f.get("CurrentDirectory")
		if ev.PPID, err = intField(f, "ParentProcessId", false); err != nil {
			return ev, err
		}
		if ev.PPID < 0 {
			return ev, fieldErr("ParentProcessId", fmt.Sprintf("must be >= 0, have %d", ev.PPID))
		}
		ev.ParentGUID, _ = f.get("ParentProcessGuid")
		if ev.ParentGUID == "" {
			ev.ParentGUID, _ = f.get("parentnodeid")
		}
		ev.ParentExe, _ = f.get("ParentImage")
		if s, ok := f.get("ParentCommandLine"); ok {
			ev.ParentArgv = splitLoose(s)
		}
		if u, ok := f.get("User"); ok {
			if n, err := strconv.Atoi(u); err == nil && n >= 0 {
				ev.UID, ev.HasUID = n, true
			} else if u == "root" {
				ev.UID, ev.HasUID = 0, true
			}
		}
	case 3:
		initiated := true
		if s, ok := f.get("Initiated"); ok {
			b, err := strconv.ParseBool(strings.ToLower(s))
			if err != nil {
				return ev, fieldErr("Initiated", fmt.Sprintf("%q is not true or false", s))
			}
			initiated = b
		}
		if s, ok := f.get("Protocol"); ok {
			p, err := source.ParseProto(s)
			if err != nil {
				return ev, fieldErr("Protocol", fmt.Sprintf("unknown protocol %q", s))
			}
			ev.Proto = p
		}
		src, srcOK, err := endpoint(f, "Source")
		if err != nil {
			return ev, err
		}
		dst, dstOK, err := endpoint(f, "Destination")
		if err != nil {
			return ev, err
		}
		if initiated {
			if !dstOK {
				return ev, fieldErr("DestinationIp", "missing")
			}
			ev.Kind, ev.Dst, ev.Src = source.KindConnect, dst, src
		} else {
			// Inbound: Sysmon's source is the remote initiator, its
			// destination the local listener.
			if !srcOK {
				return ev, fieldErr("SourceIp", "missing (the remote peer of an accepted connection)")
			}
			ev.Kind, ev.Dst, ev.Src = source.KindAccept, src, dst
		}
	case 5:
		ev.Kind = source.KindExit
	case 11, 23:
		ev.Kind, ev.Op = source.KindFile, "create"
		if id == 23 {
			ev.Op = "delete"
		}
		p, ok := f.get("TargetFilename")
		if !ok {
			return ev, fieldErr("TargetFilename", "missing")
		}
		ev.Path = p
	case 22:
		ev.Kind = source.KindDNS
		q, ok := f.get("QueryName")
		if !ok {
			return ev, fieldErr("QueryName", "missing")
		}
		ev.Query = q
		if s, ok := f.get("QueryResults"); ok {
			ev.Answers = parseQueryResults(s)
		}
	}
	if err := ev.Validate(); err != nil {
		return ev, &invalidError{err}
	}
	return ev, nil
}

// intField parses a decimal field; absent is 0 unless required.
func intField(f fields, name string, required bool) (int, error) {
	s, ok := f.get(name)
	if !ok {
		if required {
			return 0, fieldErr(name, "missing")
		}
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fieldErr(name, fmt.Sprintf("%q is not a number", s))
	}
	return n, nil
}

// endpoint reads <side>Ip and <side>Port; ok is false when the address is
// absent. A port that is absent is 0.
func endpoint(f fields, side string) (netip.AddrPort, bool, error) {
	s, ok := f.get(side + "Ip")
	if !ok {
		return netip.AddrPort{}, false, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, false, fieldErr(side+"Ip", fmt.Sprintf("%q is not an IP address", s))
	}
	var port uint64
	if ps, ok := f.get(side + "Port"); ok {
		if port, err = strconv.ParseUint(ps, 10, 16); err != nil {
			return netip.AddrPort{}, false, fieldErr(side+"Port", fmt.Sprintf("%q is not a port number", ps))
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), true, nil
}

// parseQueryResults takes the IP addresses out of a Sysmon QueryResults
// value such as "::ffff:93.184.216.34;type:  5 example.net;": parts are
// separated by ';', IPv4-mapped addresses are unmapped, and parts that are
// not an address (CNAME records as "type: 5 name") are ignored.
func parseQueryResults(s string) []netip.Addr {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" || strings.HasPrefix(part, "type:") {
			continue
		}
		if ip, err := netip.ParseAddr(part); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// splitLoose splits a command line like a shell; Sysmon joins arguments
// with blanks without quoting them, so one that does not split (an
// argument with a lone quote) is split at blanks instead.
func splitLoose(s string) []string {
	if argv, err := splitCommandLine(s); err == nil {
		return argv
	}
	return strings.Fields(s)
}
