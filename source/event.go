package source

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind says what an [Event] reports.
type Kind uint8

// Event kinds. The names are those of the native trace format (spec/events.md).
const (
	KindUnknown Kind = iota
	KindFork         // a process was created by its parent (PPID)
	KindExec         // a process replaced its image (Exe, Argv)
	KindExit         // a process ended (Code, Signal)
	KindConnect      // a process initiated a connection to Dst
	KindSend         // a process sent a datagram to Dst
	KindAccept       // a process accepted a connection from Dst on Src
	KindRisk         // a detector reported the process as risky (Level, Reason)
	KindAssess       // a risk assessment of the process (Safe, Reason)
	KindFile         // a process touched a file (Path, Op)
	KindDNS          // a process resolved a name (Query, Answers)
	// KindAttr reports a change of a live process's attributes (UID,
	// Comm, session, ptrace, core dump) taken from a kernel source; it does
	// not change the tree's shape.
	KindAttr
	numKinds
)

var kindNames = [numKinds]string{
	KindUnknown: "unknown",
	KindFork:    "fork",
	KindExec:    "exec",
	KindExit:    "exit",
	KindConnect: "connect",
	KindSend:    "send",
	KindAccept:  "accept",
	KindRisk:    "risk",
	KindAssess:  "assess",
	KindFile:    "file",
	KindDNS:     "dns",
	KindAttr:    "attr",
}

// String returns the kind's name in the native trace format.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the kind named s (a native-format type name).
func ParseKind(s string) (Kind, error) {
	for k := KindFork; k < numKinds; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return KindUnknown, fmt.Errorf("unknown event type %q", s)
}

// MarshalText implements [encoding.TextMarshaler].
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Level is a risk level reported by a detector.
type Level uint8

// Risk levels, from least to most severe.
const (
	LevelNone Level = iota
	LevelLow
	LevelMedium
	LevelHigh
	LevelCritical
)

var levelNames = [...]string{"none", "low", "medium", "high", "critical"}

// String returns the level's name.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel returns the level named s: low, medium, high or critical.
func ParseLevel(s string) (Level, error) {
	for i := LevelLow; int(i) < len(levelNames); i++ {
		if levelNames[i] == strings.ToLower(s) {
			return i, nil
		}
	}
	return LevelNone, fmt.Errorf("unknown risk level %q (want low, medium, high or critical)", s)
}

// MarshalText implements [encoding.TextMarshaler].
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Proto is an IP protocol number (6 TCP, 17 UDP, ...).
type Proto uint8

// Protocols with names in the trace format.
const (
	ProtoUnknown Proto = 0
	ProtoICMP    Proto = 1
	ProtoTCP     Proto = 6
	ProtoUDP     Proto = 17
	ProtoICMPv6  Proto = 58
	ProtoSCTP    Proto = 132
	ProtoUDPLite Proto = 136
)

// String returns the protocol's lower-case name, or its number.
func (p Proto) String() string {
	switch p {
	case ProtoUnknown:
		return ""
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoSCTP:
		return "sctp"
	case ProtoUDPLite:
		return "udplite"
	}
	return strconv.Itoa(int(p))
}

// ParseProto accepts a protocol name (tcp, udp, icmp, icmpv6, sctp,
// udplite; any letter case) or a decimal protocol number.
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp", "tcp4", "tcp6":
		return ProtoTCP, nil
	case "udp", "udp4", "udp6":
		return ProtoUDP, nil
	case "icmp":
		return ProtoICMP, nil
	case "icmpv6", "ipv6-icmp", "icmp6":
		return ProtoICMPv6, nil
	case "sctp":
		return ProtoSCTP, nil
	case "udplite":
		return ProtoUDPLite, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n == 0 {
		return ProtoUnknown, fmt.Errorf("unknown protocol %q", s)
	}
	return Proto(n), nil
}

