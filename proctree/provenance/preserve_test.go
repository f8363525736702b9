package provenance

import "testing"

func checkPreservation(t testing.TB, tr *Tree, g *Graph, alert string, opts Options) {}
