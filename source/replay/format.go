package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Format is a trace format.
type Format uint8

// Trace formats.
const (
	// FormatAuto detects the format of each input from its first record
	// (the first line that is neither blank nor a # comment).
	FormatAuto Format = iota
	// FormatNative is procwall's JSON-lines format (spec/events.md).
	FormatNative
	// FormatSysmon is Sysmon for Linux: syslog lines with an embedded XML
	// <Event>, bare XML events, or JSON objects with Sysmon field names.
	FormatSysmon
)

// String returns "auto", "native" or "sysmon".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatNative:
		return "native"
	case FormatSysmon:
		return "sysmon"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ParseFormat parses "auto", "native" or "sysmon" (any letter case).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return FormatAuto, nil
	case "native", "json", "jsonl":
		return FormatNative, nil
	case "sysmon":
		return FormatSysmon, nil
	}
	return FormatAuto, fmt.Errorf("unknown trace format %q (want auto, native or sysmon)", s)
}

// detect guesses the format from an input's first record. A JSON object
// with a "type" member (exact spelling) is native; one with an event id
// member (EventID or eventnum, any case) is Sysmon; a line carrying an XML
// <Event> is Sysmon. Anything else is read as native, whose parser then
// reports the line.
func detect(line []byte) Format {
	t := bytes.TrimSpace(line)
	if len(t) > 0 && t[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(t, &m) == nil {
			if _, ok := m["type"]; ok {
				return FormatNative
			}
			for k := range m {
				switch strings.ToLower(k) {
				case "eventid", "eventnum", "event":
					return FormatSysmon
				}
			}
		}
		return FormatNative
	}
	if indexEventStart(t) >= 0 || bytes.HasPrefix(t, []byte("<?xml")) || bytes.HasPrefix(t, []byte("<Events")) {
		return FormatSysmon
	}
	return FormatNative
}
