package provenance

import (
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Finding is one resource found in a command line or an event: what the
// process did (Edge) to which resource (Type, Name, Port).
type Finding struct {
	Edge EdgeKind
	Type NodeType
	Name string
	Port int // remote port, 0 if none
}

// DefaultSystemPrefixes are the directories whose programs are not
// reported as executed files (they are the system's own tools).
var DefaultSystemPrefixes = []string{"/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/etc/alternatives/"}

// Extractor finds resources in command lines. The zero value uses
// DefaultSystemPrefixes. An Extractor is safe for concurrent use.
type Extractor struct {
	// SystemPrefixes: programs under these directories are not reported
	// as executed files. Nil means DefaultSystemPrefixes.
	SystemPrefixes []string
}

// ExtractArgv returns the resources of one executed program: its image
// (when not a system program) and what its arguments name, parsed by the
// program's known syntax (wget, curl, shells and interpreters with -c/-e
// code and scripts, nc, ssh, scp, socat, dig, cp/mv, dd, ...). Relative
// paths are resolved against cwd when it is known. The error, if any, is a
// syntax error in a nested shell command (bash -c '...'); what could be
// parsed is still returned.
func (x *Extractor) ExtractArgv(exe string, argv []string, cwd string) ([]Finding, error) {
	s := &scan{x: x, cwd: cwd}
	if exe != "" && !x.system(exe) && strings.HasPrefix(exe, "/") {
		s.add(EdgeExecuted, TypeFile, path.Clean(exe), 0)
	}
	if len(argv) == 1 && strings.ContainsAny(argv[0], " \t") {
		// A command line handed over unsplit (some sources do): parse it.
		s.shell(argv[0])
	} else {
		s.command(Command{Args: argv}, false)
	}
	return s.out, s.err
}

// ExtractCommandLine parses a shell command line (see ParseShell) and
// returns the resources of every command in it, following pipes (a
// download piped into a shell is an executed URL), redirections, cd, and
// nested commands.
func (x *Extractor) ExtractCommandLine(cmdline, cwd string) ([]Finding, error) {
	s := &scan{x: x, cwd: cwd}
	s.shell(cmdline)
	return s.out, s.err
}

func (x *Extractor) system(p string) bool {
	prefixes := x.SystemPrefixes
	if prefixes == nil {
		prefixes = DefaultSystemPrefixes
	}
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

type scan struct {
	x     *Extractor
	cwd   string
	depth int
	out   []Finding
	err   error
}

func (s *scan) add(e EdgeKind, t NodeType, name string, port int) {
	if name == "" || len(name) > 4096 {
		return
	}
	s.out = append(s.out, Finding{Edge: e, Type: t, Name: name, Port: port})
}

func (s *scan) shell(cmdline string) {
	if s.depth >= maxNesting {
		return
	}
	cmds, err := ParseShell(cmdline)
	if err != nil && s.err == nil {
		s.err = err
	}
	s.depth++
	for i, c := range cmds {
		intoExec := c.Piped && i+1 < len(cmds) && runsStdin(cmds[i+1].Args)
		s.command(c, intoExec)
	}
	s.depth--
}

// runsStdin reports whether a command executes what it reads on standard
// input (a shell or an interpreter with no script argument).
func runsStdin(args []string) bool {
	args = unwrap(args)
	if len(args) == 0 {
		return false
	}
	fam := family(args[0])
	if fam != famShell && fam != famInterp {
		return false
	}
	for _, a := range args[1:] {
		if a == "-" || a == "-s" {
			return true
		}
		if !strings.HasPrefix(a, "-") {
			return false
		}
		if a == "-c" || a == "-e" || a == "-m" {
			return false
		}
	}
	return true
}

// program families.
const (
	famOther = iota
	famShell
	famInterp
	famWget
	famCurl
	famNetcat
	famSSH
	famCopy // scp, rsync
	famSocat
	famLookup // dig, nslookup, host
	famPing
	famTelnet
	famCpMv
	famWriter  // tee, touch
	famDeleter // rm, unlink, shred
	famDD
	famSource
	famCd
	famSu
)

var families = map[string]int{
	"sh": famShell, "bash": famShell, "dash": famShell, "zsh": famShell, "ksh": famShell, "ash": famShell, "mksh": famShell, "fish": famShell,
	"python": famInterp, "python2": famInterp, "python3": famInterp, "perl": famInterp, "ruby": famInterp, "node": famInterp, "nodejs": famInterp, "php": famInterp, "lua": famInterp, "pwsh": famInterp,
	"wget": famWget, "curl": famCurl,
	"nc": famNetcat, "ncat": famNetcat, "netcat": famNetcat, "nc.traditional": famNetcat, "nc.openbsd": famNetcat,
	"ssh": famSSH, "scp": famCopy, "sftp": famSSH, "rsync": famCopy,
	"socat": famSocat,
	"dig":   famLookup, "nslookup": famLookup, "host": famLookup, "drill": famLookup,
	"ping": famPing, "ping6": famPing, "traceroute": famPing, "tracepath": famPing, "whois": famPing, "ftp": famTelnet, "tftp": famTelnet,
	"telnet": famTelnet,
	"cp":     famCpMv, "mv": famCpMv, "install": famCpMv, "ln": famCpMv,
	"tee": famWriter, "touch": famWriter,
	"rm": famDeleter, "unlink": famDeleter, "shred": famDeleter,
	"dd":     famDD,
	"source": famSource, ".": famSource,
	"cd": famCd, "pushd": famCd,
	"su": famSu, "runuser": famSu,
}

func family(prog string) int {
	b := baseName(prog)
	if f, ok := families[b]; ok {
		return f
	}
	// python3.11, perl5.36, ...
	if i := strings.IndexAny(b, "0123456789"); i > 0 {
		if f, ok := families[strings.TrimRight(b[:i], ".-")]; ok && f == famInterp {
			return f
		}
	}
	return famOther
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && i < len(p)-1 {
		return p[i+1:]
	}
	return strings.TrimSuffix(p, "/")
}

var shellWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "!": true, "{": true, "}": true, "time": true, "exec": true,
	"nohup": true, "command": true, "builtin": true, "setsid": true, "eval": true,
}

// unwrap strips variable assignments, shell keywords and wrapper programs
// (env, sudo, nohup, timeout, nice, busybox, ...) from the front of args.
func unwrap(args []string) []string {
	for n := 0; len(args) > 0 && n < 16; n++ {
		a := args[0]
		b := baseName(a)
		switch {
		case isAssignment(a), shellWords[a]:
			args = args[1:]
		case b == "env":
			args = args[1:]
			for len(args) > 0 && (strings.HasPrefix(args[0], "-") || isAssignment(args[0])) {
				if args[0] == "-u" || args[0] == "-C" || args[0] == "-S" {
					args = args[1:]
				}
				if len(args) > 0 {
					args = args[1:]
				}
			}
		case b == "sudo" || b == "doas":
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "-") {
				switch args[0] {
				case "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U":
					if len(args) > 1 {
						args = args[1:]
					}
				}
				args = args[1:]
			}
		case b == "timeout":
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "-") {
				if args[0] == "-s" || args[0] == "-k" {
					args = args[1:]
				}
				if len(args) > 0 {
					args = args[1:]
				}
			}
			if len(args) > 0 {
				args = args[1:] // the duration
			}
		case b == "nice" || b == "ionice" || b == "stdbuf" || b == "chrt" || b == "taskset":
			args = args[1:]
			for len(args) > 0 && (strings.HasPrefix(args[0], "-") || allDigits(args[0])) {
				if (args[0] == "-n" || args[0] == "-c" || args[0] == "-p") && len(args) > 1 {
					args = args[1:]
				}
				args = args[1:]
			}
		case b == "nohup" || b == "setsid" || b == "busybox" || b == "xargs" || b == "watch" || b == "strace" || b == "ltrace":
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "-") {
				args = args[1:]
			}
		default:
			return args
		}
	}
	return args
}

