package risk

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ActionChain is the action of an attack-chain record ([Chain]).
const ActionChain = "chain"

// ChainConfig holds the windows, weights and caps of attack-chain tracking
// (seed 003). Start from [DefaultChainConfig].
type ChainConfig struct {
	// Window is the length of the event windows (aligned on multiples of
	// Window since the Unix epoch).
	Window time.Duration
	// Lookback: a chain node is looked around in a window when it is a
	// baseline node, joined the chain within the last Lookback windows, or
	// was active within them.
	Lookback int
	// MinConfidence is the lowest confidence with which a node joins.
	MinConfidence float64
	// Evidence weights: a candidate's confidence from one piece of
	// evidence is the confidence of the chain node it was found from times
	// the weight; several pieces combine as 1 − Π(1 − c).
	ChildWeight    float64 // forked by a chain process in the window
	AddrWeight     float64 // an address a chain process first used in the window
	TakeoverWeight float64 // a process that first used a chain address after every chain user of it exited
	SharedWeight   float64 // a process that first used a chain address while a chain user of it was alive
	// Boosts combine the same way with a candidate's confidence.
	RiskBoost      float64 // the candidate was reported risky in the window
	SameImageBoost float64 // the candidate runs the image of a baseline process
	// UpstreamDepth bounds the ancestors of the flagged process named as
	// upstream; the k-th has confidence UpstreamWeight^k.
	UpstreamDepth  int
	UpstreamWeight float64
	// MaxAddrFanout: an address with more users is not followed to them.
	MaxAddrFanout int
	// MaxNodes caps the nodes of one chain; MaxChains the chains tracked
	// at once (Flag refuses more).
	MaxNodes, MaxChains int
	// IdleWindows: a chain that has not grown for this many windows is no
	// longer tracked.
	IdleWindows int
}

// DefaultChainConfig returns one-minute windows, a lookback of three
// windows, and the documented weights.
func DefaultChainConfig() ChainConfig {
	return ChainConfig{
		Window:         time.Minute,
		Lookback:       3,
		MinConfidence:  0.25,
		ChildWeight:    0.9,
		AddrWeight:     0.8,
		TakeoverWeight: 0.7,
		SharedWeight:   0.35,
		RiskBoost:      0.5,
		SameImageBoost: 0.3,
		UpstreamDepth:  4,
		UpstreamWeight: 0.8,
		MaxAddrFanout:  64,
		MaxNodes:       256,
		MaxChains:      64,
		IdleWindows:    30,
	}
}

// Validate reports the first setting out of range.
func (c *ChainConfig) Validate() error {
	if c.Window <= 0 {
		return fmt.Errorf("%w: Window must be > 0, have %v", ErrConfig, c.Window)
	}
	for _, ch := range []struct {
		n string
		v float64
	}{
		{"MinConfidence", c.MinConfidence}, {"ChildWeight", c.ChildWeight}, {"AddrWeight", c.AddrWeight},
		{"TakeoverWeight", c.TakeoverWeight}, {"SharedWeight", c.SharedWeight}, {"RiskBoost", c.RiskBoost},
		{"SameImageBoost", c.SameImageBoost}, {"UpstreamWeight", c.UpstreamWeight},
	} {
		if err := unit(ch.n, ch.v); err != nil {
			return err
		}
	}
	if c.Lookback < 0 || c.UpstreamDepth < 0 || c.MaxAddrFanout < 0 || c.IdleWindows < 0 {
		return fmt.Errorf("%w: Lookback, UpstreamDepth, MaxAddrFanout and IdleWindows must be >= 0", ErrConfig)
	}
	if c.MaxNodes < 1 || c.MaxChains < 1 {
		return fmt.Errorf("%w: MaxNodes and MaxChains must be >= 1", ErrConfig)
	}
	return nil
}

