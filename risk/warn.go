package risk

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/procwall/procwall/source"
)

// ActionWarn is the action of an early-warning record ([Warning]).
const ActionWarn = "warn"

// WarnTarget is what an early warning is about (seed 004's 预警目标): the
// period it looks back over and the behaviours that count.
type WarnTarget struct {
	// Name goes into the records ("target").
	Name string
	// Period is how far back related nodes and their behaviours count.
	Period time.Duration
	// Behaviours are the kinds of behaviour that count; empty means all.
	Behaviours []BehaviourKind
	// MinLevel is the lowest risk-report level that counts (risk
	// behaviours below it are ignored). LevelNone counts every report.
	MinLevel Level
}

// WarnWindow is one calculation period: the related nodes and behaviours
// of the last Span give one reference probability, weighted by Weight in
// the final probability (more recent, shorter windows usually weigh more).
type WarnWindow struct {
	Span   time.Duration
	Weight float64
}

// WarnConfig holds every weight and threshold of the early warning. Start
// from [DefaultWarnConfig]; [WarnConfig.Validate] says what is out of
// range. The formulas are in doc_warn.go.
type WarnConfig struct {
	Target WarnTarget
	// Windows are the calculation periods (each Span in (0, Period]).
	Windows []WarnWindow
	// Buckets is how many equal time buckets the period is cut into to
	// count warning nodes over time (>= 2).
	Buckets int

	// DirectWeight and IndirectWeight are the exponents w of a related
	// node's safety probability by relation (in [0, 1]).
	DirectWeight, IndirectWeight float64

	// RiskProbability is the safety probability of a fresh risk report,
	// by level (index: source.Level; none, low, medium, high, critical).
	RiskProbability [5]float64
	// DenyProbability and BlockProbability are the safety probabilities
	// of a fresh rule denial and a fresh block.
	DenyProbability, BlockProbability float64
	// HalfLife is the age at which a behaviour's risk (1 − probability)
	// has halved.
	HalfLife time.Duration

	// LevelBounds are ascending probability bounds of the security
	// levels: a node whose safety probability is below LevelBounds[0] has
	// level 0 (least safe), below LevelBounds[1] level 1, and so on;
	// len(LevelBounds) is the safest level.
	LevelBounds []float64
	// WarningLevel: related nodes at this security level or below are
	// warning nodes.
	WarningLevel int

	// TrendGain g corrects a reference probability by the trend r:
	// P = min(1, Pref·exp(−g·r)).
	TrendGain float64
	// MaxTrend clamps the trend to [−MaxTrend, MaxTrend].
	MaxTrend float64
	// BaseThreshold and ThresholdUnit make the threshold
	// θ = clamp(BaseThreshold + r·ThresholdUnit, 0, 1); a warning when
	// P < θ.
	BaseThreshold, ThresholdUnit float64

	// LineageDepth bounds how far up (ancestors) and down (descendants)
	// the lineage of a process is followed.
	LineageDepth int
	// MaxAddrFanout: an address used by more processes than this within
	// the period (a resolver, a proxy) is a related node but is not
	// followed to its other users.
	MaxAddrFanout int
	// MaxRelated caps the related nodes of one assessment.
	MaxRelated int
	// MaxDrivers caps the related nodes a record names.
	MaxDrivers int
	// MaxAround caps the processes one [Warner.Around] call assesses.
	MaxAround int

	// Cooldown: [Warner.Around] does not warn about the same node again
	// within Cooldown unless its probability fell by more than
	// RewarnDelta since the last warning.
	Cooldown    time.Duration
	RewarnDelta float64
}

