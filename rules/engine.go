package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procwall/procwall/source"
)

// Engine judges requests against the active bundle, the user's remembered
// decisions and, for what no rule decides, a [Decider]. It is safe for
// concurrent use; [Engine.Load] swaps the active bundle atomically, so
// requests being judged during a swap see either the old or the new one.
type Engine struct {
	cur        atomic.Pointer[compiled]
	digests    *DigestCache
	verifiers  []Verifier
	user       *UserRules
	decider    Decider
	scorer     RiskScorer
	askTimeout time.Duration
	defAction  Action
	record     func(Record)
	logger     *slog.Logger
	userNames  sync.Map // uid → name
	procs      procMemo
}

// procKey names the image a known process runs.
type procKey struct {
	pid   int
	start uint64
	exe   string
}

// procMemo remembers, per process identity and executable path, the file
// the process runs, so that events of a running process need no stat. A
// running image cannot change under the process (a replaced file is a new
// inode; the process keeps the old one), so the memo stays right until
// the process execs, which makes a new key.
type procMemo struct {
	mu sync.RWMutex
	m  map[procKey]*File
}

const procMemoMax = 1 << 16

func (p *procMemo) get(k procKey) *File {
	p.mu.RLock()
	f := p.m[k]
	p.mu.RUnlock()
	return f
}

func (p *procMemo) put(k procKey, f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[procKey]*File{}
	}
	if len(p.m) >= procMemoMax {
		for k := range p.m {
			delete(p.m, k)
			break
		}
	}
	p.m[k] = f
}

// Option configures an Engine.
type Option func(*Engine)

// WithVerifiers sets the signature verifiers, consulted in order; every
// signer any of them reports is a signer of the file.
func WithVerifiers(v ...Verifier) Option { return func(e *Engine) { e.verifiers = v } }

// WithDecider sets who is asked about requests no rule decides.
func WithDecider(d Decider) Option { return func(e *Engine) { e.decider = d } }

// WithRiskScorer sets the risk scorer used before asking (default
// [ExeRisk]).
func WithRiskScorer(s RiskScorer) Option { return func(e *Engine) { e.scorer = s } }

// WithAskTimeout sets how long the decider has (default 15s).
func WithAskTimeout(d time.Duration) Option { return func(e *Engine) { e.askTimeout = d } }

// WithDefaultAction sets the action taken when nobody decides: no
// decider, a decider error or a timeout (default Allow, as OpenSnitch).
func WithDefaultAction(a Action) Option { return func(e *Engine) { e.defAction = a } }

// WithUserRules sets the store of remembered decisions (default: an
// in-memory store).
func WithUserRules(u *UserRules) Option { return func(e *Engine) { e.user = u } }

// WithDigestCache sets the digest cache (default: a new one).
func WithDigestCache(c *DigestCache) Option { return func(e *Engine) { e.digests = c } }

// WithRecorder sets a hook called with the decision record of every
// [Engine.Judge]. It is called synchronously and must not block.
func WithRecorder(fn func(Record)) Option { return func(e *Engine) { e.record = fn } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.logger = l } }

// ErrNoBundle is returned by operations that need an active bundle before
// one was loaded.
var ErrNoBundle = errors.New("no rule bundle loaded")

// New returns an engine with no bundle: until [Engine.Load], every request
// is unmatched (and goes to the decider).
func New(opts ...Option) *Engine {
	e := &Engine{askTimeout: 15 * time.Second, defAction: Allow}
	for _, o := range opts {
		o(e)
	}
	if e.digests == nil {
		e.digests = NewDigestCache(0)
	}
	if e.user == nil {
		e.user = NewUserRules("")
	}
	if e.scorer == nil {
		e.scorer = ExeRisk{}
	}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	e.cur.Store(compile(&Bundle{Format: FormatVersion, Version: ""}))
	return e
}