func isAssignment(a string) bool {
	i := strings.IndexByte(a, '=')
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		c := a[j]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *scan) resolve(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	if strings.HasPrefix(p, "~") || s.cwd == "" {
		return path.Clean(p)
	}
	return path.Join(s.cwd, p)
}

// command analyses one simple command. intoExec: its output is piped into
// a shell.
func (s *scan) command(c Command, intoExec bool) {
	args := unwrap(c.Args)
	fam := famOther
	if len(args) > 0 {
		fam = family(args[0])
		prog := args[0]
		if strings.Contains(prog, "/") && !strings.Contains(prog, "://") {
			if p := s.resolve(prog); !s.x.system(p) {
				s.add(EdgeExecuted, TypeFile, p, 0)
			}
		}
		rest := args[1:]
		switch fam {
		case famShell:
			s.shellArgs(rest)
		case famInterp:
			s.interpArgs(baseName(args[0]), rest)
		case famWget:
			s.wget(rest, c.Redirs, intoExec)
		case famCurl:
			s.curl(rest, c.Redirs, intoExec)
		case famNetcat:
			s.netcat(rest)
		case famSSH:
			s.ssh(rest)
		case famCopy:
			s.copyRemote(rest)
		case famSocat:
			s.socat(rest)
		case famLookup:
			s.lookup(rest, EdgeResolved)
		case famPing, famTelnet:
			s.lookup(rest, EdgeConnected)
		case famCpMv:
			s.cpmv(rest)
		case famWriter:
			s.files(rest, EdgeWrote)
		case famDeleter:
			s.files(rest, EdgeDeleted)
		case famDD:
			s.dd(rest)
		case famSource:
			if len(rest) > 0 {
				s.add(EdgeExecuted, TypeFile, s.resolve(rest[0]), 0)
				s.generic(rest[1:])
			}
		case famCd:
			for _, a := range rest {
				if !strings.HasPrefix(a, "-") {
					s.cwd = s.resolve(a)
					break
				}
			}
		case famSu:
			s.su(rest)
		default:
			s.generic(rest)
		}
	}
	fetch := fam == famWget || fam == famCurl
	for _, r := range c.Redirs {
		s.redirect(r, fetch)
	}
}

