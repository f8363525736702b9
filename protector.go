package procwall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/dryrun"
	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/rules"
	"github.com/procwall/procwall/source"
)

// Record is one decision record: an action procwall took or declined to
// take. Containment records are *risk.Decision; other packages add their
// own kinds. Every record marshals to one JSON object with an "action"
// field.
type Record interface {
	RecordAction() string
}

// Option configures a Protector.
type Option func(*config) error

type config struct {
	sources      []source.Source
	enforcer     enforce.Enforcer
	hook         func(Record)
	logger       *slog.Logger
	treeOpts     []proctree.Option
	assocOpts    []netassoc.Option
	riskOpts     []risk.Option
	protected    *enforce.Protected
	reapInterval time.Duration
	resync       func() ([]proctree.Observed, error)
	queue        int
	assessor     risk.Assessor
	assessEvery  time.Duration
	rulesVersion func() string
	eventHook    func(src string, ev *source.Event)
	rules        *rules.Engine
	warn         *risk.WarnConfig
	warnReports  source.Level
	chains       *risk.ChainConfig
	graphOpts    []risk.GraphOption
}

// WithSources adds event sources. Run reads each in a goroutine of its own
// and applies their events in arrival order.
func WithSources(s ...source.Source) Option {
	return func(c *config) error {
		for _, x := range s {
			if x == nil {
				return errors.New("procwall: WithSources: nil source")
			}
		}
		c.sources = append(c.sources, s...)
		return nil
	}
}

// WithEnforcer sets the back-end that applies blocks (default: a dry-run
// enforcer). The Protector closes it when Run returns.
func WithEnforcer(e enforce.Enforcer) Option {
	return func(c *config) error {
		if e == nil {
			return errors.New("procwall: WithEnforcer: nil enforcer")
		}
		c.enforcer = e
		return nil
	}
}

// WithRecordHook sets the function that receives every decision record, in
// order, from the goroutine that made it. It must not block for long.
func WithRecordHook(f func(Record)) Option {
	return func(c *config) error { c.hook = f; return nil }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithTreeOptions passes options to the process tree (retention, caps,
// boundaries, main-process policy).
func WithTreeOptions(o ...proctree.Option) Option {
	return func(c *config) error { c.treeOpts = append(c.treeOpts, o...); return nil }
}

// WithAssocOptions passes options to the association index (bounds).
func WithAssocOptions(o ...netassoc.Option) Option {
	return func(c *config) error { c.assocOpts = append(c.assocOpts, o...); return nil }
}

// WithRiskOptions passes options to containment (scope, blocking level,
// block timeout).
func WithRiskOptions(o ...risk.Option) Option {
	return func(c *config) error { c.riskOpts = append(c.riskOpts, o...); return nil }
}

// WithProtected sets the networks never blocked (default: loopback and the
// unspecified addresses). Give the same set to the enforcer.
func WithProtected(p *enforce.Protected) Option {
	return func(c *config) error { c.protected = p; return nil }
}

// WithReapInterval sets how often, in event time, exited processes past
// their retention are collected and timed-out blocks released (default 10s).
func WithReapInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("procwall: WithReapInterval: interval must be > 0, have %s", d)
		}
		c.reapInterval = d
		return nil
	}
}

// WithResync sets how the Protector takes a snapshot of running processes
// when a source reports lost events (source.ErrLost); typically a
// source/procfs reader. Without it, losses are counted and logged only.
func WithResync(f func() ([]proctree.Observed, error)) Option {
	return func(c *config) error { c.resync = f; return nil }
}

// WithAssessor sets an Assessor that Run calls every interval (wall time)
// for each active block; a safe answer releases the block with a release
// record, exactly as a safe assessment event would.
func WithAssessor(a risk.Assessor, every time.Duration) Option {
	return func(c *config) error {
		if a == nil || every <= 0 {
			return fmt.Errorf("procwall: WithAssessor: need an assessor and an interval > 0, have %v and %s", a, every)
		}
		c.assessor, c.assessEvery = a, every
		return nil
	}
}

// WithEventHook sets a function called with every event the Protector
// applies (from sources, Handle and Submit), in order, before it is
// applied — for recording what a live run saw, in the native trace format,
// so it can be replayed. It must not call back into the Protector.
func WithEventHook(f func(src string, ev *source.Event)) Option {
	return func(c *config) error { c.eventHook = f; return nil }
}

