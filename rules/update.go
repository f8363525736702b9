package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Fetched is one answer of a [Fetcher].
type Fetched struct {
	Data        []byte     // the bundle document (signed envelope or plain bundle)
	NotModified bool       // nothing new since the last fetch (Data is nil)
	Load        ListLoader // reads referenced list files
	Origin      string     // where it came from, for messages

	cached bool // read from the Updater's cache (not saved again)
}

// Fetcher fetches the current bundle document from somewhere.
type Fetcher interface {
	Fetch(ctx context.Context) (Fetched, error)
}

// FileSource fetches a bundle from a file; it reports NotModified while
// the file's identity (device, inode, size, mtime, ctime) is unchanged.
// Not safe for concurrent use.
type FileSource struct {
	Path string
	last FileKey
	seen bool
}

// Reset forgets the last file seen, so the next Fetch reads it again.
func (s *FileSource) Reset() { s.seen = false }

// Fetch implements Fetcher.
func (s *FileSource) Fetch(ctx context.Context) (Fetched, error) {
	key, err := statKey(s.Path)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch: %w", err)
	}
	if s.seen && key == s.last {
		return Fetched{NotModified: true, Origin: s.Path}, nil
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch: %w", err)
	}
	s.last, s.seen = key, true
	return Fetched{Data: data, Load: DirLoader(filepath.Dir(s.Path)), Origin: s.Path}, nil
}

// HTTPSource fetches a bundle over HTTP(S) with conditional requests: it
// sends the last ETag in If-None-Match and treats 304 as NotModified.
// Referenced list files are fetched relative to URL. Not safe for
// concurrent use.
type HTTPSource struct {
	URL    string
	Client *http.Client // nil: a client with a 30s timeout
	// MaxSize bounds a document (default 64 MiB).
	MaxSize int64

	etag string
}

func (s *HTTPSource) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (s *HTTPSource) get(ctx context.Context, u string, etag string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	max := s.MaxSize
	if max <= 0 {
		max = 64 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return resp, nil, err
	}
	if int64(len(body)) > max {
		return resp, nil, fmt.Errorf("%s: document larger than %d bytes", u, max)
	}
	return resp, body, nil
}

// Reset forgets the last ETag, so the next Fetch downloads again.
func (s *HTTPSource) Reset() { s.etag = "" }

// Fetch implements Fetcher.
func (s *HTTPSource) Fetch(ctx context.Context) (Fetched, error) {
	resp, body, err := s.get(ctx, s.URL, s.etag)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return Fetched{NotModified: true, Origin: s.URL}, nil
	case http.StatusOK:
	default:
		return Fetched{}, fmt.Errorf("fetch %s: HTTP status %s", s.URL, resp.Status)
	}
	s.etag = resp.Header.Get("ETag")
	base, err := url.Parse(s.URL)
	if err != nil {
		return Fetched{}, fmt.Errorf("fetch: %w", err)
	}
	load := func(p string) ([]byte, error) {
		ref, err := url.Parse(p)
		if err != nil {
			return nil, err
		}
		u := base.ResolveReference(ref).String()
		resp, body, err := s.get(ctx, u, "")
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP status %s", u, resp.Status)
		}
		return body, nil
	}
	return Fetched{Data: body, Load: load, Origin: s.URL}, nil
}

// Updater keeps an engine's bundle current: it verifies each new document
// (the ed25519 signature by a key of Keys, unless AllowUnsigned), parses
// and validates it and loads it; a bad, unsigned or tampered document is
// rejected with an error and the last good bundle stays in force. Its
// methods are safe for concurrent use.
type Updater struct {
	Engine *Engine
	Keys   Keyring
	// AllowUnsigned accepts plain (unsigned) bundles; for tests and
	// local files only.
	AllowUnsigned bool
	Logger        *slog.Logger
	// CacheDir, when set, keeps a copy of the last good bundle document
	// and its list files (written after each successful load), which
	// LoadCache and UpdateOrCache read back. Failing to write it is
	// logged, not an error of the update.
	CacheDir string

	mu     sync.Mutex
	status UpdateStatus
}