func (s *scan) redirect(r Redirect, fetch bool) {
	t := r.Target
	switch r.Op {
	case ">&", "<&":
		if allDigits(t) || t == "-" {
			return
		}
	case "<<":
		return
	case "<<<":
		s.generic(strings.Fields(t))
		return
	}
	if s.devNet(t) || ignoredDev(t) {
		return
	}
	switch r.Op {
	case "<":
		s.add(EdgeRead, TypeFile, s.resolve(t), 0)
	case "<>":
		s.add(EdgeWrote, TypeFile, s.resolve(t), 0)
	default:
		if fetch && r.FD != 2 {
			s.add(EdgeDownloaded, TypeFile, s.resolve(t), 0)
		} else {
			s.add(EdgeWrote, TypeFile, s.resolve(t), 0)
		}
	}
}

func ignoredDev(p string) bool {
	switch p {
	case "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/zero", "/dev/tty", "/dev/random", "/dev/urandom":
		return true
	}
	return strings.HasPrefix(p, "/dev/fd/") || strings.HasPrefix(p, "/proc/self/fd/")
}

// devNet handles bash's /dev/tcp/HOST/PORT and /dev/udp/HOST/PORT.
func (s *scan) devNet(p string) bool {
	var rest string
	switch {
	case strings.HasPrefix(p, "/dev/tcp/"):
		rest = p[len("/dev/tcp/"):]
	case strings.HasPrefix(p, "/dev/udp/"):
		rest = p[len("/dev/udp/"):]
	default:
		return false
	}
	host, port, _ := strings.Cut(rest, "/")
	s.host(EdgeConnected, host, atoiPort(port))
	return true
}