// DefaultWarnConfig returns the documented defaults: a 24 h period in six
// buckets, windows of the last 3 h (weight 0.7) and the whole period (0.3),
// direct relations weighing 0.7 and indirect ones 0.3, seed 004's
// probabilities (low 0.9, medium 0.5, high 0.2), a 6 h half-life, levels
// bounded at 0.3/0.6/0.85 with warning nodes at level 1 or below, and a
// threshold of 0.5 moving by 0.2 per unit of trend.
func DefaultWarnConfig() WarnConfig {
	return WarnConfig{
		Target:           WarnTarget{Name: "default", Period: 24 * time.Hour},
		Windows:          []WarnWindow{{Span: 3 * time.Hour, Weight: 0.7}, {Span: 24 * time.Hour, Weight: 0.3}},
		Buckets:          6,
		DirectWeight:     0.7,
		IndirectWeight:   0.3,
		RiskProbability:  [5]float64{1, 0.9, 0.5, 0.2, 0.05},
		DenyProbability:  0.6,
		BlockProbability: 0.3,
		HalfLife:         6 * time.Hour,
		LevelBounds:      []float64{0.3, 0.6, 0.85},
		WarningLevel:     1,
		TrendGain:        0.5,
		MaxTrend:         1,
		BaseThreshold:    0.5,
		ThresholdUnit:    0.2,
		LineageDepth:     8,
		MaxAddrFanout:    256,
		MaxRelated:       4096,
		MaxDrivers:       8,
		MaxAround:        256,
		Cooldown:         time.Hour,
		RewarnDelta:      0.1,
	}
}

// ErrConfig is wrapped by the errors of invalid configurations.
var ErrConfig = errors.New("invalid configuration")

func unit(name string, v float64) error {
	if !(v >= 0 && v <= 1) {
		return fmt.Errorf("%w: %s must be in [0, 1], have %v", ErrConfig, name, v)
	}
	return nil
}

// Validate reports the first setting out of range.
func (c *WarnConfig) Validate() error {
	if c.Target.Period <= 0 {
		return fmt.Errorf("%w: Target.Period must be > 0, have %v", ErrConfig, c.Target.Period)
	}
	for _, k := range c.Target.Behaviours {
		if k == 0 || k >= numBehaviourKinds {
			return fmt.Errorf("%w: Target.Behaviours: unknown behaviour kind %d", ErrConfig, k)
		}
	}
	if len(c.Windows) == 0 {
		return fmt.Errorf("%w: Windows is empty", ErrConfig)
	}
	sum := 0.0
	for i, w := range c.Windows {
		if w.Span <= 0 || w.Span > c.Target.Period {
			return fmt.Errorf("%w: Windows[%d].Span must be in (0, Target.Period=%v], have %v", ErrConfig, i, c.Target.Period, w.Span)
		}
		if !(w.Weight >= 0) || math.IsInf(w.Weight, 0) {
			return fmt.Errorf("%w: Windows[%d].Weight must be >= 0, have %v", ErrConfig, i, w.Weight)
		}
		sum += w.Weight
	}
	if sum <= 0 {
		return fmt.Errorf("%w: Windows weights sum to 0", ErrConfig)
	}
	if c.Buckets < 2 {
		return fmt.Errorf("%w: Buckets must be >= 2, have %d", ErrConfig, c.Buckets)
	}
	checks := []struct {
		n string
		v float64
	}{
		{"DirectWeight", c.DirectWeight}, {"IndirectWeight", c.IndirectWeight},
		{"DenyProbability", c.DenyProbability}, {"BlockProbability", c.BlockProbability},
		{"BaseThreshold", c.BaseThreshold}, {"RewarnDelta", c.RewarnDelta},
	}
	for i, p := range c.RiskProbability {
		checks = append(checks, struct {
			n string
			v float64
		}{"RiskProbability[" + source.Level(i).String() + "]", p})
	}
	for _, ch := range checks {
		if err := unit(ch.n, ch.v); err != nil {
			return err
		}
	}
	if c.HalfLife <= 0 {
		return fmt.Errorf("%w: HalfLife must be > 0, have %v", ErrConfig, c.HalfLife)
	}
	if len(c.LevelBounds) == 0 {
		return fmt.Errorf("%w: LevelBounds is empty", ErrConfig)
	}
	for i, b := range c.LevelBounds {
		if err := unit("LevelBounds["+strconv.Itoa(i)+"]", b); err != nil {
			return err
		}
		if i > 0 && b <= c.LevelBounds[i-1] {
			return fmt.Errorf("%w: LevelBounds must ascend, have %v", ErrConfig, c.LevelBounds)
		}
	}
	if c.WarningLevel < 0 || c.WarningLevel > len(c.LevelBounds) {
		return fmt.Errorf("%w: WarningLevel must be in [0, %d], have %d", ErrConfig, len(c.LevelBounds), c.WarningLevel)
	}
	for _, ch := range []struct {
		n string
		v float64
	}{{"TrendGain", c.TrendGain}, {"MaxTrend", c.MaxTrend}, {"ThresholdUnit", c.ThresholdUnit}} {
		if !(ch.v >= 0) || math.IsInf(ch.v, 0) {
			return fmt.Errorf("%w: %s must be >= 0 and finite, have %v", ErrConfig, ch.n, ch.v)
		}
	}
	if c.LineageDepth < 0 || c.MaxAddrFanout < 0 || c.MaxRelated < 1 || c.MaxDrivers < 0 || c.MaxAround < 0 || c.Cooldown < 0 {
		return fmt.Errorf("%w: LineageDepth, MaxAddrFanout, MaxDrivers, MaxAround and Cooldown must be >= 0 and MaxRelated >= 1", ErrConfig)
	}
	return nil
}

