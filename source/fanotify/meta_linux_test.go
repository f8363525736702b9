package fanotify

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// metaBytes builds one struct fanotify_event_metadata as the kernel writes
// it, followed by extra bytes of information records (counted in
// event_len).
func metaBytes(mask uint64, fd, pid int32, extra int) []byte {
	b := make([]byte, metaSize+extra)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	b[4] = unix.FANOTIFY_METADATA_VERSION
	binary.NativeEndian.PutUint16(b[6:], uint16(metaSize))
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(fd))
	binary.NativeEndian.PutUint32(b[20:], uint32(pid))
	return b
}

func TestParseMeta(t *testing.T) {
	// Two events in one read, the first with an information record.
	buf := append(metaBytes(unix.FAN_OPEN_EXEC_PERM, 7, 1234, 16), metaBytes(unix.FAN_Q_OVERFLOW, -1, 0, 0)...)
	m, size, err := parseMeta(buf)
	if err != nil {
		t.Fatal(err)
	}
	if size != metaSize+16 || m != (meta{mask: unix.FAN_OPEN_EXEC_PERM, fd: 7, pid: 1234}) {
		t.Fatalf("first event: %+v, size %d", m, size)
	}
	m, size, err = parseMeta(buf[size:])
	if err != nil {
		t.Fatal(err)
	}
	if size != metaSize || m != (meta{mask: unix.FAN_Q_OVERFLOW, fd: -1}) {
		t.Fatalf("second event: %+v, size %d", m, size)
	}

	bad := func(name string, b []byte, want string) {
		t.Helper()
		if _, _, err := parseMeta(b); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one saying %q", name, err, want)
		}
	}
	bad("short", metaBytes(0, 1, 1, 0)[:metaSize-1], "shorter than")
	long := metaBytes(0, 1, 1, 0)
	binary.NativeEndian.PutUint32(long[0:], uint32(metaSize+1))
	bad("length past the read", long, "bad event length")
	tiny := metaBytes(0, 1, 1, 0)
	binary.NativeEndian.PutUint32(tiny[0:], 4)
	bad("length below the metadata", tiny, "bad event length")
	vers := metaBytes(0, 1, 1, 0)
	vers[4]++
	bad("version", vers, "metadata version")
}

// FuzzParseMeta: any bytes either fail with an error or yield an event
// whose length lies within the bytes and covers the metadata, and whose
// fields are the ones at their offsets; never a panic.
func FuzzParseMeta(f *testing.F) {
	f.Add(metaBytes(unix.FAN_OPEN_EXEC_PERM, 7, 1234, 0))
	f.Add(append(metaBytes(unix.FAN_OPEN_PERM, 3, 1, 8), metaBytes(0, 4, 2, 0)...))
	f.Add([]byte{})
	f.Add(make([]byte, metaSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		for off := 0; off < len(b); {
			m, size, err := parseMeta(b[off:])
			if err != nil {
				return
			}
			if size < metaSize || size > len(b)-off {
				t.Fatalf("event length %d at offset %d of %d bytes", size, off, len(b))
			}
			if m.pid != int32(binary.NativeEndian.Uint32(b[off+20:])) || m.fd != int32(binary.NativeEndian.Uint32(b[off+16:])) ||
				m.mask != binary.NativeEndian.Uint64(b[off+8:]) {
				t.Fatalf("fields %+v do not match the bytes at offset %d", m, off)
			}
			off += size
		}
	})
}
