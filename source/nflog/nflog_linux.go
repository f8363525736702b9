package nflog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/sockdiag"
)

// Source reads outbound new flows from an NFLOG group and attributes them
// to processes. Next is called from one goroutine at a time; Close and
// Stats are safe from any goroutine.
type Source struct {
	cfg    config
	diag   *sockdiag.Conn
	nf     *gonflog.Nflog
	cancel context.CancelFunc
	events chan source.Event
	closed chan struct{}
	exited chan struct{} // closed when the reader stops delivering
	exitMu sync.Once
	once   sync.Once

	fatalMu sync.Mutex
	fatal   error

	packets, queued, unattributed, noSocket, uidMismatch, malformed, dropped, overruns atomic.Uint64
	reported                                                                           uint64 // losses already reported by Next
}

// Open creates the table, binds the NFLOG group and starts reading.
func Open(opts ...Option) (*Source, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.table == "" {
		return nil, &source.OpError{Op: "open nflog", Err: errors.New("empty table name")}
	}
	if cfg.netns != 0 {
		// Keep our own descriptor of the namespace: Close needs it to
		// delete the table after the caller's is gone.
		fd, err := unix.FcntlInt(uintptr(cfg.netns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, &source.OpError{Op: "open nflog: duplicate netns fd", Err: err}
		}
		cfg.netns = fd
	}
	diag, err := sockdiag.Dial(sockdiag.WithNetNS(cfg.netns), sockdiag.WithProcRoot(cfg.procRoot), sockdiag.WithLogger(cfg.logger))
	if err != nil {
		s0 := &Source{cfg: cfg}
		s0.closeNetNS()
		return nil, err
	}
	s := &Source{
		cfg:    cfg,
		diag:   diag,
		events: make(chan source.Event, cfg.queue),
		closed: make(chan struct{}),
		exited: make(chan struct{}),
	}
	nf, err := gonflog.Open(&gonflog.Config{
		NetNS:    cfg.netns,
		Group:    cfg.group,
		Copymode: gonflog.CopyPacket,
		Bufsize:  snaplen,
	})
	if err != nil {
		diag.Close()
		s.closeNetNS()
		return nil, &source.OpError{Op: "open nflog", Err: err}
	}
	s.nf = nf
	_ = nf.Con.SetReadBuffer(4 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := nf.RegisterWithErrorFunc(ctx, s.hook, s.onError); err != nil {
		cancel()
		nf.Close()
		diag.Close()
		s.closeNetNS()
		return nil, &source.OpError{Op: fmt.Sprintf("bind nflog group %d", cfg.group), Err: err}
	}
	if err := s.addTable(); err != nil {
		close(s.closed)
		s.stopReader()
		diag.Close()
		s.closeNetNS()
		return nil, err
	}
	return s, nil
}

// nft opens an nftables connection in the source's namespace.
func (s *Source) nft() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if s.cfg.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(s.cfg.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, &source.OpError{Op: "nftables", Err: err}
	}
	return c, nil
}

// addTable (re)creates the logging table in one transaction.
func (s *Source) addTable() error {
	c, err := s.nft()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := &nftables.Table{Name: s.cfg.table, Family: nftables.TableFamilyINet}
	if old, err := c.ListTableOfFamily(s.cfg.table, nftables.TableFamilyINet); err == nil && old != nil {
		// Left by a run that did not close: replace it.
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			return &source.OpError{Op: "delete stale table inet " + s.cfg.table, Err: err}
		}
	}
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{
		Name:     "output",
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityMangle,
		Policy:   ptr(nftables.ChainPolicyAccept),
	})
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_SNAPLEN, Group: s.cfg.group, Snaplen: snaplen},
		}})
	}
	if err := c.Flush(); err != nil {
		return &source.OpError{Op: "add table inet " + s.cfg.table, Err: err}
	}
	return nil
}

// closeNetNS closes the source's duplicate of the namespace descriptor.
func (s *Source) closeNetNS() {
	if s.cfg.netns != 0 {
		unix.Close(s.cfg.netns)
		s.cfg.netns = 0
	}
}

func ptr[T any](v T) *T { return &v }

// delTable removes the logging table.
func (s *Source) delTable() error {
	c, err := s.nft()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	c.DelTable(&nftables.Table{Name: s.cfg.table, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return &source.OpError{Op: "delete table inet " + s.cfg.table, Err: err}
	}
	return nil
}

func (s *Source) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *Source) markExited() { s.exitMu.Do(func() { close(s.exited) }) }