// Warning is an early-warning record (action "warn"): the assessment of
// one node from the security of its related nodes. Its JSON form is the
// record schema; every field is documented in doc_warn.go.
type Warning struct {
	Time        time.Time    `json:"ts"`
	Action      string       `json:"action"`
	Target      string       `json:"target"`
	Node        string       `json:"node"`
	PID         int          `json:"pid,omitempty"`
	Start       uint64       `json:"start,omitempty"`
	Name        string       `json:"name,omitempty"`
	Addr        string       `json:"addr,omitempty"`
	Probability float64      `json:"probability"`
	Threshold   float64      `json:"threshold"`
	Trend       float64      `json:"trend"`
	PeriodS     int64        `json:"period_s"`
	Buckets     []int        `json:"buckets"`
	Windows     []WindowProb `json:"windows"`
	Related     int          `json:"related"`
	Direct      int          `json:"direct"`
	Indirect    int          `json:"indirect"`
	Warning     int          `json:"warning_nodes"`
	CommonAddrs int          `json:"common_addrs,omitempty"`
	Truncated   bool         `json:"truncated,omitempty"`
	Drivers     []Driver     `json:"drivers"`
	Reason      string       `json:"reason"`
}

// RecordAction implements the Protector's record interface.
func (w *Warning) RecordAction() string { return w.Action }

// WindowProb is one calculation period of a [Warning].
type WindowProb struct {
	SpanS       int64   `json:"span_s"`
	Weight      float64 `json:"weight"`
	Related     int     `json:"related"`
	Warning     int     `json:"warning_nodes"`
	Reference   float64 `json:"reference"`
	Probability float64 `json:"probability"`
}

// Driver is a related node named by a [Warning] as driving it.
type Driver struct {
	Node        string            `json:"node"`
	PID         int               `json:"pid,omitempty"`
	Start       uint64            `json:"start,omitempty"`
	Name        string            `json:"name,omitempty"`
	Addr        string            `json:"addr,omitempty"`
	Relation    string            `json:"relation"`
	Via         string            `json:"via"`
	ViaAddr     string            `json:"via_addr,omitempty"`
	Probability float64           `json:"probability"`
	Level       int               `json:"level"`
	Behaviours  []BehaviourRecord `json:"behaviours"`
}

// BehaviourRecord is one behaviour as a record names it.
type BehaviourRecord struct {
	Time  time.Time `json:"ts"`
	Kind  string    `json:"kind"`
	Level string    `json:"level,omitempty"`
}

// Relation paths.
type via uint8

const (
	viaParent       via = iota + 1 // the subject's parent (direct)
	viaChild                       // a child (direct)
	viaAncestor                    // a further ancestor (indirect)
	viaDescendant                  // a further descendant (indirect)
	viaAddr                        // an address the subject used (direct)
	viaSharesAddr                  // a process that used one of the subject's addresses (indirect)
	viaUser                        // a process that used the subject address (direct)
	viaUserAncestor                // an ancestor of such a process (indirect)
)

var viaNames = [...]string{"", "parent", "child", "ancestor", "descendant", "addr", "shares_addr", "user", "user_ancestor"}

// rel is one related node of a traversal.
type rel struct {
	p      *pnode
	a      *anode
	direct bool
	via    via
	viaA   *anode
	last   int64 // latest time the relation was active
}

// Warner assesses nodes by the security of their related nodes (seed 004).
// It reads a [Graph] and keeps only the memory of its last warnings. It is
// not safe for concurrent use, nor for use concurrently with the graph's
// updates.
type Warner struct {
	g       *Graph
	cfg     WarnConfig
	kinds   [numBehaviourKinds]bool
	scratch []rel
	last    map[Node]lastWarn
	lnHalf  float64
}

