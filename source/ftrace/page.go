package ftrace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Ring-buffer page layout, from events/header_page and events/header_event
// (Documentation/trace/ring-buffer-design.rst, include/linux/ring_buffer.h).
//
// A page (sub-buffer) read from per_cpu/cpuN/trace_pipe_raw starts with a
// header: a u64 timestamp (the absolute time of the page's first event), a
// commit word (local_t: 8 bytes on 64-bit kernels) whose low bits are the
// number of data bytes and whose bits 31 and 30 flag missed events, then the
// data. Each entry in the data starts with a 32-bit word: type_len (5 bits)
// and time_delta (27 bits).
const (
	typePadding    = 29
	typeTimeExtend = 30
	typeTimeStamp  = 31
	maxDataType    = 28

	missedEvents = 1 << 31 // RB_MISSED_EVENTS: events were lost before this page
	missedStored = 1 << 30 // RB_MISSED_STORED: the count follows the data

	tsShift = 27
	tsMSB   = uint64(0xf) << 59
)

// errShortPage is wrapped by page errors: the page is truncated or an
// entry points past its end.
var errShortPage = errors.New("truncated ring-buffer page")

// pageLayout says where a page's parts are.
type pageLayout struct {
	commitOff  int // offset of the commit word
	commitSize int // 8 on 64-bit kernels, 4 on 32-bit
	dataOff    int // offset of the first entry
}

// defaultLayout is the layout of 64-bit kernels.
var defaultLayout = pageLayout{commitOff: 8, commitSize: 8, dataOff: 16}

// parseHeaderPage reads events/header_page.
func parseHeaderPage(b []byte) (pageLayout, error) {
	var l pageLayout
	var haveCommit, haveData bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(t, "field:") {
			continue
		}
		f, err := parseField(t)
		if err != nil {
			return l, fmt.Errorf("header_page: %w", err)
		}
		switch f.Name {
		case "commit":
			l.commitOff, l.commitSize, haveCommit = f.Offset, f.Size, true
		case "data":
			l.dataOff, haveData = f.Offset, true
		}
	}
	if !haveCommit || !haveData {
		return l, fmt.Errorf("header_page: no commit or data field")
	}
	if l.commitSize != 4 && l.commitSize != 8 {
		return l, fmt.Errorf("header_page: commit size %d, want 4 or 8", l.commitSize)
	}
	if l.dataOff < 8 || l.commitOff < 8 || l.commitOff+l.commitSize > l.dataOff {
		return l, fmt.Errorf("header_page: implausible layout commit@%d data@%d", l.commitOff, l.dataOff)
	}
	return l, nil
}

// pageIter walks the entries of one ring-buffer page. It does not allocate.
type pageIter struct {
	b      []byte
	pos    int
	end    int
	ts     uint64
	Missed bool   // the kernel lost events before this page
	Count  uint64 // how many, when the kernel stored the count (else 0)
}

// reset starts iterating over page p (as read from trace_pipe_raw).
func (it *pageIter) reset(l pageLayout, p []byte) error {
	it.b, it.pos, it.end, it.Missed, it.Count = p, 0, 0, false, 0
	if len(p) < l.dataOff {
		return fmt.Errorf("page of %d bytes: %w", len(p), errShortPage)
	}
	it.ts = binary.NativeEndian.Uint64(p[0:8])
	var commit uint64
	if l.commitSize == 8 {
		commit = binary.NativeEndian.Uint64(p[l.commitOff:])
	} else {
		commit = uint64(binary.NativeEndian.Uint32(p[l.commitOff:]))
	}
	size := int(commit &^ (missedEvents | missedStored) & 0xffffffff)
	it.Missed = commit&missedEvents != 0
	if it.Missed && commit&missedStored != 0 {
		at := l.dataOff + size
		if at+l.commitSize <= len(p) {
			if l.commitSize == 8 {
				it.Count = binary.NativeEndian.Uint64(p[at:])
			} else {
				it.Count = uint64(binary.NativeEndian.Uint32(p[at:]))
			}
		}
	}
	if l.dataOff+size > len(p) {
		return fmt.Errorf("page commit size %d exceeds page of %d bytes: %w", size, len(p), errShortPage)
	}
	it.pos, it.end = l.dataOff, l.dataOff+size
	return nil
}

// next returns the next data entry and its absolute timestamp. ok is false
// at the end of the page.
func (it *pageIter) next() (ts uint64, data []byte, ok bool, err error) {
	for it.pos < it.end {
		if it.end-it.pos < 4 {
			return 0, nil, false, fmt.Errorf("entry header at %d: %w", it.pos, errShortPage)
		}
		h := binary.NativeEndian.Uint32(it.b[it.pos:])
		typeLen := h & 0x1f
		delta := uint64(h >> 5)
		switch {
		case typeLen == typePadding:
			if delta == 0 {
				// A null entry: the rest of the page is empty.
				it.pos = it.end
				return 0, nil, false, nil
			}
			// A discarded entry of array[0] bytes after the header.
			if it.end-it.pos < 8 {
				return 0, nil, false, fmt.Errorf("padding at %d: %w", it.pos, errShortPage)
			}
			n := int(binary.NativeEndian.Uint32(it.b[it.pos+4:]))
			if n < 4 || it.end-it.pos-4 < n {
				return 0, nil, false, fmt.Errorf("padding of %d bytes at %d: %w", n, it.pos, errShortPage)
			}
			it.pos += 4 + n
		case typeLen == typeTimeExtend:
			if it.end-it.pos < 8 {
				return 0, nil, false, fmt.Errorf("time extend at %d: %w", it.pos, errShortPage)
			}
			it.ts += uint64(binary.NativeEndian.Uint32(it.b[it.pos+4:]))<<tsShift | delta
			it.pos += 8
		case typeLen == typeTimeStamp:
			if it.end-it.pos < 8 {
				return 0, nil, false, fmt.Errorf("time stamp at %d: %w", it.pos, errShortPage)
			}
			abs := uint64(binary.NativeEndian.Uint32(it.b[it.pos+4:]))<<tsShift | delta
			// The entry holds the low 59 bits; the top bits come from the
			// page's time.
			if it.ts&tsMSB != 0 {
				abs |= it.ts & tsMSB
				if abs < it.ts {
					abs += 1 << 59
				}
			}
			it.ts = abs
			it.pos += 8
		case typeLen == 0:
			if it.end-it.pos < 8 {
				return 0, nil, false, fmt.Errorf("entry at %d: %w", it.pos, errShortPage)
			}
			n := int(binary.NativeEndian.Uint32(it.b[it.pos+4:]))
			if n < 4 || it.end-it.pos-4 < n {
				return 0, nil, false, fmt.Errorf("entry of %d bytes at %d: %w", n, it.pos, errShortPage)
			}
			it.ts += delta
			data = it.b[it.pos+8 : it.pos+4+n]
			it.pos += 4 + n
			return it.ts, data, true, nil
		default: // 1..28: data of typeLen*4 bytes
			n := int(typeLen) * 4
			if it.end-it.pos-4 < n {
				return 0, nil, false, fmt.Errorf("entry of %d bytes at %d: %w", n, it.pos, errShortPage)
			}
			it.ts += delta
			data = it.b[it.pos+4 : it.pos+4+n]
			it.pos += 4 + n
			return it.ts, data, true, nil
		}
	}
	return 0, nil, false, nil
}