// UpdateStatus reports the updater's state.
type UpdateStatus struct {
	Version     string    // active bundle version
	Key         string    // key that signed it ("" if unsigned)
	Origin      string    // where it came from
	LoadedAt    time.Time // when it became active
	LastError   error     // the last rejection or fetch error (nil after a success)
	LastAttempt time.Time
	Failures    int // consecutive failures
}

// Status returns the current status.
func (u *Updater) Status() UpdateStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.status
	s.Version = u.Engine.Version()
	return s
}

// Apply verifies, parses and loads one bundle document.
func (u *Updater) Apply(f Fetched) error {
	err := u.apply(f)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status.LastAttempt = time.Now()
	if err != nil {
		u.status.LastError = err
		u.status.Failures++
		return err
	}
	u.status.LastError, u.status.Failures = nil, 0
	return nil
}

func (u *Updater) apply(f Fetched) error {
	payload, key, err := OpenSigned(f.Data, u.Keys)
	signed := err == nil
	switch {
	case err == nil:
	case errors.Is(err, ErrUnsigned) && u.AllowUnsigned:
		payload, key = f.Data, ""
	default:
		return fmt.Errorf("update from %s: %w", f.Origin, err)
	}
	load := f.Load
	var lists map[string][]byte
	if u.CacheDir != "" && !f.cached && load != nil {
		lists = map[string][]byte{}
		load = func(p string) ([]byte, error) {
			b, err := f.Load(p)
			if err == nil {
				lists[p] = b
			}
			return b, err
		}
	}
	b, err := parseBundle(bytes.TrimSpace(payload), load, signed)
	if err != nil {
		return fmt.Errorf("update from %s: %w", f.Origin, err)
	}
	if err := u.Engine.Load(b); err != nil {
		return fmt.Errorf("update from %s: %w", f.Origin, err)
	}
	if u.CacheDir != "" && !f.cached {
		if err := u.saveCache(f.Data, lists); err != nil {
			log := u.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Warn("rules: could not cache the bundle", "dir", u.CacheDir, "err", err)
		}
	}
	u.mu.Lock()
	u.status.Key, u.status.Origin, u.status.LoadedAt = key, f.Origin, time.Now()
	u.mu.Unlock()
	return nil
}

// Update fetches once and applies what is new. It returns whether a new
// bundle became active.
func (u *Updater) Update(ctx context.Context, src Fetcher) (bool, error) {
	f, err := src.Fetch(ctx)
	if err != nil {
		u.mu.Lock()
		u.status.LastError, u.status.LastAttempt = err, time.Now()
		u.status.Failures++
		u.mu.Unlock()
		return false, err
	}
	if f.NotModified {
		return false, nil
	}
	if err := u.Apply(f); err != nil {
		// Fetch the rejected document again next time: a failure may
		// be transient (a list file that did not download).
		if r, ok := src.(interface{ Reset() }); ok {
			r.Reset()
		}
		return false, err
	}
	return true, nil
}

// Poll updates from src every interval until ctx is done, backing off
// exponentially (up to 32 intervals, at most an hour) after failures. It
// logs every change and rejection and returns ctx's error.
func (u *Updater) Poll(ctx context.Context, src Fetcher, interval time.Duration) error {
	log := u.Logger
	if log == nil {
		log = slog.Default()
	}
	wait := interval
	for {
		changed, err := u.Update(ctx, src)
		wait = nextWait(wait, interval, err != nil)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("rules: update rejected; keeping the last good bundle", "version", u.Engine.Version(), "err", err, "retry", wait)
		case err == nil:
			if changed {
				log.Info("rules: bundle loaded", "version", u.Engine.Version(), "rules", u.Engine.RuleCount())
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// nextWait is the poll delay after an attempt: the interval after a
// success, doubled after each failure up to 32 intervals or an hour.
func nextWait(cur, interval time.Duration, failed bool) time.Duration {
	if !failed {
		return interval
	}
	return max(min(cur*2, 32*interval, time.Hour), interval)
}
