package rules

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseBundle: any input gives a bundle or an error, never a panic,
// and a bundle that parses compiles and judges.
func FuzzParseBundle(f *testing.F) {
	for _, s := range []string{
		`{"format":1,"version":"v","rules":[]}`,
		`{"format":1,"version":"v","lists":{"l":{"items":["10.0.0.0/8"]}},"rules":[{"id":"a","action":"deny","match":{"dst":["@l"],"port":["1-100"]}}]}`,
		`{"format":1,"version":"v","order":{"general":["target","process"]},"rules":[{"id":"a","action":"ask","ops":["write"],"match":{"target":["/etc/*"],"cmdline":["*x?y*"]}}]}`,
		`{"format":1,"version":"v","self_protection":["/opt/p/"],"rules":[{"id":"a","action":"allow","points":["self_protection"],"match":{"parent":["sshd","/usr/sbin/cron"],"user":["root","0"]}}]}`,
		`{"format":1`, `[]`, `null`, `{"format":1,"version":"v","rules":[{"id":"a","action":"deny","match":{"md5":["0123456789abcdef0123456789abcdef"]}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data, nil)
		if err != nil {
			return
		}
		e := New()
		if err := e.Load(b); err != nil {
			t.Fatalf("parsed bundle does not load: %v", err)
		}
		for _, r := range []Request{
			{Op: OpConnect, Exe: "/usr/bin/x", Dst: netip.MustParseAddrPort("10.1.2.3:80"), Argv: []string{"x", "y"}},
			{Op: OpWrite, Exe: "/usr/bin/x", Path: "/etc/passwd", ParentExe: "/usr/sbin/cron", UID: 0, HasUID: true},
		} {
			if a, b := e.decide(&r, false), e.decide(&r, true); a.Rule != b.Rule {
				t.Fatalf("index %q and linear %q disagree", a.Rule, b.Rule)
			}
		}
	})
}

// FuzzOpenSigned: any document either opens (and then it verifies: the
// payload re-signed with the same key opens to the same payload) or fails;
// a signed document altered by the fuzzer never opens to a different
// payload. Key files and list files of any shape parse or fail, never
// panic.
func FuzzOpenSigned(f *testing.F) {
	pubF, privF, err := GenerateKey("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	_, pub, _ := ParsePublicKey(pubF)
	_, priv, _ := ParsePrivateKey(privF)
	keys := Keyring{"fuzz": pub}
	good, err := Sign(priv, "fuzz", []byte(`{"format":1,"version":"v","rules":[]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1,"version":"v","rules":[]}`))
	f.Add(pubF)
	f.Add([]byte("# version: 3\n10.0.0.0/8\n\n# c\nexample.org\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, name, err := OpenSigned(data, keys)
		if err == nil {
			if name != "fuzz" {
				t.Fatalf("opened with key %q", name)
			}
			// Ed25519 is deterministic: a genuine signature of this
			// payload is the one in the envelope, so the payload is
			// what was signed.
			again, err := Sign(priv, "fuzz", payload)
			if err != nil {
				t.Fatal(err)
			}
			p2, _, err := OpenSigned(again, keys)
			if err != nil || !bytes.Equal(p2, payload) {
				t.Fatalf("re-signed payload does not open to itself: %v", err)
			}
		}
		_, _, _ = ParsePublicKey(data)
		_, _, _ = ParsePrivateKey(data)
		items, _ := parseListFile(data)
		for _, it := range items {
			if it == "" || strings.HasPrefix(it, "#") {
				t.Fatalf("list item %q kept", it)
			}
		}
	})
}
