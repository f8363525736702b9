package rules_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/procwall/procwall/rules"
)

// A bundle with a destination deny list and a process allow rule, judged
// without a person: unmatched requests take the default action.
func ExampleEngine_Decide() {
	b, err := rules.ParseBundle([]byte(`{
	  "format": 1, "version": "2026.11.24-1",
	  "lists": {"c2": {"items": ["203.0.113.0/24"]}},
	  "rules": [
	    {"id": "c2", "action": "deny", "description": "known C2 network", "match": {"dst": ["@c2"]}},
	    {"id": "ssh", "action": "allow", "match": {"exe": ["/usr/bin/ssh"], "port": ["22"]}}
	  ]}`), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	e := rules.New()
	if err := e.Load(b); err != nil {
		fmt.Println(err)
		return
	}
	for _, req := range []rules.Request{
		{Op: rules.OpConnect, Exe: "/usr/bin/curl", Dst: netip.MustParseAddrPort("203.0.113.5:443")},
		{Op: rules.OpConnect, Exe: "/usr/bin/ssh", Dst: netip.MustParseAddrPort("192.0.2.1:22")},
		{Op: rules.OpConnect, Exe: "/usr/bin/ssh", Dst: netip.MustParseAddrPort("192.0.2.1:80")},
	} {
		v := e.Decide(&req)
		fmt.Printf("%v %q %q\n", v.Action, v.Rule, v.Description)
	}
	// Output:
	// deny "c2" "known C2 network"
	// allow "ssh" ""
	// ask "" "no rule matched"
}

// Publishing a bundle: sign it, then load it as an agent would, with the
// last good bundle kept when a document is rejected.
func ExampleUpdater() {
	pubFile, privFile, _ := rules.GenerateKey("ops")
	name, pub, _ := rules.ParsePublicKey(pubFile)
	_, priv, _ := rules.ParsePrivateKey(privFile)
	signed, _ := rules.Sign(priv, "ops", []byte(`{"format":1,"version":"v1","rules":[{"id":"nc","action":"deny","match":{"name":["nc"]}}]}`))

	e := rules.New()
	u := &rules.Updater{Engine: e, Keys: rules.Keyring{name: pub}}
	fmt.Println(u.Apply(rules.Fetched{Data: signed, Origin: "example"}), e.Version())
	err := u.Apply(rules.Fetched{Data: []byte(`{"format":1,"version":"v2","rules":[]}`), Origin: "example"})
	fmt.Println(err)
	fmt.Println("active:", e.Version())
	// Output:
	// <nil> v1
	// update from example: open signed: not a signed document
	// active: v1
}

// Asking a person: the engine scores the risk, asks within the timeout
// and remembers an "always" answer as a user rule.
func ExampleEngine_Judge() {
	ask := rules.DeciderFunc(func(ctx context.Context, q rules.Question) (rules.Answer, error) {
		return rules.Answer{Action: rules.Deny, Remember: rules.Always}, nil
	})
	e := rules.New(rules.WithDecider(ask))
	req := &rules.Request{Op: rules.OpConnect, Exe: "/nonexistent/tool", Dst: netip.MustParseAddrPort("198.51.100.1:4444")}
	v := e.Judge(context.Background(), req)
	fmt.Println(v.Action, v.By, v.Rule)
	v = e.Judge(context.Background(), req)
	fmt.Println(v.Action, v.By, v.Rule)
	// Output:
	// deny decider user:1
	// deny user user:1
}