func atoiPort(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0
	}
	return n
}

// host adds a host name or address.
func (s *scan) host(e EdgeKind, h string, port int) {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" {
		return
	}
	if a, err := netip.ParseAddr(h); err == nil {
		s.add(e, TypeAddress, a.Unmap().String(), port)
		return
	}
	if isHostname(h) {
		s.add(e, TypeDomain, strings.ToLower(strings.TrimSuffix(h, ".")), port)
	}
}

// isHostname: letters, digits, hyphens and dots, not all digits/dots, at
// most 253 bytes.
func isHostname(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '-' || h[0] == '.' {
		return false
	}
	alpha := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			alpha = true
		case c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return alpha
}

// fileExts are extensions that make a bare word (no slash) a file name.
var fileExts = map[string]bool{
	"sh": true, "bash": true, "py": true, "pl": true, "rb": true, "php": true, "js": true, "jsp": true, "lua": true, "ps1": true,
	"txt": true, "log": true, "conf": true, "cfg": true, "ini": true, "json": true, "xml": true, "yaml": true, "yml": true, "csv": true,
	"so": true, "elf": true, "bin": true, "out": true, "exe": true, "dll": true, "jar": true, "war": true, "class": true,
	"tar": true, "gz": true, "tgz": true, "bz2": true, "xz": true, "zip": true, "7z": true, "rar": true, "deb": true, "rpm": true,
	"c": true, "o": true, "pem": true, "key": true, "crt": true, "sql": true, "db": true, "html": true, "pid": true, "lock": true,
}

// parseURL recognises scheme://host... words and returns the normalised
// URL, its host and port.
func parseURL(w string) (norm, host string, port int, ok bool) {
	i := strings.Index(w, "://")
	if i <= 0 || i > 32 {
		return "", "", 0, false
	}
	for j := 0; j < i; j++ {
		c := w[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", "", 0, false
		}
	}
	u, err := url.Parse(w)
	if err != nil || u.Host == "" {
		return "", "", 0, false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	host = u.Hostname()
	port = atoiPort(u.Port())
	if port == 0 {
		switch u.Scheme {
		case "http", "ws":
			port = 80
		case "https", "wss":
			port = 443
		case "ftp":
			port = 21
		}
	}
	return u.String(), host, port, true
}

// urlWord adds a URL finding (and nothing else: the graph links a URL to
// its host). Words without a scheme are taken as http URLs when the
// program only takes URLs (wget, curl): bare hosts and host/path.
func (s *scan) urlWord(e EdgeKind, w string, bare bool) (string, bool) {
	norm, _, _, ok := parseURL(w)
	if !ok && bare {
		h, _, _ := strings.Cut(w, "/")
		hn, _, _ := strings.Cut(h, ":")
		if _, err := netip.ParseAddr(hn); err == nil || isHostname(hn) && strings.Contains(hn, ".") {
			norm, _, _, ok = parseURL("http://" + w)
		}
	}
	if !ok {
		return "", false
	}
	s.add(e, TypeURL, norm, 0)
	return norm, true
}

// word classifies one generic argument.
func (s *scan) word(e EdgeKind, w string) {
	if w == "" || len(w) > 4096 {
		return
	}
	if strings.HasPrefix(w, "-") {
		// --opt=value
		if _, v, ok := strings.Cut(w, "="); ok && strings.HasPrefix(w, "--") {
			s.word(e, v)
		}
		return
	}
	if _, ok := s.urlWord(e, w, false); ok {
		return
	}
	if s.devNet(w) || ignoredDev(w) {
		return
	}
	if ap, err := netip.ParseAddrPort(w); err == nil {
		s.add(e, TypeAddress, ap.Addr().Unmap().String(), int(ap.Port()))
		return
	}
	if a, err := netip.ParseAddr(w); err == nil {
		s.add(e, TypeAddress, a.Unmap().String(), 0)
		return
	}
	if strings.ContainsAny(w, "$`*?[") {
		return // unexpanded variables and globs are not names
	}
	if strings.Contains(w, "/") {
		if strings.HasPrefix(w, "/") || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "../") || strings.HasPrefix(w, "~/") || !strings.Contains(w, " ") {
			s.add(e, TypeFile, s.resolve(w), 0)
		}
		return
	}
	if i := strings.LastIndexByte(w, '.'); i > 0 && i < len(w)-1 && fileExts[strings.ToLower(w[i+1:])] && !strings.ContainsAny(w, " =:,") {
		s.add(e, TypeFile, s.resolve(w), 0)
	}
}