// Chain is an attack-chain record (action "chain"): the nodes an attack
// passed through, from the flagged origin upstream and downstream, as
// known at the end of one window. Every field is documented in
// doc_chain.go.
type Chain struct {
	Time        time.Time   `json:"ts"`
	Action      string      `json:"action"`
	ID          string      `json:"chain"`
	Origin      string      `json:"origin"`
	Flagged     time.Time   `json:"flagged"`
	Reason      string      `json:"reason"`
	Window      int         `json:"window"`
	WindowStart time.Time   `json:"window_start"`
	WindowEnd   time.Time   `json:"window_end"`
	Added       int         `json:"added"`
	Path        string      `json:"path"`
	Nodes       []ChainNode `json:"nodes"`
}

// RecordAction implements the Protector's record interface.
func (c *Chain) RecordAction() string { return c.Action }

// ChainNode is one node of a [Chain].
type ChainNode struct {
	Node       string     `json:"node"`
	PID        int        `json:"pid,omitempty"`
	Start      uint64     `json:"start,omitempty"`
	Name       string     `json:"name,omitempty"`
	Addr       string     `json:"addr,omitempty"`
	Role       string     `json:"role"`
	Hop        int        `json:"hop"`
	From       string     `json:"from,omitempty"`
	Window     int        `json:"window"`
	Confidence float64    `json:"confidence"`
	Evidence   []Evidence `json:"evidence"`
}