// hook runs on go-nflog's goroutine for each logged packet.
func (s *Source) hook(a gonflog.Attribute) int {
	if s.isClosed() {
		s.markExited()
		return 1
	}
	s.packets.Add(1)
	if a.Payload == nil {
		s.malformed.Add(1)
		return 0
	}
	f, err := parsePacket(*a.Payload)
	if err != nil {
		s.malformed.Add(1)
		s.cfg.logger.Debug("nflog: unparsable packet", "err", err)
		return 0
	}
	now := time.Now()
	if a.Timestamp != nil && !a.Timestamp.IsZero() {
		now = *a.Timestamp
	}
	if a.UID == nil {
		// No socket behind the packet (the kernel's own, or a
		// non-full socket): nothing can be attributed, and a socket
		// sharing the port would be a stranger (OpenSnitch #929).
		s.noSocket.Add(1)
		return 0
	}
	sk, err := s.diag.Find(f.proto, f.src, f.dst)
	if err != nil {
		s.unattributed.Add(1)
		s.cfg.logger.Debug("nflog: no socket for flow", "proto", f.proto, "src", f.src, "dst", f.dst, "err", err)
		return 0
	}
	if *a.UID != sk.UID {
		s.uidMismatch.Add(1)
		s.cfg.logger.Debug("nflog: socket uid differs from packet uid", "proto", f.proto, "src", f.src, "dst", f.dst, "packet_uid", *a.UID, "socket_uid", sk.UID)
		return 0
	}
	ids, err := s.diag.Holders(sk.Inode)
	if err != nil || len(ids) == 0 {
		s.unattributed.Add(1)
		return 0
	}
	kind := source.KindConnect
	if f.proto == source.ProtoUDP {
		kind = source.KindSend
	}
	for _, id := range ids {
		ev := source.Event{
			Time:   now,
			Kind:   kind,
			PID:    id.PID,
			Start:  id.Start,
			Proto:  f.proto,
			Src:    f.src,
			Dst:    f.dst,
			UID:    int(sk.UID),
			HasUID: true,
			Origin: "nflog",
		}
		select {
		case s.events <- ev:
			s.queued.Add(1)
		default:
			s.dropped.Add(1)
		}
	}
	return 0
}

// onError runs on go-nflog's goroutine for receive errors.
func (s *Source) onError(err error) int {
	if s.isClosed() {
		s.markExited()
		return 1
	}
	if errors.Is(err, unix.ENOBUFS) {
		s.overruns.Add(1)
		return 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0
	}
	s.fatalMu.Lock()
	if s.fatal == nil {
		s.fatal = &source.OpError{Op: "read nflog", Err: err}
	}
	s.fatalMu.Unlock()
	s.markExited()
	return 1
}

// Name implements source.Source.
func (s *Source) Name() string { return "nflog" }

// Next implements source.Source. After a loss it first returns an error
// wrapping source.ErrLost; calling Next again continues.
func (s *Source) Next() (source.Event, error) {
	if lost := s.dropped.Load() + s.overruns.Load(); lost > s.reported {
		n := lost - s.reported
		s.reported = lost
		return source.Event{}, &source.OpError{Op: "read nflog", Err: fmt.Errorf("%d events or packets: %w", n, source.ErrLost)}
	}
	select {
	case ev := <-s.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.closed:
		return source.Event{}, fmt.Errorf("nflog: %w", os.ErrClosed)
	case <-s.exited:
		if s.isClosed() {
			return source.Event{}, fmt.Errorf("nflog: %w", os.ErrClosed)
		}
		s.fatalMu.Lock()
		err := s.fatal
		s.fatalMu.Unlock()
		if err == nil {
			err = &source.OpError{Op: "read nflog", Err: errors.New("reader stopped")}
		}
		return source.Event{}, err
	}
}

// stopReader stops go-nflog's goroutine: with s.closed closed, a read
// deadline in the past makes its Receive fail, and our error and packet
// callbacks then tell it to stop (and mark it exited). Only then is its
// context cancelled and the socket closed (Nflog.Close waits for the
// context watcher).
func (s *Source) stopReader() error {
	_ = s.nf.Con.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
		s.cfg.logger.Warn("nflog: reader did not stop within 2s")
	}
	s.cancel()
	return s.nf.Close()
}

// Close stops reading, deletes the table and releases the sockets. It
// unblocks a pending Next.
func (s *Source) Close() error {
	var errs []error
	s.once.Do(func() {
		close(s.closed)
		if err := s.stopReader(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, &source.OpError{Op: "close nflog", Err: err})
		}
		if err := s.delTable(); err != nil {
			errs = append(errs, err)
		}
		if err := s.diag.Close(); err != nil {
			errs = append(errs, err)
		}
		s.closeNetNS()
	})
	return errors.Join(errs...)
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	return Stats{
		Packets:      s.packets.Load(),
		Events:       s.queued.Load(),
		Unattributed: s.unattributed.Load(),
		NoSocket:     s.noSocket.Load(),
		UIDMismatch:  s.uidMismatch.Load(),
		Malformed:    s.malformed.Load(),
		Dropped:      s.dropped.Load(),
		Overruns:     s.overruns.Load(),
	}
}