func (s *scan) generic(args []string) {
	for _, a := range args {
		s.word(EdgeAccessed, a)
	}
}

func (s *scan) files(args []string, e EdgeKind) {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if strings.ContainsAny(a, "$`*?[") {
			continue
		}
		s.add(e, TypeFile, s.resolve(a), 0)
	}
}

func (s *scan) shellArgs(args []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "+o" || a == "-O" || a == "+O":
			i++
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "c") || a == "--command":
			if i+1 < len(args) {
				s.shell(args[i+1])
				s.generic(args[i+2:])
			}
			return
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
		default:
			s.add(EdgeExecuted, TypeFile, s.resolve(a), 0)
			s.generic(args[i+1:])
			return
		}
	}
}

func (s *scan) su(args []string) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-c", "--command", "-C", "--session-command":
			if i+1 < len(args) {
				s.shell(args[i+1])
			}
			return
		case "-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment", "-u", "--user":
			i++
		}
	}
}

var (
	codeURL  = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]{1,9}://[^\s'"<>()\\]+`)
	codeIPv4 = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	codeDev  = regexp.MustCompile(`/dev/(?:tcp|udp)/[^\s'"/]+/\d+`)
)

// code scans interpreter code (python -c, perl -e, ...) for URLs,
// /dev/tcp paths and IPv4 addresses; it is not parsed.
func (s *scan) code(src string) {
	if len(src) > MaxCommandLine {
		src = src[:MaxCommandLine]
	}
	for _, u := range codeURL.FindAllString(src, 32) {
		s.urlWord(EdgeAccessed, u, false)
	}
	for _, d := range codeDev.FindAllString(src, 8) {
		s.devNet(d)
	}
	for _, ip := range codeIPv4.FindAllString(src, 32) {
		if a, err := netip.ParseAddr(ip); err == nil {
			s.add(EdgeConnected, TypeAddress, a.String(), 0)
		}
	}
}

func (s *scan) interpArgs(prog string, args []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" || a == "-e" || a == "-E" || a == "-r" || a == "--eval" || a == "-p" && strings.HasPrefix(prog, "node") || a == "-Command" || a == "-command":
			if i+1 < len(args) {
				s.code(args[i+1])
				s.generic(args[i+2:])
			}
			return
		case a == "-m":
			if i+1 < len(args) {
				s.generic(args[i+2:])
			}
			return
		case a == "-W" || a == "-X" || a == "-I" || a == "-M" && !strings.HasPrefix(prog, "perl"):
			i++
		case strings.HasPrefix(a, "-"):
			if strings.HasPrefix(prog, "perl") && (strings.HasPrefix(a, "-e") || strings.HasPrefix(a, "-E")) && len(a) > 2 {
				s.code(a[2:])
				return
			}
		default:
			s.add(EdgeExecuted, TypeFile, s.resolve(a), 0)
			s.generic(args[i+1:])
			return
		}
	}
}

