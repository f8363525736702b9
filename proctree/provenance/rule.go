package provenance

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// RuleSchema identifies the feature-rule format (see the package
// documentation for its fields).
const RuleSchema = "procwall.provenance.rule/v1"

// MaxFeatures bounds the features of one rule.
const MaxFeatures = 64

// FeatureRule is step 5's output: the features of a simplified graph,
// exported so that other hosts raise an alert when their own activity
// shows the same pattern. It is plain JSON (schema RuleSchema).
type FeatureRule struct {
	Schema      string       `json:"schema"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Level       source.Level `json:"level"`
	Created     time.Time    `json:"created,omitzero"`
	// Alert is the alert ID the rule was derived from, on its origin host.
	Alert string `json:"alert,omitempty"`
	// Within is how many generations a feature's process may be below
	// the lineage anchor in which the features are counted.
	Within int `json:"within"`
	// MinMatch is how many distinct features must be seen in one
	// lineage; it defaults to all of them.
	MinMatch int `json:"min_match"`
	// Simplify are the drop rules the graph was simplified with: a
	// dropped process's features count for its nearest kept ancestor,
	// as they did on the origin host.
	Simplify []Rule    `json:"simplify,omitempty"`
	Features []Feature `json:"features"`
}

// Feature is one behaviour: a process (by image) did Kind to a resource.
type Feature struct {
	// Process is a wildcard ('*', '?') on the acting process's image base
	// name; empty matches any process.
	Process string   `json:"process,omitempty"`
	Kind    EdgeKind `json:"kind"`
	Type    NodeType `json:"type"`
	// Value is a wildcard on the resource: a file's base name, a URL, a
	// lower-case domain, or an IP address (an address may also be a CIDR
	// prefix).
	Value string `json:"value"`
	// Port, when not 0, must equal the resource's port.
	Port int `json:"port,omitempty"`
}

// featureKinds are the edge kinds DeriveRule turns into features.
var featureKinds = map[EdgeKind]bool{
	EdgeExecuted: true, EdgeDownloaded: true, EdgeFetched: true, EdgeConnected: true, EdgeResolved: true,
}

// DeriveRule derives a feature rule from a graph: one feature per distinct
// (kind, resource) among the edges from processes to resources of the
// kinds executed, downloaded, fetched, connected and resolved. Files are
// kept by base name (directories differ between hosts). Within is the
// span of generations of the processes with features, plus one.
func DeriveRule(g *Graph, name string) (*FeatureRule, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	idx := make(map[string]*Node, len(g.Nodes))
	for i := range g.Nodes {
		idx[g.Nodes[i].ID] = &g.Nodes[i]
	}
	r := &FeatureRule{
		Schema: RuleSchema, Name: name, Level: source.LevelHigh, Alert: g.AlertID,
		Simplify:    g.Rules,
		Description: "derived from the provenance graph of alert " + g.AlertID,
	}
	type fkey struct {
		kind  EdgeKind
		t     NodeType
		value string
		port  int
	}
	seen := map[fkey]int{}
	minD, maxD, any := 0, 0, false
	for _, e := range g.Edges {
		from, to := idx[e.From], idx[e.To]
		if from.Type != TypeProcess || to.Type == TypeProcess || !featureKinds[e.Kind] {
			continue
		}
		v := to.Name
		if to.Type == TypeFile {
			v = baseName(v)
		}
		port := 0
		if len(e.Ports) == 1 {
			port = e.Ports[0]
		}
		k := fkey{e.Kind, to.Type, v, port}
		if i, ok := seen[k]; ok {
			if r.Features[i].Process != from.Name {
				r.Features[i].Process = ""
			}
		} else {
			if len(r.Features) == MaxFeatures {
				continue
			}
			seen[k] = len(r.Features)
			r.Features = append(r.Features, Feature{Process: from.Name, Kind: e.Kind, Type: to.Type, Value: v, Port: port})
		}
		if !any || from.Depth < minD {
			minD = from.Depth
		}
		if !any || from.Depth > maxD {
			maxD = from.Depth
		}
		any = true
	}
	if len(r.Features) == 0 {
		return nil, &OpError{Op: "derive rule", Err: fmt.Errorf("%w: the graph of %s has no resource features", ErrBadRule, g.AlertID)}
	}
	r.Within = maxD - minD + 1
	r.MinMatch = len(r.Features)
	return r, nil
}

// Validate checks the rule's schema, kinds and bounds.
func (r *FeatureRule) Validate() error {
	fail := func(format string, args ...any) error {
		return &OpError{Op: "rule", Err: fmt.Errorf("%w: feature rule %q: "+format, append([]any{ErrBadRule, r.Name}, args...)...)}
	}
	if r.Schema != RuleSchema {
		return fail("schema %q, want %q", r.Schema, RuleSchema)
	}
	if len(r.Features) == 0 || len(r.Features) > MaxFeatures {
		return fail("needs 1 to %d features, has %d", MaxFeatures, len(r.Features))
	}
	if r.MinMatch < 0 || r.MinMatch > len(r.Features) {
		return fail("min_match %d out of range 0..%d", r.MinMatch, len(r.Features))
	}
	if r.Within < 0 || r.Within > 64 {
		return fail("within %d out of range 0..64", r.Within)
	}
	for i, f := range r.Features {
		if f.Kind >= numEdgeKinds || f.Type >= numTypes || f.Type == TypeProcess {
			return fail("feature %d: bad kind or type", i)
		}
		if f.Value == "" {
			return fail("feature %d: empty value", i)
		}
		if f.Port < 0 || f.Port > 65535 {
			return fail("feature %d: port %d out of range", i, f.Port)
		}
		if f.Type == TypeAddress && strings.Contains(f.Value, "/") {
			if _, err := netip.ParsePrefix(f.Value); err != nil {
				return fail("feature %d: %v", i, err)
			}
		}
	}
	if _, err := compileRules(r.Simplify); err != nil {
		return err
	}
	return nil
}

// ParseFeatureRule decodes and validates a feature rule.
func ParseFeatureRule(data []byte) (*FeatureRule, error) {
	var r FeatureRule
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &OpError{Op: "rule", Err: fmt.Errorf("%w: %v", ErrBadRule, err)}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadFeatureRule reads a feature rule from a file.
func LoadFeatureRule(file string) (*FeatureRule, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &OpError{Op: "rule", Err: err}
	}
	r, err := ParseFeatureRule(data)
	if err != nil {
		return nil, &OpError{Op: "rule " + file, Err: err}
	}
	return r, nil
}

// wildcard matches s against a pattern where '*' is any run of bytes and
// '?' any one byte.
func wildcard(p, s string) bool {
	star, ss := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == s[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, ss = i, j
			i++
		case star >= 0:
			i = star + 1
			ss++
			j = ss
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

func (f *Feature) matches(image string, x *Finding) bool {
	if f.Type != x.Type {
		return false
	}
	if f.Kind != x.Edge && !(f.Kind == EdgeDownloaded && x.Edge == EdgeWrote) {
		return false
	}
	if f.Port != 0 && f.Port != x.Port {
		return false
	}
	if f.Process != "" && !wildcard(f.Process, image) {
		return false
	}
	v := x.Name
	switch x.Type {
	case TypeFile:
		v = baseName(v)
	case TypeAddress:
		if strings.Contains(f.Value, "/") {
			p, err1 := netip.ParsePrefix(f.Value)
			a, err2 := netip.ParseAddr(v)
			return err1 == nil && err2 == nil && p.Contains(a)
		}
	}
	return wildcard(f.Value, v)
}

// Match is an alert raised by a Matcher.
type Match struct {
	Rule  string
	Level source.Level
	Time  time.Time
	// Anchor is the process whose lineage (itself and Within generations
	// below it) shows the pattern; Process is the one whose event
	// completed it.
	Anchor, Process ProcessInfo
	Features        []int // indexes of the features seen
}

type matcherRule struct {
	r    *FeatureRule
	drop []compiledRule
	all  uint64
	min  int
}

// Matcher watches another host's events for the patterns of feature rules.
// It keeps its own provenance tree of that host (memory grows with the
// number of processes seen). A Matcher is not safe for concurrent use.
type Matcher struct {
	tree  *Tree
	rules []matcherRule
	ex    Extractor
	masks map[int32][]uint64 // process → per-rule mask of features seen in its lineage
	fired map[[2]int32]bool  // (process, rule) already reported
}

// NewMatcher returns a Matcher for the rules (validated first).
func NewMatcher(rules ...*FeatureRule) (*Matcher, error) {
	m := &Matcher{tree: NewTree(), masks: map[int32][]uint64{}, fired: map[[2]int32]bool{}}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		drop, err := compileRules(r.Simplify)
		if err != nil {
			return nil, err
		}
		mr := matcherRule{r: r, drop: drop, min: r.MinMatch}
		if mr.min == 0 {
			mr.min = len(r.Features)
		}
		mr.all = ^uint64(0) >> (64 - len(r.Features))
		m.rules = append(m.rules, mr)
	}
	return m, nil
}

// Tree returns the matcher's tree of the observed host.
func (m *Matcher) Tree() *Tree { return m.tree }

// Observe adds one event and returns the alerts it completes: for each
// rule, the first time a lineage shows MinMatch of its features, counted
// at the nearest process (the anchor) at most Within generations above
// every process that showed one.
func (m *Matcher) Observe(e source.Event) ([]Match, error) {
	if err := m.tree.Add(e); err != nil {
		return nil, err
	}
	var finds []Finding
	switch e.Kind {
	case source.KindExec:
		finds, _ = m.ex.ExtractArgv(e.Exe, e.Argv, e.Cwd)
	case source.KindConnect, source.KindSend, source.KindAccept, source.KindFile, source.KindDNS:
		a := activity{kind: e.Kind, op: e.Op, name: e.Path, addr: e.Dst, answers: e.Answers}
		if e.Kind == source.KindDNS {
			a.name = e.Query
		}
		finds = activityFindings(&a)
	default:
		return nil, nil
	}
	if len(finds) == 0 {
		return nil, nil
	}
	node, ok := m.tree.lookup(e.GUID, e.PID, e.Start)
	if !ok {
		return nil, nil
	}
	var out []Match
	for ri := range m.rules {
		mr := &m.rules[ri]
		actor := m.actor(node, mr)
		img := m.tree.info(actor).Name()
		var bitsSeen uint64
		for fi := range mr.r.Features {
			for k := range finds {
				if mr.r.Features[fi].matches(img, &finds[k]) {
					bitsSeen |= 1 << fi
					break
				}
			}
		}
		if bitsSeen == 0 {
			continue
		}
		reported := false
		p := actor
		for gen := 0; p != none && gen <= mr.r.Within; gen++ {
			ms := m.masks[p]
			if ms == nil {
				ms = make([]uint64, len(m.rules))
				m.masks[p] = ms
			}
			ms[ri] |= bitsSeen
			key := [2]int32{p, int32(ri)}
			if !m.fired[key] && bits.OnesCount64(ms[ri]&mr.all) >= mr.min {
				m.fired[key] = true
				if !reported {
					reported = true
					var idx []int
					for fi := range mr.r.Features {
						if ms[ri]&(1<<fi) != 0 {
							idx = append(idx, fi)
						}
					}
					out = append(out, Match{
						Rule: mr.r.Name, Level: mr.r.Level, Time: e.Time,
						Anchor: m.tree.info(p), Process: m.tree.info(node), Features: idx,
					})
				}
			}
			p = m.tree.proc(p).parent
		}
	}
	return out, nil
}

// actor is the process a finding counts for: the process itself, or, when
// the rule's simplification drops it, its nearest kept ancestor.
func (m *Matcher) actor(p int32, mr *matcherRule) int32 {
	for n := 0; n < 64; n++ {
		pr := m.tree.proc(p)
		dropped := false
		for i := range mr.drop {
			if mr.drop[i].match(pr.exe, pr.argv) {
				dropped = true
				break
			}
		}
		if !dropped || pr.parent == none {
			return p
		}
		p = pr.parent
	}
	return p
}
