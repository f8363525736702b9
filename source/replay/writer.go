package replay

import (
	"bufio"
	"encoding/json"
	"io"
	"net/netip"
	"time"

	"github.com/procwall/procwall/source"
)

// nativeEvent is the native trace format's JSON object (spec/events.md).
// Writers emit only documented fields.
type nativeEvent struct {
	TS      string       `json:"ts"`
	Type    string       `json:"type"`
	PID     int          `json:"pid"`
	Start   uint64       `json:"start,omitempty"`
	PPID    *int         `json:"ppid,omitempty"`
	Exe     string       `json:"exe,omitempty"`
	Argv    []string     `json:"argv,omitempty"`
	UID     *int         `json:"uid,omitempty"`
	Cwd     string       `json:"cwd,omitempty"`
	Code    *int         `json:"code,omitempty"`
	Proto   string       `json:"proto,omitempty"`
	Dst     string       `json:"dst,omitempty"`
	Src     string       `json:"src,omitempty"`
	Bytes   int64        `json:"bytes,omitempty"`
	Level   string       `json:"level,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Safe    *bool        `json:"safe,omitempty"`
	Path    string       `json:"path,omitempty"`
	Op      string       `json:"op,omitempty"`
	Query   string       `json:"query,omitempty"`
	Answers []netip.Addr `json:"answers,omitempty"`
}

// Writer writes events in the native JSON-lines trace format, so that what
// a live source observed can be replayed. It is not safe for concurrent
// use.
type Writer struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewWriter returns a Writer on w. Call Flush when done.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{w: bw, enc: enc}
}

// Write writes one event as one line and reports true. Events of kind attr
// (attribute changes: the native format has no type for them) are not
// written, and Write reports false.
func (w *Writer) Write(ev *source.Event) (bool, error) {
	ne, ok := toNative(ev)
	if !ok {
		return false, nil
	}
	return true, w.enc.Encode(&ne)
}

// Flush writes buffered lines to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

func toNative(ev *source.Event) (nativeEvent, bool) {
	if ev.Kind == source.KindAttr || ev.Kind == source.KindUnknown {
		return nativeEvent{}, false
	}
	ne := nativeEvent{
		TS:    ev.Time.UTC().Format(time.RFC3339Nano),
		Type:  ev.Kind.String(),
		PID:   ev.PID,
		Start: ev.Start,
	}
	switch ev.Kind {
	case source.KindFork:
		ppid := ev.PPID
		ne.PPID = &ppid
	case source.KindExec:
		if ev.PPID > 0 {
			ppid := ev.PPID
			ne.PPID = &ppid
		}
		ne.Exe, ne.Argv, ne.Cwd = ev.Exe, ev.Argv, ev.Cwd
		if ev.HasUID {
			uid := ev.UID
			ne.UID = &uid
		}
	case source.KindExit:
		if ev.HasCode {
			code := ev.Code
			ne.Code = &code
		}
	case source.KindConnect, source.KindSend, source.KindAccept:
		ne.Proto = ev.Proto.String()
		if ev.Dst.IsValid() {
			ne.Dst = ev.Dst.String()
		}
		if ev.Src.IsValid() {
			ne.Src = ev.Src.String()
		}
		ne.Bytes = ev.Bytes
	case source.KindRisk:
		ne.Level = ev.Level.String()
		ne.Reason = ev.Reason
	case source.KindAssess:
		safe := ev.Safe
		ne.Safe = &safe
		ne.Reason = ev.Reason
	case source.KindFile:
		ne.Path, ne.Op = ev.Path, ev.Op
	case source.KindDNS:
		ne.Query, ne.Answers = ev.Query, ev.Answers
	}
	return ne, true
}
