package rules

import (
	"net/netip"
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
