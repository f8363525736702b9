//go:build !linux

package rules

import "os"

// Off Linux the key has no device, inode or ctime: size and mtime only.
func infoKey(fi os.FileInfo) FileKey {
	return FileKey{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
}

func statKey(path string) (FileKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return FileKey{}, err
	}
	return infoKey(fi), nil
}

func fstatKey(f *os.File) (FileKey, error) {
	fi, err := f.Stat()
	if err != nil {
		return FileKey{}, err
	}
	return infoKey(fi), nil
}
