package risk

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

var warnT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// feed builds a graph from a builder's events.
func feedGraph(t testing.TB, b *replay.Builder, opts ...GraphOption) *Graph {
	t.Helper()
	if err := b.Err(); err != nil {
		t.Fatalf("builder: %v", err)
	}
	g := NewGraph(opts...)
	for _, ev := range b.Events() {
		if err := g.Observe(ev); err != nil {
			t.Fatalf("observe %v: %v", ev.Origin, err)
		}
	}
	return g
}

func newWarner(t testing.TB, g *Graph, mod func(*WarnConfig)) *Warner {
	t.Helper()
	cfg := DefaultWarnConfig()
	if mod != nil {
		mod(&cfg)
	}
	w, err := NewWarner(g, cfg)
	if err != nil {
		t.Fatalf("NewWarner: %v", err)
	}
	return w
}

func procNode(pid int) Node { return ProcessNode(source.ProcID{PID: pid}) }

// webServer: nginx (100) with a worker (101) that runs a shell (231);
// an unrelated backup job (300) shares 198.51.100.7 with the worker.
func webServer() *replay.Builder {
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		Fork(101, 100).Exec(101, "/usr/sbin/nginx", "nginx: worker").
		Connect(101, "tcp", "198.51.100.7:443").
		Fork(300, 1).Exec(300, "/usr/bin/backup", "backup").
		Connect(300, "tcp", "198.51.100.7:443").
		Fork(400, 1).Exec(400, "/usr/bin/unrelated").
		Connect(400, "tcp", "192.0.2.50:53")
	return b
}

func TestWarnProcessScenario(t *testing.T) {
	b := webServer()
	b.After(time.Hour).Fork(231, 101).Exec(231, "/bin/sh", "sh", "-i").
		Risk(231, "high", "reverse shell").
		After(time.Minute).Risk(300, "medium", "odd upload")
	g := feedGraph(t, b)
	w := newWarner(t, g, nil)
	now := g.Now()

	rec, warns, err := w.Assess(procNode(101), now)
	if err != nil {
		t.Fatal(err)
	}
	if !warns {
		t.Fatalf("worker 101 not warned: %+v", rec)
	}
	if rec.Action != "warn" || rec.PID != 101 || rec.Name != "nginx" || rec.Node != "process" {
		t.Errorf("record identity: %+v", rec)
	}
	if len(rec.Drivers) != 2 {
		t.Fatalf("drivers = %+v, want sh (231) and backup (300)", rec.Drivers)
	}
	d0, d1 := rec.Drivers[0], rec.Drivers[1]
	if d0.PID != 231 || d0.Relation != "direct" || d0.Via != "child" || d0.Level != 0 {
		t.Errorf("first driver = %+v, want sh (231), direct child, level 0", d0)
	}
	if d1.PID != 300 || d1.Relation != "indirect" || d1.Via != "shares_addr" || d1.ViaAddr != "198.51.100.7" {
		t.Errorf("second driver = %+v, want backup (300) sharing 198.51.100.7", d1)
	}
	if rec.Warning != 2 || rec.Buckets[len(rec.Buckets)-1] != 2 {
		t.Errorf("warning nodes %d, buckets %v: want 2 in the last bucket", rec.Warning, rec.Buckets)
	}
	if rec.Trend <= 0 || rec.Threshold <= w.cfg.BaseThreshold {
		t.Errorf("trend %v threshold %v: a rising count must raise the threshold", rec.Trend, rec.Threshold)
	}
	// Related: parent 100 (direct), child 231 (direct), 198.51.100.7
	// (direct), 300 (indirect), pid 1 (ancestor, indirect). 400 is not
	// related.
	if rec.Related != 5 || rec.Direct != 3 || rec.Indirect != 2 {
		t.Errorf("related %d direct %d indirect %d, want 5/3/2", rec.Related, rec.Direct, rec.Indirect)
	}
	if !strings.Contains(rec.Reason, "sh (231) (direct, child)") {
		t.Errorf("reason %q does not name the driver", rec.Reason)
	}

	// The unrelated process stays quiet with probability 1.
	rec, warns, err = w.Assess(procNode(400), now)
	if err != nil || warns || rec.Probability != 1 || len(rec.Drivers) != 0 {
		t.Errorf("unrelated 400: warns=%v err=%v %+v", warns, err, rec)
	}
	// Unknown nodes are errors.
	if _, _, err := w.Assess(procNode(999), now); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown pid: err = %v", err)
	}
	if _, _, err := w.Assess(AddrNode(netip.MustParseAddr("203.0.113.200")), now); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown addr: err = %v", err)
	}
}

