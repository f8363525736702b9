package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/procwall/procwall"
	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/proctree"
	"github.com/procwall/procwall/risk"
	"github.com/procwall/procwall/rules"
	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/fanotify"
	"github.com/procwall/procwall/source/procfs"
	"github.com/procwall/procwall/source/replay"
)

func init() {
	register(&command{
		name:    "run",
		summary: "real-time protection on this host: live sources, an enforcer, a report socket",
		run:     runRun,
	})
}

const defaultSocket = "/run/procwall/procwall.sock"

func runRun(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "run", "[-sources auto|procconn,ftrace,sockdiag,nflog] [-backend nft|iptables|dryrun] [-rules FILE|URL] [-netns NAME] [-socket PATH] [-o text|json] [-metrics ADDR] [-record FILE] [-duration D]")
	ef := addEnforcerFlags(fs)
	sources := fs.String("sources", "auto", "event sources: auto (procconn, ftrace and sockdiag where the kernel has them) or a comma-separated list")
	socket := fs.String("socket", defaultSocket, "Unix socket accepting risk and assess reports (JSON lines, spec/events.md)")
	socketMode := fs.String("socket-mode", "0600", "permission bits of the report socket (0660 with -socket-group lets a group send)")
	socketGroup := fs.Int("socket-group", -1, "group id to own the report socket (-1: keep)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)")
	record := fs.String("record", "", "write every event applied, in the native trace format, to this file (replayable)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	verbose := fs.Bool("v", false, "debug logging")
	boundary := addBoundaryFlag(fs)
	analysis := addAnalysisFlags(fs)
	rulesLoc := fs.String("rules", "", "rule bundle (file or http(s) URL, polled): judge exec, connect and file events (seed 001)")
	var rulesKeys keyFiles
	fs.Var(&rulesKeys, "rules-key", "trusted public key for the rule bundle (repeatable): bundles must be signed by one of them")
	rulesEvery := fs.Duration("rules-interval", 30*time.Second, "rule bundle poll interval")
	rulesUnsigned := fs.Bool("rules-unsigned", false, "accept an unsigned rule bundle (without -rules-key only)")
	rulesCache := fs.String("rules-cache", "", "directory keeping the last good rule bundle, used when the bundle cannot be fetched or is bad at start (default: "+defaultRulesCache+" for an http(s) -rules, none for a file; \"-\": none)")
	guard := fs.Bool("guard", false, "enforce the rule bundle in the kernel with fanotify permission events: executions under -guard-exec, opens of -guard-open (default: the bundle's self-protection paths)")
	var guardExec, guardOpen keyFiles
	fs.Var(&guardExec, "guard-exec", "with -guard: judge executions of this file or directory's files (repeatable)")
	fs.Var(&guardOpen, "guard-open", "with -guard: judge opens of this path (repeatable)")
	ask := fs.Bool("ask", false, "with -guard: ask on the terminal about what no rule decides (the process waits)")
	guardFailOpen := fs.Bool("guard-fail-open", false, "with -guard: allow when judging times out (default: deny)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	boundaries, err := parseBoundaries(*boundary)
	if err != nil {
		return err
	}
	var mode uint32
	if _, err := fmt.Sscanf(*socketMode, "%o", &mode); err != nil || mode > 0o777 {
		return usagef("-socket-mode must be octal permission bits such as 0600, have %q", *socketMode)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))

	// The rule server is never blocked.
	if u, err := url.Parse(*rulesLoc); err == nil && u.Host != "" {
		if ef.protect != "" {
			ef.protect += ","
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			ef.protect += a.String()
		} else if addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host); err == nil {
			for i, a := range addrs {
				if i > 0 {
					ef.protect += ","
				}
				ef.protect += a.Unmap().String()
			}
		} else {
			return fmt.Errorf("-rules: resolve the rule server %s (to protect it): %w", host, err)
		}
	}
	if *rulesLoc == "" && (*guard || *ask || len(guardExec)+len(guardOpen) > 0) {
		return usagef("-guard, -guard-exec, -guard-open and -ask need -rules")
	}
	if *rulesLoc != "" && len(rulesKeys) == 0 && !*rulesUnsigned {
		return usagef("-rules needs -rules-key (bundles must be signed by a key you trust), or -rules-unsigned to accept unsigned bundles")
	}
	if len(rulesKeys) > 0 && *rulesUnsigned {
		return usagef("-rules-unsigned and -rules-key exclude each other")
	}
	// Decision records to stdout (rule verdicts from the guard too).
	var outMu sync.Mutex
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	hook := func(r procwall.Record) {
		outMu.Lock()
		defer outMu.Unlock()
		if ef.output == "json" {
			_ = enc.Encode(r)
			return
		}
		if d, ok := r.(*risk.Decision); ok {
			fmt.Fprintf(env.stdout, "%s %-7s risk %d target %d (%s) %s: %s\n", d.Time.UTC().Format(time.RFC3339),
				d.Action, d.RiskPID, d.TargetPID, d.Target, strings.Join(d.Addrs, ","), d.Reason)
			return
		}
		b, _ := json.Marshal(r)
		fmt.Fprintln(env.stdout, string(b))
	}
	var eng *rules.Engine
	var updater *rules.Updater
	if *rulesLoc != "" {
		ring, err := loadKeyring(rulesKeys)
		if err != nil {
			return err
		}
		verifiers := []rules.Verifier{rules.NewEd25519(ring)}
		if deb := rules.NewDebian("/"); deb.Load() == nil {
			verifiers = append(verifiers, deb)
		}
		ropts := []rules.Option{rules.WithVerifiers(verifiers...), rules.WithLogger(log),
			rules.WithRecorder(func(r rules.Record) { hook(&r) })}
		if *ask {
			ropts = append(ropts, rules.WithDecider(rules.NewTerminal(env.stdin, env.stderr)))
		}
		eng = rules.New(ropts...)
		updater = &rules.Updater{Engine: eng, Keys: ring, AllowUnsigned: *rulesUnsigned && len(rulesKeys) == 0, Logger: log,
			CacheDir: rulesCacheDir(*rulesCache, *rulesLoc)}
		_, fromCache, err := updater.UpdateOrCache(ctx, bundleFetcher(*rulesLoc))
		switch {
		case fromCache:
			log.Warn("rule bundle unavailable; using the last good one from the cache", "version", eng.Version(), "cache", updater.CacheDir, "err", err)
		case err != nil:
			return fmt.Errorf("-rules: %w", err)
		default:
			log.Info("rule bundle active", "version", eng.Version(), "from", *rulesLoc)
		}
	}
	enf, err := ef.open()
	if err != nil {
		return err
	}
	defer func() {
		if enf.cleanup != nil {
			enf.cleanup()
		}
	}()
	nsFile, err := netnsFd(ef.netns)
	if err != nil {
		enf.Close()
		return err
	}
	nsFd := -1
	if nsFile != nil {
		defer nsFile.Close()
		nsFd = int(nsFile.Fd())
	}
	prot, _ := ef.protected()
	srcs, err := openSources(*sources, nsFd, log)
	if err != nil {
		enf.Close()
		return err
	}
	pfs, err := procfs.NewFS(procfs.DefaultRoot)
	if err != nil {
		enf.Close()
		return err
	}

	var recW *replay.Writer
	var recF *os.File
	if *record != "" {
		if recF, err = os.Create(*record); err != nil {
			enf.Close()
			return err
		}
		defer recF.Close()
		recW = replay.NewWriter(recF)
	}
	var recMu sync.Mutex
	opts := []procwall.Option{
		procwall.WithSources(srcs...),
		procwall.WithEnforcer(enf),
		procwall.WithProtected(prot),
		procwall.WithRecordHook(hook),
		procwall.WithLogger(log),
		procwall.WithResync(func() ([]proctree.Observed, error) { return observeProcs(pfs) }),
	}
	if boundaries != nil {
		opts = append(opts, procwall.WithTreeOptions(proctree.WithBoundaries(boundaries...)))
	}
	opts = append(opts, analysis.options()...)
	if eng != nil {
		opts = append(opts, procwall.WithRules(eng))
	}
	if recW != nil {
		opts = append(opts, procwall.WithEventHook(func(_ string, ev *source.Event) {
			recMu.Lock()
			defer recMu.Unlock()
			if _, err := recW.Write(ev); err == nil {
				_ = recW.Flush()
			}
		}))
	}
	p, err := procwall.New(opts...)
	if err != nil {
		for _, s := range srcs {
			s.Close()
		}
		enf.Close()
		return err
	}
	// Seed the tree with what runs now: lineage of processes started
	// before procwall.
	if obs, err := observeProcs(pfs); err != nil {
		log.Warn("initial /proc snapshot failed", "err", err)
	} else {
		d := p.Seed(time.Now(), obs)
		log.Info("seeded the process tree from /proc", "processes", len(d.Added))
		if recW != nil {
			recordSeed(recW, &recMu, pfs)
		}
	}

	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv, err := procwall.ListenReports(*socket, procwall.WithSocketMode(os.FileMode(mode)),
		procwall.WithSocketGroup(*socketGroup), procwall.WithReportLogger(log))
	if err != nil {
		for _, s := range srcs {
			s.Close()
		}
		enf.Close()
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, p); err != nil {
			log.Error("report socket", "err", err)
		}
	}()
	if updater != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = updater.Poll(ctx, bundleFetcher(*rulesLoc), *rulesEvery)
		}()
	}
	if *guard {
		opens := []string(guardOpen)
		if len(opens) == 0 {
			opens, _ = eng.WatchedPaths()
		}
		g, err := fanotify.Open(fanotify.Config{Exec: guardExec, Open: opens, FailOpen: *guardFailOpen, Logger: log})
		if err != nil {
			cancel()
			srv.Close()
			wg.Wait()
			for _, s := range srcs {
				s.Close()
			}
			enf.Close()
			return fmt.Errorf("-guard: %w", err)
		}
		stopGuard := context.AfterFunc(ctx, func() { g.Close() })
		defer stopGuard()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Serve(fanotify.EngineJudge(eng)); err != nil && !errors.Is(err, os.ErrClosed) {
				log.Error("fanotify guard", "err", err)
			}
		}()
		log.Info("guarding with fanotify", "exec", []string(guardExec), "open", opens)
	}
	var hs *http.Server
	if *metrics != "" {
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			cancel()
			srv.Close()
			wg.Wait()
			for _, s := range srcs {
				s.Close()
			}
			enf.Close()
			return fmt.Errorf("-metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", procwall.MetricsHandler(p))
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", "err", err)
			}
		}()
		log.Info("serving metrics", "addr", ln.Addr().String())
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name()
	}
	log.Info("procwall running", "sources", strings.Join(names, ","), "enforcer", enf.Name(),
		"netns", ef.netns, "socket", srv.Path(), "active_blocks", len(p.ActiveBlocks()))
	wg.Add(1)
	go func() {
		defer wg.Done()
		statusLoop(ctx, p, log)
	}()

	runErr := p.Run(ctx)
	cancel()
	if hs != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hs.Shutdown(sctx)
		scancel()
	}
	srv.Close()
	wg.Wait()
	m := p.Metrics()
	log.Info("procwall stopped", "decisions", m.Decisions, "active_blocks", m.ActiveBlock, "lost", m.Lost, "resyncs", m.Resyncs)
	if recW != nil {
		recMu.Lock()
		_ = recW.Flush()
		recMu.Unlock()
	}
	return runErr
}

