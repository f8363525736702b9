package rules

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// FileKey identifies one content of one file: a file whose key is unchanged
// is not rehashed; a write changes mtime/ctime (and usually size), a
// replacement changes the inode.
type FileKey struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns since the epoch
}

// File is what the engine knows of an executable: its identity and
// digests (lower-case hex), and the signers verifiers found for it.
type File struct {
	Path   string
	Key    FileKey
	MD5    string
	SHA256 string

	signMu   sync.Mutex
	signed   bool
	signers  []string
	signErrs []error
}

// DigestCache caches digests and signers by [FileKey]. It is safe for
// concurrent use. When it holds Max entries, adding one evicts an
// arbitrary other.
type DigestCache struct {
	Max int

	mu sync.RWMutex
	m  map[FileKey]*File
	// hashes counts files hashed (a miss), for tests and metrics.
	hashes uint64
}

// NewDigestCache returns a cache holding up to max files (0: 65536).
func NewDigestCache(max int) *DigestCache {
	if max <= 0 {
		max = 65536
	}
	return &DigestCache{Max: max, m: make(map[FileKey]*File)}
}

// Hashes returns how many times the cache hashed a file (cache misses).
func (c *DigestCache) Hashes() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.hashes
}

// Lookup returns the cached file for key, if any.
func (c *DigestCache) Lookup(key FileKey) *File {
	c.mu.RLock()
	f := c.m[key]
	c.mu.RUnlock()
	return f
}

// Get returns the digests of the file at path (reading through f when it
// is not nil, which must then be an open descriptor of that file).
func (c *DigestCache) Get(path string, f *os.File) (*File, error) {
	var key FileKey
	var err error
	if f != nil {
		key, err = fstatKey(f)
	} else {
		key, err = statKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("digest %s: %w", path, err)
	}
	if e := c.Lookup(key); e != nil {
		return e, nil
	}
	if f == nil {
		f, err = os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("digest: %w", err)
		}
		defer f.Close()
		// The file may have changed between stat and open: key what we
		// hash.
		if key, err = fstatKey(f); err != nil {
			return nil, fmt.Errorf("digest %s: %w", path, err)
		}
	}
	m, s, err := HashFile(f, key.Size, true, true)
	if err != nil {
		return nil, fmt.Errorf("digest %s: %w", path, err)
	}
	e := &File{Path: path, Key: key, MD5: m, SHA256: s}
	c.mu.Lock()
	c.hashes++
	if old := c.m[key]; old != nil {
		e = old
	} else {
		if len(c.m) >= c.Max {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		c.m[key] = e
	}
	c.mu.Unlock()
	return e, nil
}

const hashChunk = 1 << 20

// HashFile computes the MD5 and/or SHA-256 (lower-case hex) of the first
// size bytes of r. With both, the two run side by side, each reading the
// file on its own, so the time is that of the slower one.
func HashFile(r io.ReaderAt, size int64, wantMD5, wantSHA bool) (md5hex, shahex string, err error) {
	run := func(h hash.Hash) (string, error) {
		buf := make([]byte, hashChunk)
		var off int64
		for off < size {
			n := int64(len(buf))
			if size-off < n {
				n = size - off
			}
			k, err := r.ReadAt(buf[:n], off)
			h.Write(buf[:k])
			off += int64(k)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return "", err
			}
		}
		if off != size {
			return "", fmt.Errorf("file shrank while hashing: read %d of %d bytes", off, size)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	switch {
	case wantMD5 && wantSHA:
		var wg sync.WaitGroup
		var shaErr error
		wg.Go(func() { shahex, shaErr = run(sha256.New()) })
		md5hex, err = run(md5.New())
		wg.Wait()
		return md5hex, shahex, errors.Join(err, shaErr)
	case wantMD5:
		md5hex, err = run(md5.New())
	case wantSHA:
		shahex, err = run(sha256.New())
	}
	return md5hex, shahex, err
}