// WithRules judges process events with a rule engine (seed 001) as they
// are applied: exec, connect, send and file events become requests, and
// every deny or ask verdict is a record in the decision stream
// (*rules.Record). A denied connection blocks its destination (target
// "destination"); a denied exec or file write is a risk report on the
// process, contained like a detector's. Verdicts are by rules alone
// (Engine.Decide): a person is asked only by the permission-event path
// (source/fanotify), which can hold the process while waiting. The rule
// bundle's version goes into the metrics.
func WithRules(e *rules.Engine) Option {
	return func(c *config) error {
		if e == nil {
			return errors.New("procwall: WithRules: nil engine")
		}
		c.rules = e
		if c.rulesVersion == nil {
			c.rulesVersion = e.Version
		}
		return nil
	}
}

// WithWarning turns on association-based early warning (seed 004): the
// Protector keeps a host graph of processes, addresses and behaviours, and
// after every risk report or block it assesses the related nodes and emits
// a "warn" record (*risk.Warning) for each that crosses the moving
// threshold. It costs a few microseconds per event.
func WithWarning(cfg risk.WarnConfig) Option {
	return func(c *config) error {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("procwall: WithWarning: %w", err)
		}
		c.warn = &cfg
		return nil
	}
}

// WithWarningReports makes every early warning on a process a risk report
// at level (procwall.WithWarning must be on): the warned process is then
// contained like one a detector reported, or gets an alert-only "none"
// record when level is below the blocking level (risk.WithMinLevel).
// Warnings on addresses stay records only.
func WithWarningReports(level source.Level) Option {
	return func(c *config) error {
		if level == source.LevelNone {
			return errors.New("procwall: WithWarningReports: need a level")
		}
		c.warnReports = level
		return nil
	}
}

// WithChains turns on attack-chain tracking across windows (seed 003):
// every risk report at or above the blocking level and every block flags
// its process, and as event time passes each window's growth of a chain is
// emitted as a "chain" record (*risk.Chain).
func WithChains(cfg risk.ChainConfig) Option {
	return func(c *config) error {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("procwall: WithChains: %w", err)
		}
		c.chains = &cfg
		return nil
	}
}

// WithGraphOptions passes options to the host graph that early warning and
// attack chains share (retention, bounds).
func WithGraphOptions(o ...risk.GraphOption) Option {
	return func(c *config) error { c.graphOpts = append(c.graphOpts, o...); return nil }
}

// WithRulesVersion tells the Protector how to learn the active rule
// bundle's version, for its metrics.
func WithRulesVersion(f func() string) Option {
	return func(c *config) error { c.rulesVersion = f; return nil }
}

// Metrics is a snapshot of a Protector's counters and sizes.
type Metrics struct {
	Events      map[string]uint64 // events applied, per source name
	Lost        map[string]uint64 // loss reports (source.ErrLost), per source name
	Resyncs     uint64
	Anomalies   uint64            // events the tree found inconsistent
	Decisions   map[string]uint64 // records per action
	EnforceErrs uint64            // enforcer calls that failed
	Tree        proctree.Stats
	Assoc       netassoc.Stats
	ActiveBlock int
	// RulesVersion is the active rule bundle's version (see
	// WithRulesVersion), or "".
	RulesVersion string
}

// Protector composes sources, the process tree, the association index,
// containment and an enforcer. Create it with New, feed it with Run (from
// its sources) or Handle (events you already have), send reports with
// Report and Assess.
//
// A Protector is safe for concurrent use: events, reports and assessments
// are applied one at a time, in the order they arrive.
type Protector struct {
	cfg     config
	log     *slog.Logger
	tree    *proctree.Tree
	assoc   *netassoc.Index
	contain *risk.Containment
	enf     enforce.Enforcer
	graph   *risk.Graph  // nil unless warning or chains are on
	warner  *risk.Warner // nil unless WithWarning
	chainer *risk.Chains // nil unless WithChains

	sourcesDone chan struct{} // closed when every source is exhausted

	mu       sync.Mutex // serialises handling
	stopped  bool       // Run has ended and closed the enforcer (under mu)
	lastReap time.Time
	running  atomic.Bool

	mmu       sync.Mutex
	events    map[string]uint64
	lost      map[string]uint64
	decisions map[string]uint64
	resyncs   uint64
	anomalies uint64
	enfErrs   uint64
}

