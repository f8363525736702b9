package risk

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/source"
)

// Level is a risk level (low, medium, high, critical).
type Level = source.Level

// Report is a detector's statement that a process is risky.
type Report struct {
	Time    time.Time
	Process source.ProcID // Start 0: the live process with that pid, else the most recent
	GUID    string        // optional: a source's process identity
	Level   Level
	Reason  string
}

// Assessment is a risk assessment of a process. Safe releases the blocks
// taken because of it.
type Assessment struct {
	Time    time.Time
	Process source.ProcID
	GUID    string
	Safe    bool
	Reason  string
}

// Associations tells containment which remote addresses a process
// initiated traffic to. *netassoc.Index implements it.
type Associations interface {
	Addrs(id source.ProcID) []netip.Addr
}

// Scope says whose addresses a main-process block covers.
type Scope uint8

const (
	// ScopeProcess blocks the main process's own associated addresses
	// (DESIGN.md's default).
	ScopeProcess Scope = iota
	// ScopeDescendants also blocks the addresses of the main process's
	// descendants (those still in the tree).
	ScopeDescendants
)

// Target kinds in decision records.
const (
	TargetRiskProcess = "risk_process"
	TargetMainProcess = "main_process"
)

// Record actions.
const (
	ActionBlock   = "block"
	ActionRelease = "release"
	ActionNone    = "none"
)

// Decision is a containment decision record (spec/decisions.md, version 1):
// what was done, or declined, about one risk report or assessment.
type Decision struct {
	Time      time.Time `json:"ts"`
	Action    string    `json:"action"`
	RiskPID   int       `json:"risk_pid,omitempty"`
	TargetPID int       `json:"target_pid,omitempty"`
	Target    string    `json:"target,omitempty"`
	Addrs     []string  `json:"addrs"`
	Reason    string    `json:"reason"`
	Enforcer  string    `json:"enforcer"`
	// Extensions (compatible additions to version 1).
	RiskStart   uint64 `json:"risk_start,omitempty"`
	TargetStart uint64 `json:"target_start,omitempty"`
	Block       string `json:"block,omitempty"`  // the block's ID
	Level       string `json:"level,omitempty"`  // the report's level
	Report      string `json:"report,omitempty"` // the detector's or assessor's reason

	// block is the interception-configuration entry a block decision
	// installs.
	block *enforce.Block
}

// RecordAction implements the Protector's record interface.
func (d *Decision) RecordAction() string { return d.Action }

// EnforceBlock returns the block a "block" decision installs.
func (d *Decision) EnforceBlock() (enforce.Block, bool) {
	if d.block == nil {
		return enforce.Block{}, false
	}
	return *d.block, true
}

// Option configures a Containment.
type Option func(*Containment)

// WithScope sets whose addresses a main-process block covers.
func WithScope(s Scope) Option { return func(c *Containment) { c.scope = s } }

// WithProtected sets the networks never blocked (default
// enforce.DefaultProtected()); their addresses are left out of blocks and
// named in the reason.
func WithProtected(p *enforce.Protected) Option { return func(c *Containment) { c.protected = p } }

// WithMinLevel sets the lowest level that blocks; reports below it produce a
// "none" record (alert only). Default: low (every report blocks).
func WithMinLevel(l Level) Option { return func(c *Containment) { c.minLevel = l } }

// WithBlockTimeout makes blocks lapse after d of event time (0: never).
func WithBlockTimeout(d time.Duration) Option { return func(c *Containment) { c.timeout = d } }

// Containment is seed 000's containment plan: on a risk report it blocks
// the risk process's own associated addresses, else its main process's,
// else declines with a reason; on a safe assessment it releases. It keeps
// the ledger of active blocks (an enforce.Config), so that a released
// address another block still holds stays blocked.
//
// Containment decides; it does not touch a packet filter. The caller
// applies each decision's block with an Enforcer and then calls Commit (or
// drops the decision if the enforcer refused). It is not safe for
// concurrent use: the Protector serialises calls.
type Containment struct {
	tree      *proctree.Tree
	assoc     Associations
	ledger    *enforce.Config
	protected *enforce.Protected
	scope     Scope
	minLevel  Level
	timeout   time.Duration
	enforcer  string
	seq       uint64
}

