//go:build linux

package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elemBatch sends set element changes as one nfnetlink batch that it
// marshals itself, into one buffer: at 100k addresses the generic
// marshalling of the nftables library costs more than the kernel's work.
// The wire format is the kernel's (include/uapi/linux/netfilter/nf_tables.h
// and nfnetlink.h).
type elemBatch struct {
	conn  *netlink.Conn
	table string
	chunk int
	seq   uint32
	buf   []byte
	rbuf  []byte
}

func newElemBatch(netnsFd int, table string, chunk int) (*elemBatch, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: max(netnsFd, 0)})
	if err != nil {
		return nil, err
	}
	if err := bigBuffers(c); err != nil {
		c.Close()
		return nil, err
	}
	return &elemBatch{conn: c, table: table, chunk: chunk, rbuf: make([]byte, 1<<16)}, nil
}

func (e *elemBatch) Close() error { return e.conn.Close() }

var ne = binary.NativeEndian

// begin starts a netlink message and returns its offset.
func (e *elemBatch) begin(typ, flags uint16, family uint8, resID uint16) int {
	off := len(e.buf)
	e.seq++
	e.buf = ne.AppendUint32(e.buf, 0) // length, patched by end
	e.buf = ne.AppendUint16(e.buf, typ)
	e.buf = ne.AppendUint16(e.buf, flags)
	e.buf = ne.AppendUint32(e.buf, e.seq)
	e.buf = ne.AppendUint32(e.buf, 0) // port id
	e.buf = append(e.buf, family, unix.NFNETLINK_V0)
	e.buf = binary.BigEndian.AppendUint16(e.buf, resID)
	return off
}

func (e *elemBatch) end(off int) { ne.PutUint32(e.buf[off:], uint32(len(e.buf)-off)) }

// attr appends an attribute with data; nested attributes are opened with
// open and closed with close.
func (e *elemBatch) attr(typ uint16, data []byte) {
	e.buf = ne.AppendUint16(e.buf, uint16(4+len(data)))
	e.buf = ne.AppendUint16(e.buf, typ)
	e.buf = append(e.buf, data...)
	for len(e.buf)%4 != 0 {
		e.buf = append(e.buf, 0)
	}
}

func (e *elemBatch) open(typ uint16) int {
	off := len(e.buf)
	e.buf = ne.AppendUint16(e.buf, 0)
	e.buf = ne.AppendUint16(e.buf, typ|unix.NLA_F_NESTED)
	return off
}

func (e *elemBatch) close(off int) error {
	n := len(e.buf) - off
	if n > 0xffff {
		return fmt.Errorf("netlink attribute of %d bytes", n)
	}
	ne.PutUint16(e.buf[off:], uint16(n))
	return nil
}

// nftMsgDestroySetElem deletes set elements without failing on missing
// ones (NFT_MSG_DESTROYSETELEM, Linux 6.3).
const nftMsgDestroySetElem = 0x1e

// elems appends one NEWSETELEM, DELSETELEM or DESTROYSETELEM message.
// Elements in exp with a positive duration get that timeout.
func (e *elemBatch) elems(typ uint16, set string, addrs []netip.Addr, exp map[netip.Addr]time.Duration) error {
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if typ == unix.NFT_MSG_NEWSETELEM {
		flags |= unix.NLM_F_CREATE
	}
	m := e.begin(unix.NFNL_SUBSYS_NFTABLES<<8|typ, flags, unix.NFPROTO_INET, 0)
	e.attr(unix.NFTA_SET_ELEM_LIST_TABLE, append([]byte(e.table), 0))
	e.attr(unix.NFTA_SET_ELEM_LIST_SET, append([]byte(set), 0))
	list := e.open(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for _, a := range addrs {
		el := e.open(unix.NFTA_LIST_ELEM)
		key := e.open(unix.NFTA_SET_ELEM_KEY)
		e.attr(unix.NFTA_DATA_VALUE, a.AsSlice())
		_ = e.close(key)
		if d := exp[a]; d > 0 && typ == unix.NFT_MSG_NEWSETELEM {
			e.attr(unix.NFTA_SET_ELEM_TIMEOUT, binary.BigEndian.AppendUint64(nil, uint64(d.Milliseconds())))
		}
		_ = e.close(el)
	}
	if err := e.close(list); err != nil {
		return err
	}
	e.end(m)
	return nil
}

// apply deletes del and adds add (sorted by family by the caller: sets[0]
// holds IPv4) in one batch and waits for the kernel's answer to each
// message.
// With destroy, deletions do not fail on elements already gone.
func (e *elemBatch) apply(add, del [2][]netip.Addr, sets [2]string, exp map[netip.Addr]time.Duration, destroy bool) error {
	n, err := e.build(add, del, sets, exp, destroy)
	if err != nil || n == 0 {
		return err
	}
	return e.send(n)
}

// build marshals the batch into e.buf and returns the number of messages
// that will be answered.
func (e *elemBatch) build(add, del [2][]netip.Addr, sets [2]string, exp map[netip.Addr]time.Duration, destroy bool) (int, error) {
	delType := uint16(unix.NFT_MSG_DELSETELEM)
	if destroy {
		delType = nftMsgDestroySetElem
	}
	e.buf = e.buf[:0]
	b := e.begin(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	e.end(b)
	n := 0
	for _, op := range []struct {
		typ   uint16
		addrs [2][]netip.Addr
	}{{delType, del}, {unix.NFT_MSG_NEWSETELEM, add}} {
		for i, as := range op.addrs {
			for len(as) > 0 {
				k := min(len(as), e.chunk)
				if err := e.elems(op.typ, sets[i], as[:k], exp); err != nil {
					return 0, err
				}
				n++
				as = as[k:]
			}
		}
	}
	if n == 0 {
		return 0, nil
	}
	b = e.begin(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	e.end(b)
	return n, nil
}

// send sends e.buf and collects the n answers.
func (e *elemBatch) send(n int) error {
	rc, err := e.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), e.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("send batch: %w", serr)
	}
	// The kernel answers every message that asked for an
	// acknowledgement, with success or an error, before sendto returns;
	// the deadline only guards against a kernel that does not.
	_ = e.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer e.conn.SetReadDeadline(time.Time{})
	var errs []error
	for got := 0; got < n; {
		var rn int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			rn, _, rerr = unix.Recvfrom(int(fd), e.rbuf, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		}); err != nil {
			return fmt.Errorf("receive acknowledgements (%d of %d): %w", got, n, err)
		}
		if rerr != nil {
			return fmt.Errorf("receive acknowledgements: %w", rerr)
		}
		for p := e.rbuf[:rn]; len(p) >= unix.NLMSG_HDRLEN; {
			l := int(ne.Uint32(p))
			if l < unix.NLMSG_HDRLEN || l > len(p) {
				return errors.New("receive acknowledgements: malformed netlink message")
			}
			if ne.Uint16(p[4:]) == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 {
				got++
				if code := int32(ne.Uint32(p[unix.NLMSG_HDRLEN:])); code != 0 {
					errs = append(errs, unix.Errno(-code))
				}
			}
			p = p[(l+3)&^3:]
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kernel refused the batch: %w", errors.Join(errs...))
	}
	return nil
}