type lastWarn struct {
	t int64
	p float64
}

// NewWarner returns a Warner over g, or an error wrapping [ErrConfig].
func NewWarner(g *Graph, cfg WarnConfig) (*Warner, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil graph", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Windows = slices.Clone(cfg.Windows)
	cfg.LevelBounds = slices.Clone(cfg.LevelBounds)
	w := &Warner{g: g, cfg: cfg, last: make(map[Node]lastWarn)}
	if len(cfg.Target.Behaviours) == 0 {
		for k := BehaviourKind(1); k < numBehaviourKinds; k++ {
			w.kinds[k] = true
		}
	}
	for _, k := range cfg.Target.Behaviours {
		w.kinds[k] = true
	}
	w.lnHalf = math.Ln2 / float64(cfg.HalfLife)
	return w, nil
}

// Config returns the Warner's configuration.
func (w *Warner) Config() WarnConfig {
	c := w.cfg
	c.Windows = slices.Clone(c.Windows)
	c.LevelBounds = slices.Clone(c.LevelBounds)
	c.Target.Behaviours = slices.Clone(c.Target.Behaviours)
	return c
}

// ErrUnknownNode is returned when an assessed node is not in the graph.
var ErrUnknownNode = errors.New("node not in the graph")

// Assess assesses node n at event time now. It returns the assessment as
// a [Warning] record and whether it warns (P < θ); a caller emits the
// record only when it does. It fails with [ErrUnknownNode] for a node the
// graph does not hold.
func (w *Warner) Assess(n Node, now time.Time) (Warning, bool, error) {
	rec := Warning{Time: now, Action: ActionWarn, Target: w.cfg.Target.Name, Node: n.Kind.String()}
	ts := now.UnixNano()
	from := ts - int64(w.cfg.Target.Period)
	var subj *pnode
	switch n.Kind {
	case NodeProcess:
		subj = w.g.lookup(n.Proc)
		if subj == nil {
			return rec, false, fmt.Errorf("assess %v: %w", n, ErrUnknownNode)
		}
		rec.PID, rec.Start, rec.Name = subj.id.PID, subj.knownStart(), subj.name
		rec.CommonAddrs, rec.Truncated = w.relatedOfProcess(subj, from, ts)
	case NodeAddr:
		a := w.g.addrs[canonAddr(n.Addr)]
		if a == nil {
			return rec, false, fmt.Errorf("assess %v: %w", n, ErrUnknownNode)
		}
		rec.Addr = a.addr.String()
		rec.Truncated = w.relatedOfAddr(a, from, ts)
	default:
		return rec, false, fmt.Errorf("assess: invalid node kind %v", n.Kind)
	}
	warns := w.compute(&rec, from, ts)
	return rec, warns, nil
}

// visit adds a related node, or strengthens one already found.
func (w *Warner) visit(p *pnode, a *anode, direct bool, v via, viaA *anode, last int64) bool {
	epoch := w.g.epoch
	var mark *uint32
	var slot *int32
	if p != nil {
		mark, slot = &p.mark, &p.slot
	} else {
		mark, slot = &a.mark, &a.slot
	}
	if *mark == epoch {
		if *slot < 0 {
			return true // the subject
		}
		r := &w.scratch[*slot]
		if direct && !r.direct {
			r.direct, r.via, r.viaA = true, v, viaA
		}
		r.last = max(r.last, last)
		return true
	}
	if len(w.scratch) >= w.cfg.MaxRelated {
		return false
	}
	*mark, *slot = epoch, int32(len(w.scratch))
	w.scratch = append(w.scratch, rel{p: p, a: a, direct: direct, via: v, viaA: viaA, last: last})
	return true
}

func procLast(p *pnode, now int64) int64 {
	if p.exited != 0 && p.exited < now {
		return p.exited
	}
	return now
}

