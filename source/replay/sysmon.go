package replay

import (
	"bytes"
	"errors"
)

// sysmonState is a Sysmon input's state across lines.
type sysmonState struct{}

func (s *sysmonState) accumulating() bool { return false }

func (d *lineDecoder) sysmonEOF() {}

func (d *lineDecoder) sysmonLine(line []byte) {
	d.fail(d.line, errors.New("sysmon format: not implemented yet"))
}

// indexEventStart returns the index of the first "<Event" start tag in b
// (not <EventData> or <EventID>), or -1.
func indexEventStart(b []byte) int {
	off := 0
	for {
		i := bytes.Index(b[off:], []byte("<Event"))
		if i < 0 {
			return -1
		}
		j := off + i + len("<Event")
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