// statusLoop logs a status line every 30 seconds.
func statusLoop(ctx context.Context, p *procwall.Protector, log *slog.Logger) {
	tk := time.NewTicker(30 * time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			m := p.Metrics()
			var ev uint64
			for _, n := range m.Events {
				ev += n
			}
			log.Info("status", "events", ev, "live", m.Tree.Live, "associations", m.Assoc.Associations,
				"active_blocks", m.ActiveBlock, "lost", m.Lost)
		}
	}
}

// recordSeed writes the /proc snapshot to the recording as fork+exec
// events, parents first, so that a replay of the recording knows the
// processes that were running before procwall started.
func recordSeed(w *replay.Writer, mu *sync.Mutex, pfs procfs.FS) {
	procs, err := pfs.Processes()
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	now := time.Now().UTC()
	for _, p := range procfs.ParentsFirst(procs) {
		ev := p.Event(now)
		if ev.PPID > 0 {
			f := source.Event{Time: now, Kind: source.KindFork, PID: ev.PID, Start: ev.Start, PPID: ev.PPID}
			_, _ = w.Write(&f)
		}
		_, _ = w.Write(&ev)
	}
	_ = w.Flush()
}

var _ enforce.Enforcer = (*cliEnforcer)(nil)

// defaultRulesCache is where `run` keeps the last good bundle fetched over
// HTTP(S).
const defaultRulesCache = "/var/lib/procwall/rules-cache"

// rulesCacheDir resolves -rules-cache: "-" turns the cache off; empty
// means the default for an http(s) location and none for a file.
func rulesCacheDir(flag, loc string) string {
	switch {
	case flag == "-":
		return ""
	case flag != "":
		return flag
	case strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://"):
		return defaultRulesCache
	}
	return ""
}