// Load validates and compiles b and makes it the active bundle. On error
// the active bundle stays in force.
func (e *Engine) Load(b *Bundle) error {
	if err := b.Validate(); err != nil {
		return err
	}
	e.cur.Store(compile(b))
	return nil
}

// Version returns the active bundle's version ("" before any Load).
func (e *Engine) Version() string { return e.cur.Load().version }

// RuleCount returns the number of rules in the active bundle.
func (e *Engine) RuleCount() int { return e.cur.Load().ruleCount }

// UserRules returns the engine's store of remembered decisions.
func (e *Engine) UserRules() *UserRules { return e.user }

// Digests returns the engine's digest cache.
func (e *Engine) Digests() *DigestCache { return e.digests }

// WatchedPaths returns the paths a file-access source should guard:
// the self-protection paths of the active bundle, then its persistence
// locations. A trailing "/" names a directory.
func (e *Engine) WatchedPaths() (self, persistence []string) {
	c := e.cur.Load()
	if c.self != nil {
		for k := range c.self.exact {
			self = append(self, k)
		}
		self = append(self, c.self.prefix...)
		for _, g := range c.self.glob {
			self = append(self, g.pat)
		}
	}
	return self, append([]string(nil), c.persistence...)
}

// Classify returns the monitor-point type of req under the active bundle.
func (e *Engine) Classify(req *Request) Point { return e.cur.Load().classify(req) }

func (c *compiled) classify(req *Request) Point {
	if req.Point == PointGeneral || req.Point == PointSelf {
		return req.Point
	}
	if c.self != nil && req.Path != "" && c.self.has(req.Path) {
		return PointSelf
	}
	return PointGeneral
}

// facts computes what rules ask about a request, lazily and at most once.
type facts struct {
	e   *Engine
	req *Request

	file     *File
	fileErr  error
	fileDone bool

	signers  []string
	signDone bool

	cmdline string
	cmdDone bool
	user    string
	userOK  bool
	errs    []error
}

func (f *facts) getFile() *File {
	if !f.fileDone {
		f.fileDone = true
		f.file, f.fileErr = f.e.exeFile(f.req)
		if f.fileErr != nil {
			f.errs = append(f.errs, f.fileErr)
		}
	}
	return f.file
}

func (f *facts) getSigners() []string {
	if !f.signDone {
		f.signDone = true
		if file := f.getFile(); file != nil {
			var errs []error
			f.signers, errs = f.e.signersOf(file)
			f.errs = append(f.errs, errs...)
		}
	}
	return f.signers
}

func (f *facts) getCmdline() string {
	if !f.cmdDone {
		f.cmdDone = true
		f.cmdline = strings.Join(f.req.Argv, " ")
	}
	return f.cmdline
}

func (f *facts) userName() (string, bool) {
	if f.req.User != "" {
		return f.req.User, true
	}
	if !f.req.HasUID {
		return "", false
	}
	if !f.userOK {
		f.userOK = true
		if v, ok := f.e.userNames.Load(f.req.UID); ok {
			f.user = v.(string)
		} else if u, err := user.LookupId(strconv.Itoa(f.req.UID)); err == nil {
			f.user = u.Username
			f.e.userNames.Store(f.req.UID, u.Username)
		} else {
			f.e.userNames.Store(f.req.UID, "")
		}
	}
	return f.user, f.user != ""
}

// exeFile returns the digests of req's executable. Events of a process
// whose identity is known (pid and start) use the memo of the image it
// runs; an exec, or an unknown identity, looks the file up (stat).
func (e *Engine) exeFile(req *Request) (*File, error) {
	if req.Exe == "" {
		return nil, errors.New("no executable path")
	}
	memo := req.Op != OpExec && req.PID > 0 && req.Start != 0
	var k procKey
	if memo {
		k = procKey{req.PID, req.Start, req.Exe}
		if f := e.procs.get(k); f != nil {
			return f, nil
		}
	}
	f, err := e.digests.Get(req.Exe, req.ExeFile)
	if err == nil && memo {
		e.procs.put(k, f)
	}
	return f, err
}

