package rules

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCacheKeepsLastGoodAcrossRestart: an agent that loaded a signed
// bundle with a list file from its rule server, restarted while the
// server is down, slow, or serving a tampered bundle, starts with the
// cached rules (lists included); a tampered cache is refused, and without
// a cache the start fails with both reasons.
func TestCacheKeepsLastGoodAcrossRestart(t *testing.T) {
	priv, keys := testKey(t)
	list := []byte("# version: 2\n203.0.113.0/24\n")
	sum := sha256.Sum256(list)
	doc := fmt.Sprintf(`{"format":1,"version":"c1","lists":{"nets":{"path":"lists/nets.txt","version":"2","sha256":"%x"}},"rules":[{"id":"n","action":"deny","match":{"dst":["@nets"]}}]}`, sum)
	signed, err := Sign(priv, "test", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Value
	mode.Store("good")
	mux := http.NewServeMux()
	mux.HandleFunc("/b/bundle.json", func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "slow":
			time.Sleep(500 * time.Millisecond)
		case "tampered":
			w.Write([]byte(strings.Replace(string(signed), `"sig": "`, `"sig": "AAAA`, 1)))
			return
		}
		w.Write(signed)
	})
	mux.HandleFunc("/b/lists/nets.txt", func(w http.ResponseWriter, r *http.Request) { w.Write(list) })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := ts.URL + "/b/bundle.json"
	cache := t.TempDir()
	ctx := context.Background()

	first := &Updater{Engine: New(), Keys: keys, CacheDir: cache}
	if _, err := first.Update(ctx, &HTTPSource{URL: url}); err != nil {
		t.Fatal(err)
	}
	denies := func(e *Engine) bool {
		return e.Decide(&Request{Op: OpConnect, Dst: netip.MustParseAddrPort("203.0.113.5:443")}).Action == Deny
	}
	restart := func(name string, src Fetcher) {
		t.Helper()
		u := &Updater{Engine: New(), Keys: keys, CacheDir: cache}
		changed, fromCache, err := u.UpdateOrCache(ctx, src)
		if !changed || !fromCache || err == nil {
			t.Fatalf("%s: changed %v, from cache %v, err %v; want the cache used and the fetch error", name, changed, fromCache, err)
		}
		if u.Engine.Version() != "c1" || !denies(u.Engine) {
			t.Fatalf("%s: version %q, list rule denies %v", name, u.Engine.Version(), denies(u.Engine))
		}
	}
	mode.Store("slow")
	restart("slow server", &HTTPSource{URL: url, Client: &http.Client{Timeout: 100 * time.Millisecond}})
	mode.Store("tampered")
	restart("tampered bundle", &HTTPSource{URL: url})
	mode.Store("good")
	ts.Close()
	restart("server down", &HTTPSource{URL: url})

	// The cache is verified like anything fetched: a changed list file
	// no longer matches the hash the signed bundle pins.
	listFile := filepath.Join(cache, cacheCurrent, cacheLists, "lists", "nets.txt")
	if err := os.WriteFile(listFile, []byte("# version: 2\n0.0.0.0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &Updater{Engine: New(), Keys: keys, CacheDir: cache}
	if _, _, err := u.UpdateOrCache(ctx, &HTTPSource{URL: url}); err == nil || u.Engine.Version() != "" {
		t.Fatalf("tampered cache: err %v, version %q; want refused", err, u.Engine.Version())
	}
	// No cache at all: both reasons.
	u = &Updater{Engine: New(), Keys: keys, CacheDir: filepath.Join(t.TempDir(), "none")}
	_, _, err = u.UpdateOrCache(ctx, &HTTPSource{URL: url})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "cached bundle") {
		t.Fatalf("no cache: %v", err)
	}
}