// NewContainment returns a containment plan over a tree and an association
// index. enforcerName goes into the records.
func NewContainment(tree *proctree.Tree, assoc Associations, enforcerName string, opts ...Option) *Containment {
	c := &Containment{
		tree:      tree,
		assoc:     assoc,
		ledger:    enforce.NewConfig(),
		protected: enforce.DefaultProtected(),
		minLevel:  source.LevelLow,
		enforcer:  enforcerName,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Restore loads active blocks (from an enforcer's interception
// configuration at start-up) into the ledger, so that later releases find
// them.
func (c *Containment) Restore(blocks []enforce.Block) error {
	for _, b := range blocks {
		if _, err := c.ledger.Add(b); err != nil {
			return fmt.Errorf("restore block %q: %w", b.ID, err)
		}
		// Keep new IDs from colliding with restored ones.
		if i := strings.LastIndexByte(b.ID, '-'); i >= 0 {
			if n, err := strconv.ParseUint(b.ID[i+1:], 10, 64); err == nil && n > c.seq {
				c.seq = n
			}
		}
	}
	return nil
}

// Active returns the active blocks, sorted by ID.
func (c *Containment) Active() []enforce.Block { return c.ledger.Blocks() }

// procName is "name (pid)" for records.
func procName(p proctree.Process) string {
	return p.Name() + " (" + strconv.Itoa(p.ID.PID) + ")"
}

// Plan decides what to do about a risk report. A "block" decision carries
// the block to install (EnforceBlock); nothing changes until Commit.
func (c *Containment) Plan(r Report) Decision {
	d := Decision{
		Time:     r.Time,
		Action:   ActionNone,
		RiskPID:  r.Process.PID,
		Addrs:    []string{},
		Enforcer: c.enforcer,
		Level:    r.Level.String(),
		Report:   r.Reason,
	}
	rp, ok := c.lookup(r.Process, r.GUID)
	if !ok {
		d.Reason = fmt.Sprintf("pid %d is not in the process tree (never seen, or exited more than %s ago); nothing to block",
			r.Process.PID, c.tree.Retention())
		return d
	}
	d.RiskStart = rp.KnownStart()
	if r.Level < c.minLevel {
		d.Reason = fmt.Sprintf("risk level %s is below the blocking level %s; alert only", r.Level, c.minLevel)
		return d
	}

	target, kind := rp, TargetRiskProcess
	addrs := c.assoc.Addrs(rp.ID)
	var main proctree.Main
	if len(addrs) == 0 {
		m, ok := c.tree.MainProcess(rp.ID)
		if ok {
			main = m
			if mp, ok := c.tree.Get(m.ID); ok {
				target, kind = mp, TargetMainProcess
				addrs = c.mainAddrs(mp.ID)
			}
		}
	}
	d.TargetPID, d.TargetStart = target.ID.PID, target.KnownStart()
	allowed, protected := c.protected.Split(addrs)
	allowed = enforce.SortAddrs(allowed)
	if len(allowed) == 0 {
		switch {
		case len(protected) > 0:
			d.Reason = fmt.Sprintf("the addresses of %s are all protected (%s); nothing to block",
				procName(target), joinAddrs(protected))
		case kind == TargetRiskProcess || target.ID == rp.ID:
			d.Reason = fmt.Sprintf("risk process %s has no traffic of its own and is its own main process; nothing to block",
				procName(rp))
		default:
			d.Reason = fmt.Sprintf("neither risk process %s nor its main process %s has associated addresses; nothing to block",
				procName(rp), procName(target))
		}
		if main.Incomplete && kind == TargetMainProcess {
			d.Reason += " (lineage above " + procName(target) + " is not known)"
		}
		d.Target = kind
		return d
	}
	// Already held by an active block for the same pair: nothing new.
	for _, b := range c.ledger.Blocks() {
		if b.Target == target.ID && b.Risk == rp.ID && subset(allowed, b.Addrs) {
			d.Target = kind
			d.Block = b.ID
			d.Addrs = addrStrings(b.Addrs)
			d.Reason = fmt.Sprintf("already blocked by %s", b.ID)
			return d
		}
	}
	c.seq++
	b := enforce.Block{
		ID:         "pw-" + strconv.Itoa(target.ID.PID) + "-" + strconv.FormatUint(c.seq, 10),
		Addrs:      allowed,
		Target:     target.ID,
		TargetKind: kind,
		Risk:       rp.ID,
		Created:    r.Time,
	}
	if c.timeout > 0 {
		b.Expires = r.Time.Add(c.timeout)
	}
	switch kind {
	case TargetRiskProcess:
		d.Reason = fmt.Sprintf("risk process %s has traffic of its own; blocked its addresses", procName(rp))
	default:
		d.Reason = fmt.Sprintf("risk process has no traffic of its own; blocked the addresses of its main process %s", procName(target))
		if c.scope == ScopeDescendants {
			d.Reason += " and its descendants"
		}
	}
	if len(protected) > 0 {
		d.Reason += fmt.Sprintf(" (protected, not blocked: %s)", joinAddrs(protected))
	}
	b.Reason = d.Reason
	d.Action = ActionBlock
	d.Target = kind
	d.Addrs = addrStrings(allowed)
	d.Block = b.ID
	d.block = &b
	return d
}

func (c *Containment) mainAddrs(id source.ProcID) []netip.Addr {
	if c.scope != ScopeDescendants {
		return c.assoc.Addrs(id)
	}
	var all []netip.Addr
	for _, s := range c.tree.SubtreeIDs(id) {
		all = append(all, c.assoc.Addrs(s)...)
	}
	return enforce.SortAddrs(all)
}

func (c *Containment) lookup(id source.ProcID, guid string) (proctree.Process, bool) {
	if guid != "" {
		if p, ok := c.tree.GetGUID(guid); ok {
			return p, true
		}
	}
	return c.tree.Get(id)
}

// TargetDestination is the target kind of a block the rule engine asked
// for: the destinations a process was denied, not all its addresses.
const TargetDestination = "destination"

// PlanDestinations decides a block of specific destinations of a process
// (a rule-engine denial of its connection), leaving out protected
// addresses. Like Plan, nothing changes until Commit.
func (c *Containment) PlanDestinations(now time.Time, proc source.ProcID, addrs []netip.Addr, reason string) Decision {
	d := Decision{Time: now, Action: ActionNone, RiskPID: proc.PID, TargetPID: proc.PID, Target: TargetDestination,
		Addrs: []string{}, Enforcer: c.enforcer, Report: reason}
	p, known := c.tree.Get(proc)
	if known {
		proc = p.ID
		d.RiskStart, d.TargetStart = p.KnownStart(), p.KnownStart()
	}
	allowed, protected := c.protected.Split(addrs)
	allowed = enforce.SortAddrs(allowed)
	if len(allowed) == 0 {
		d.Reason = fmt.Sprintf("denied destination(s) %s are protected; nothing to block", joinAddrs(protected))
		return d
	}
	for _, b := range c.ledger.Blocks() {
		if b.TargetKind == TargetDestination && b.Target == proc && subset(allowed, b.Addrs) {
			d.Block, d.Addrs = b.ID, addrStrings(b.Addrs)
			d.Reason = "already blocked by " + b.ID
			return d
		}
	}
	c.seq++
	name := "pid " + strconv.Itoa(proc.PID)
	if known {
		name = procName(p)
	}
	b := enforce.Block{
		ID:         "pw-" + strconv.Itoa(proc.PID) + "-" + strconv.FormatUint(c.seq, 10),
		Addrs:      allowed,
		Target:     proc,
		TargetKind: TargetDestination,
		Risk:       proc,
		Created:    now,
		Reason:     fmt.Sprintf("rule engine denied %s's connection; blocked the destination", name),
	}
	if c.timeout > 0 {
		b.Expires = now.Add(c.timeout)
	}
	d.Action, d.Reason, d.Addrs, d.Block, d.block = ActionBlock, b.Reason, addrStrings(allowed), b.ID, &b
	return d
}

// Commit records a block decision in the ledger once the enforcer has
// installed it.
func (c *Containment) Commit(d Decision) error {
	if d.block == nil {
		return nil
	}
	_, err := c.ledger.Add(*d.block)
	return err
}

// Assess releases every active block whose target or risk process the
// assessment names, when it says safe. It returns one "release" record per
// block (with the addresses no longer blocked after it), or one "none"
// record saying why nothing was released. The blocks are removed from the
// ledger; the caller releases them in the enforcer with the Block IDs.
func (c *Containment) Assess(a Assessment) []Decision {
	p, known := c.lookup(a.Process, a.GUID)
	name := "pid " + strconv.Itoa(a.Process.PID)
	id := a.Process
	if known {
		name, id = procName(p), p.ID
	}
	none := Decision{Time: a.Time, Action: ActionNone, TargetPID: a.Process.PID, Addrs: []string{},
		Enforcer: c.enforcer, Report: a.Reason}
	if known {
		none.TargetStart = p.KnownStart()
	}
	if !a.Safe {
		none.Reason = name + " assessed unsafe; its blocks stay"
		return []Decision{none}
	}
	var out []Decision
	for _, b := range c.ledger.Blocks() {
		if !sameProc(b.Target, id, known) && !sameProc(b.Risk, id, known) {
			continue
		}
		freed, _, err := c.ledger.Remove(b.ID)
		if err != nil {
			continue
		}
		tname := name
		if b.Target != id {
			if tp, ok := c.tree.Get(b.Target); ok {
				tname = procName(tp)
			} else {
				tname = "pid " + strconv.Itoa(b.Target.PID)
			}
		}
		d := Decision{
			Time:      a.Time,
			Action:    ActionRelease,
			TargetPID: b.Target.PID,
			Target:    b.TargetKind,
			Addrs:     addrStrings(enforce.SortAddrs(freed)),
			Reason:    name + " assessed safe",
			Enforcer:  c.enforcer,
			Block:     b.ID,
			Report:    a.Reason,
		}
		if tname != name {
			d.Reason += "; released the block on " + tname
		}
		if tp, ok := c.tree.Get(b.Target); ok {
			d.TargetStart = tp.KnownStart()
		}
		if kept := len(b.Addrs) - len(freed); kept > 0 {
			d.Reason += fmt.Sprintf(" (%d address(es) stay blocked by other blocks)", kept)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		none.Reason = name + " assessed safe; no active block to release"
		return []Decision{none}
	}
	return out
}

// Release removes one active block by ID (a manual release) and returns its
// release record, with the addresses no longer blocked after it.
func (c *Containment) Release(id string, now time.Time, reason string) (Decision, error) {
	freed, b, err := c.ledger.Remove(id)
	if err != nil {
		return Decision{}, err
	}
	if reason == "" {
		reason = "released by request"
	}
	d := Decision{
		Time: now, Action: ActionRelease, TargetPID: b.Target.PID, Target: b.TargetKind,
		Addrs: addrStrings(enforce.SortAddrs(freed)), Reason: reason, Enforcer: c.enforcer, Block: b.ID,
	}
	if tp, ok := c.tree.Get(b.Target); ok {
		d.TargetStart = tp.KnownStart()
	}
	return d, nil
}

// Expire removes blocks whose timeout passed at now and returns their
// release records.
func (c *Containment) Expire(now time.Time) []Decision {
	var out []Decision
	for _, id := range c.ledger.Expired(now) {
		freed, b, err := c.ledger.Remove(id)
		if err != nil {
			continue
		}
		out = append(out, Decision{
			Time: now, Action: ActionRelease, TargetPID: b.Target.PID, Target: b.TargetKind,
			Addrs: addrStrings(enforce.SortAddrs(freed)), Reason: "block " + b.ID + " timed out",
			Enforcer: c.enforcer, Block: b.ID,
		})
	}
	return out
}

// sameProc matches a block's recorded identity against an assessed one:
// exactly when the assessed process was resolved, else by pid.
func sameProc(blockID, id source.ProcID, exact bool) bool {
	if blockID == (source.ProcID{}) {
		return false
	}
	if exact || id.Start != 0 {
		return blockID == id
	}
	return blockID.PID == id.PID
}

func subset(a, b []netip.Addr) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearchFunc(b, x, func(e, t netip.Addr) int { return e.Compare(t) }); !ok {
			return false
		}
	}
	return true
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func joinAddrs(as []netip.Addr) string {
	return strings.Join(addrStrings(enforce.SortAddrs(slices.Clone(as))), ", ")
}
