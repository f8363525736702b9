package rules

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianRealPackage verifies /usr/bin/ls against this machine's dpkg
// database (coreutils lists it as /bin/ls under the merged /usr).
func TestDebianRealPackage(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/info/coreutils.md5sums"); err != nil {
		t.Skip("not a Debian system with coreutils:", err)
	}
	d := NewDebian("/")
	c := NewDigestCache(0)
	for _, p := range []string{"/usr/bin/ls", "/bin/ls"} {
		f, err := c.Get(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.Path = p
		s, err := d.Verify(f)
		if err != nil || s != "debian:coreutils" {
			t.Errorf("%s: signer %q, err %v", p, s, err)
		}
	}
	// A copy elsewhere is owned by no package: unsigned, no error.
	dir := t.TempDir()
	data, _ := os.ReadFile("/usr/bin/ls")
	cp := filepath.Join(dir, "ls")
	os.WriteFile(cp, data, 0o755)
	f, err := c.Get(cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := d.Verify(f); s != "" || err != nil {
		t.Errorf("copy: %q %v", s, err)
	}
}

// TestDebianTampered uses the real coreutils md5sums with a database that
// lists a copy of ls: intact it verifies, one flipped byte fails.
func TestDebianTampered(t *testing.T) {
	sums, err := os.ReadFile("/var/lib/dpkg/info/coreutils.md5sums")
	if err != nil {
		t.Skip("not a Debian system with coreutils:", err)
	}
	var lsSum string
	for _, l := range strings.Split(string(sums), "\n") {
		if s, p, ok := strings.Cut(l, "  "); ok && p == "bin/ls" {
			lsSum = s
		}
	}
	if lsSum == "" {
		t.Skip("coreutils md5sums has no bin/ls")
	}
	root := t.TempDir()
	info := filepath.Join(root, "var/lib/dpkg/info")
	os.MkdirAll(info, 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	bin := filepath.Join(root, "bin")
	os.MkdirAll(bin, 0o755)
	ls := filepath.Join(bin, "ls")
	data, err := os.ReadFile("/usr/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ls, data, 0o755)
	os.WriteFile(filepath.Join(info, "coreutils.list"), []byte("/.\n"+bin+"\n"+ls+"\n"), 0o644)
	os.WriteFile(filepath.Join(info, "coreutils.md5sums"), []byte(lsSum+"  "+strings.TrimPrefix(ls, "/")+"\n"), 0o644)

	d := NewDebian(root)
	e := mustEngine(t, `{"format":1,"version":"v","rules":[{"id":"deb","action":"allow","match":{"signer":["debian:*"]}}]}`, WithVerifiers(d))
	if v := e.Decide(&Request{Op: OpExec, Exe: ls}); v.Rule != "deb" {
		t.Fatalf("intact copy: %+v", v)
	}
	tampered := bytes.Clone(data)
	tampered[len(tampered)/2] ^= 0xff
	os.WriteFile(ls, tampered, 0o755)
	v := e.Decide(&Request{Op: OpExec, Exe: ls})
	if v.Rule != "" || !strings.Contains(v.Description, "differs from its recorded digest") {
		t.Fatalf("tampered: %+v", v)
	}
	f, _ := e.Digests().Get(ls, nil)
	if _, err := d.Verify(f); !errors.Is(err, ErrTampered) {
		t.Errorf("err %v, want ErrTampered", err)
	}
}

func TestEd25519Verifier(t *testing.T) {
	pubF, privF, err := GenerateKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	name, pub, err := ParsePublicKey(pubF)
	if err != nil || name != "acme" {
		t.Fatal(err)
	}
	_, priv, err := ParsePrivateKey(privF)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ParsePrivateKey(must(GenerateKey("acme"))[1])
	v := NewEd25519(Keyring{"acme": pub})
	dir := t.TempDir()
	exe, _, sha := writeExe(t, dir, "agent", "in-house agent")
	if err := SignFile(priv, "acme", exe); err != nil {
		t.Fatal(err)
	}
	c := NewDigestCache(0)
	f, _ := c.Get(exe, nil)
	if s, err := v.Verify(f); s != "ed25519:acme" || err != nil {
		t.Fatalf("detached: %q %v", s, err)
	}
	// Tampered file.
	os.WriteFile(exe, []byte("in-house agenT"), 0o755)
	f, _ = c.Get(exe, nil)
	if s, err := v.Verify(f); s != "" || !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered: %q %v", s, err)
	}
	// Signed by an untrusted key with the same name.
	os.WriteFile(exe, []byte("in-house agent"), 0o755)
	SignFile(otherPriv, "acme", exe)
	f, _ = c.Get(exe, nil)
	if s, err := v.Verify(f); s != "" || err == nil {
		t.Fatalf("wrong key: %q %v", s, err)
	}
	// Manifest.
	os.Remove(exe + ".sig")
	man, _ := Sign(priv, "acme", []byte(`{"files":{"`+exe+`":"`+sha+`"}}`))
	if err := v.AddManifest(man); err != nil {
		t.Fatal(err)
	}
	if s, err := v.Verify(f); s != "ed25519:acme" || err != nil {
		t.Fatalf("manifest: %q %v", s, err)
	}
	badMan := bytes.Replace(man, []byte(`"key": "acme"`), []byte(`"key": "evil"`), 1)
	if err := v.AddManifest(badMan); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key manifest: %v", err)
	}
	forged, _ := Sign(otherPriv, "acme", []byte(`{"files":{}}`))
	if err := v.AddManifest(forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged manifest: %v", err)
	}
}

func must[T any](a, b T, err error) [2]T {
	if err != nil {
		panic(err)
	}
	return [2]T{a, b}
}