// signersOf runs the verifiers on file once and caches the result in it.
func (e *Engine) signersOf(file *File) ([]string, []error) {
	file.signMu.Lock()
	defer file.signMu.Unlock()
	if !file.signed {
		file.signed = true
		for _, v := range e.verifiers {
			s, err := v.Verify(file)
			if err != nil {
				file.signErrs = append(file.signErrs, fmt.Errorf("%s: %w", v.Name(), err))
			}
			if s != "" {
				file.signers = append(file.signers, s)
			}
		}
	}
	return file.signers, file.signErrs
}

func (r *rule) matches(f *facts) bool {
	req := f.req
	if r.exe != nil && !r.exe.has(req.Exe) {
		return false
	}
	if r.name != nil && !r.name.has(baseName(req.Exe)) {
		return false
	}
	if r.target != nil && (req.Path == "" || !r.target.has(req.Path)) {
		return false
	}
	if r.parentPath != nil || r.parentName != nil {
		ok := r.parentPath != nil && r.parentPath.has(req.ParentExe) ||
			r.parentName != nil && r.parentName.has(baseName(req.ParentExe))
		if !ok || req.ParentExe == "" {
			return false
		}
	}
	if r.dst != nil && (!req.Dst.IsValid() || !matchPrefixes(r.dst, req.Dst.Addr().Unmap())) {
		return false
	}
	if r.ports != nil && (!req.Dst.IsValid() || !matchPorts(r.ports, req.Dst.Port())) {
		return false
	}
	if r.users != nil {
		ok := false
		if req.HasUID {
			_, ok = r.users.uids[req.UID]
		}
		if !ok && len(r.users.names) > 0 {
			if n, known := f.userName(); known {
				_, ok = r.users.names[n]
			}
		}
		if !ok {
			return false
		}
	}
	if r.cmdline != nil && !r.cmdline.has(f.getCmdline()) {
		return false
	}
	if r.md5 != nil || r.sha != nil {
		file := f.getFile()
		if file == nil {
			return false
		}
		if r.md5 != nil && !r.md5.has(file.MD5) {
			return false
		}
		if r.sha != nil && !r.sha.has(file.SHA256) {
			return false
		}
	}
	if r.signer != nil && !r.signer.hasAny(f.getSigners()) {
		return false
	}
	return true
}

// lookup returns the position of the first matching rule, or len(rules).
func (t *table) lookup(f *facts) int {
	best := int32(len(t.rules))
	check := func(list []int32) {
		for _, i := range list {
			if i >= best {
				return
			}
			if t.rules[i].matches(f) {
				best = i
				return
			}
		}
	}
	req := f.req
	if req.Exe != "" {
		check(t.byExe[req.Exe])
		if t.exeDir != nil {
			parents(req.Exe, func(d string) bool { check(t.exeDir[d]); return true })
		}
		check(t.byName[baseName(req.Exe)])
	}
	if req.Path != "" {
		check(t.byTarget[req.Path])
		if t.targetDir != nil {
			parents(req.Path, func(d string) bool { check(t.targetDir[d]); return true })
		}
	}
	if t.byDst != nil && req.Dst.IsValid() {
		a := req.Dst.Addr().Unmap()
		bits := t.dstBits4
		if a.Is6() {
			bits = t.dstBits6
		}
		for _, n := range bits {
			if p, err := a.Prefix(n); err == nil {
				check(t.byDst[p])
			}
		}
	}
	if (t.byMD5 != nil || t.bySHA != nil) && req.Exe != "" {
		if file := f.getFile(); file != nil {
			check(t.byMD5[file.MD5])
			check(t.bySHA[file.SHA256])
		}
	}
	if t.bySigner != nil && req.Exe != "" {
		for _, s := range f.getSigners() {
			check(t.bySigner[s])
		}
	}
	check(t.scan)
	return int(best)
}