// New returns a Protector. It reads the enforcer's active blocks, so that
// blocks taken before a restart can be released.
func New(opts ...Option) (*Protector, error) {
	c := config{reapInterval: 10 * time.Second, queue: 1024}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.protected == nil {
		c.protected = enforce.DefaultProtected()
	}
	if c.enforcer == nil {
		c.enforcer = dryrun.New(dryrun.WithProtected(c.protected))
	}
	var err error
	p := &Protector{
		cfg:       c,
		log:       c.logger,
		enf:       c.enforcer,
		events:    map[string]uint64{},
		lost:      map[string]uint64{},
		decisions: map[string]uint64{},
	}
	p.assoc = netassoc.New(c.assocOpts...)
	treeOpts := append([]proctree.Option{proctree.WithOnRemove(p.assoc.Forget)}, c.treeOpts...)
	p.tree = proctree.New(treeOpts...)
	riskOpts := append([]risk.Option{risk.WithProtected(c.protected)}, c.riskOpts...)
	p.contain = risk.NewContainment(p.tree, p.assoc, p.enf.Name(), riskOpts...)
	if c.warn != nil || c.chains != nil {
		gopts := c.graphOpts
		if c.warn != nil {
			gopts = append([]risk.GraphOption{risk.WithGraphRetention(max(24*time.Hour, 2*c.warn.Target.Period))}, gopts...)
		}
		p.graph = risk.NewGraph(gopts...)
		if c.warn != nil {
			if p.warner, err = risk.NewWarner(p.graph, *c.warn); err != nil {
				return nil, fmt.Errorf("procwall: %w", err)
			}
		}
		if c.chains != nil {
			if p.chainer, err = risk.NewChains(p.graph, *c.chains); err != nil {
				return nil, fmt.Errorf("procwall: %w", err)
			}
		}
	}
	blocks, err := p.enf.Blocks(context.Background())
	if err != nil {
		return nil, fmt.Errorf("procwall: read active blocks from %s: %w", p.enf.Name(), err)
	}
	if err := p.contain.Restore(blocks); err != nil {
		return nil, fmt.Errorf("procwall: %w", err)
	}
	return p, nil
}

// Tree returns the process tree (safe for concurrent queries).
func (p *Protector) Tree() *proctree.Tree { return p.tree }

// Associations returns the process ↔ address index (safe for concurrent
// queries).
func (p *Protector) Associations() *netassoc.Index { return p.assoc }

// Enforcer returns the enforcer.
func (p *Protector) Enforcer() enforce.Enforcer { return p.enf }

// ActiveBlocks returns the blocks containment holds, sorted by ID.
func (p *Protector) ActiveBlocks() []enforce.Block {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.contain.Active()
}

// ErrStopped is returned by Handle, Submit, Report, Assess and Release
// once Run has ended: Run closes the enforcer when it returns, so nothing
// may block or release any more. Queries keep working.
var ErrStopped = errors.New("procwall: stopped: Run has ended and closed the enforcer")

type sourced struct {
	ev   source.Event
	err  error // the source failed: Run ends with it
	lost error // the source lost events (source.ErrLost): resync here
	src  string
}

