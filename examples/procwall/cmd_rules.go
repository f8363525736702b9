package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/procwall/procwall/rules"
	"github.com/procwall/procwall/source/fanotify"
)

func init() {
	register(&command{
		name:    "rules",
		summary: "validate, serve and sign rule bundles (check|serve|sign)",
		run:     runRules,
	})
}

const rulesSynopsis = `check|serve|sign ...

  procwall rules check [-key PUB]... [-o text|json] BUNDLE...
      validate bundles (plain or signed); with -key, a bundle must be signed by one of the keys
  procwall rules sign -key PRIV [-out FILE] BUNDLE
      sign a bundle (validated first) into a signed envelope
  procwall rules sign -genkey NAME -key PRIV
      make a key pair: PRIV (private) and PRIV.pub (public)
  procwall rules serve [-addr HOST:PORT] DIR
      serve a directory of bundles over HTTP with ETag / If-None-Match
  procwall rules guard -bundle FILE|URL [-key PUB]... [-exec PATH]... [-open PATH]... [-ask] [-o json]
      enforce a bundle with fanotify: judge executions and opens of watched paths
      (root; -ask asks on the terminal about what no rule decides)`

func runRules(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(env.stderr, "usage: procwall rules %s\n", rulesSynopsis)
		return usagef("missing subcommand: check, serve or sign")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(env.stdout, "usage: procwall rules %s\n", rulesSynopsis)
		return nil
	case "check":
		return rulesCheck(env, args[1:])
	case "sign":
		return rulesSign(env, args[1:])
	case "serve":
		return rulesServe(ctx, env, args[1:])
	case "guard":
		return rulesGuard(ctx, env, args[1:])
	}
	return usagef("unknown subcommand %q (want check, serve, sign or guard)", args[0])
}

// keyFiles is a repeatable -key flag.
type keyFiles []string

func (k *keyFiles) String() string     { return strings.Join(*k, ",") }
func (k *keyFiles) Set(s string) error { *k = append(*k, s); return nil }

func loadKeyring(files []string) (rules.Keyring, error) {
	ring := rules.Keyring{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name, pub, err := rules.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		ring[name] = pub
	}
	return ring, nil
}