// linear is the plain first-match scan of the same rules, for comparison.
func (t *table) linear(f *facts) int {
	for i, r := range t.rules {
		if r.matches(f) {
			return i
		}
	}
	return len(t.rules)
}

// Decide judges req by the rules alone: the active bundle's rules of the
// request's monitor-point type and operation in execution order, with the
// user's remembered decisions at the user layer's place; the first match
// wins. Without a match the verdict is Ask. Decide never blocks on a
// person; it may hash the executable (once per file content).
func (e *Engine) Decide(req *Request) Verdict {
	return e.decide(req, false)
}

func (e *Engine) decide(req *Request, linear bool) Verdict {
	c := e.cur.Load()
	pt := c.classify(req)
	v := Verdict{Action: Ask, Point: pt}
	if req.Op == OpNone || req.Op >= numOps {
		v.Description = fmt.Sprintf("unknown operation %v", req.Op)
		return v
	}
	t := c.tables[pt][req.Op]
	f := facts{e: e, req: req}
	var i int
	if linear {
		i = t.linear(&f)
	} else {
		i = t.lookup(&f)
	}
	if t.userPos >= 0 && (i == len(t.rules) || t.layerPos[t.rules[i].layer] > t.userPos) {
		if ur, ok := e.user.lookup(req.Exe, time.Now); ok {
			v.Action, v.Rule, v.By = ur.Action, "user:"+ur.ID, "user"
			v.Description = "remembered decision: " + ur.Action.String() + " " + ur.Exe
			return v
		}
	}
	if i < len(t.rules) {
		r := t.rules[i]
		v.Action, v.Rule, v.Description, v.By = r.action, r.id, r.desc, "rule"
		if r.action == Ask {
			v.By = ""
		}
		return v
	}
	v.Description = "no rule matched"
	if len(f.errs) > 0 {
		v.Description += " (" + errors.Join(f.errs...).Error() + ")"
		v.Description = strings.ReplaceAll(v.Description, "\n", "; ")
	}
	return v
}

// Question is what a [Decider] is asked.
type Question struct {
	Request Request
	Verdict Verdict // Action Ask, with Point, Level and Reasons filled
}

// Answer is a decider's choice.
type Answer struct {
	Action Action // Allow or Deny
	// Remember says how long the choice applies to this executable:
	// Once (this event only), UntilRestart, For (with Duration) or Always.
	Remember Remember
	Duration time.Duration
}

// Decider decides requests no rule decides, typically by asking a person.
// Decide must return promptly once ctx is done; the engine applies its
// default action when it does not answer in time.
type Decider interface {
	Decide(ctx context.Context, q Question) (Answer, error)
}

// DeciderFunc adapts a function to [Decider].
type DeciderFunc func(ctx context.Context, q Question) (Answer, error)

// Decide implements Decider.
func (f DeciderFunc) Decide(ctx context.Context, q Question) (Answer, error) { return f(ctx, q) }

// Judge decides req completely: by the rules ([Engine.Decide]); failing
// that, by the decider after scoring the executable's risk, within the ask
// timeout, with the default action when nobody answers. A remembered
// answer becomes a user rule. The verdict's record goes to the recorder.
func (e *Engine) Judge(ctx context.Context, req *Request) Verdict {
	v := e.Decide(req)
	if v.Action == Ask {
		v = e.ask(ctx, req, v)
	}
	if e.record != nil {
		e.record(NewRecord(req, v, e.Version()))
	}
	return v
}

