package ftrace

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Field is one field of a trace event's record, as its tracefs `format`
// file describes it.
type Field struct {
	Name    string // "child_pid", "filename", "common_pid"
	Type    string // C type as written: "pid_t", "__data_loc char[]", "__u8"
	Offset  int    // byte offset in the record
	Size    int    // byte size in the record
	Signed  bool
	DataLoc bool // __data_loc: a u32 (length<<16 | offset) naming bytes elsewhere in the record
	RelLoc  bool // __rel_loc: as DataLoc, offset relative to the end of this field
}

// Format is a parsed tracefs `format` file of one event.
type Format struct {
	Name   string
	ID     uint16
	Fields []Field
}

// Field returns the named field, or false.
func (f *Format) Field(name string) (Field, bool) {
	for _, fl := range f.Fields {
		if fl.Name == name {
			return fl, true
		}
	}
	return Field{}, false
}

// ParseFormat parses the text of an event's `format` file
// (events/<system>/<event>/format). Errors name the line.
func ParseFormat(b []byte) (*Format, error) {
	f := &Format{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	haveID := false
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(t, "name:"):
			f.Name = strings.TrimSpace(strings.TrimPrefix(t, "name:"))
		case strings.HasPrefix(t, "ID:"):
			id, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(t, "ID:")), 10, 16)
			if err != nil {
				return nil, fmt.Errorf("format line %d: bad ID: %w", line, err)
			}
			f.ID = uint16(id)
			haveID = true
		case strings.HasPrefix(t, "field:"):
			fl, err := parseField(t)
			if err != nil {
				return nil, fmt.Errorf("format line %d: %w", line, err)
			}
			f.Fields = append(f.Fields, fl)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	if f.Name == "" {
		return nil, fmt.Errorf("format: no name line")
	}
	if !haveID {
		return nil, fmt.Errorf("format %s: no ID line", f.Name)
	}
	if len(f.Fields) == 0 {
		return nil, fmt.Errorf("format %s: no fields", f.Name)
	}
	return f, nil
}

// parseField parses "field:TYPE NAME;\toffset:N;\tsize:N;\tsigned:N;".
func parseField(t string) (Field, error) {
	var fl Field
	parts := strings.Split(t, ";")
	haveOff, haveSize := false, false
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return fl, fmt.Errorf("bad field attribute %q", p)
		}
		v = strings.TrimSpace(v)
		switch {
		case i == 0 && k == "field":
			decl := v
			// Drop an array suffix from the name: "char comm[16]" -> comm.
			j := strings.LastIndexAny(decl, " \t*")
			if j < 0 || j == len(decl)-1 {
				return fl, fmt.Errorf("bad field declaration %q", v)
			}
			name := decl[j+1:]
			if k := strings.IndexByte(name, '['); k >= 0 {
				name = name[:k]
			}
			if name == "" {
				return fl, fmt.Errorf("bad field declaration %q", v)
			}
			fl.Name = name
			fl.Type = strings.TrimSpace(decl[:j+1])
			fl.DataLoc = strings.HasPrefix(fl.Type, "__data_loc")
			fl.RelLoc = strings.HasPrefix(fl.Type, "__rel_loc")
		case k == "offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fl, fmt.Errorf("field %s: bad offset %q", fl.Name, v)
			}
			fl.Offset, haveOff = n, true
		case k == "size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fl, fmt.Errorf("field %s: bad size %q", fl.Name, v)
			}
			fl.Size, haveSize = n, true
		case k == "signed":
			fl.Signed = v == "1"
		}
	}
	if fl.Name == "" || !haveOff || !haveSize {
		return fl, fmt.Errorf("incomplete field %q", t)
	}
	return fl, nil
}