// MarshalText implements [encoding.TextMarshaler].
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (p *Proto) UnmarshalText(b []byte) error {
	v, err := ParseProto(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ProcID is a process identity: a pid and the process's start time. A pid
// alone is reused by the kernel; anything that outlives a process keys it by
// ProcID. Start is in nanoseconds on a per-boot monotonic clock; 0 means the
// start time is not known, and such an identity names the most recent
// process with that pid.
type ProcID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start,omitempty"`
}

// String formats the identity as "pid" or "pid@start".
func (id ProcID) String() string {
	if id.Start == 0 {
		return strconv.Itoa(id.PID)
	}
	return strconv.Itoa(id.PID) + "@" + strconv.FormatUint(id.Start, 10)
}

// Event is one observation from a source, or one report from a detector.
// Which fields are meaningful depends on Kind; the table in spec/events.md
// lists them. The zero value of an optional field means "not known", except
// where a Has* flag says otherwise.
type Event struct {
	Time  time.Time // when it happened (event time, not arrival time)
	Kind  Kind
	PID   int    // the process (thread-group id)
	Start uint64 // start time in ns on a per-boot monotonic clock; 0 if unknown
	// GUID is an opaque process identity from sources that have one
	// (Sysmon's ProcessGuid, seed 002's nodeid). When set it tells reused
	// pids apart the way Start does.
	GUID string

	// Parent, for fork (required) and exec (optional implicit fork).
	PPID       int
	PStart     uint64
	ParentGUID string
	ParentExe  string   // the parent's image, where the source names it
	ParentArgv []string // the parent's command line, where the source names it

	// Exec.
	Exe    string
	Argv   []string
	Comm   string // kernel task name (attr, exec)
	Cwd    string
	UID    int
	HasUID bool

	// Exit.
	Code    int
	HasCode bool
	Signal  int // terminating signal, 0 if none or unknown

	// Connect, send, accept.
	Proto Proto
	Dst   netip.AddrPort // remote end; for accept, the remote peer
	Src   netip.AddrPort // local end; for accept, the listener
	Bytes int64

	// Risk and assess.
	Level  Level
	Reason string
	Safe   bool

	// File.
	Path string
	Op   string // create, write, delete

	// DNS.
	Query   string
	Answers []netip.Addr

	// Gone is set by live sources when the process had exited before its
	// details could be read (from /proc): the fields they would have filled
	// are empty, never guessed.
	Gone bool

	// Origin names where the event came from (a file and line, or a source
	// name); it is informational and never part of identity.
	Origin string
}

// ID returns the event's process identity.
func (e *Event) ID() ProcID { return ProcID{PID: e.PID, Start: e.Start} }

// ParentID returns the identity of the event's parent process.
func (e *Event) ParentID() ProcID { return ProcID{PID: e.PPID, Start: e.PStart} }

// Validate reports the first field that an event of its kind needs and
// lacks, or that is out of range.
func (e *Event) Validate() error {
	if e.Kind == KindUnknown || e.Kind >= numKinds {
		return fmt.Errorf("unknown event type %v", e.Kind)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%v event: missing ts", e.Kind)
	}
	if e.PID <= 0 {
		return fmt.Errorf("%v event: pid must be > 0, have %d", e.Kind, e.PID)
	}
	switch e.Kind {
	case KindFork:
		if e.PPID < 0 {
			return fmt.Errorf("fork event: ppid must be >= 0, have %d", e.PPID)
		}
		if e.PPID == e.PID {
			return fmt.Errorf("fork event: pid %d names itself as parent", e.PID)
		}
	case KindExec:
		if e.PPID < 0 {
			return fmt.Errorf("exec event: ppid must be >= 0, have %d", e.PPID)
		}
		if e.PPID == e.PID {
			return fmt.Errorf("exec event: pid %d names itself as parent", e.PID)
		}
	case KindConnect, KindSend:
		if !e.Dst.Addr().IsValid() {
			return fmt.Errorf("%v event: missing dst", e.Kind)
		}
	case KindAccept:
		if !e.Dst.Addr().IsValid() {
			return fmt.Errorf("accept event: missing dst (the remote peer)")
		}
	case KindRisk:
		if e.Level == LevelNone {
			return fmt.Errorf("risk event: missing level")
		}
	case KindFile:
		if e.Path == "" {
			return fmt.Errorf("file event: missing path")
		}
	case KindDNS:
		if e.Query == "" {
			return fmt.Errorf("dns event: missing query")
		}
	}
	return nil
}