// Run reads every source and applies its events until all sources are
// exhausted (io.EOF: a finished recording) or ctx is cancelled. It owns the
// goroutines that read sources, closes the sources and the enforcer before
// it returns, and returns nil on exhaustion or cancellation, or the first
// source error that is neither a loss report nor a close. With no
// sources, Run serves until ctx is cancelled: events, reports and
// assessments then come through Handle, Report and Assess, and Run keeps
// the assessor (WithAssessor) going. Run may be called once.
func (p *Protector) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("procwall: Run called twice")
	}
	defer func() {
		// From here on nothing may change blocks: the enforcer is gone, so
		// a release would be recorded but not carried out.
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		if err := p.enf.Close(); err != nil {
			p.log.Warn("closing enforcer", "enforcer", p.enf.Name(), "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan sourced, p.cfg.queue)
	var wg, srcWG sync.WaitGroup
	p.sourcesDone = make(chan struct{})
	for _, s := range p.cfg.sources {
		wg.Add(1)
		srcWG.Add(1)
		go func() {
			defer wg.Done()
			defer srcWG.Done()
			p.pump(ctx, s, ch)
		}()
	}
	if len(p.cfg.sources) == 0 {
		// Nothing to exhaust: serve until ctx ends (an agent feeding
		// Handle and Report itself, with Run for the assessor and the
		// orderly shutdown).
		wg.Add(1)
		srcWG.Add(1)
		go func() {
			defer wg.Done()
			defer srcWG.Done()
			<-ctx.Done()
		}()
	}
	go func() {
		srcWG.Wait()
		close(p.sourcesDone)
	}()
	// Closing the sources unblocks their Next when ctx ends.
	stop := context.AfterFunc(ctx, func() {
		for _, s := range p.cfg.sources {
			s.Close()
		}
	})
	defer stop()
	if p.cfg.assessor != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.assessLoop(ctx)
		}()
	}
	go func() {
		wg.Wait()
		close(ch)
	}()
	var firstErr error
	for m := range ch {
		if m.err != nil {
			if firstErr == nil {
				firstErr = m.err
				cancel()
			}
			continue
		}
		if m.lost != nil {
			p.noteLoss(m.src, m.lost)
			continue
		}
		if err := p.handle(ctx, m.src, m.ev, nil); err != nil && firstErr == nil && !errors.Is(err, context.Canceled) {
			firstErr = err
			cancel()
		}
	}
	for _, s := range p.cfg.sources {
		s.Close()
	}
	return firstErr
}

// assessLoop asks the assessor about every active block on each tick and
// releases what it says is safe. It ends with ctx, or when every source is
// exhausted.
func (p *Protector) assessLoop(ctx context.Context) {
	tk := time.NewTicker(p.cfg.assessEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.sourcesDone:
			return
		case <-tk.C:
		}
		for _, b := range p.ActiveBlocks() {
			safe, reason, err := p.cfg.assessor.Assess(ctx, b)
			if err != nil {
				p.log.Warn("assessor failed", "block", b.ID, "err", err)
				continue
			}
			if !safe {
				continue
			}
			if reason == "" {
				reason = "assessor found it safe"
			}
			if _, err := p.Assess(ctx, risk.Assessment{Time: time.Now().UTC(), Process: b.Target, Safe: true, Reason: reason}); err != nil {
				return
			}
		}
	}
}

// Release removes one active block by ID (a manual release), releases it
// in the enforcer and returns the release record (also given to the hook).
func (p *Protector) Release(ctx context.Context, blockID, reason string) (risk.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return risk.Decision{}, ErrStopped
	}
	d, err := p.contain.Release(blockID, time.Now().UTC(), reason)
	if err != nil {
		return risk.Decision{}, fmt.Errorf("procwall: release: %w", err)
	}
	if err := p.enf.Release(ctx, blockID); err != nil && !errors.Is(err, enforce.ErrNotFound) {
		p.enfFailed("release", blockID, err)
		d.Reason += fmt.Sprintf(" (enforcer %s failed to release: %v)", p.enf.Name(), err)
	}
	p.emit(&d)
	return d, nil
}

// pump reads one source until it ends, sending events (and a fatal error)
// to ch.
func (p *Protector) pump(ctx context.Context, s source.Source, ch chan<- sourced) {
	name := s.Name()
	for {
		ev, err := s.Next()
		switch {
		case err == nil:
			select {
			case ch <- sourced{ev: ev, src: name}:
			case <-ctx.Done():
				return
			}
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, os.ErrClosed) || ctx.Err() != nil:
			return
		case errors.Is(err, source.ErrLost):
			// Through the queue, not here: the events this source
			// delivered before the loss are applied first, so the
			// snapshot the resync takes is not followed by older news.
			select {
			case ch <- sourced{lost: err, src: name}:
			case <-ctx.Done():
				return
			}
		default:
			select {
			case ch <- sourced{err: fmt.Errorf("procwall: source %s: %w", name, err), src: name}:
			case <-ctx.Done():
			}
			return
		}
	}
}

