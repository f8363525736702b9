package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/procwall/procwall/source"
)

// nativeIn is what the reader accepts on a native line: the documented
// fields, with pointers where "absent" differs from the zero value.
type nativeIn struct {
	TS      *string  `json:"ts"`
	Type    *string  `json:"type"`
	PID     *int     `json:"pid"`
	Start   uint64   `json:"start"`
	PPID    *int     `json:"ppid"`
	Exe     string   `json:"exe"`
	Argv    []string `json:"argv"`
	Cmdline *string  `json:"cmdline"`
	UID     *int     `json:"uid"`
	Cwd     string   `json:"cwd"`
	Code    *int     `json:"code"`
	Proto   *string  `json:"proto"`
	Dst     *string  `json:"dst"`
	Src     *string  `json:"src"`
	Bytes   *int64   `json:"bytes"`
	Level   *string  `json:"level"`
	Reason  string   `json:"reason"`
	Safe    *bool    `json:"safe"`
	Path    *string  `json:"path"`
	Op      *string  `json:"op"`
	Query   *string  `json:"query"`
	Answers []string `json:"answers"`
}

// parseNative parses one native JSON line (already trimmed, not blank, not
// a comment) into a validated event. Fields that the event's type does not
// use are ignored, like unknown fields.
func parseNative(line []byte) (source.Event, error) {
	var in nativeIn
	if err := json.Unmarshal(line, &in); err != nil {
		return source.Event{}, jsonErr(err)
	}
	var ev source.Event
	if in.TS == nil {
		return ev, fieldErr("ts", "missing")
	}
	t, err := time.Parse(time.RFC3339Nano, *in.TS)
	if err != nil {
		return ev, fieldErr("ts", fmt.Sprintf("%q is not an RFC 3339 time", *in.TS))
	}
	ev.Time = t
	if in.Type == nil {
		return ev, fieldErr("type", "missing")
	}
	k, err := source.ParseKind(*in.Type)
	if err != nil || k == source.KindAttr {
		return ev, fieldErr("type", fmt.Sprintf("unknown event type %q", *in.Type))
	}
	ev.Kind = k
	if in.PID == nil {
		return ev, fieldErr("pid", "missing")
	}
	if *in.PID <= 0 {
		return ev, fieldErr("pid", fmt.Sprintf("must be > 0, have %d", *in.PID))
	}
	ev.PID, ev.Start = *in.PID, in.Start

	switch k {
	case source.KindFork:
		if in.PPID == nil {
			return ev, fieldErr("ppid", "missing (required for fork)")
		}
		ev.PPID = *in.PPID
	case source.KindExec:
		if in.PPID != nil {
			ev.PPID = *in.PPID
		}
		ev.Exe, ev.Cwd = in.Exe, in.Cwd
		switch {
		case in.Argv != nil && in.Cmdline != nil:
			return ev, fieldErr("cmdline", "given together with argv (use one)")
		case in.Argv != nil:
			ev.Argv = in.Argv
		case in.Cmdline != nil:
			argv, err := splitCommandLine(*in.Cmdline)
			if err != nil {
				return ev, fieldErr("cmdline", fmt.Sprintf("%q: %v", *in.Cmdline, err))
			}
			ev.Argv = argv
		}
		if in.UID != nil {
			if *in.UID < 0 {
				return ev, fieldErr("uid", fmt.Sprintf("must be >= 0, have %d", *in.UID))
			}
			ev.UID, ev.HasUID = *in.UID, true
		}
	case source.KindExit:
		if in.Code != nil {
			ev.Code, ev.HasCode = *in.Code, true
		}
	case source.KindConnect, source.KindSend, source.KindAccept:
		if in.Proto != nil && *in.Proto != "" {
			p, err := source.ParseProto(*in.Proto)
			if err != nil {
				return ev, fieldErr("proto", fmt.Sprintf("unknown protocol %q", *in.Proto))
			}
			ev.Proto = p
		}
		if in.Dst == nil {
			return ev, fieldErr("dst", fmt.Sprintf("missing (required for %v)", k))
		}
		if ev.Dst, err = parseAddrPort("dst", *in.Dst); err != nil {
			return ev, err
		}
		if in.Src != nil {
			if ev.Src, err = parseAddrPort("src", *in.Src); err != nil {
				return ev, err
			}
		}
		if in.Bytes != nil {
			if *in.Bytes < 0 {
				return ev, fieldErr("bytes", fmt.Sprintf("must be >= 0, have %d", *in.Bytes))
			}
			ev.Bytes = *in.Bytes
		}
	case source.KindRisk:
		if in.Level == nil {
			return ev, fieldErr("level", "missing (required for risk)")
		}
		l, err := source.ParseLevel(*in.Level)
		if err != nil {
			return ev, fieldErr("level", fmt.Sprintf("%q is not low, medium, high or critical", *in.Level))
		}
		ev.Level, ev.Reason = l, in.Reason
	case source.KindAssess:
		if in.Safe == nil {
			return ev, fieldErr("safe", "missing (required for assess)")
		}
		ev.Safe, ev.Reason = *in.Safe, in.Reason
	case source.KindFile:
		if in.Path == nil || *in.Path == "" {
			return ev, fieldErr("path", "missing (required for file)")
		}
		ev.Path = *in.Path
		if in.Op != nil {
			switch *in.Op {
			case "create", "write", "delete":
				ev.Op = *in.Op
			default:
				return ev, fieldErr("op", fmt.Sprintf("%q is not create, write or delete", *in.Op))
			}
		}
	case source.KindDNS:
		if in.Query == nil || *in.Query == "" {
			return ev, fieldErr("query", "missing (required for dns)")
		}
		ev.Query = *in.Query
		if in.Answers != nil {
			ev.Answers = make([]netip.Addr, len(in.Answers))
			for i, a := range in.Answers {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					return ev, fieldErr(fmt.Sprintf("answers[%d]", i), fmt.Sprintf("%q is not an IP address", a))
				}
				ev.Answers[i] = ip
			}
		}
	}
	if err := ev.Validate(); err != nil {
		return ev, &invalidError{err}
	}
	return ev, nil
}

// parseAddrPort parses "ip:port" or "[v6]:port".
func parseAddrPort(field, s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fieldErr(field, fmt.Sprintf("%q is not \"ip:port\" or \"[v6]:port\"", s))
	}
	return ap, nil
}

// jsonErr turns an encoding/json error into a cause naming the field.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return &malformedError{"JSON", fmt.Errorf("want an object, have a JSON %s", te.Value)}
		}
		return fieldErr(te.Field, fmt.Sprintf("JSON %s is not a valid %v", te.Value, te.Type))
	}
	return &malformedError{"JSON", err}
}