func TestWarnAddrScenario(t *testing.T) {
	b := replay.NewBuilder(warnT0)
	b.Fork(10, 1).Exec(10, "/usr/bin/cron").
		Fork(11, 10).Exec(11, "/usr/bin/curl").Connect(11, "tcp", "203.0.113.9:80").
		Fork(12, 1).Exec(12, "/usr/bin/wget").Connect(12, "tcp", "203.0.113.9:80").
		Fork(13, 1).Exec(13, "/usr/bin/python3").Connect(13, "tcp", "203.0.113.9:8080").
		After(30*time.Minute).Risk(11, "critical", "miner download").
		Risk(12, "high", "dropper")
	g := feedGraph(t, b)
	w := newWarner(t, g, nil)
	rec, warns, err := w.Assess(AddrNode(netip.MustParseAddr("203.0.113.9")), g.Now())
	if err != nil || !warns {
		t.Fatalf("address not warned: warns=%v err=%v %+v", warns, err, rec)
	}
	if rec.Node != "addr" || rec.Addr != "203.0.113.9" || rec.PID != 0 {
		t.Errorf("record identity: %+v", rec)
	}
	// Users 11, 12, 13 are direct; their ancestors cron (10) and pid 1
	// indirect.
	if rec.Direct != 3 || rec.Indirect != 2 {
		t.Errorf("direct %d indirect %d, want 3/2", rec.Direct, rec.Indirect)
	}
	if len(rec.Drivers) != 2 || rec.Drivers[0].PID != 11 || rec.Drivers[0].Via != "user" || rec.Drivers[1].PID != 12 {
		t.Errorf("drivers = %+v", rec.Drivers)
	}
	if got := rec.Drivers[0].Behaviours; len(got) != 1 || got[0].Kind != "risk" || got[0].Level != "critical" {
		t.Errorf("driver behaviours = %+v", got)
	}
}

func TestWarnPeriodAndResolution(t *testing.T) {
	// A risky neighbour whose association and report are older than the
	// period is not related; a safe assessment resolves behaviours.
	b := webServer()
	b.Risk(300, "critical", "old incident")
	b.After(30*time.Hour).Connect(101, "tcp", "203.0.113.1:443")
	g := feedGraph(t, b)
	w := newWarner(t, g, nil)
	rec, warns, err := w.Assess(procNode(101), g.Now())
	// Related: parent 100, ancestor 1, the fresh address; not 300 nor
	// 198.51.100.7.
	if err != nil || warns || rec.Related != 3 || len(rec.Drivers) != 0 {
		t.Fatalf("stale neighbour counted: warns=%v err=%v %+v", warns, err, rec)
	}

	b = webServer()
	b.Fork(231, 101).Risk(231, "critical", "shell").Assess(231, true, "false positive")
	g = feedGraph(t, b)
	w = newWarner(t, g, nil)
	if rec, warns, _ := w.Assess(procNode(101), g.Now()); warns || rec.Probability != 1 {
		t.Errorf("resolved behaviour still counts: %+v", rec)
	}
}

