package rules

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testKey(t testing.TB) (ed25519.PrivateKey, Keyring) {
	t.Helper()
	pubF, privF, err := GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	_, pub, _ := ParsePublicKey(pubF)
	_, priv, _ := ParsePrivateKey(privF)
	return priv, Keyring{"test": pub}
}

func versionDoc(version, action string) string {
	return `{"format":1,"version":"` + version + `","rules":[{"id":"r-` + version + `","action":"` + action + `","match":{"exe":["/usr/bin/app"]}}]}`
}

func TestUpdaterRejectsBadBundlesKeepsLastGood(t *testing.T) {
	priv, keys := testKey(t)
	e := New()
	u := &Updater{Engine: e, Keys: keys}
	good, _ := Sign(priv, "test", []byte(versionDoc("v1", "allow")))
	if err := u.Apply(Fetched{Data: good, Origin: "t"}); err != nil {
		t.Fatal(err)
	}
	if e.Version() != "v1" || u.Status().Key != "test" {
		t.Fatalf("status %+v", u.Status())
	}
	_, otherKeys := testKey(t)
	otherPriv, _ := testKey(t)
	tampered := bytes.Replace(good, []byte(`"sig": "`), []byte(`"sig": "AAAA`), 1)
	payloadTampered := func() []byte {
		d, _ := Sign(priv, "test", []byte(versionDoc("v2", "deny")))
		// Swap the payload for another one, keep the signature.
		env := string(d)
		i := strings.Index(env, `"payload": "`) + len(`"payload": "`)
		j := strings.Index(env[i:], `"`)
		other, _ := Sign(priv, "test", []byte(versionDoc("v3", "deny")))
		oe := string(other)
		k := strings.Index(oe, `"payload": "`) + len(`"payload": "`)
		l := strings.Index(oe[k:], `"`)
		return []byte(env[:i] + oe[k:k+l] + env[i+j:])
	}()
	forged, _ := Sign(otherPriv, "test", []byte(versionDoc("v4", "deny")))
	invalidSigned, _ := Sign(priv, "test", []byte(`{"format":1,"version":"v5","rules":[{"id":"x","action":"nope","match":{"exe":["/a"]}}]}`))
	cases := []struct {
		name string
		data []byte
		want error
		text string
	}{
		{"unsigned", []byte(versionDoc("v6", "deny")), ErrUnsigned, "not a signed document"},
		{"bad signature", tampered, ErrBadSignature, ""},
		{"swapped payload", payloadTampered, ErrBadSignature, ""},
		{"forged", forged, ErrBadSignature, ""},
		{"invalid content", invalidSigned, ErrInvalid, `rules[0] (x).action: unknown action "nope"`},
		{"garbage", []byte("\x00\x01"), ErrUnsigned, ""},
	}
	for _, c := range cases {
		err := u.Apply(Fetched{Data: c.data, Origin: "t"})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if e.Version() != "v1" {
			t.Fatalf("%s: active version %q, want last good v1", c.name, e.Version())
		}
		if v := e.Decide(&Request{Op: OpExec, Exe: "/usr/bin/app"}); v.Action != Allow {
			t.Fatalf("%s: last good bundle not in force: %+v", c.name, v)
		}
	}
	if u.Status().Failures != len(cases) || u.Status().LastError == nil {
		t.Errorf("status %+v", u.Status())
	}
	u2 := &Updater{Engine: New(), Keys: otherKeys}
	if err := u2.Apply(Fetched{Data: good}); err == nil {
		t.Error("bundle signed by an untrusted key accepted")
	}
	// Unsigned allowed explicitly.
	u3 := &Updater{Engine: New(), AllowUnsigned: true}
	if err := u3.Apply(Fetched{Data: []byte(versionDoc("plain", "allow"))}); err != nil || u3.Status().Version != "plain" {
		t.Errorf("unsigned allowed: %v", err)
	}
}

