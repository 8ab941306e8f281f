package broker

import (
	"sync"
	"sync/atomic"
)

// Confirmations (PROTOCOL.md §5.3.2). A connection whose HELLO carried a
// session gets CONFIRM frames: the broker tells it how many of its PUBLISH
// frames it has finished with. A publish is finished once its DELIVER
// frame was written into the socket of every subscriber it was queued for
// (or that subscriber's connection closed), and at once for a subscriber
// whose queue was full (the drop is counted for it). What a subscriber's
// socket buffer holds survives the broker's death, so a confirmed publish
// is delivered or counted, never silently lost.
//
// The unit of tracking is the read batch, not the message: each batch of
// PUBLISH frames one read brought holds one reference per subscriber queue
// it reached (a mark in that queue), plus the reader's own until the batch
// ends. The queue's writer releases its marks once the write that carried
// them completes.

// pubBatch is the PUBLISH frames of one read batch of a confirming
// connection.
type pubBatch struct {
	owner *confirmer
	last  uint64       // publish_seq of the batch's last PUBLISH, set before the reader lets go
	refs  atomic.Int32 // the reader's hold, plus one per queue mark
	done  bool         // every reference released; guarded by owner.mu
}

// release drops one reference and reports whether that queued a CONFIRM
// frame on the owner's queue, which the caller must then get written.
func (b *pubBatch) release() bool {
	if b.refs.Add(-1) != 0 {
		return false
	}
	return b.owner.finish(b)
}

// releaseMarks releases marks, getting written the CONFIRMs they queued,
// and returns the emptied slice for reuse.
func releaseMarks(marks []*pubBatch) []*pubBatch {
	for i, b := range marks {
		if owner := b.owner; b.release() {
			owner.c.confirmQueued()
		}
		marks[i] = nil
	}
	return marks[:0]
}

// confirmQueued gets a CONFIRM that another goroutine queued on c
// written. A reader busy with a read batch writes it itself at the
// batch's end, sparing a wakeup of c's writer per confirmation under
// load; only a reader waiting for the peer needs the writer woken. The
// reader sets readIdle before it checks for a CONFIRM due, and this checks
// readIdle after queueing one, so one of the two always sees the other.
func (c *conn) confirmQueued() {
	if c.readIdle.Load() {
		c.out.signal()
	}
}

// confirmer numbers one connection's finished publishes.
type confirmer struct {
	c   *conn
	out *outQueue // c's queue, which carries its CONFIRMs

	mu   sync.Mutex
	open []*pubBatch // begun and not yet confirmed, oldest first
	free []*pubBatch
}

func newConfirmer(c *conn) *confirmer { return &confirmer{c: c, out: c.out} }

// begin starts a batch, held by the reader until it sets last and
// releases it.
func (cf *confirmer) begin() *pubBatch {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	var b *pubBatch
	if n := len(cf.free); n > 0 {
		b, cf.free = cf.free[n-1], cf.free[:n-1]
	} else {
		b = &pubBatch{owner: cf}
	}
	b.refs.Store(1)
	cf.open = append(cf.open, b)
	return b
}

// finish marks b done and confirms every batch up to the first one still
// open: confirmations are cumulative, so they never run ahead of an
// earlier batch still waiting for a subscriber. It reports whether it
// queued a CONFIRM.
func (cf *confirmer) finish(b *pubBatch) bool {
	cf.mu.Lock()
	b.done = true
	n := 0
	var upTo uint64
	for n < len(cf.open) && cf.open[n].done {
		d := cf.open[n]
		upTo = d.last
		d.done, d.last = false, 0
		cf.free = append(cf.free, d) // no reference to d remains
		n++
	}
	if n > 0 {
		cf.open = append(cf.open[:0], cf.open[n:]...)
	}
	cf.mu.Unlock()
	return n > 0 && cf.out.confirm(upTo)
}