// noteLoss counts a loss report of source name and, with WithResync,
// re-synchronises the tree from a snapshot of the running processes. Run
// calls it in queue order: every event delivered before the loss is
// already applied.
func (p *Protector) noteLoss(name string, err error) {
	p.mmu.Lock()
	p.lost[name]++
	p.mmu.Unlock()
	p.log.Warn("source lost events", "source", name, "err", err)
	if p.cfg.resync == nil {
		return
	}
	procs, rerr := p.cfg.resync()
	if rerr != nil {
		p.log.Error("resync after lost events failed", "source", name, "err", rerr)
		return
	}
	p.mu.Lock()
	now := time.Now()
	d := p.tree.Resync(now, procs)
	if p.graph != nil {
		p.graph.SyncTree(p.tree.Snapshot(), now)
	}
	p.mu.Unlock()
	p.mmu.Lock()
	p.resyncs++
	p.mmu.Unlock()
	p.log.Info("resynced the process tree", "source", name, "added", len(d.Added), "exited", len(d.Exited), "linked", len(d.Linked))
}

// Handle applies one event as if a source had delivered it: process events
// update the tree, traffic updates the association index, risk and assess
// events go to containment. It returns an error only when the enforcer
// fails in a way the records cannot express, or ctx ends.
func (p *Protector) Handle(ctx context.Context, ev source.Event) error {
	return p.handle(ctx, "api", ev, nil)
}

// Submit applies one event like Handle and returns the decision records it
// produced (for risk and assess events; none for others).
func (p *Protector) Submit(ctx context.Context, ev source.Event) ([]risk.Decision, error) {
	var out []risk.Decision
	err := p.handle(ctx, "api", ev, &out)
	return out, err
}

func (p *Protector) handle(ctx context.Context, src string, ev source.Event, out *[]risk.Decision) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return ErrStopped
	}
	p.mmu.Lock()
	p.events[src]++
	p.mmu.Unlock()
	if p.cfg.eventHook != nil {
		p.cfg.eventHook(src, &ev)
	}
	if p.graph != nil {
		_ = p.graph.Observe(ev) // invalid events are reported below
	}
	switch ev.Kind {
	case source.KindRisk:
		if err := ev.Validate(); err != nil {
			return p.emitInvalid(ev, err)
		}
		p.tick(ctx, ev.Time)
		return p.reportInto(ctx, risk.Report{Time: ev.Time, Process: ev.ID(), GUID: ev.GUID, Level: ev.Level, Reason: ev.Reason}, out)
	case source.KindAssess:
		if err := ev.Validate(); err != nil {
			return p.emitInvalid(ev, err)
		}
		p.tick(ctx, ev.Time)
		return p.assessInto(ctx, risk.Assessment{Time: ev.Time, Process: ev.ID(), GUID: ev.GUID, Safe: ev.Safe, Reason: ev.Reason}, out)
	}
	if err := p.tree.ApplyEvent(&ev); err != nil {
		p.mmu.Lock()
		p.anomalies++
		p.mmu.Unlock()
		p.log.Debug("tree anomaly", "source", src, "err", err)
	}
	switch ev.Kind {
	case source.KindConnect, source.KindSend, source.KindAccept:
		if id, ok := p.tree.ResolveEvent(&ev); ok {
			dir := netassoc.Outbound
			if ev.Kind == source.KindAccept {
				dir = netassoc.Inbound
			}
			p.assoc.Record(id, dir, ev.Proto, ev.Dst, ev.Time)
		}
	}
	if p.cfg.rules != nil {
		if err := p.judge(ctx, &ev); err != nil {
			return err
		}
	}
	p.tick(ctx, ev.Time)
	return nil
}

// judge asks the rule engine about a process event and acts on a deny.
func (p *Protector) judge(ctx context.Context, ev *source.Event) error {
	switch ev.Kind {
	case source.KindExec, source.KindConnect, source.KindSend, source.KindFile:
	default:
		return nil
	}
	req, err := rules.FromEvent(ev)
	if err != nil {
		return nil // an event the engine cannot judge (no exe, no dst)
	}
	id, known := p.tree.ResolveEvent(ev)
	if known {
		if pr, ok := p.tree.Get(id); ok {
			req.Start = pr.KnownStart()
			if req.Op != rules.OpExec && req.Exe == "" {
				req.Exe, req.Argv = pr.Exe, pr.Argv
			}
			if !req.HasUID && pr.HasUID {
				req.UID, req.HasUID = pr.UID, true
			}
		}
		if par, ok := p.tree.Parent(id); ok && req.ParentExe == "" {
			req.ParentExe = par.Exe
		}
	}
	v := p.cfg.rules.Decide(&req)
	if v.Action != rules.Deny && v.Action != rules.Ask {
		return nil
	}
	rec := rules.NewRecord(&req, v, p.cfg.rules.Version())
	p.emitRecord(&rec)
	if v.Action != rules.Deny || !known {
		return nil
	}
	if p.graph != nil {
		p.graph.Note(risk.Behaviour{Time: ev.Time, Node: risk.ProcessNode(id), Kind: risk.BehaviourDeny})
	}
	why := "rule " + v.Rule + " denied " + req.Op.String()
	if v.Description != "" {
		why += ": " + v.Description
	}
	if req.Op == rules.OpConnect {
		_, err := p.applyPlan(ctx, p.contain.PlanDestinations(ev.Time, id, []netip.Addr{ev.Dst.Addr()}, why), nil)
		return err
	}
	level := v.Level
	if level < source.LevelHigh {
		level = source.LevelHigh
	}
	return p.reportInto(ctx, risk.Report{Time: ev.Time, Process: id, Level: level, Reason: why}, nil)
}