// optValue handles "-x V", "-xV" and "--long V", "--long=V" option
// syntax. shortVal lists the short options taking a value; longVal the
// long ones. It returns the option name (without dashes), its value,
// whether it took one, and how many extra words it consumed.
func optValue(args []string, i int, shortVal string, longVal map[string]bool) (name, val string, hasVal bool, skip int, cluster string) {
	a := args[i]
	if strings.HasPrefix(a, "--") {
		n, v, eq := strings.Cut(a[2:], "=")
		if eq {
			return n, v, true, 0, ""
		}
		if longVal[n] && i+1 < len(args) {
			return n, args[i+1], true, 1, ""
		}
		return n, "", false, 0, ""
	}
	// A cluster of short options: flags until one that takes a value.
	for j := 1; j < len(a); j++ {
		if strings.IndexByte(shortVal, a[j]) >= 0 {
			if j+1 < len(a) {
				return string(a[j]), a[j+1:], true, 0, a[1:j]
			}
			if i+1 < len(args) {
				return string(a[j]), args[i+1], true, 1, a[1:j]
			}
			return string(a[j]), "", false, 0, a[1:j]
		}
	}
	return "", "", false, 0, a[1:]
}

var wgetLong = map[string]bool{
	"output-document": true, "output-file": true, "append-output": true, "directory-prefix": true, "input-file": true,
	"user-agent": true, "header": true, "execute": true, "tries": true, "timeout": true, "wait": true, "user": true,
	"password": true, "post-data": true, "post-file": true, "body-data": true, "body-file": true, "method": true,
	"quota": true, "limit-rate": true, "referer": true, "proxy-user": true, "proxy-password": true, "bind-address": true,
	"load-cookies": true, "save-cookies": true, "ca-certificate": true, "certificate": true, "private-key": true,
}

func (s *scan) wget(args []string, redirs []Redirect, intoExec bool) {
	var urls []string
	out, dir := "", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, u := range args[i+1:] {
				if n, ok := s.urlWord(EdgeFetched, u, true); ok {
					urls = append(urls, n)
				}
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if n, ok := s.urlWord(EdgeFetched, a, true); ok {
				urls = append(urls, n)
			}
			continue
		}
		name, v, has, skip, _ := optValue(args, i, "OoaPUteiTwQ", wgetLong)
		i += skip
		if !has {
			continue
		}
		switch name {
		case "O", "output-document":
			out = v
		case "o", "a", "output-file", "append-output", "save-cookies":
			s.add(EdgeWrote, TypeFile, s.resolve(v), 0)
		case "P", "directory-prefix":
			dir = v
		case "i", "input-file", "post-file", "body-file", "load-cookies", "ca-certificate", "certificate", "private-key":
			s.add(EdgeRead, TypeFile, s.resolve(v), 0)
		case "e", "execute":
			if k, val, ok := strings.Cut(v, "="); ok && strings.Contains(strings.ToLower(k), "proxy") {
				s.urlWord(EdgeConnected, val, true)
			}
		}
	}
	switch {
	case out == "-":
		if intoExec {
			for _, u := range urls {
				s.add(EdgeExecuted, TypeURL, u, 0)
			}
		}
	case out != "":
		s.add(EdgeDownloaded, TypeFile, s.resolve(out), 0)
	default:
		for _, u := range urls {
			name := urlFileName(u, "index.html")
			if dir != "" {
				name = path.Join(dir, name)
			}
			s.add(EdgeDownloaded, TypeFile, s.resolve(name), 0)
		}
	}
}

// urlFileName is the base name of a URL's path (what wget -O-less and
// curl -O save to), or def when the path has none.
func urlFileName(u, def string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return def
	}
	b := path.Base(pu.Path)
	if b == "/" || b == "." || b == "" {
		return def
	}
	return b
}

var curlLong = map[string]bool{
	"output": true, "upload-file": true, "data": true, "data-binary": true, "data-raw": true, "data-urlencode": true,
	"form": true, "header": true, "user-agent": true, "user": true, "proxy": true, "referer": true, "cookie": true,
	"cookie-jar": true, "config": true, "request": true, "max-time": true, "connect-timeout": true, "range": true,
	"url": true, "output-dir": true, "cert": true, "key": true, "cacert": true, "resolve": true, "connect-to": true,
	"retry": true, "write-out": true, "dump-header": true, "trace": true, "trace-ascii": true, "stderr": true,
}

