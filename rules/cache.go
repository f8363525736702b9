package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The layout of an Updater's cache directory: the last good bundle
// document and the list files it referenced, under cacheCurrent; a new
// copy is written beside it and swapped in by renames.
const (
	cacheCurrent = "current"
	cacheBundle  = "bundle.json"
	cacheLists   = "lists"
)

// saveCache stores a document that was just loaded, with the list files
// read while parsing it, as the cache's current copy. It writes a complete
// new copy first and then swaps it in, so a crash leaves either the old
// or the new copy, never a mix.
func (u *Updater) saveCache(data []byte, lists map[string][]byte) error {
	dir := u.CacheDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for p, b := range lists {
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			return fmt.Errorf("list path %q leaves the cache directory", p)
		}
		f := filepath.Join(tmp, cacheLists, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return err
		}
		if err := writeAtomic(f, b); err != nil {
			return err
		}
	}
	if err := writeAtomic(filepath.Join(tmp, cacheBundle), data); err != nil {
		return err
	}
	cur, old := filepath.Join(dir, cacheCurrent), filepath.Join(dir, ".old")
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(cur, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, cur); err != nil {
		// Put the previous copy back.
		_ = os.Rename(old, cur)
		return err
	}
	return os.RemoveAll(old)
}

// LoadCache loads the last good bundle from CacheDir: for an agent that
// starts while its rule server is down, slow or serving a bad bundle. The
// cached document is verified exactly like a fetched one (signature by a
// key of Keys unless AllowUnsigned, the pinned hashes of its list files),
// so a cache someone tampered with is refused. It returns an error
// wrapping os.ErrNotExist when there is no cache.
func (u *Updater) LoadCache() error {
	if u.CacheDir == "" {
		return fmt.Errorf("rules: no cache directory: %w", os.ErrNotExist)
	}
	cur := filepath.Join(u.CacheDir, cacheCurrent)
	data, err := os.ReadFile(filepath.Join(cur, cacheBundle))
	if err != nil {
		return fmt.Errorf("rules: cached bundle: %w", err)
	}
	lists := filepath.Join(cur, cacheLists)
	load := func(p string) ([]byte, error) {
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			return nil, fmt.Errorf("list path %q leaves the cache directory", p)
		}
		return os.ReadFile(filepath.Join(lists, filepath.FromSlash(p)))
	}
	return u.Apply(Fetched{Data: data, Load: load, Origin: "cache " + u.CacheDir, cached: true})
}

// UpdateOrCache is Update, falling back to the cached bundle (LoadCache)
// when the fetch or the fetched document fails and no bundle is active
// yet. It returns whether a new bundle became active, whether it came
// from the cache, and the fetch error joined with the cache's when both
// failed.
func (u *Updater) UpdateOrCache(ctx context.Context, src Fetcher) (changed, fromCache bool, err error) {
	changed, err = u.Update(ctx, src)
	if err == nil || u.Engine.Version() != "" || u.CacheDir == "" {
		return changed, false, err
	}
	if cerr := u.LoadCache(); cerr != nil {
		return false, false, errors.Join(err, cerr)
	}
	return true, true, err
}
