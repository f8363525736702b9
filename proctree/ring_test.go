package proctree

import "testing"

// TestNodeRing checks FIFO order across wrap-around, growth and shrinking,
// cleared holes, and that the buffer follows the number held.
func TestNodeRing(t *testing.T) {
	var r nodeRing
	nodes := make([]node, 100000)
	next, want := 0, 0 // next to push, next expected from popFront
	pop := func() {
		t.Helper()
		got := r.popFront()
		if got != &nodes[want] {
			t.Fatalf("popFront returned node %d, want %d", indexOf(nodes, got), want)
		}
		want++
	}
	// Interleave pushes and pops so the head wraps many times while the
	// buffer grows.
	for next < len(nodes) {
		for range 3 {
			if next < len(nodes) {
				r.push(&nodes[next])
				next++
			}
		}
		pop()
	}
	if r.len() != next-want {
		t.Fatalf("len %d, want %d", r.len(), next-want)
	}
	for i := 0; i < r.len(); i += 997 {
		if r.at(i) != &nodes[want+i] {
			t.Fatalf("at(%d) is node %d, want %d", i, indexOf(nodes, r.at(i)), want+i)
		}
	}
	peak := len(r.buf)
	if peak < r.len() || peak > 2*r.len()+ringMin {
		t.Fatalf("buffer %d for %d entries", peak, r.len())
	}
	// A hole is popped as nil, in its place.
	r.clearAt(1)
	pop()
	if got := r.popFront(); got != nil {
		t.Fatalf("cleared entry popped as node %d", indexOf(nodes, got))
	}
	want++
	for r.len() > 10 {
		pop()
	}
	if len(r.buf) > 4*ringMin {
		t.Fatalf("buffer still %d (peak %d) holding %d entries", len(r.buf), peak, r.len())
	}
	for r.len() > 0 {
		pop()
	}
	if want != len(nodes) {
		t.Fatalf("popped up to %d of %d", want, len(nodes))
	}
}

func indexOf(nodes []node, n *node) int {
	for i := range nodes {
		if &nodes[i] == n {
			return i
		}
	}
	return -1
}