func (s *scan) curl(args []string, redirs []Redirect, intoExec bool) {
	var urls, outs []string
	remoteName, dir := false, ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if n, ok := s.urlWord(EdgeFetched, a, true); ok {
				urls = append(urls, n)
			}
			continue
		}
		if a == "--remote-name" || a == "--remote-name-all" {
			remoteName = true
			continue
		}
		name, v, has, skip, cluster := optValue(args, i, "oTdFHAuxbcKXmrUwEDe", curlLong)
		if strings.Contains(cluster, "O") {
			remoteName = true
		}
		i += skip
		if !has {
			continue
		}
		switch name {
		case "o", "output":
			outs = append(outs, v)
		case "output-dir":
			dir = v
		case "T", "upload-file", "K", "config", "cacert", "cert", "E", "key":
			s.add(EdgeRead, TypeFile, s.resolve(v), 0)
		case "d", "data", "data-binary", "data-urlencode", "F", "form":
			if j := strings.IndexByte(v, '@'); j >= 0 && (j == 0 || name == "F" || name == "form") {
				f := v[j+1:]
				if k := strings.IndexByte(f, ';'); k >= 0 {
					f = f[:k]
				}
				s.add(EdgeRead, TypeFile, s.resolve(f), 0)
			}
		case "c", "cookie-jar", "D", "dump-header", "trace", "trace-ascii", "stderr":
			if v != "-" {
				s.add(EdgeWrote, TypeFile, s.resolve(v), 0)
			}
		case "x", "proxy":
			s.urlWord(EdgeConnected, v, true)
		case "url":
			if n, ok := s.urlWord(EdgeFetched, v, true); ok {
				urls = append(urls, n)
			}
		case "resolve", "connect-to":
			parts := strings.Split(v, ":")
			if len(parts) >= 3 {
				s.host(EdgeConnected, parts[len(parts)-1], atoiPort(parts[1]))
			}
		}
	}
	stdout := true
	for _, o := range outs {
		if o == "-" {
			continue
		}
		stdout = false
		if dir != "" && !strings.HasPrefix(o, "/") {
			o = path.Join(dir, o)
		}
		s.add(EdgeDownloaded, TypeFile, s.resolve(o), 0)
	}
	if remoteName {
		stdout = false
		for _, u := range urls {
			n := urlFileName(u, "")
			if n == "" {
				continue
			}
			if dir != "" {
				n = path.Join(dir, n)
			}
			s.add(EdgeDownloaded, TypeFile, s.resolve(n), 0)
		}
	}
	if stdout && intoExec {
		for _, u := range urls {
			s.add(EdgeExecuted, TypeURL, u, 0)
		}
	}
}

func (s *scan) netcat(args []string) {
	var pos []string
	listen := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, v, has, skip, cluster := optValue(args, i, "ecpswiqxXOIgGTVMm", nil)
		if strings.Contains(cluster, "l") || name == "listen" {
			listen = true
		}
		i += skip
		if !has {
			continue
		}
		switch name {
		case "e", "c", "exec", "sh-exec":
			if name == "c" || name == "sh-exec" {
				s.shell(v)
			} else if p := s.resolve(v); strings.Contains(v, "/") && !s.x.system(p) {
				s.add(EdgeExecuted, TypeFile, p, 0)
			}
		case "x", "proxy":
			h, p, _ := strings.Cut(v, ":")
			s.host(EdgeConnected, h, atoiPort(p))
		}
	}
	if listen || len(pos) == 0 {
		return
	}
	port := 0
	if len(pos) > 1 {
		p := pos[1]
		if j := strings.IndexByte(p, '-'); j > 0 {
			p = p[:j]
		}
		port = atoiPort(p)
	}
	s.host(EdgeConnected, pos[0], port)
}