func (e *Engine) ask(ctx context.Context, req *Request, v Verdict) Verdict {
	var file *File
	var signers []string
	if req.Exe != "" {
		if f, err := e.exeFile(req); err == nil {
			file = f
			signers, _ = e.signersOf(f)
		}
	}
	v.Level, v.Reasons = e.scorer.Score(req, file, signers)
	if e.decider == nil {
		v.Action, v.By = e.defAction, "default"
		v.Description += "; no decider: default " + e.defAction.String()
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, e.askTimeout)
	defer cancel()
	type result struct {
		a   Answer
		err error
	}
	ch := make(chan result, 1)
	q := Question{Request: *req, Verdict: v}
	q.Request.ExeFile = nil
	go func() {
		a, err := e.decider.Decide(ctx, q)
		ch <- result{a, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err == nil && res.a.Action != Allow && res.a.Action != Deny {
		res.err = fmt.Errorf("decider answered %v, want allow or deny", res.a.Action)
	}
	if res.err != nil {
		v.Action, v.By = e.defAction, "default"
		if errors.Is(res.err, context.DeadlineExceeded) {
			v.By = "timeout"
		}
		v.Description += fmt.Sprintf("; decider: %v: default %v", res.err, e.defAction)
		return v
	}
	v.Action, v.By = res.a.Action, "decider"
	v.Description = "decided by " + v.By
	if res.a.Remember != Once && req.Exe != "" {
		ur, err := e.user.Add(UserRule{
			Exe: req.Exe, Action: res.a.Action,
		}, res.a.Remember, res.a.Duration, time.Now())
		if err != nil {
			e.logger.Warn("rules: cannot remember decision", "exe", req.Exe, "err", err)
			v.Description += "; not remembered: " + err.Error()
		} else {
			v.Rule = "user:" + ur.ID
			v.Description += ", remembered " + res.a.Remember.String()
		}
	}
	return v
}

// RiskScorer estimates the risk of a request's executable before a person
// is asked. file is nil when the executable could not be read; signers are
// what the verifiers found.
type RiskScorer interface {
	Score(req *Request, file *File, signers []string) (source.Level, []string)
}

// ExeRisk is the default [RiskScorer]: points for an executable in a
// world-writable or memory location (/tmp, /var/tmp, /dev/shm, /run/user),
// no signer (not from a package, not signed), an unreadable executable,
// recently changed (Recent, default 24h), a deleted executable, and a
// parent that is a download tool (curl, wget, nc, ...).
type ExeRisk struct {
	Recent time.Duration
	Now    func() time.Time // for tests; default time.Now
}

// Score implements RiskScorer.
func (s ExeRisk) Score(req *Request, file *File, signers []string) (source.Level, []string) {
	var reasons []string
	pts := 0
	add := func(n int, why string) { pts += n; reasons = append(reasons, why) }
	for _, d := range []string{"/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/"} {
		if strings.HasPrefix(req.Exe, d) {
			add(3, "runs from "+strings.TrimSuffix(d, "/"))
			break
		}
	}
	if strings.HasSuffix(req.Exe, " (deleted)") {
		add(3, "executable deleted")
	}
	if file == nil {
		add(2, "executable unreadable")
	} else {
		if len(signers) == 0 {
			add(2, "unsigned, not from a package")
		}
		recent := s.Recent
		if recent == 0 {
			recent = 24 * time.Hour
		}
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		if age := now().Sub(time.Unix(0, max(file.Key.Mtime, file.Key.Ctime))); age < recent {
			add(1, "changed "+age.Truncate(time.Second).String()+" ago")
		}
	}
	switch baseName(req.ParentExe) {
	case "curl", "wget", "nc", "ncat", "socat", "ftp", "tftp", "scp", "sftp":
		add(2, "started by network tool "+baseName(req.ParentExe))
	}
	switch {
	case pts >= 6:
		return source.LevelCritical, reasons
	case pts >= 4:
		return source.LevelHigh, reasons
	case pts >= 2:
		return source.LevelMedium, reasons
	case pts >= 1:
		return source.LevelLow, reasons
	}
	return source.LevelNone, reasons
}
