package proctree

// nodeRing is the exit queue: a FIFO of nodes in a circular buffer whose
// size is a power of two. It grows by doubling when full and halves when
// less than a quarter full (down to ringMin), so its memory follows the
// number of exited processes held rather than the most ever held or the
// history of pushes — a slice used as a queue re-grows on every cycle and
// can keep several times its content in capacity.
type nodeRing struct {
	buf  []*node
	head int // index in buf of the oldest entry
	n    int // entries held
}

// ringMin is the smallest buffer kept once one was needed.
const ringMin = 64

func (r *nodeRing) len() int { return r.n }

// at returns the i-th entry from the oldest (0 <= i < len).
func (r *nodeRing) at(i int) *node { return r.buf[(r.head+i)&(len(r.buf)-1)] }

// clearAt empties the i-th entry from the oldest, leaving a hole that
// popFront skips past like any other entry.
func (r *nodeRing) clearAt(i int) { r.buf[(r.head+i)&(len(r.buf)-1)] = nil }

func (r *nodeRing) push(x *node) {
	if r.n == len(r.buf) {
		r.resize(max(ringMin, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = x
	r.n++
}

// popFront removes and returns the oldest entry (nil if it was cleared).
// The ring must not be empty.
func (r *nodeRing) popFront() *node {
	x := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if len(r.buf) > ringMin && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return x
}

// resize moves the entries, oldest first, to a buffer of size c (a power
// of two, >= n).
func (r *nodeRing) resize(c int) {
	nb := make([]*node, c)
	if r.n > 0 {
		k := copy(nb, r.buf[r.head:min(len(r.buf), r.head+r.n)])
		copy(nb[k:], r.buf[:r.n-k])
	}
	r.buf, r.head = nb, 0
}