func (s *scan) ssh(args []string) {
	port := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			_, h, _ := strings.Cut(a, "@")
			if !strings.Contains(a, "@") {
				h = a
			}
			s.host(EdgeConnected, h, port)
			return // the rest is the remote command
		}
		name, v, has, skip, _ := optValue(args, i, "bcDEeFIiJLlmOopQRSWw", nil)
		i += skip
		if !has {
			continue
		}
		switch name {
		case "p":
			port = atoiPort(v)
		case "i", "F":
			s.add(EdgeRead, TypeFile, s.resolve(v), 0)
		case "J":
			_, h, _ := strings.Cut(v, "@")
			if !strings.Contains(v, "@") {
				h = v
			}
			hn, p, _ := strings.Cut(h, ":")
			s.host(EdgeConnected, hn, atoiPort(p))
		}
	}
}

// copyRemote: scp and rsync arguments, [user@]host:path or local paths.
func (s *scan) copyRemote(args []string) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			_, _, _, skip, _ := optValue(args, i, "cFiJloPSe", nil)
			i += skip
			continue
		}
		pos = append(pos, a)
	}
	for k, a := range pos {
		if h, _, ok := strings.Cut(a, ":"); ok && !strings.HasPrefix(a, "/") && !strings.Contains(h, "/") {
			if _, hh, ok := strings.Cut(h, "@"); ok {
				h = hh
			}
			s.host(EdgeConnected, h, 0)
			continue
		}
		e := EdgeRead
		if k == len(pos)-1 && len(pos) > 1 {
			e = EdgeWrote
		}
		s.add(e, TypeFile, s.resolve(a), 0)
	}
}

func (s *scan) socat(args []string) {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			continue
		}
		kind, rest, ok := strings.Cut(a, ":")
		if !ok {
			continue
		}
		if j := strings.IndexByte(rest, ','); j >= 0 {
			rest = rest[:j]
		}
		switch strings.ToUpper(kind) {
		case "TCP", "TCP4", "TCP6", "TCP-CONNECT", "UDP", "UDP4", "UDP6", "UDP-CONNECT", "UDP-SENDTO", "OPENSSL", "OPENSSL-CONNECT", "SSL", "SCTP", "SCTP-CONNECT":
			i := strings.LastIndexByte(rest, ':')
			if i > 0 {
				s.host(EdgeConnected, rest[:i], atoiPort(rest[i+1:]))
			}
		case "EXEC", "SYSTEM":
			s.shell(rest)
		case "OPEN", "CREATE", "FILE", "GOPEN":
			s.add(EdgeWrote, TypeFile, s.resolve(rest), 0)
		}
	}
}

func (s *scan) lookup(args []string, e EdgeKind) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			switch a {
			case "-t", "-c", "-p", "-f", "-k", "-q", "-s", "-W", "-w", "-i", "-I", "-m":
				i++
			}
			continue
		}
		if strings.HasPrefix(a, "@") {
			s.host(EdgeConnected, a[1:], 53)
			continue
		}
		if _, err := netip.ParseAddr(a); err == nil || isHostname(a) && strings.Contains(a, ".") {
			s.host(e, a, 0)
			return
		}
	}
}

func (s *scan) cpmv(args []string) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if a == "-t" || a == "--target-directory" || a == "-S" || a == "-m" || a == "-o" || a == "-g" {
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	for k, a := range pos {
		if strings.ContainsAny(a, "$`*?[") {
			continue
		}
		e := EdgeRead
		if k == len(pos)-1 && len(pos) > 1 {
			e = EdgeWrote
		}
		s.add(e, TypeFile, s.resolve(a), 0)
	}
}

func (s *scan) dd(args []string) {
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || ignoredDev(v) {
			continue
		}
		switch k {
		case "if":
			s.add(EdgeRead, TypeFile, s.resolve(v), 0)
		case "of":
			s.add(EdgeWrote, TypeFile, s.resolve(v), 0)
		}
	}
}
