package rules

import (
	"os"

	"golang.org/x/sys/unix"
)

func keyOf(st *unix.Stat_t) FileKey {
	return FileKey{
		Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
		Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec,
	}
}

func statKey(path string) (FileKey, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileKey{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return keyOf(&st), nil
}

func fstatKey(f *os.File) (FileKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileKey{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return keyOf(&st), nil
}