// Evidence is one reason a node is in a chain.
type Evidence struct {
	Kind   string    `json:"kind"`
	Time   time.Time `json:"ts"`
	From   string    `json:"from,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Roles of chain nodes.
const (
	RoleOrigin     = "origin"
	RoleUpstream   = "upstream"
	RoleDownstream = "downstream"
)

type cnode struct {
	p      *pnode
	a      *anode
	role   string
	hop    int
	from   *cnode
	window int64 // absolute window index it joined in
	conf   float64
	ev     []Evidence
	base   bool
}

func (n *cnode) label() string {
	if n.p != nil {
		return n.p.label()
	}
	return n.a.addr.String()
}

type chainState struct {
	id      string
	origin  *cnode
	reason  string
	flagged int64
	base    int64 // baseline window index
	next    int64 // next window to process
	idle    int
	nodes   []*cnode
	byP     map[*pnode]*cnode
	byA     map[*anode]*cnode
	images  map[string]bool // images of baseline processes
}

// Chains follows flagged targets across successive event windows (seed
// 003): from the baseline window (where a target was flagged) and the
// chain found up to the previous window, it finds the target in the
// current window — new children, new addresses, processes that took over
// its addresses — and reports the whole chain. It reads a [Graph]; it is
// not safe for concurrent use, nor concurrently with the graph's updates.
type Chains struct {
	g      *Graph
	cfg    ChainConfig
	chains []*chainState
	seq    int
}

// NewChains returns a tracker over g, or an error wrapping [ErrConfig].
func NewChains(g *Graph, cfg ChainConfig) (*Chains, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil graph", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Chains{g: g, cfg: cfg}, nil
}

// ErrTooManyChains is returned by Flag when MaxChains chains are tracked.
var ErrTooManyChains = errors.New("too many attack chains tracked")

func (c *Chains) window(ts int64) int64 {
	w := int64(c.cfg.Window)
	k := ts / w
	if ts < 0 && ts%w != 0 {
		k--
	}
	return k
}

// Flag starts following node n, flagged at t for reason (a risk report, a
// block, a warning). It returns the chain's ID; a node already in a
// tracked chain is not tracked twice (its chain's ID is returned). It
// fails with [ErrUnknownNode] for a node the graph does not hold and with
// [ErrTooManyChains] past MaxChains.
func (c *Chains) Flag(n Node, t time.Time, reason string) (string, error) {
	var p *pnode
	var a *anode
	switch n.Kind {
	case NodeProcess:
		if p = c.g.lookup(n.Proc); p == nil {
			return "", fmt.Errorf("flag %v: %w", n, ErrUnknownNode)
		}
	case NodeAddr:
		if a = c.g.addrs[canonAddr(n.Addr)]; a == nil {
			return "", fmt.Errorf("flag %v: %w", n, ErrUnknownNode)
		}
	default:
		return "", fmt.Errorf("flag: invalid node kind %v", n.Kind)
	}
	for _, ch := range c.chains {
		if (p != nil && ch.byP[p] != nil) || (a != nil && ch.byA[a] != nil) {
			return ch.id, nil
		}
	}
	if len(c.chains) >= c.cfg.MaxChains {
		return "", fmt.Errorf("flag %v: %w (%d)", n, ErrTooManyChains, c.cfg.MaxChains)
	}
	ts := t.UnixNano()
	c.seq++
	ch := &chainState{
		id: "chain-" + strconv.Itoa(c.seq), reason: reason, flagged: ts,
		base: c.window(ts), byP: map[*pnode]*cnode{}, byA: map[*anode]*cnode{}, images: map[string]bool{},
	}
	ch.next = ch.base
	o := &cnode{p: p, a: a, role: RoleOrigin, conf: 1, window: ch.base, base: true,
		ev: []Evidence{{Kind: "flagged", Time: nsTime(ts), Detail: reason}}}
	ch.origin = o
	ch.add(o)
	if p != nil {
		if p.exe != "" {
			ch.images[p.exe] = true
		}
		conf, from := 1.0, o
		hop := 1
		for anc := p.parent; anc != nil && hop <= c.cfg.UpstreamDepth && len(ch.nodes) < c.cfg.MaxNodes; anc = anc.parent {
			conf *= c.cfg.UpstreamWeight
			u := &cnode{p: anc, role: RoleUpstream, hop: hop, from: from, conf: conf, window: ch.base, base: true,
				ev: []Evidence{{Kind: "ancestor", Time: nsTime(anc.forked), From: from.label(),
					Detail: "parent of " + from.label()}}}
			ch.add(u)
			from = u
			hop++
		}
		// The peers the origin and its ancestors accepted connections
		// from lately: where the attack may have come in.
		since := ts - int64(c.cfg.Lookback+1)*int64(c.cfg.Window)
		for _, u := range slices.Clone(ch.nodes) {
			for _, e := range u.p.assocs {
				if !e.inbound || e.last < since || e.first > ts || ch.byA[e.a] != nil || len(ch.nodes) >= c.cfg.MaxNodes {
					continue
				}
				ch.add(&cnode{a: e.a, role: RoleUpstream, hop: u.hop + 1, from: u, conf: u.conf * c.cfg.UpstreamWeight,
					window: ch.base, base: true,
					ev: []Evidence{{Kind: "accepted_from", Time: nsTime(e.last), From: u.label(),
						Detail: u.label() + " accepted a connection from " + e.a.addr.String()}}})
			}
		}
	}
	c.chains = append(c.chains, ch)
	return ch.id, nil
}

func (ch *chainState) add(n *cnode) {
	ch.nodes = append(ch.nodes, n)
	if n.p != nil {
		ch.byP[n.p] = n
	} else {
		ch.byA[n.a] = n
	}
}

// Tracked returns the IDs of the chains still followed.
func (c *Chains) Tracked() []string {
	out := make([]string, len(c.chains))
	for i, ch := range c.chains {
		out[i] = ch.id
	}
	return out
}

// Window closes every window that ended at or before now and returns the
// chain records: one per chain for its baseline window, and one for each
// later window in which it grew. Chains idle for IdleWindows windows are
// dropped. Call it as event time advances (e.g. on every event, or on a
// timer with the latest event time).
func (c *Chains) Window(now time.Time) []Chain {
	ts := now.UnixNano()
	w := int64(c.cfg.Window)
	var out []Chain
	keep := c.chains[:0]
	for _, ch := range c.chains {
		alive := true
		for (ch.next+1)*w <= ts {
			k := ch.next
			added := c.step(ch, k)
			ch.next++
			if added > 0 || k == ch.base {
				ch.idle = 0
				out = append(out, c.record(ch, k, added))
			} else {
				ch.idle++
				if ch.idle > c.cfg.IdleWindows {
					alive = false
					break
				}
			}
		}
		if alive {
			keep = append(keep, ch)
		}
	}
	clear(c.chains[len(keep):])
	c.chains = keep
	return out
}

type candidate struct {
	p     *pnode
	a     *anode
	from  *cnode
	miss  float64 // Π(1 − c) over its evidence
	ev    []Evidence
	first int64
}

// step finds the chain in window k; it returns how many nodes joined.
func (c *Chains) step(ch *chainState, k int64) int {
	w := int64(c.cfg.Window)
	ws, we := k*w, (k+1)*w
	recent := ws - int64(c.cfg.Lookback)*w
	var query []*cnode
	for _, n := range ch.nodes {
		if n.role == RoleUpstream {
			continue
		}
		if n.base || n.window >= k-int64(c.cfg.Lookback) || c.activeSince(n, recent) {
			query = append(query, n)
		}
	}
	total := 0
	for len(query) > 0 && len(ch.nodes) < c.cfg.MaxNodes {
		cands := map[any]*candidate{}
		var order []*candidate
		get := func(p *pnode, a *anode, from *cnode, t int64) *candidate {
			var key any = p
			if p == nil {
				key = a
			}
			cd := cands[key]
			if cd == nil {
				cd = &candidate{p: p, a: a, from: from, miss: 1, first: t}
				cands[key] = cd
				order = append(order, cd)
			}
			return cd
		}
		evidence := func(cd *candidate, from *cnode, weight float64, e Evidence) {
			conf := from.conf * weight
			if 1-cd.miss < conf || cd.from == nil {
				cd.from = from
			}
			cd.miss *= 1 - conf
			cd.ev = append(cd.ev, e)
			cd.first = min(cd.first, e.Time.UnixNano())
		}
		for _, q := range query {
			if q.p != nil {
				for _, ch2 := range q.p.children {
					if ch2.forked < ws || ch2.forked >= we || ch.byP[ch2] != nil {
						continue
					}
					evidence(get(ch2, nil, q, ch2.forked), q, c.cfg.ChildWeight,
						Evidence{Kind: "child", Time: nsTime(ch2.forked), From: q.label(), Detail: "forked by " + q.label()})
				}
				for _, e := range q.p.assocs {
					if e.first < ws || e.first >= we || ch.byA[e.a] != nil {
						continue
					}
					kind, verb := "connected", " connected to "
					if e.inbound {
						kind, verb = "accepted", " accepted a connection from "
					}
					evidence(get(nil, e.a, q, e.first), q, c.cfg.AddrWeight,
						Evidence{Kind: kind, Time: nsTime(e.first), From: q.label(), Detail: q.label() + verb + e.a.addr.String()})
				}
				continue
			}
			if len(q.a.assocs) > c.cfg.MaxAddrFanout {
				continue
			}
			for _, e := range q.a.assocs {
				if e.first < ws || e.first >= we || ch.byP[e.p] != nil || e.inbound {
					continue
				}
				if c.tookOver(ch, q.a, e) {
					evidence(get(e.p, nil, q, e.first), q, c.cfg.TakeoverWeight,
						Evidence{Kind: "took_over", Time: nsTime(e.first), From: q.label(),
							Detail: "used " + q.label() + " after every chain process using it exited"})
				} else {
					evidence(get(e.p, nil, q, e.first), q, c.cfg.SharedWeight,
						Evidence{Kind: "shared_addr", Time: nsTime(e.first), From: q.label(),
							Detail: "started using " + q.label() + " while the chain used it"})
				}
			}
		}
		// Boosts, then admission in a deterministic order.
		var joined []*cnode
		for _, cd := range order {
			if cd.p != nil {
				for _, b := range cd.p.beh {
					if b.kind == BehaviourRisk && b.t >= ws && b.t < we {
						cd.miss *= 1 - c.cfg.RiskBoost
						cd.ev = append(cd.ev, Evidence{Kind: "risk", Time: nsTime(b.t), Detail: "reported " + b.level.String()})
						break
					}
				}
				if cd.p.exe != "" && ch.images[cd.p.exe] {
					cd.miss *= 1 - c.cfg.SameImageBoost
					cd.ev = append(cd.ev, Evidence{Kind: "same_image", Time: nsTime(cd.first), Detail: "runs " + cd.p.exe + " like the flagged process"})
				}
			}
		}
		slices.SortStableFunc(order, func(x, y *candidate) int {
			if c := cmp.Compare(x.miss, y.miss); c != 0 {
				return c
			}
			if c := cmp.Compare(x.first, y.first); c != 0 {
				return c
			}
			return compareNodes(x.p, x.a, y.p, y.a)
		})
		for _, cd := range order {
			conf := 1 - cd.miss
			if conf < c.cfg.MinConfidence || len(ch.nodes) >= c.cfg.MaxNodes {
				continue
			}
			n := &cnode{p: cd.p, a: cd.a, role: RoleDownstream, hop: cd.from.hop + 1, from: cd.from,
				window: k, conf: conf, ev: cd.ev}
			if cd.from.role == RoleUpstream {
				n.hop = 1
			}
			if k == ch.base {
				n.base = true
			}
			ch.add(n)
			joined = append(joined, n)
		}
		total += len(joined)
		query = joined // look around the newcomers in the same window
	}
	return total
}

// activeSince reports whether a chain node did anything since t.
func (c *Chains) activeSince(n *cnode, t int64) bool {
	if n.p != nil {
		return n.p.active >= t
	}
	for _, e := range n.a.assocs {
		if e.last >= t {
			return true
		}
	}
	return false
}

// tookOver reports whether every chain process that used address a had
// exited before e started using it (and at least one did).
func (c *Chains) tookOver(ch *chainState, a *anode, e *assoc) bool {
	users := 0
	for _, f := range a.assocs {
		if ch.byP[f.p] == nil || f == e {
			continue
		}
		users++
		if f.p.exited == 0 || f.p.exited > e.first {
			return false
		}
	}
	return users > 0
}

func (c *Chains) record(ch *chainState, k int64, added int) Chain {
	w := int64(c.cfg.Window)
	rec := Chain{
		Time: nsTime((k + 1) * w), Action: ActionChain, ID: ch.id, Origin: ch.origin.label(),
		Flagged: nsTime(ch.flagged), Reason: ch.reason, Window: int(k - ch.base),
		WindowStart: nsTime(k * w), WindowEnd: nsTime((k + 1) * w), Added: added,
	}
	for _, n := range ch.nodes {
		cn := ChainNode{Role: n.role, Hop: n.hop, Window: int(n.window - ch.base), Confidence: round4(n.conf),
			Evidence: slices.Clone(n.ev)}
		if n.from != nil {
			cn.From = n.from.label()
		}
		if n.p != nil {
			cn.Node, cn.PID, cn.Start, cn.Name = NodeProcess.String(), n.p.id.PID, n.p.knownStart(), n.p.name
		} else {
			cn.Node, cn.Addr = NodeAddr.String(), n.a.addr.String()
		}
		rec.Nodes = append(rec.Nodes, cn)
	}
	rec.Path = chainPath(ch)
	return rec
}

// chainPath renders the chain as "upstream … → origin → downstream …",
// following each downstream node's first finder: the longest path from
// the origin, e.g. "nginx (100) → sh (231) → curl (300) → 203.0.113.9".
// (An arrow rather than ">", which JSON encoders escape.)
func chainPath(ch *chainState) string {
	var up []string
	for _, n := range ch.nodes {
		if n.role == RoleUpstream && n.p != nil {
			up = append(up, n.label())
		}
	}
	slices.Reverse(up)
	// The deepest downstream node, then back to the origin.
	var deep *cnode
	for _, n := range ch.nodes {
		if n.role == RoleDownstream && (deep == nil || n.hop > deep.hop) {
			deep = n
		}
	}
	var down []string
	for n := deep; n != nil && n != ch.origin && n.role == RoleDownstream; n = n.from {
		down = append(down, n.label())
	}
	slices.Reverse(down)
	parts := append(up, ch.origin.label())
	parts = append(parts, down...)
	return strings.Join(parts, " → ")
}