// lineage visits ancestors and descendants of p alive in [from, now].
func (w *Warner) lineage(p *pnode, from, now int64, up, down bool, direct bool) bool {
	ok := true
	if up {
		depth := 1
		for a := p.parent; a != nil && depth <= w.cfg.LineageDepth; a = a.parent {
			if a.aliveIn(from, now) {
				v, d := viaAncestor, false
				if direct && depth == 1 {
					v, d = viaParent, true
				} else if !direct {
					v = viaUserAncestor
				}
				ok = w.visit(a, nil, d, v, nil, procLast(a, now)) && ok
			}
			depth++
		}
	}
	if down && w.cfg.LineageDepth > 0 {
		level := []*pnode{p}
		for depth := 1; depth <= w.cfg.LineageDepth && len(level) > 0; depth++ {
			var next []*pnode
			for _, q := range level {
				for _, c := range q.children {
					if !c.aliveIn(from, now) {
						continue
					}
					v := viaDescendant
					if depth == 1 {
						v = viaChild
					}
					if !w.visit(c, nil, depth == 1, v, nil, procLast(c, now)) {
						return false
					}
					next = append(next, c)
				}
			}
			level = next
		}
	}
	return ok
}

func (w *Warner) relatedOfProcess(p *pnode, from, now int64) (common int, truncated bool) {
	w.scratch = w.scratch[:0]
	epoch := w.g.nextEpoch()
	p.mark, p.slot = epoch, -1
	ok := w.lineage(p, from, now, true, true, true)
	for _, e := range p.assocs {
		if e.last < from || e.first > now {
			continue
		}
		ok = w.visit(nil, e.a, true, viaAddr, nil, min(e.last, now)) && ok
		if len(e.a.assocs) > w.cfg.MaxAddrFanout+1 {
			common++
			continue
		}
		for _, f := range e.a.assocs {
			if f.p == p || f.last < from || f.first > now {
				continue
			}
			ok = w.visit(f.p, nil, false, viaSharesAddr, e.a, min(e.last, f.last, now)) && ok
		}
	}
	return common, !ok
}

func (w *Warner) relatedOfAddr(a *anode, from, now int64) bool {
	w.scratch = w.scratch[:0]
	epoch := w.g.nextEpoch()
	a.mark, a.slot = epoch, -1
	ok := true
	var users []*pnode
	for _, e := range a.assocs {
		if e.last < from || e.first > now {
			continue
		}
		if w.visit(e.p, nil, true, viaUser, nil, min(e.last, now)) {
			users = append(users, e.p)
		} else {
			ok = false
		}
	}
	for _, u := range users {
		ok = w.lineage(u, from, now, true, false, false) && ok
	}
	return !ok
}

// behaviourRisk is 1 − the safety probability of a fresh behaviour.
func (w *Warner) behaviourRisk(b behaviour) float64 {
	switch b.kind {
	case BehaviourRisk:
		if int(b.level) < len(w.cfg.RiskProbability) {
			return 1 - w.cfg.RiskProbability[b.level]
		}
		return 1 - w.cfg.RiskProbability[len(w.cfg.RiskProbability)-1]
	case BehaviourDeny:
		return 1 - w.cfg.DenyProbability
	case BehaviourBlock:
		return 1 - w.cfg.BlockProbability
	}
	return 0
}

func (w *Warner) counts(b behaviour) bool {
	if int(b.kind) >= len(w.kinds) || !w.kinds[b.kind] {
		return false
	}
	return b.kind != BehaviourRisk || b.level >= w.cfg.Target.MinLevel
}

// safety is the node's safety probability at time at from its counted
// behaviours in [from, at]: Π (1 − risk_b · 2^(−(at − t_b)/HalfLife)).
func (w *Warner) safety(bs []behaviour, from, at int64) float64 {
	p := 1.0
	for _, b := range bs {
		if b.t < from || b.t > at || !w.counts(b) {
			continue
		}
		p *= 1 - w.behaviourRisk(b)*math.Exp(-w.lnHalf*float64(at-b.t))
	}
	return p
}

// Level maps a safety probability to a security level (0 least safe).
func (w *Warner) Level(p float64) int {
	l := 0
	for l < len(w.cfg.LevelBounds) && p >= w.cfg.LevelBounds[l] {
		l++
	}
	return l
}

// Trend is the warning-node trend of bucket counts (oldest first): the
// least-squares slope over the bucket index divided by max(1, mean
// count), clamped to [−maxTrend, maxTrend]. For three buckets it is
// (N₃ − N₁) / 2 / max(1, mean).
func Trend(counts []int, maxTrend float64) float64 {
	n := len(counts)
	if n < 2 {
		return 0
	}
	mx := float64(n-1) / 2
	var sum, sxy, sxx float64
	for i, c := range counts {
		sum += float64(c)
		x := float64(i) - mx
		sxy += x * float64(c)
		sxx += x * x
	}
	r := sxy / sxx / max(1, sum/float64(n))
	return max(-maxTrend, min(maxTrend, r))
}