func TestWarnNotedBehaviours(t *testing.T) {
	b := webServer()
	g := feedGraph(t, b)
	now := g.Now()
	addr := netip.MustParseAddr("198.51.100.7")
	for _, beh := range []Behaviour{
		{Time: now, Node: AddrNode(addr), Kind: BehaviourBlock},
		{Time: now, Node: procNode(300), Kind: BehaviourDeny},
		{Time: now, Node: procNode(300), Kind: BehaviourDeny},
	} {
		if err := g.Note(beh); err != nil {
			t.Fatal(err)
		}
	}
	w := newWarner(t, g, nil)
	rec, warns, err := w.Assess(procNode(101), now)
	if err != nil || !warns {
		t.Fatalf("blocked address + denied neighbour: warns=%v err=%v %+v", warns, err, rec)
	}
	if rec.Drivers[0].Node != "addr" || rec.Drivers[0].Addr != "198.51.100.7" || rec.Drivers[0].Behaviours[0].Kind != "block" {
		t.Errorf("first driver = %+v, want the blocked address", rec.Drivers[0])
	}
	// A target that counts only risk reports ignores them.
	w = newWarner(t, g, func(c *WarnConfig) { c.Target.Behaviours = []BehaviourKind{BehaviourRisk} })
	if rec, warns, _ := w.Assess(procNode(101), now); warns || len(rec.Drivers) != 0 {
		t.Errorf("risk-only target counted blocks/denials: %+v", rec)
	}

	bad := []Behaviour{
		{Time: now, Node: procNode(300)},
		{Node: procNode(300), Kind: BehaviourDeny},
		{Time: now, Node: procNode(0), Kind: BehaviourDeny},
		{Time: now, Node: Node{Kind: NodeAddr}, Kind: BehaviourBlock},
		{Time: now, Kind: BehaviourBlock},
	}
	for _, beh := range bad {
		if err := g.Note(beh); err == nil {
			t.Errorf("Note(%+v) accepted", beh)
		}
	}
}

