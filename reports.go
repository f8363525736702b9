package procwall

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// Cred is the identity of a peer process on the report socket, from the
// kernel (SO_PEERCRED): it cannot be forged by the peer.
type Cred struct {
	PID, UID, GID int
}

// ReportServer accepts risk reports and assessments from detectors on a
// Unix stream socket. Each line a peer writes is one event in the native
// trace format (spec/events.md) of type "risk" or "assess"; each is
// answered with one JSON line:
//
//	{"ok":true,"records":[...decision records...]}
//	{"ok":false,"error":"line 3: field level: ..."}
//
// Who may send is limited twice: by the socket file's permissions (mode
// 0600 by default, owner root) and by a check of each peer's kernel
// credentials (default: uid 0 or the server's own uid).
//
// A ReportServer is safe for concurrent use; Serve owns the goroutines it
// starts and waits for them before it returns.
type ReportServer struct {
	ln    *net.UnixListener
	path  string
	allow func(Cred) error
	log   *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// ReportOption configures ListenReports.
type ReportOption func(*reportConfig)

type reportConfig struct {
	mode  os.FileMode
	gid   int
	allow func(Cred) error
	log   *slog.Logger
}

// WithSocketMode sets the socket file's permission bits (default 0600).
func WithSocketMode(m os.FileMode) ReportOption { return func(c *reportConfig) { c.mode = m } }

// WithSocketGroup gives the socket file (and its directory, when
// ListenReports creates it) to a group, so that with mode 0660 its members
// may connect; unless WithPeerCheck replaces it, the peer check then admits
// the group's members too (AllowGroup) besides root and the server's user.
func WithSocketGroup(gid int) ReportOption { return func(c *reportConfig) { c.gid = gid } }

// WithPeerCheck replaces the check of each peer's credentials; a non-nil
// error refuses the connection with that reason.
func WithPeerCheck(f func(Cred) error) ReportOption { return func(c *reportConfig) { c.allow = f } }

// WithReportLogger sets the server's logger.
func WithReportLogger(l *slog.Logger) ReportOption { return func(c *reportConfig) { c.log = l } }

// AllowUIDs returns a peer check admitting only the given user ids.
func AllowUIDs(uids ...int) func(Cred) error {
	return func(c Cred) error {
		for _, u := range uids {
			if c.UID == u {
				return nil
			}
		}
		return fmt.Errorf("uid %d may not send reports", c.UID)
	}
}

// AllowGroup returns a peer check admitting members of group gid: peers
// whose primary group (from the kernel, SO_PEERCRED) is gid, or that have
// it among their supplementary groups (read from /proc/PID/status of the
// connecting process).
func AllowGroup(gid int) func(Cred) error {
	return func(c Cred) error {
		if c.GID == gid {
			return nil
		}
		groups, err := peerGroups(c.PID)
		if err != nil {
			return fmt.Errorf("uid %d: groups of pid %d unknown: %w", c.UID, c.PID, err)
		}
		if slices.Contains(groups, gid) {
			return nil
		}
		return fmt.Errorf("uid %d (pid %d) is not in group %d and may not send reports", c.UID, c.PID, gid)
	}
}

// AnyOf returns a peer check admitting a peer that any of checks admits;
// when none does, the error joins their reasons.
func AnyOf(checks ...func(Cred) error) func(Cred) error {
	return func(c Cred) error {
		var errs []error
		for _, f := range checks {
			err := f(c)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return errors.New("no peer check admits anybody")
		}
		return errors.Join(errs...)
	}
}

// ListenReports creates the report socket at path. A stale socket file
// left by a previous run is replaced; any other file there is an error.
func ListenReports(path string, opts ...ReportOption) (*ReportServer, error) {
	cfg := reportConfig{mode: 0o600, gid: -1, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.allow == nil {
		self := os.Getuid()
		cfg.allow = AllowUIDs(0, self)
		if cfg.gid >= 0 {
			cfg.allow = AnyOf(cfg.allow, AllowGroup(cfg.gid))
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("procwall: report socket %s: a non-socket file is in the way", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("procwall: report socket %s: another server is listening", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("procwall: report socket %s: %w", path, err)
		}
	}
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("procwall: report socket: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) && cfg.gid >= 0 {
		// A directory we created: the group must be able to reach the
		// socket in it.
		if err := os.Chown(dir, -1, cfg.gid); err != nil {
			return nil, fmt.Errorf("procwall: report socket directory: %w", err)
		}
	}
	// Create the socket with no permissions for anybody but the owner, so
	// there is no window in which others may connect.
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("procwall: report socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if cfg.gid >= 0 {
		if err := os.Chown(path, -1, cfg.gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("procwall: report socket: %w", err)
		}
	}
	if err := os.Chmod(path, cfg.mode.Perm()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("procwall: report socket: %w", err)
	}
	return &ReportServer{ln: ln, path: path, allow: cfg.allow, log: cfg.log, conns: map[net.Conn]struct{}{}}, nil
}

// Path returns the socket's path.
func (s *ReportServer) Path() string { return s.path }

// Close stops accepting, closes open connections and removes the socket
// file. Serve returns after Close.
func (s *ReportServer) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	return s.ln.Close()
}

// Serve accepts connections and applies their reports to p until ctx ends
// or Close is called; it then closes the server and returns nil.
func (s *ReportServer) Serve(ctx context.Context, p *Protector) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("procwall: report socket: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(ctx, c, p)
		}()
	}
}

type reportReply struct {
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Records []Record `json:"records,omitempty"`
}

// maxReportLine bounds one request line.
const maxReportLine = 64 << 10

func (s *ReportServer) serveConn(ctx context.Context, c *net.UnixConn, p *Protector) {
	enc := json.NewEncoder(c)
	cred, err := peerCred(c)
	if err == nil {
		err = s.allow(cred)
	}
	if err != nil {
		s.log.Warn("report socket: peer refused", "pid", cred.PID, "uid", cred.UID, "err", err)
		_ = enc.Encode(reportReply{Error: "refused: " + err.Error()})
		return
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxReportLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		recs, err := s.handleLine(ctx, p, cred, line, text)
		reply := reportReply{OK: err == nil, Records: recs}
		if err != nil {
			reply.Error = err.Error()
		}
		if err := enc.Encode(reply); err != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
		_ = enc.Encode(reportReply{Error: fmt.Sprintf("line %d: %v", line+1, err)})
	}
}

func (s *ReportServer) handleLine(ctx context.Context, p *Protector, cred Cred, line int, text string) ([]Record, error) {
	name := "report-socket(pid " + strconv.Itoa(cred.PID) + ")"
	ev, err := replay.New(name, strings.NewReader(text), replay.WithFormat(replay.FormatNative)).Next()
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", line, strings.TrimPrefix(err.Error(), name+":1: "))
	}
	if ev.Kind != source.KindRisk && ev.Kind != source.KindAssess {
		return nil, fmt.Errorf("line %d: type %s: the report socket takes only risk and assess events", line, ev.Kind)
	}
	ds, err := p.Submit(ctx, ev)
	s.log.Info("report socket", "type", ev.Kind.String(), "pid", ev.PID, "from_pid", cred.PID, "from_uid", cred.UID)
	recs := make([]Record, len(ds))
	for i := range ds {
		recs[i] = &ds[i]
	}
	return recs, err
}