// emitInvalid turns a report that cannot be acted on into a none record.
func (p *Protector) emitInvalid(ev source.Event, err error) error {
	p.emit(&risk.Decision{Time: ev.Time, Action: risk.ActionNone, RiskPID: ev.PID, Addrs: []string{},
		Reason: "invalid " + ev.Kind.String() + " report: " + err.Error(), Enforcer: p.enf.Name()})
	return nil
}

// tick runs periodic work driven by event time: reaping exited processes
// and releasing timed-out blocks.
func (p *Protector) tick(ctx context.Context, now time.Time) {
	if now.IsZero() {
		return
	}
	if p.lastReap.IsZero() {
		p.lastReap = now
		return
	}
	if now.Sub(p.lastReap) < p.cfg.reapInterval {
		return
	}
	p.lastReap = now
	p.tree.Reap(now)
	if p.chainer != nil {
		for _, c := range p.chainer.Window(now) {
			p.emitRecord(&c)
		}
	}
	for _, d := range p.contain.Expire(now) {
		if err := p.enf.Release(ctx, d.Block); err != nil {
			p.enfFailed("release", d.Block, err)
		}
		p.emit(&d)
	}
}

func (p *Protector) enfFailed(op, id string, err error) {
	p.mmu.Lock()
	p.enfErrs++
	p.mmu.Unlock()
	p.log.Error("enforcer failed", "enforcer", p.enf.Name(), "op", op, "block", id, "err", err)
}

// Report hands a risk report to containment and applies its decision. It
// returns the decision records (also given to the record hook).
func (p *Protector) Report(ctx context.Context, r risk.Report) ([]risk.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, ErrStopped
	}
	var out []risk.Decision
	err := p.reportInto(ctx, r, &out)
	return out, err
}

func (p *Protector) reportInto(ctx context.Context, r risk.Report, out *[]risk.Decision) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	d, err := p.applyPlan(ctx, p.contain.Plan(r), out)
	if err != nil {
		return err
	}
	p.afterReport(r, &d)
	return ctx.Err()
}

// applyPlan installs a block decision's block with the enforcer (turning a
// refusal into a "none" record), commits it, and emits the record.
func (p *Protector) applyPlan(ctx context.Context, d risk.Decision, out *[]risk.Decision) (risk.Decision, error) {
	if b, ok := d.EnforceBlock(); ok {
		if err := p.enf.Block(ctx, b); err != nil {
			p.enfFailed("block", b.ID, err)
			d = risk.Decision{Time: d.Time, Action: risk.ActionNone, RiskPID: d.RiskPID, RiskStart: d.RiskStart,
				TargetPID: d.TargetPID, TargetStart: d.TargetStart, Target: d.Target, Addrs: []string{},
				Reason:   fmt.Sprintf("enforcer %s refused the block of %v: %v", p.enf.Name(), d.Addrs, err),
				Enforcer: p.enf.Name(), Level: d.Level, Report: d.Report}
		} else if err := p.contain.Commit(d); err != nil {
			return d, fmt.Errorf("procwall: commit block %s: %w", b.ID, err)
		} else if p.graph != nil {
			p.graph.Note(risk.Behaviour{Time: d.Time, Node: risk.ProcessNode(b.Target), Kind: risk.BehaviourBlock})
			for _, a := range b.Addrs {
				p.graph.Note(risk.Behaviour{Time: d.Time, Node: risk.AddrNode(a), Kind: risk.BehaviourBlock})
			}
		}
	}
	p.emit(&d)
	if out != nil {
		*out = append(*out, d)
	}
	return d, nil
}