// Correct applies the trend to a reference probability:
// min(1, pref·exp(−gain·r)).
func Correct(pref, r, gain float64) float64 { return min(1, pref*math.Exp(-gain*r)) }

// Threshold is the moving threshold clamp(base + r·unit, 0, 1).
func Threshold(base, r, unit float64) float64 { return max(0, min(1, base+r*unit)) }

type driverCand struct {
	i       int
	score   float64
	p       float64
	lastBeh int64
}

// compute fills the probabilities of rec from w.scratch and reports
// whether it warns.
func (w *Warner) compute(rec *Warning, from, now int64) bool {
	cfg := &w.cfg
	nb := cfg.Buckets
	rec.Buckets = make([]int, nb)
	rec.PeriodS = int64(cfg.Target.Period / time.Second)
	bucket := float64(cfg.Target.Period) / float64(nb)
	logs := make([]float64, len(cfg.Windows))
	rec.Windows = make([]WindowProb, len(cfg.Windows))
	var cands []driverCand
	for i := range w.scratch {
		r := &w.scratch[i]
		rec.Related++
		if r.direct {
			rec.Direct++
		} else {
			rec.Indirect++
		}
		wt := cfg.IndirectWeight
		if r.direct {
			wt = cfg.DirectWeight
		}
		bs := w.behaviours(r)
		for j, win := range cfg.Windows {
			ws := now - int64(win.Span)
			if r.last < ws {
				continue
			}
			rec.Windows[j].Related++
			if len(bs) == 0 {
				continue
			}
			p := w.safety(bs, ws, now)
			if p < 1 {
				logs[j] += wt * math.Log(max(p, 1e-12))
				if w.Level(p) <= cfg.WarningLevel {
					rec.Windows[j].Warning++
				}
			}
		}
		if len(bs) == 0 {
			continue
		}
		p := w.safety(bs, from, now)
		if p >= 1 {
			continue
		}
		// The node's place in time: its latest counted behaviour, and
		// whether it was a warning node then.
		var lastBeh int64
		for _, b := range bs {
			if b.t >= from && b.t <= now && w.counts(b) {
				lastBeh = b.t
			}
		}
		if w.Level(w.safety(bs, from, lastBeh)) <= cfg.WarningLevel {
			k := min(nb-1, max(0, int(float64(lastBeh-from)/bucket)))
			rec.Buckets[k]++
			rec.Warning++
		}
		cands = append(cands, driverCand{i: i, score: -wt * math.Log(max(p, 1e-12)), p: p, lastBeh: lastBeh})
	}
	r := Trend(rec.Buckets, cfg.MaxTrend)
	rec.Trend = round4(r)
	var num, den float64
	for j, win := range cfg.Windows {
		pref := math.Exp(logs[j])
		pj := Correct(pref, r, cfg.TrendGain)
		rec.Windows[j].SpanS = int64(win.Span / time.Second)
		rec.Windows[j].Weight = win.Weight
		rec.Windows[j].Reference = round4(pref)
		rec.Windows[j].Probability = round4(pj)
		num += win.Weight * pj
		den += win.Weight
	}
	prob := num / den
	theta := Threshold(cfg.BaseThreshold, r, cfg.ThresholdUnit)
	rec.Probability, rec.Threshold = round4(prob), round4(theta)

	slices.SortFunc(cands, func(a, b driverCand) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.lastBeh, a.lastBeh); c != 0 {
			return c
		}
		ra, rb := &w.scratch[a.i], &w.scratch[b.i]
		return compareNodes(ra.p, ra.a, rb.p, rb.a)
	})
	rec.Drivers = []Driver{}
	for _, c := range cands[:min(len(cands), cfg.MaxDrivers)] {
		rec.Drivers = append(rec.Drivers, w.driver(&w.scratch[c.i], c.p, from, now))
	}
	warns := prob < theta
	var sb strings.Builder
	if warns {
		fmt.Fprintf(&sb, "safety probability %.2f is below the threshold %.2f", prob, theta)
	} else {
		fmt.Fprintf(&sb, "safety probability %.2f is not below the threshold %.2f", prob, theta)
	}
	fmt.Fprintf(&sb, " (base %.2f, trend %+.2f); %d of %d related nodes are warning nodes", cfg.BaseThreshold, r, rec.Warning, rec.Related)
	if len(rec.Drivers) > 0 {
		names := make([]string, len(rec.Drivers))
		for i, d := range rec.Drivers {
			names[i] = driverName(d)
		}
		sb.WriteString("; driven by " + strings.Join(names, ", "))
	}
	if rec.Truncated {
		fmt.Fprintf(&sb, "; related nodes capped at %d", cfg.MaxRelated)
	}
	rec.Reason = sb.String()
	return warns
}

