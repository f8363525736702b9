package rules

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// Action is a verdict's action.
type Action uint8

// Actions. The zero value is not an action.
const (
	ActionNone Action = iota
	Allow
	Deny
	Ask
)

var actionNames = [...]string{"", "allow", "deny", "ask"}

// String returns "allow", "deny" or "ask".
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// ParseAction parses "allow", "deny" or "ask".
func ParseAction(s string) (Action, error) {
	for i := Allow; int(i) < len(actionNames); i++ {
		if actionNames[i] == s {
			return i, nil
		}
	}
	return ActionNone, fmt.Errorf("unknown action %q (want allow, deny or ask)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	*a = v
	return err
}

// Point is a monitor-point type.
type Point uint8

// Monitor-point types.
const (
	// PointAuto asks the engine to classify the request: a target under
	// the self-protection paths makes it PointSelf, anything else
	// PointGeneral.
	PointAuto Point = iota
	// PointGeneral: process execution, outbound connections, writes to
	// persistence locations.
	PointGeneral
	// PointSelf: events touching procwall's own files and processes.
	PointSelf
	numPoints
)

// String returns "general" or "self_protection".
func (p Point) String() string {
	switch p {
	case PointGeneral:
		return "general"
	case PointSelf:
		return "self_protection"
	case PointAuto:
		return "auto"
	}
	return fmt.Sprintf("point(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Point) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Point) UnmarshalText(b []byte) error {
	v, err := parsePoint(string(b))
	*p = v
	return err
}

func parsePoint(s string) (Point, error) {
	switch s {
	case "general":
		return PointGeneral, nil
	case "self_protection":
		return PointSelf, nil
	}
	return PointAuto, fmt.Errorf("unknown monitor-point type %q (want general or self_protection)", s)
}

// Op is the operation a request asks about.
type Op uint8

// Operations.
const (
	OpNone    Op = iota
	OpExec       // a program is started (Exe is the program)
	OpConnect    // an outbound connection or datagram (Dst)
	OpOpen       // a file is opened (Path); access mode not known
	OpWrite      // a file is written, created or deleted (Path)
	numOps
)

var opNames = [...]string{"", "exec", "connect", "open", "write"}

// String returns the operation's name.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// MarshalText implements encoding.TextMarshaler.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Op) UnmarshalText(b []byte) error {
	v, err := ParseOp(string(b))
	*o = v
	return err
}

// ParseOp parses an operation name.
func ParseOp(s string) (Op, error) {
	for i := OpExec; i < numOps; i++ {
		if opNames[i] == s {
			return i, nil
		}
	}
	return OpNone, fmt.Errorf("unknown op %q (want exec, connect, open or write)", s)
}

// Request is one real-time protection event to judge: the engine's input.
type Request struct {
	Time  time.Time
	Point Point // PointAuto: classified by the engine
	Op    Op
	PID   int
	Start uint64
	// Exe is the executable whose provenance is judged: the program of the
	// process, or for OpExec the program being started. Digest, signature
	// and process filters apply to it.
	Exe       string
	Argv      []string
	ParentExe string
	UID       int
	HasUID    bool
	User      string // user name, if known (filled from UID when empty)
	// Path is the target file (OpOpen, OpWrite; for OpExec the program).
	Path string
	// Dst is the destination of OpConnect.
	Dst   netip.AddrPort
	Proto source.Proto
	// ExeFile, when set, is an open descriptor of Exe used for hashing
	// instead of opening Exe by name (fanotify hands one over; reading it
	// never raises a new permission event). The engine does not close it.
	ExeFile *os.File
}

// FromEvent converts a source event to a request: exec → OpExec, connect
// and send → OpConnect, file → OpWrite. Other kinds are not real-time
// protection events and give an error.
func FromEvent(ev *source.Event) (Request, error) {
	r := Request{
		Time: ev.Time, PID: ev.PID, Start: ev.Start, Exe: ev.Exe, Argv: ev.Argv,
		ParentExe: ev.ParentExe, UID: ev.UID, HasUID: ev.HasUID,
	}
	switch ev.Kind {
	case source.KindExec:
		r.Op = OpExec
		r.Path = ev.Exe
		if ev.Exe == "" {
			return r, fmt.Errorf("rules: exec event of pid %d has no exe", ev.PID)
		}
	case source.KindConnect, source.KindSend:
		r.Op = OpConnect
		r.Dst = ev.Dst
		r.Proto = ev.Proto
		if !ev.Dst.IsValid() {
			return r, fmt.Errorf("rules: %v event of pid %d has no dst", ev.Kind, ev.PID)
		}
	case source.KindFile:
		r.Op = OpWrite
		r.Path = ev.Path
		if ev.Path == "" {
			return r, fmt.Errorf("rules: file event of pid %d has no path", ev.PID)
		}
	default:
		return r, fmt.Errorf("rules: %v events are not judged", ev.Kind)
	}
	return r, nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Verdict is the engine's answer to a request.
type Verdict struct {
	Action      Action
	Point       Point
	Rule        string // id of the deciding rule ("user:<id>" for a remembered decision); empty if none
	Description string // the rule's description, or why there is no rule
	Level       source.Level
	Reasons     []string // risk reasons, when a risk level was computed
	// By says what decided: "rule", "user", "decider", "timeout" (the
	// decider did not answer in time: default action) or "default" (no
	// decider).
	By string
}

// Record is a rule-engine decision record in procwall's decision stream
// (spec/decisions.md); its schema is in the package documentation.
type Record struct {
	TS      time.Time `json:"ts"`
	Action  Action    `json:"action"`
	PID     int       `json:"pid"`
	Start   uint64    `json:"start,omitempty"`
	Exe     string    `json:"exe,omitempty"`
	Point   Point     `json:"point"`
	Op      Op        `json:"op"`
	Target  string    `json:"target,omitempty"`
	Dst     string    `json:"dst,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	Level   string    `json:"level,omitempty"`
	Version string    `json:"version,omitempty"`
}

// NewRecord builds the decision record of a verdict on a request.
func NewRecord(req *Request, v Verdict, bundleVersion string) Record {
	rec := Record{
		TS: req.Time, Action: v.Action, PID: req.PID, Start: req.Start, Exe: req.Exe,
		Point: v.Point, Op: req.Op, Target: req.Path, Rule: v.Rule, By: v.By,
		Reason: v.Description, Version: bundleVersion,
	}
	if rec.TS.IsZero() {
		rec.TS = time.Now().UTC()
	}
	if req.Dst.IsValid() {
		rec.Dst = req.Dst.String()
	}
	if v.Level != source.LevelNone {
		rec.Level = v.Level.String()
	}
	if len(v.Reasons) > 0 {
		rec.Reason += " (risk: " + strings.Join(v.Reasons, ", ") + ")"
	}
	return rec
}

// RecordAction implements procwall's record interface: the verdict's
// action ("allow", "deny", "ask").
func (r *Record) RecordAction() string { return r.Action.String() }