// checkResult is one line of `rules check -o json`.
type checkResult struct {
	File    string         `json:"file"`
	OK      bool           `json:"ok"`
	Version string         `json:"version,omitempty"`
	Signed  bool           `json:"signed"`
	Key     string         `json:"key,omitempty"`
	Rules   int            `json:"rules"`
	Layers  map[string]int `json:"layers,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func checkBundle(path string, ring rules.Keyring, requireSigned bool) checkResult {
	res := checkResult{File: path}
	data, err := os.ReadFile(path)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	payload, key, err := rules.OpenSigned(data, ring)
	switch {
	case err == nil:
		res.Signed, res.Key = true, key
	case errors.Is(err, rules.ErrUnsigned) && !requireSigned:
		payload = data
	default:
		res.Error = err.Error()
		return res
	}
	b, err := rules.ParseBundle(payload, rules.DirLoader(filepath.Dir(path)))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.OK, res.Version, res.Rules = true, b.Version, len(b.Rules)
	res.Layers = map[string]int{}
	for _, r := range b.Rules {
		l := r.Layer
		if l == "" {
			l = layerOf(&r.Match)
		}
		res.Layers[l]++
	}
	return res
}

func layerOf(m *rules.Match) string {
	switch {
	case len(m.Signer) > 0:
		return rules.LayerSignature
	case len(m.MD5) > 0:
		return rules.LayerMD5
	case len(m.SHA256) > 0:
		return rules.LayerSHA256
	case len(m.Exe)+len(m.Name)+len(m.Cmdline)+len(m.Parent)+len(m.User) > 0:
		return rules.LayerProcess
	case len(m.Dst)+len(m.Port) > 0:
		return rules.LayerDestination
	}
	return rules.LayerTarget
}

func rulesCheck(env *cmdEnv, args []string) error {
	fs := newFlags(env, "rules check", "[-key PUB]... [-o text|json] BUNDLE...")
	var keys keyFiles
	fs.Var(&keys, "key", "trusted public key file (repeatable); with any, bundles must be signed")
	out := fs.String("o", "text", "output: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no bundle given")
	}
	if *out != "text" && *out != "json" {
		return usagef("-o must be text or json, have %q", *out)
	}
	ring, err := loadKeyring(keys)
	if err != nil {
		return err
	}
	bad := 0
	for _, p := range fs.Args() {
		res := checkBundle(p, ring, len(keys) > 0)
		if !res.OK {
			bad++
		}
		if *out == "json" {
			b, _ := json.Marshal(res)
			fmt.Fprintln(env.stdout, string(b))
			continue
		}
		if !res.OK {
			fmt.Fprintf(env.stdout, "%s: INVALID: %s\n", p, res.Error)
			continue
		}
		sig := "unsigned"
		if res.Signed {
			sig = "signed by " + res.Key
		}
		var layers []string
		for _, l := range slices.Sorted(func(yield func(string) bool) {
			for k := range res.Layers {
				if !yield(k) {
					return
				}
			}
		}) {
			layers = append(layers, fmt.Sprintf("%s %d", l, res.Layers[l]))
		}
		fmt.Fprintf(env.stdout, "%s: ok: version %s, %s, %d rules (%s)\n", p, res.Version, sig, res.Rules, strings.Join(layers, ", "))
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d bundles invalid", bad, fs.NArg())
	}
	return nil
}

func rulesSign(env *cmdEnv, args []string) error {
	fs := newFlags(env, "rules sign", "-key PRIV [-out FILE] BUNDLE | -genkey NAME -key PRIV")
	keyFile := fs.String("key", "", "private key file")
	outFile := fs.String("out", "", "write the signed bundle here (default: standard output)")
	genkey := fs.String("genkey", "", "make a new key pair with this name instead of signing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyFile == "" {
		return usagef("-key is required")
	}
	if *genkey != "" {
		if fs.NArg() > 0 {
			return usagef("-genkey takes no bundle")
		}
		pub, priv, err := rules.GenerateKey(*genkey)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(*keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(priv); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(*keyFile+".pub", pub, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "wrote %s and %s.pub (key %q)\n", *keyFile, *keyFile, *genkey)
		return nil
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one bundle, have %d", fs.NArg())
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	name, priv, err := rules.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyFile, err)
	}
	path := fs.Arg(0)
	payload, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b, err := rules.ParseBundle(payload, rules.DirLoader(filepath.Dir(path)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for n, l := range b.Lists {
		if l.Path != "" && l.SHA256 == "" {
			return fmt.Errorf("%s: list %q refers to %q without sha256: a signed bundle must pin it", path, n, l.Path)
		}
	}
	signed, err := rules.Sign(priv, name, payload)
	if err != nil {
		return err
	}
	if *outFile == "" {
		_, err = env.stdout.Write(signed)
		return err
	}
	if err := os.WriteFile(*outFile, signed, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "signed %s (version %s) with key %q into %s\n", path, b.Version, name, *outFile)
	return nil
}

// etagHandler serves files from dir with a strong ETag (SHA-256 of the
// content) and answers a matching If-None-Match with 304.
func etagHandler(dir string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rel := filepath.FromSlash(strings.TrimPrefix(filepath.Clean("/"+r.URL.Path), "/"))
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			log.Info("rules serve: not found", "path", r.URL.Path, "err", err)
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(data)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
		log.Info("rules serve: sent", "path", r.URL.Path, "bytes", len(data), "etag", etag)
	})
}

func rulesServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "rules serve", "[-addr HOST:PORT] DIR")
	addr := fs.String("addr", "127.0.0.1:8787", "listen address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one directory, have %d arguments", fs.NArg())
	}
	dir := fs.Arg(0)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: etagHandler(dir, log), ReadHeaderTimeout: 10 * time.Second}
	log.Info("rules serve: listening", "addr", ln.Addr().String(), "dir", dir)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-done
		return nil
	case err := <-done:
		return err
	}
}

// bundleFetcher returns the fetcher for a bundle location: an http(s) URL
// or a file.
func bundleFetcher(loc string) rules.Fetcher {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		return &rules.HTTPSource{URL: loc}
	}
	return &rules.FileSource{Path: loc}
}

func rulesGuard(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "rules guard", "-bundle FILE|URL -key PUB [-key PUB]... | -unsigned [-exec PATH]... [-open PATH]... [-ask] [-o text|json]")
	bundle := fs.String("bundle", "", "rule bundle: a file or an http(s) URL (polled)")
	var keys, execs, opens keyFiles
	fs.Var(&keys, "key", "trusted public key file (repeatable): bundles must be signed by one of them")
	unsigned := fs.Bool("unsigned", false, "accept unsigned bundles instead (without -key only; for tests and local bundles)")
	fs.Var(&execs, "exec", "judge executions of this file or directory's files (repeatable)")
	fs.Var(&opens, "open", "judge opens of this path (repeatable; default: the bundle's self-protection paths)")
	persist := fs.Bool("persistence", false, "also judge opens of the bundle's persistence locations (cron, systemd units, ...) that exist")
	ask := fs.Bool("ask", false, "ask on the terminal about what no rule decides")
	def := fs.String("default", "allow", "action when no rule and nobody decides: allow or deny")
	failOpen := fs.Bool("fail-open", false, "allow when judging fails or times out (default: deny)")
	timeout := fs.Duration("timeout", 20*time.Second, "time to judge one event (the process waits)")
	askTimeout := fs.Duration("ask-timeout", 15*time.Second, "time a person has to answer")
	userRules := fs.String("user-rules", "", "file keeping remembered answers (default: memory only)")
	interval := fs.Duration("interval", 30*time.Second, "bundle poll interval")
	out := fs.String("o", "text", "decision records: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *bundle == "" {
		return usagef("-bundle is required")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case len(keys) == 0 && !*unsigned:
		return usagef("-bundle needs -key (bundles must be signed by a key you trust), or -unsigned to accept unsigned bundles")
	case len(keys) > 0 && *unsigned:
		return usagef("-unsigned and -key exclude each other")
	}
	defAction, err := rules.ParseAction(*def)
	if err != nil || defAction == rules.Ask {
		return usagef("-default must be allow or deny, have %q", *def)
	}
	if *out != "text" && *out != "json" {
		return usagef("-o must be text or json, have %q", *out)
	}
	if *askTimeout >= *timeout {
		return usagef("-ask-timeout (%v) must be shorter than -timeout (%v)", *askTimeout, *timeout)
	}
	ring, err := loadKeyring(keys)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(env.stderr, nil))
	ur := rules.NewUserRules("")
	if *userRules != "" {
		if ur, err = rules.OpenUserRules(*userRules); err != nil {
			return err
		}
	}
	var recMu = make(chan struct{}, 1)
	record := func(r rules.Record) {
		recMu <- struct{}{}
		defer func() { <-recMu }()
		if *out == "json" {
			b, _ := json.Marshal(r)
			fmt.Fprintln(env.stdout, string(b))
			return
		}
		fmt.Fprintf(env.stdout, "%s %-5s %-7s pid %d %s %s rule=%q by=%s: %s\n", r.TS.Format(time.RFC3339), r.Action, r.Op, r.PID, r.Exe, r.Target, r.Rule, r.By, r.Reason)
	}
	verifiers := []rules.Verifier{rules.NewEd25519(ring)}
	if deb := rules.NewDebian("/"); deb.Load() == nil {
		verifiers = append(verifiers, deb)
	} else {
		log.Warn("rules guard: no dpkg database: Debian package signatures unavailable")
	}
	opts := []rules.Option{
		rules.WithVerifiers(verifiers...),
		rules.WithDefaultAction(defAction), rules.WithAskTimeout(*askTimeout),
		rules.WithUserRules(ur), rules.WithRecorder(record), rules.WithLogger(log),
	}
	if *ask {
		opts = append(opts, rules.WithDecider(rules.NewTerminal(env.stdin, env.stderr)))
	}
	eng := rules.New(opts...)
	up := &rules.Updater{Engine: eng, Keys: ring, AllowUnsigned: *unsigned, Logger: log}
	src := bundleFetcher(*bundle)
	if _, err := up.Update(ctx, src); err != nil {
		return err
	}
	self, persistence := eng.WatchedPaths()
	if len(opens) == 0 {
		opens = self
	}
	if *persist {
		for _, p := range persistence {
			if _, err := os.Stat(p); err != nil {
				log.Info("rules guard: persistence location absent, not watched", "path", p)
				continue
			}
			opens = append(opens, p)
		}
	}
	if len(execs)+len(opens) == 0 {
		return usagef("nothing to guard: give -exec or -open, or self_protection paths in the bundle")
	}
	g, err := fanotify.Open(fanotify.Config{Exec: execs, Open: opens, FailOpen: *failOpen, Timeout: *timeout, Logger: log})
	if err != nil {
		return err
	}
	log.Info("rules guard: running", "version", eng.Version(), "rules", eng.RuleCount(), "exec", []string(execs), "open", []string(opens))
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	polled := make(chan struct{})
	go func() { defer close(polled); up.Poll(pctx, src, *interval) }()
	stop := context.AfterFunc(ctx, func() { g.Close() })
	defer stop()
	err = g.Serve(fanotify.EngineJudge(eng))
	cancel()
	<-polled
	st := g.Stats()
	log.Info("rules guard: stopped", "allowed", st.Allowed, "denied", st.Denied, "defaulted", st.Defaulted, "self", st.Self)
	if errors.Is(err, os.ErrClosed) && ctx.Err() != nil {
		return nil
	}
	return err
}