func TestWarningJSON(t *testing.T) {
	b := replay.NewBuilder(warnT0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx").
		Fork(231, 100).Exec(231, "/bin/sh", "sh").
		Risk(231, "high", "reverse shell")
	g := feedGraph(t, b)
	w := newWarner(t, g, func(c *WarnConfig) {
		c.Windows = []WarnWindow{{Span: 24 * time.Hour, Weight: 1}}
		c.Buckets = 2
	})
	rec, warns, err := w.Assess(procNode(100), g.Now())
	if err != nil || !warns {
		t.Fatalf("warns=%v err=%v", warns, err)
	}
	got, err := json.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	// p(231) = 0.2 (fresh high report, age 0); Pref = 0.2^0.7 = 0.3241;
	// one warning node in the last of two buckets: trend (1−0)/max(1, 0.5)
	// = 1; P = 0.3241·e^(−0.5) = 0.1966; θ = 0.5 + 1·0.2 = 0.7. Related:
	// the child 231 and the parent, pid 1.
	want := `{"ts":"2026-11-22T10:00:00.004Z","action":"warn","target":"default","node":"process","pid":100,"name":"nginx",` +
		`"probability":0.1966,"threshold":0.7,"trend":1,"period_s":86400,"buckets":[0,1],` +
		`"windows":[{"span_s":86400,"weight":1,"related":2,"warning_nodes":1,"reference":0.3241,"probability":0.1966}],` +
		`"related":2,"direct":2,"indirect":0,"warning_nodes":1,` +
		`"drivers":[{"node":"process","pid":231,"name":"sh","relation":"direct","via":"child","probability":0.2,"level":0,` +
		`"behaviours":[{"ts":"2026-11-22T10:00:00.004Z","kind":"risk","level":"high"}]}],` +
		`"reason":"safety probability 0.20 is below the threshold 0.70 (base 0.50, trend +1.00); 1 of 2 related nodes are warning nodes; driven by sh (231) (direct, child)"}`
	if string(got) != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	if pref := math.Pow(0.2, 0.7); math.Abs(rec.Windows[0].Reference-pref) > 1e-4 {
		t.Errorf("reference %v, want 0.2^0.7 = %v", rec.Windows[0].Reference, pref)
	}
	var r recordIface = &rec
	if r.RecordAction() != "warn" {
		t.Errorf("RecordAction = %q", r.RecordAction())
	}
}

// Record is the Protector's record interface (kept here so the test fails
// to compile if the records stop implementing it).
type recordIface interface{ RecordAction() string }

func TestWarnConfigValidate(t *testing.T) {
	cases := map[string]func(*WarnConfig){
		"period":       func(c *WarnConfig) { c.Target.Period = 0 },
		"kinds":        func(c *WarnConfig) { c.Target.Behaviours = []BehaviourKind{9} },
		"no windows":   func(c *WarnConfig) { c.Windows = nil },
		"long window":  func(c *WarnConfig) { c.Windows[0].Span = 48 * time.Hour },
		"zero weights": func(c *WarnConfig) { c.Windows = []WarnWindow{{Span: time.Hour}} },
		"nan weight":   func(c *WarnConfig) { c.Windows[0].Weight = math.NaN() },
		"buckets":      func(c *WarnConfig) { c.Buckets = 1 },
		"direct":       func(c *WarnConfig) { c.DirectWeight = 1.5 },
		"risk prob":    func(c *WarnConfig) { c.RiskProbability[3] = -0.1 },
		"half-life":    func(c *WarnConfig) { c.HalfLife = 0 },
		"bounds order": func(c *WarnConfig) { c.LevelBounds = []float64{0.5, 0.4} },
		"no bounds":    func(c *WarnConfig) { c.LevelBounds = nil },
		"warn level":   func(c *WarnConfig) { c.WarningLevel = 9 },
		"gain":         func(c *WarnConfig) { c.TrendGain = math.Inf(1) },
		"max related":  func(c *WarnConfig) { c.MaxRelated = 0 },
	}
	for name, mod := range cases {
		c := DefaultWarnConfig()
		mod(&c)
		if _, err := NewWarner(NewGraph(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	if _, err := NewWarner(nil, DefaultWarnConfig()); !errors.Is(err, ErrConfig) {
		t.Errorf("nil graph: err = %v", err)
	}
}

func TestWarnAroundCooldown(t *testing.T) {
	b := webServer()
	b.Fork(231, 101).Exec(231, "/bin/sh").Risk(231, "critical", "shell")
	g := feedGraph(t, b)
	w := newWarner(t, g, nil)
	now := g.Now()
	ws := w.Around(procNode(231), now)
	if len(ws) == 0 {
		t.Fatal("no warning around a critical report")
	}
	found := false
	for _, x := range ws {
		if x.PID == 231 {
			t.Errorf("the reported process itself has no risky neighbours yet was warned: %+v", x)
		}
		if x.PID == 101 {
			found = true
		}
	}
	if !found {
		t.Errorf("parent 101 not warned: %+v", ws)
	}
	if again := w.Around(procNode(231), now.Add(time.Minute)); len(again) != 0 {
		t.Errorf("re-warned within the cooldown: %+v", again)
	}
	// A second critical neighbour lowers 101's probability by more than
	// RewarnDelta: warned again.
	if err := g.Observe(source.Event{Time: now.Add(2 * time.Minute), Kind: source.KindFork, PID: 232, PPID: 101}); err != nil {
		t.Fatal(err)
	}
	if err := g.Observe(source.Event{Time: now.Add(2 * time.Minute), Kind: source.KindRisk, PID: 232, Level: source.LevelCritical}); err != nil {
		t.Fatal(err)
	}
	again := w.Around(procNode(232), now.Add(2*time.Minute))
	if len(again) == 0 || again[0].PID != 101 {
		t.Errorf("no re-warning after the probability fell: %+v", again)
	}
	if w.Around(procNode(9999), now) != nil {
		t.Error("Around an unknown node returned warnings")
	}
}

// ---- property tests ----

// hood builds a random neighbourhood of subject 1000: direct children,
// and processes sharing its address (indirect), some with behaviours at
// random ages within the period.
type hood struct {
	g   *Graph
	now time.Time
	pid int
}

func randomHood(rng *rand.Rand) *hood { return randomHoodN(rng, 12) }

func randomHoodN(rng *rand.Rand, maxN int) *hood {
	now := warnT0.Add(48 * time.Hour)
	h := &hood{g: NewGraph(), now: now, pid: 5000}
	obs := func(ev source.Event) {
		if err := h.g.Observe(ev); err != nil {
			panic(err)
		}
	}
	start := now.Add(-20 * time.Hour)
	obs(source.Event{Time: start, Kind: source.KindFork, PID: 1000, PPID: 1})
	obs(source.Event{Time: start, Kind: source.KindConnect, PID: 1000, Dst: netip.MustParseAddrPort("198.51.100.7:443")})
	n := rng.IntN(maxN)
	for i := range n {
		pid := 2000 + i
		if rng.IntN(2) == 0 {
			obs(source.Event{Time: start, Kind: source.KindFork, PID: pid, PPID: 1000})
		} else {
			obs(source.Event{Time: start, Kind: source.KindFork, PID: pid, PPID: 1})
			obs(source.Event{Time: now.Add(-time.Minute), Kind: source.KindConnect, PID: pid, Dst: netip.MustParseAddrPort("198.51.100.7:443")})
		}
		for range rng.IntN(3) {
			age := time.Duration(rng.Int64N(int64(20 * time.Hour)))
			obs(source.Event{Time: now.Add(-age), Kind: source.KindRisk, PID: pid, Level: source.Level(1 + rng.IntN(4))})
		}
	}
	h.g.now = max(h.g.now, now.UnixNano())
	return h
}

// add adds one more neighbour with a fresh behaviour of the given level.
func (h *hood) add(direct bool, level source.Level, age time.Duration) {
	h.pid++
	t := h.now.Add(-20 * time.Hour)
	if direct {
		_ = h.g.Observe(source.Event{Time: t, Kind: source.KindFork, PID: h.pid, PPID: 1000})
	} else {
		_ = h.g.Observe(source.Event{Time: t, Kind: source.KindFork, PID: h.pid, PPID: 1})
		_ = h.g.Observe(source.Event{Time: h.now.Add(-time.Minute), Kind: source.KindConnect, PID: h.pid, Dst: netip.MustParseAddrPort("198.51.100.7:443")})
	}
	_ = h.g.Observe(source.Event{Time: h.now.Add(-age), Kind: source.KindRisk, PID: h.pid, Level: level})
}

func assessP(t *testing.T, w *Warner, now time.Time) Warning {
	t.Helper()
	rec, _, err := w.Assess(procNode(1000), now)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestPropertyMoreWarningNeighboursLowerProbability(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 1))
	for i := range 300 {
		h := randomHood(rng)
		w := newWarner(t, h.g, nil)
		before := assessP(t, w, h.now)
		h.add(rng.IntN(2) == 0, source.Level(2+rng.IntN(3)), 0) // a fresh warning node
		after := assessP(t, w, h.now)
		if after.Warning != before.Warning+1 {
			t.Fatalf("case %d: warning nodes %d -> %d", i, before.Warning, after.Warning)
		}
		if after.Probability > before.Probability || (before.Probability > 1e-3 && after.Probability >= before.Probability) {
			t.Fatalf("case %d: one more warning neighbour: probability %v -> %v", i, before.Probability, after.Probability)
		}
		if after.Threshold < before.Threshold {
			t.Fatalf("case %d: threshold fell %v -> %v with a new warning node in the latest bucket", i, before.Threshold, after.Threshold)
		}
	}
}

func TestPropertyOlderBehaviourWeighsLess(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range 300 {
		direct := rng.IntN(2) == 0
		level := source.Level(1 + rng.IntN(4))
		a1 := time.Duration(rng.Int64N(int64(23 * time.Hour)))
		a2 := a1 + time.Duration(1+rng.Int64N(int64(24*time.Hour-a1)))
		var ps [2]float64
		for k, age := range []time.Duration{a1, a2} {
			h := randomHood(rand.New(rand.NewPCG(uint64(i), 9))) // the same hood twice
			h.add(direct, level, age)
			ps[k] = assessP(t, newWarner(t, h.g, nil), h.now).Probability
		}
		if ps[1] < ps[0] {
			t.Fatalf("case %d: behaviour aged %v gives %v, aged %v gives %v (older must weigh less)", i, a1, ps[0], a2, ps[1])
		}
	}
	// And for one node: its safety probability rises with age.
	w := newWarner(t, NewGraph(), nil)
	now := warnT0.UnixNano()
	prev := 0.0
	for age := time.Duration(0); age <= 24*time.Hour; age += time.Hour {
		p := w.safety([]behaviour{{t: now - int64(age), kind: BehaviourRisk, level: source.LevelHigh}}, now-int64(48*time.Hour), now)
		if p <= prev {
			t.Fatalf("safety at age %v = %v, not above %v", age, p, prev)
		}
		prev = p
	}
}

func TestPropertyRisingTrendWarnsEarlier(t *testing.T) {
	// Formula level: the margin P − θ falls as the trend rises.
	rng := rand.New(rand.NewPCG(4, 3))
	cfg := DefaultWarnConfig()
	for range 2000 {
		pref := rng.Float64()
		r1 := (rng.Float64()*2 - 1) * cfg.MaxTrend
		r2 := r1 + rng.Float64()*(cfg.MaxTrend-r1)
		m1 := Correct(pref, r1, cfg.TrendGain) - Threshold(cfg.BaseThreshold, r1, cfg.ThresholdUnit)
		m2 := Correct(pref, r2, cfg.TrendGain) - Threshold(cfg.BaseThreshold, r2, cfg.ThresholdUnit)
		if m2 > m1+1e-12 {
			t.Fatalf("pref %v: margin %v at trend %v, %v at higher trend %v", pref, m1, r1, m2, r2)
		}
	}
	// Assessment level: the same warning nodes at mirrored times (no age
	// decay, one window: the reference probability is the same, only the
	// trend differs).
	mod := func(c *WarnConfig) {
		c.HalfLife = 1 << 62
		c.Windows = []WarnWindow{{Span: c.Target.Period, Weight: 1}}
	}
	onlyHigher := 0
	for i := range 300 {
		k := 1 + rng.IntN(4)
		levels := make([]source.Level, k)
		ages := make([]time.Duration, k)
		for j := range levels {
			levels[j] = source.Level(2 + rng.IntN(3))
			ages[j] = time.Minute + time.Duration(rng.Int64N(int64(24*time.Hour-2*time.Minute)))
		}
		var recs [2]Warning
		var warns [2]bool
		for arr := range 2 {
			h := randomHoodN(rand.New(rand.NewPCG(uint64(i), 7)), 3)
			for j, l := range levels {
				age := ages[j]
				if arr == 1 {
					age = 24*time.Hour - age
				}
				h.add(j%2 == 0, l, age)
			}
			w := newWarner(t, h.g, mod)
			rec, warn, err := w.Assess(procNode(1000), h.now)
			if err != nil {
				t.Fatal(err)
			}
			recs[arr], warns[arr] = rec, warn
		}
		hi, lo := 0, 1
		if recs[1].Trend > recs[0].Trend {
			hi, lo = 1, 0
		}
		if math.Abs(recs[hi].Windows[0].Reference-recs[lo].Windows[0].Reference) > 1e-3 {
			t.Fatalf("case %d: references differ: %v vs %v", i, recs[hi].Windows[0].Reference, recs[lo].Windows[0].Reference)
		}
		if recs[hi].Probability > recs[lo].Probability || recs[hi].Threshold < recs[lo].Threshold {
			t.Fatalf("case %d: higher trend %v: P %v θ %v; lower trend %v: P %v θ %v", i,
				recs[hi].Trend, recs[hi].Probability, recs[hi].Threshold, recs[lo].Trend, recs[lo].Probability, recs[lo].Threshold)
		}
		if warns[lo] && !warns[hi] {
			t.Fatalf("case %d: the lower trend warns, the higher does not", i)
		}
		if warns[hi] && !warns[lo] {
			onlyHigher++
		}
	}
	if onlyHigher == 0 {
		t.Error("no case where only the rising arrangement warned: the trend never moved a decision")
	}
}

func TestTrend(t *testing.T) {
	for _, c := range []struct {
		counts []int
		want   float64
	}{
		{[]int{0, 0, 0}, 0},
		{[]int{2, 2, 2}, 0},
		{[]int{0, 1, 2}, 1},     // slope 1, mean 1
		{[]int{2, 1, 0}, -1},    // falling
		{[]int{0, 3, 6}, 1},     // slope 3 / mean 3
		{[]int{0, 0, 1}, 0.5},   // (1−0)/2 / max(1, 1/3)
		{[]int{0, 0, 9}, 1},     // slope 4.5 / mean 3 = 1.5, clamped
		{[]int{4, 0, 0, 0}, -1}, // slope −1.2 / mean 1, clamped
	} {
		if got := Trend(c.counts, 1); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Trend(%v) = %v, want %v", c.counts, got, c.want)
		}
	}
	// Moving a count to a later bucket never lowers the trend.
	rng := rand.New(rand.NewPCG(4, 4))
	for range 1000 {
		n := 2 + rng.IntN(8)
		c := make([]int, n)
		for i := range c {
			c[i] = rng.IntN(5)
		}
		i := rng.IntN(n - 1)
		if c[i] == 0 {
			continue
		}
		before := Trend(c, 10)
		c[i]--
		c[i+1]++
		if after := Trend(c, 10); after < before-1e-12 {
			t.Fatalf("%v: moving a count later lowered the trend %v -> %v", c, before, after)
		}
	}
}