func TestSignedBundleListsMustBePinned(t *testing.T) {
	priv, keys := testKey(t)
	dir := t.TempDir()
	list := []byte("d41d8cd98f00b204e9800998ecf8427e\n")
	os.WriteFile(filepath.Join(dir, "bad.txt"), list, 0o644)
	sum := sha256.Sum256(list)
	doc := func(pin string) []byte {
		return []byte(`{"format":1,"version":"v","lists":{"bad":{"path":"bad.txt"` + pin + `}},"rules":[{"id":"a","action":"deny","match":{"md5":["@bad"]}}]}`)
	}
	u := &Updater{Engine: New(), Keys: keys}
	s, _ := Sign(priv, "test", doc(""))
	if err := u.Apply(Fetched{Data: s, Load: DirLoader(dir)}); err == nil || !strings.Contains(err.Error(), "must pin") {
		t.Errorf("unpinned: %v", err)
	}
	s, _ = Sign(priv, "test", doc(`,"sha256":"`+hex.EncodeToString(sum[:])+`"`))
	if err := u.Apply(Fetched{Data: s, Load: DirLoader(dir)}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	if err := u.Apply(Fetched{Data: s, Load: DirLoader(dir)}); err == nil || !strings.Contains(err.Error(), "does not match its sha256") {
		t.Errorf("tampered list: %v", err)
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bundle.json")
	os.WriteFile(p, []byte(versionDoc("f1", "allow")), 0o644)
	e := New()
	u := &Updater{Engine: e, AllowUnsigned: true}
	src := &FileSource{Path: p}
	if ch, err := u.Update(context.Background(), src); !ch || err != nil {
		t.Fatal(ch, err)
	}
	if ch, err := u.Update(context.Background(), src); ch || err != nil {
		t.Fatal("unchanged file reloaded", ch, err)
	}
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(p, []byte(versionDoc("f2", "deny")), 0o644)
	if ch, err := u.Update(context.Background(), src); !ch || err != nil || e.Version() != "f2" {
		t.Fatal(ch, err, e.Version())
	}
	os.Remove(p)
	if _, err := u.Update(context.Background(), src); err == nil || e.Version() != "f2" {
		t.Fatal("missing file:", err)
	}
}

// bundleServer serves a signed bundle with an ETag and answers
// If-None-Match with 304.
type bundleServer struct {
	mu       sync.Mutex
	doc      []byte
	etag     string
	requests atomic.Int64
	notMod   atomic.Int64
}

func (s *bundleServer) set(doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(doc)
	s.doc, s.etag = doc, `"`+hex.EncodeToString(sum[:8])+`"`
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	doc, etag := s.doc, s.etag
	s.mu.Unlock()
	if r.Header.Get("If-None-Match") == etag {
		s.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Write(doc)
}

// TestHTTPLiveUpdate judges events continuously while the server's bundle
// changes: every verdict comes from one complete bundle version, the
// change takes effect, a tampered bundle is rejected while the last good
// stays in force, and unchanged bundles are not re-downloaded.
func TestHTTPLiveUpdate(t *testing.T) {
	priv, keys := testKey(t)
	srv := &bundleServer{}
	sign := func(doc string) []byte {
		d, err := Sign(priv, "test", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	srv.set(sign(versionDoc("v1", "allow")))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	e := New()
	u := &Updater{Engine: e, Keys: keys}
	src := &HTTPSource{URL: ts.URL + "/bundle.json"}
	if ch, err := u.Update(context.Background(), src); !ch || err != nil {
		t.Fatal(ch, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pollDone := make(chan error, 1)
	go func() { pollDone <- u.Poll(ctx, src, 5*time.Millisecond) }()

	var judged, inconsistent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	seen := sync.Map{}
	for range 4 {
		wg.Go(func() {
			req := &Request{Op: OpExec, Exe: "/usr/bin/app"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := e.Decide(req)
				judged.Add(1)
				// Each version's rule id and action belong together.
				ok := v.Rule == "r-v1" && v.Action == Allow || v.Rule == "r-v2" && v.Action == Deny
				if !ok {
					inconsistent.Add(1)
				}
				seen.Store(v.Rule, true)
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (status %+v)", what, u.Status())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitFor("304s", func() bool { return srv.notMod.Load() >= 3 })
	waitFor("verdicts of v1", func() bool { _, ok := seen.Load("r-v1"); return ok })
	srv.set(sign(versionDoc("v2", "deny")))
	waitFor("v2", func() bool { return e.Version() == "v2" })
	waitFor("verdicts of v2", func() bool { _, ok := seen.Load("r-v2"); return ok })
	// A tampered bundle: rejected, v2 stays.
	bad := sign(versionDoc("v3", "allow"))
	bad = bytes.Replace(bad, []byte(`"sig": "`), []byte(`"sig": "BBBB`), 1)
	srv.set(bad)
	waitFor("rejection", func() bool { return errors.Is(u.Status().LastError, ErrBadSignature) })
	close(stop)
	wg.Wait()
	cancel()
	if err := <-pollDone; !errors.Is(err, context.Canceled) {
		t.Errorf("poll: %v", err)
	}
	if e.Version() != "v2" {
		t.Fatalf("version %q after tampered bundle, want v2", e.Version())
	}
	if v := e.Decide(&Request{Op: OpExec, Exe: "/usr/bin/app"}); v.Rule != "r-v2" {
		t.Fatalf("after: %+v", v)
	}
	if n := inconsistent.Load(); n != 0 {
		t.Fatalf("%d of %d verdicts mixed versions", n, judged.Load())
	}
	for _, r := range []string{"r-v1", "r-v2"} {
		if _, ok := seen.Load(r); !ok {
			t.Errorf("no verdict from %s during the run", r)
		}
	}
	t.Logf("judged %d events, %d requests, %d not modified", judged.Load(), srv.requests.Load(), srv.notMod.Load())
}

func TestHTTPSourceErrorsAndLists(t *testing.T) {
	priv, keys := testKey(t)
	list := []byte("# version: 2\n203.0.113.0/24\n")
	sum := sha256.Sum256(list)
	doc := fmt.Sprintf(`{"format":1,"version":"h","lists":{"nets":{"path":"lists/nets.txt","version":"2","sha256":"%x"}},"rules":[{"id":"n","action":"deny","match":{"dst":["@nets"]}}]}`, sum)
	signed, _ := Sign(priv, "test", []byte(doc))
	mux := http.NewServeMux()
	mux.HandleFunc("/b/bundle.json", func(w http.ResponseWriter, r *http.Request) { w.Write(signed) })
	mux.HandleFunc("/b/lists/nets.txt", func(w http.ResponseWriter, r *http.Request) { w.Write(list) })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	u := &Updater{Engine: New(), Keys: keys}
	if _, err := u.Update(context.Background(), &HTTPSource{URL: ts.URL + "/b/bundle.json"}); err != nil {
		t.Fatal(err)
	}
	if u.Status().Version != "h" {
		t.Fatal(u.Status())
	}
	if _, err := u.Update(context.Background(), &HTTPSource{URL: ts.URL + "/missing"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	w := time.Second
	var got []time.Duration
	for range 7 {
		w = nextWait(w, time.Second, true)
		got = append(got, w)
	}
	want := []time.Duration{2, 4, 8, 16, 32, 32, 32}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", got, want)
		}
	}
	if nextWait(32*time.Second, time.Second, false) != time.Second {
		t.Fatal("success does not reset the wait")
	}
	if nextWait(time.Hour, 10*time.Minute, true) != time.Hour {
		t.Fatal("wait exceeds an hour")
	}
}
