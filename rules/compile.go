package rules

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// rule is a compiled rule.
type rule struct {
	id, desc string
	action   Action
	priority int
	layer    string
	pos      int

	signer, md5, sha, exe, name, cmdline, parentPath, parentName, target *strSet
	users                                                                *userSet
	dst                                                                  []netip.Prefix
	ports                                                                []portRange
}

// table holds the rules of one (monitor point, op), in execution order,
// with indexes from exact values to rule positions.
type table struct {
	rules    []*rule
	layerPos map[string]int // layer → position in the point's order
	userPos  int            // position of the user layer; -1: not consulted

	byMD5, bySHA, bySigner, byName, byExe, byTarget map[string][]int32
	exeDir, targetDir                               map[string][]int32
	byDst                                           map[netip.Prefix][]int32
	dstBits4, dstBits6                              []int
	scan                                            []int32

	needMD5, needSHA, needSigner bool
}

// compiled is an immutable, compiled bundle.
type compiled struct {
	version     string
	tables      [numPoints][numOps]*table
	self        *strSet
	watch       []string
	userNames   bool // some rule matches user names
	ruleCount   int
	persistence []string
}

func compile(b *Bundle) *compiled {
	c := &compiled{version: b.Version, ruleCount: len(b.Rules)}
	c.self = newStrSet(b.SelfProtection, true)
	c.persistence = b.Persistence
	if len(c.persistence) == 0 {
		c.persistence = DefaultPersistence
	}
	rs := make([]*rule, len(b.Rules))
	for i := range b.Rules {
		rs[i] = compileRule(b, &b.Rules[i], i)
		if rs[i].users != nil && len(rs[i].users.names) > 0 {
			c.userNames = true
		}
	}
	for _, pt := range []Point{PointGeneral, PointSelf} {
		order := b.order(pt.String())
		for op := OpExec; op < numOps; op++ {
			t := &table{layerPos: map[string]int{}, userPos: -1}
			for i, l := range order {
				t.layerPos[l] = i
			}
			if p, ok := t.layerPos[LayerUser]; ok {
				t.userPos = p
			}
			for i := range b.Rules {
				spec := &b.Rules[i]
				r := rs[i]
				if _, ok := t.layerPos[r.layer]; !ok {
					continue
				}
				if len(spec.Points) > 0 && !slices.Contains(spec.Points, pt.String()) {
					continue
				}
				if len(spec.Ops) > 0 && !slices.Contains(spec.Ops, op.String()) {
					continue
				}
				t.rules = append(t.rules, r)
			}
			slices.SortStableFunc(t.rules, func(x, y *rule) int {
				return cmp.Or(
					cmp.Compare(t.layerPos[x.layer], t.layerPos[y.layer]),
					cmp.Compare(y.priority, x.priority),
					cmp.Compare(x.pos, y.pos))
			})
			t.index()
			c.tables[pt][op] = t
		}
	}
	return c
}

func compileRule(b *Bundle, s *RuleSpec, pos int) *rule {
	r := &rule{id: s.ID, desc: s.Description, priority: s.Priority, pos: pos}
	r.action, _ = ParseAction(s.Action)
	r.layer, _ = s.layer()
	ex := func(v []string) []string {
		out, _ := b.expand("", v)
		return out
	}
	m := &s.Match
	r.signer = newStrSet(ex(m.Signer), false)
	r.md5 = newStrSet(ex(m.MD5), false)
	r.sha = newStrSet(ex(m.SHA256), false)
	r.exe = newStrSet(ex(m.Exe), true)
	r.name = newStrSet(ex(m.Name), false)
	r.cmdline = newStrSet(ex(m.Cmdline), false)
	r.target = newStrSet(ex(m.Target), true)
	var pp, pn []string
	for _, v := range ex(m.Parent) {
		if strings.Contains(v, "/") {
			pp = append(pp, v)
		} else {
			pn = append(pn, v)
		}
	}
	r.parentPath = newStrSet(pp, true)
	r.parentName = newStrSet(pn, false)
	r.users = newUserSet(ex(m.User))
	for _, v := range ex(m.Dst) {
		p, _ := parsePrefix(v)
		r.dst = append(r.dst, p)
	}
	for _, v := range ex(m.Port) {
		lo, hi, _ := parsePortRange(v)
		r.ports = append(r.ports, portRange{lo, hi})
	}
	return r
}

func addIdx(m *map[string][]int32, k string, i int32) {
	if *m == nil {
		*m = map[string][]int32{}
	}
	l := (*m)[k]
	if len(l) > 0 && l[len(l)-1] == i {
		return
	}
	(*m)[k] = append(l, i)
}

// index picks, per rule, one condition whose values are all exact (or
// directory prefixes) and files the rule under each value; other rules go
// to the scan list. Positions stay ascending in every list.
func (t *table) index() {
	for n, r := range t.rules {
		i := int32(n)
		if r.md5 != nil {
			t.needMD5 = true
		}
		if r.sha != nil {
			t.needSHA = true
		}
		if r.signer != nil {
			t.needSigner = true
		}
		switch {
		case r.md5.indexable():
			for k := range r.md5.exact {
				addIdx(&t.byMD5, k, i)
			}
		case r.sha.indexable():
			for k := range r.sha.exact {
				addIdx(&t.bySHA, k, i)
			}
		case r.exe.indexable():
			for k := range r.exe.exact {
				addIdx(&t.byExe, k, i)
			}
			for _, k := range r.exe.prefix {
				addIdx(&t.exeDir, k, i)
			}
		case r.target.indexable():
			for k := range r.target.exact {
				addIdx(&t.byTarget, k, i)
			}
			for _, k := range r.target.prefix {
				addIdx(&t.targetDir, k, i)
			}
		case r.name.indexable():
			for k := range r.name.exact {
				addIdx(&t.byName, k, i)
			}
		case r.signer.indexable():
			for k := range r.signer.exact {
				addIdx(&t.bySigner, k, i)
			}
		case len(r.dst) > 0:
			if t.byDst == nil {
				t.byDst = map[netip.Prefix][]int32{}
			}
			for _, p := range r.dst {
				l := t.byDst[p]
				if len(l) == 0 || l[len(l)-1] != i {
					t.byDst[p] = append(l, i)
				}
				if p.Addr().Is4() {
					if !slices.Contains(t.dstBits4, p.Bits()) {
						t.dstBits4 = append(t.dstBits4, p.Bits())
					}
				} else if !slices.Contains(t.dstBits6, p.Bits()) {
					t.dstBits6 = append(t.dstBits6, p.Bits())
				}
			}
		default:
			t.scan = append(t.scan, i)
		}
	}
}
