package replay

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Format is a trace format.
type Format uint8

// Trace formats.
const (
	// FormatAuto detects the format of each input from its first record
	// that decides it (see the package documentation).
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

// detect guesses the format from one record of an input. A JSON object
// with a "type" member (exact spelling) is native; one with an event id
// member (EventID or eventnum, any case) or an "Event" object is Sysmon; a
// line carrying an XML <Event>, an XML declaration or an <Events> wrapper is
// Sysmon. decisive is false for anything else (say, another program's
// syslog line): the reader then looks at the next record, and settles on
// native (whose parser reports the lines) if none decides.
func detect(t []byte) (f Format, decisive bool) {
	if len(t) > 0 && t[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(t, &m) == nil {
			if _, ok := m["type"]; ok {
				return FormatNative, true
			}
			for k := range m {
				switch strings.ToLower(k) {
				case "eventid", "eventnum", "event":
					return FormatSysmon, true
				}
			}
		}
		return FormatNative, true
	}
	if indexEventStart(t) >= 0 || xmlNoise(t) {
		return FormatSysmon, true
	}
	return FormatNative, false
}
