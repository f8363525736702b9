package rules

import (
	"net/netip"
	"strconv"
	"strings"
)

// wildcard reports whether s matches pattern p, where '*' matches any run
// of characters (including '/') and '?' any one character.
func wildcard(p, s string) bool {
	// Iterative matcher with single-star backtracking.
	px, sx := 0, 0
	nextP, nextS := -1, -1
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				nextP, nextS = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextS > 0 && nextS <= len(s) {
			px, sx = nextP, nextS
			continue
		}
		return false
	}
	return true
}

func isWild(v string) bool { return strings.ContainsAny(v, "*?") }

// strSet matches a string against exact values, directory prefixes
// (values ending in "/", when dirs is set) and wildcards.
type strSet struct {
	exact  map[string]struct{}
	prefix []string
	glob   []glob
}

// glob is a compiled wildcard: without '?', the pattern's literal parts
// between '*'s are matched with strings.Index.
type glob struct {
	pat   string
	parts []string // nil when the pattern has '?'
}

func compileGlob(p string) glob {
	g := glob{pat: p}
	if !strings.Contains(p, "?") {
		g.parts = strings.Split(p, "*")
	}
	return g
}

func (g *glob) match(s string) bool {
	if g.parts == nil {
		return wildcard(g.pat, s)
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(g.parts) == 1 {
		return s == first
	}
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

func newStrSet(vals []string, dirs bool) *strSet {
	if len(vals) == 0 {
		return nil
	}
	s := &strSet{exact: make(map[string]struct{})}
	for _, v := range vals {
		switch {
		case isWild(v):
			s.glob = append(s.glob, compileGlob(v))
		case dirs && strings.HasSuffix(v, "/"):
			s.prefix = append(s.prefix, v)
		default:
			s.exact[v] = struct{}{}
		}
	}
	return s
}

// indexable reports whether every value is exact or a directory prefix.
func (s *strSet) indexable() bool { return s != nil && len(s.glob) == 0 }

func (s *strSet) has(v string) bool {
	if _, ok := s.exact[v]; ok {
		return true
	}
	for _, p := range s.prefix {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	for i := range s.glob {
		if s.glob[i].match(v) {
			return true
		}
	}
	return false
}

func (s *strSet) hasAny(vs []string) bool {
	for _, v := range vs {
		if s.has(v) {
			return true
		}
	}
	return false
}

// userSet matches uids and user names.
type userSet struct {
	uids  map[int]struct{}
	names map[string]struct{}
}

func newUserSet(vals []string) *userSet {
	if len(vals) == 0 {
		return nil
	}
	u := &userSet{uids: map[int]struct{}{}, names: map[string]struct{}{}}
	for _, v := range vals {
		if n, err := strconv.Atoi(v); err == nil {
			u.uids[n] = struct{}{}
		} else {
			u.names[v] = struct{}{}
		}
	}
	return u
}

type portRange struct{ lo, hi uint16 }

func matchPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func matchPorts(rs []portRange, p uint16) bool {
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

// parents calls fn with each directory prefix of path ending in "/", from
// the longest: "/a/b/c" → "/a/b/", "/a/", "/". It stops when fn returns false.
func parents(path string, fn func(string) bool) {
	for i := len(path) - 2; i >= 0; i-- {
		if path[i] == '/' && !fn(path[:i+1]) {
			return
		}
	}
}