// warnReason is the reason of risk reports made from early warnings; a
// report with it does not start another round of warnings.
const warnReason = "early warning: related processes are at risk"

// afterReport runs early warning and flags attack chains after a risk
// report (and the block it may have caused).
func (p *Protector) afterReport(r risk.Report, d *risk.Decision) {
	if p.graph == nil {
		return
	}
	id, ok := p.tree.Resolve(r.Process)
	if r.GUID != "" {
		if pr, found := p.tree.GetGUID(r.GUID); found {
			id, ok = pr.ID, true
		}
	}
	if !ok {
		return
	}
	n := risk.ProcessNode(id)
	if p.chainer != nil && (d.Action == risk.ActionBlock || d.Block != "") {
		if _, err := p.chainer.Flag(n, r.Time, r.Reason); err != nil {
			p.log.Debug("attack chain not flagged", "node", n.String(), "err", err)
		}
	}
	if p.warner != nil {
		for _, w := range p.warner.Around(n, r.Time) {
			p.emitRecord(&w)
			if p.cfg.warnReports != source.LevelNone && w.PID != 0 && r.Reason != warnReason {
				wr := risk.Report{Time: r.Time, Process: source.ProcID{PID: w.PID, Start: w.Start},
					Level: p.cfg.warnReports, Reason: warnReason}
				if _, err := p.applyPlan(context.Background(), p.contain.Plan(wr), nil); err != nil {
					p.log.Error("warning report", "pid", w.PID, "err", err)
				}
			}
		}
	}
}

// Assess hands an assessment to containment and releases what it says. It
// returns the records (also given to the record hook).
func (p *Protector) Assess(ctx context.Context, a risk.Assessment) ([]risk.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, ErrStopped
	}
	var out []risk.Decision
	err := p.assessInto(ctx, a, &out)
	return out, err
}

func (p *Protector) assessInto(ctx context.Context, a risk.Assessment, out *[]risk.Decision) error {
	if a.Time.IsZero() {
		a.Time = time.Now().UTC()
	}
	for _, d := range p.contain.Assess(a) {
		if d.Action == risk.ActionRelease {
			if err := p.enf.Release(ctx, d.Block); err != nil && !errors.Is(err, enforce.ErrNotFound) {
				p.enfFailed("release", d.Block, err)
				d.Reason += fmt.Sprintf(" (enforcer %s failed to release: %v)", p.enf.Name(), err)
			}
		}
		p.emit(&d)
		if out != nil {
			*out = append(*out, d)
		}
	}
	return ctx.Err()
}

func (p *Protector) emit(d *risk.Decision) {
	p.log.Info("decision", "action", d.Action, "risk_pid", d.RiskPID, "target_pid", d.TargetPID,
		"addrs", d.Addrs, "reason", d.Reason)
	p.emitRecord(d)
}

// emitRecord counts a record and hands it to the hook.
func (p *Protector) emitRecord(r Record) {
	p.mmu.Lock()
	p.decisions[r.RecordAction()]++
	p.mmu.Unlock()
	if p.cfg.hook != nil {
		p.cfg.hook(r)
	}
}

// Seed fills the process tree from a snapshot of running processes (at
// start-up) and brings the host graph of early warning in line with it.
func (p *Protector) Seed(now time.Time, procs []proctree.Observed) proctree.Diff {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.tree.Seed(now, procs)
	if p.graph != nil {
		p.graph.SyncTree(p.tree.Snapshot(), now)
	}
	return d
}

// Metrics returns a snapshot of the Protector's counters.
func (p *Protector) Metrics() Metrics {
	p.mmu.Lock()
	m := Metrics{
		Events:      cloneMap(p.events),
		Lost:        cloneMap(p.lost),
		Decisions:   cloneMap(p.decisions),
		Resyncs:     p.resyncs,
		Anomalies:   p.anomalies,
		EnforceErrs: p.enfErrs,
	}
	p.mmu.Unlock()
	m.Tree = p.tree.Stats()
	m.Assoc = p.assoc.Stats()
	if p.cfg.rulesVersion != nil {
		m.RulesVersion = p.cfg.rulesVersion()
	}
	p.mu.Lock()
	m.ActiveBlock = len(p.contain.Active())
	p.mu.Unlock()
	return m
}

func cloneMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
