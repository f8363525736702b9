package provenance

import (
	"slices"
	"testing"

	"github.com/procwall/procwall/source/replay"
)

// TestSeedViaReplay reads the seed's records through source/replay (the
// path `procwall provenance` takes) and checks it yields the same graph as
// the events built directly.
func TestSeedViaReplay(t *testing.T) {
	r, err := replay.Open([]string{"testdata/seed002.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr := NewTree()
	if _, err := tr.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules("testdata/seed002-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := tr.Simplify("n5", Options{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	_, want := seedGraph(t)
	names := func(g *Graph) []string {
		var out []string
		for _, n := range g.Nodes {
			out = append(out, n.Type.String()+" "+n.Name)
		}
		slices.Sort(out)
		return out
	}
	if got, w := names(g), names(want); !slices.Equal(got, w) {
		t.Errorf("nodes via replay:\n%q\nwant\n%q", got, w)
	}
	if len(g.Edges) != len(want.Edges) {
		t.Errorf("%d edges via replay, want %d", len(g.Edges), len(want.Edges))
	}
	checkPreservation(t, tr, g, "n5", Options{Rules: rules})
}