func driverName(d Driver) string {
	if d.Node == NodeAddr.String() {
		return d.Addr + " (" + d.Relation + ", " + d.Via + ")"
	}
	name := "pid " + strconv.Itoa(d.PID)
	if d.Name != "" {
		name = d.Name + " (" + strconv.Itoa(d.PID) + ")"
	}
	s := name + " (" + d.Relation + ", " + d.Via
	if d.ViaAddr != "" {
		s += " " + d.ViaAddr
	}
	return s + ")"
}

func (w *Warner) behaviours(r *rel) []behaviour {
	if r.p != nil {
		return r.p.beh
	}
	return r.a.beh
}

func (w *Warner) driver(r *rel, p float64, from, now int64) Driver {
	d := Driver{Relation: "indirect", Via: viaNames[r.via], Probability: round4(p), Level: w.Level(p), Behaviours: []BehaviourRecord{}}
	if r.direct {
		d.Relation = "direct"
	}
	if r.viaA != nil {
		d.ViaAddr = r.viaA.addr.String()
	}
	if r.p != nil {
		d.Node, d.PID, d.Start, d.Name = NodeProcess.String(), r.p.id.PID, r.p.knownStart(), r.p.name
	} else {
		d.Node, d.Addr = NodeAddr.String(), r.a.addr.String()
	}
	for _, b := range w.behaviours(r) {
		if b.t < from || b.t > now || !w.counts(b) {
			continue
		}
		br := BehaviourRecord{Time: nsTime(b.t), Kind: b.kind.String()}
		if b.kind == BehaviourRisk {
			br.Level = b.level.String()
		}
		d.Behaviours = append(d.Behaviours, br)
	}
	return d
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// Around assesses the processes related to node n (n itself too, when it
// is a process) at now, typically after a behaviour of n was noted, and
// returns the warnings to emit, sorted by probability (lowest first). A
// node already warned about within Cooldown is warned about again only if
// its probability fell by more than RewarnDelta.
func (w *Warner) Around(n Node, now time.Time) []Warning {
	ts := now.UnixNano()
	from := ts - int64(w.cfg.Target.Period)
	var targets []Node
	switch n.Kind {
	case NodeProcess:
		p := w.g.lookup(n.Proc)
		if p == nil {
			return nil
		}
		targets = append(targets, ProcessNode(p.id))
		w.relatedOfProcess(p, from, ts)
	case NodeAddr:
		a := w.g.addrs[canonAddr(n.Addr)]
		if a == nil {
			return nil
		}
		w.relatedOfAddr(a, from, ts)
	default:
		return nil
	}
	for _, r := range w.scratch {
		if r.p != nil && len(targets) < w.cfg.MaxAround {
			targets = append(targets, ProcessNode(r.p.id))
		}
	}
	var out []Warning
	for _, t := range targets {
		rec, warns, err := w.Assess(t, now)
		if err != nil || !warns {
			continue
		}
		if lw, ok := w.last[t]; ok && ts-lw.t < int64(w.cfg.Cooldown) && lw.p-rec.Probability <= w.cfg.RewarnDelta {
			continue
		}
		w.last[t] = lastWarn{t: ts, p: rec.Probability}
		out = append(out, rec)
	}
	// Forget old warnings.
	for k, lw := range w.last {
		if ts-lw.t >= int64(w.cfg.Cooldown) {
			delete(w.last, k)
		}
	}
	slices.SortStableFunc(out, func(a, b Warning) int {
		if c := cmp.Compare(a.Probability, b.Probability); c != 0 {
			return c
		}
		if c := cmp.Compare(a.PID, b.PID); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
	return out
}
