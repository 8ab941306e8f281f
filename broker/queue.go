package broker

import (
	"sync"

	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/wire"
)

// outQueue is one connection's outbound frames: deliveries bounded by
// count and bytes, plus control frames (replies, errors, missed counts).
// Producers append encoded frames to pooled chunks under mu; the
// connection's writer goroutine swaps the chunks out and writes them with
// one writev, so a burst costs one syscall, no copy and no allocation.
type outQueue struct {
	maxMsgs  int
	maxBytes int
	timed    bool // keep receive stamps for the latency histogram
	trusted  bool // the agent's: every reply is queued (reply)
	// free gives back query memory (max_query_memory) once the reply that
	// held it is written, or the queue closes; nil: none is held.
	free func(n int64)
	wake chan struct{} // capacity 1; a send means "look at the queue"

	mu         sync.Mutex
	buf        chunkbuf.Buffer // encoded frames waiting for the writer
	msgs       int             // DELIVER frames in buf
	stamps     []int64         // broker receive time of each queued delivery
	missedSubs []*subscription // subscriptions with drops not yet reported
	// The correlations queued DELIVERs defined (PROTOCOL.md §5.4.1).
	refs     wire.RefEncoder[*corrDef]
	credit   int64 // query memory held by replies in buf
	inflight int64 // query memory held by the batch being written
	closed   bool  // no more frames are accepted
	overflow bool  // a drop happened under the disconnect policy
	// writing: the writer goroutine or a direct write from a publisher's
	// reader holds the connection's write side; the other stays off it.
	writing bool
	// handoff is a direct write's unwritten rest, passed to the writer
	// goroutine together with the write side and the marks of its frames.
	handoff      *chunkbuf.Buffer
	handoffMarks []*pubBatch
	// marks are the publish batches (confirm.go) whose DELIVERs buf holds,
	// each once per run of deliveries.
	marks []*pubBatch
	// The connection's own confirmations: a CONFIRM for confirmed goes
	// out with the next write unless confirmSent says it did.
	confirmed, confirmSent uint64
}

// batch describes frames taken for writing.
type batch struct {
	msgs     int         // DELIVER frames taken
	stamps   []int64     // their receive times, when statistics are on
	marks    []*pubBatch // the publish batches they belong to, released once written
	overflow bool        // a drop happened under the disconnect policy
}

// reuse returns b's emptied slices, for the next acquire.
func (b batch) reuse() batch { return batch{stamps: b.stamps[:0], marks: b.marks[:0]} }

func newOutQueue(maxMsgs, maxBytes int, timed bool) *outQueue {
	return &outQueue{maxMsgs: maxMsgs, maxBytes: maxBytes, timed: timed, wake: make(chan struct{}, 1)}
}

// setTrusted makes every reply fit (reply): the agent's queue.
func (q *outQueue) setTrusted() {
	q.mu.Lock()
	q.trusted = true
	q.mu.Unlock()
}

// bound returns the queue's byte bound.
func (q *outQueue) bound() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.maxBytes
}

// setMaxBytes sets the queue's byte bound (an anonymous peer's is
// smaller).
func (q *outQueue) setMaxBytes(n int) {
	q.mu.Lock()
	q.maxBytes = n
	q.mu.Unlock()
}

// setFree sets the function that gives back query memory (free).
func (q *outQueue) setFree(free func(n int64)) {
	q.mu.Lock()
	q.free = free
	q.mu.Unlock()
}

// enqueueResult reports what deliver did.
type enqueueResult uint8

const (
	enqueued      enqueueResult = iota // queued; the writer is already awake
	enqueuedFirst                      // queued into an empty queue: wake the writer
	dropped                            // queue full: counted for the subscription
	discarded                          // queue closed
)

// deliver queues a DELIVER frame of d for s, with corr's metadata (nil:
// none), as part of publish batch pb (nil: the publisher does not
// confirm). If the queue is full it reports dropped, and counts the drop
// for s unless another queue may take the message instead (!countDrop, a
// queue group's member).
func (q *outQueue) deliver(s *subscription, d *wire.Delivery, corr *corrDef, pb *pubBatch, countDrop bool) enqueueResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return discarded
	}
	var cf *wire.CorrelationFields
	var fields wire.CorrelationFields
	if corr != nil {
		// By the ref an earlier DELIVER defined, or in full, defining the
		// next ref once the frame is queued: never in one that is dropped.
		fields = q.refs.Fields(corr, corr.base, corr.meta.Sequence)
		cf = &fields
	}
	size := wire.DeliverSize(s.id, d, cf)
	if q.msgs >= q.maxMsgs || q.buf.Len()+size > q.maxBytes {
		if !countDrop {
			return dropped
		}
		if s.missed == 0 {
			q.missedSubs = append(q.missedSubs, s)
		}
		s.missed++
		q.overflow = true
		return dropped
	}
	wasEmpty := q.buf.Len() == 0
	q.appendMissedLocked()
	q.buf.Commit(wire.AppendDeliver(q.buf.Tail(size), s.id, d, cf))
	if fields.Define {
		q.refs.Defined(corr, fields.Ref)
	}
	q.msgs++
	if pb != nil {
		if n := len(q.marks); n == 0 || q.marks[n-1] != pb {
			pb.refs.Add(1)
			q.marks = append(q.marks, pb)
		}
	}
	if q.timed {
		q.stamps = append(q.stamps, d.ReceivedAt)
	}
	if wasEmpty {
		return enqueuedFirst
	}
	return enqueued
}

// appendMissedLocked reports pending drops ahead of the next delivery, so
// the subscriber learns where the gap is.
func (q *outQueue) appendMissedLocked() {
	for _, s := range q.missedSubs {
		q.appendLocked(wire.TypeMissed, &wire.Missed{SubscriptionId: s.id, Count: s.missed})
		s.missed = 0
	}
	q.missedSubs = q.missedSubs[:0]
}

// control queues a non-delivery frame. Control frames bypass the message
// count, but not the byte bound: a client that never reads its replies
// loses them rather than growing the broker's memory.
func (q *outQueue) control(t wire.Type, m wire.Message) bool {
	return q.queueControl(t, m, 0, 0)
}

// reply queues the answer to a request. It may go over the byte bound by
// itself (one reply at a time: it is refused once the queue is over the
// bound), so a large answer, statistics of a busy broker, still arrives;
// a trusted queue (the agent's) takes every reply, so the operator is
// always answered however full its queue.
func (q *outQueue) reply(t wire.Type, m wire.Message) bool {
	return q.replyHolding(t, m, 0)
}

// replyHolding is reply for an answer that holds credit bytes of query
// memory (max_query_memory) until it is written.
func (q *outQueue) replyHolding(t wire.Type, m wire.Message, credit int64) bool {
	if q.trusted {
		return q.queueControl(t, m, -1, credit)
	}
	return q.queueControl(t, m, wire.HeaderSize+m.SizeVT(), credit)
}

// queueControl queues a frame if the queue stays within its byte bound
// plus slack (a negative slack has no bound), with the credit it holds.
func (q *outQueue) queueControl(t wire.Type, m wire.Message, slack int, credit int64) bool {
	q.mu.Lock()
	if q.closed || slack >= 0 && q.buf.Len()+wire.HeaderSize+m.SizeVT() > q.maxBytes+slack {
		q.mu.Unlock()
		return false
	}
	q.appendLocked(t, m)
	q.credit += credit
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *outQueue) appendLocked(t wire.Type, m wire.Message) {
	q.buf.Commit(wire.AppendFrame(q.buf.Tail(wire.HeaderSize+m.SizeVT()), t, m))
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// confirm records that the connection's first n publishes are finished
// and reports whether a CONFIRM is now due, for the caller to get written.
func (q *outQueue) confirm(n uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || n <= q.confirmed {
		return false
	}
	q.confirmed = n
	return true
}

// confirmDue reports whether a CONFIRM waits to be written.
func (q *outQueue) confirmDue() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.confirmed != q.confirmSent
}

// hasWorkLocked reports whether anything waits to be written.
func (q *outQueue) hasWorkLocked() bool {
	return q.buf.Len() > 0 || len(q.missedSubs) > 0 || q.confirmed != q.confirmSent
}

// acquire takes the write side and moves the pending frames into into,
// which must be empty; spare holds emptied slices to reuse (batch.reuse).
// It fails if the write side is held or nothing is pending.
func (q *outQueue) acquire(into *chunkbuf.Buffer, spare batch) (batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing || q.closed || !q.hasWorkLocked() {
		return batch{}, false
	}
	q.writing = true
	// Missed frames go out with this batch even over the byte bound: they
	// are small, one per subscription, and a drop must never go unreported.
	q.appendMissedLocked()
	if q.confirmed != q.confirmSent {
		// After every ERROR refusing a publish it covers: those were
		// queued while their batch was handled, before it finished.
		q.buf.Commit(wire.AppendConfirm(q.buf.Tail(wire.ConfirmSize), q.confirmed))
		q.confirmSent = q.confirmed
	}
	*into, q.buf = q.buf, *into
	q.inflight, q.credit = q.credit, 0
	b := batch{msgs: q.msgs, stamps: q.stamps, marks: q.marks, overflow: q.overflow}
	q.msgs, q.stamps, q.marks, q.overflow = 0, spare.stamps, spare.marks, false
	return b, true
}

// release gives the write side back and reports whether frames wait.
func (q *outQueue) release() (more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writing = false
	q.freeLocked(q.inflight)
	q.inflight = 0
	return q.hasWorkLocked()
}

// handOff passes the write side and rest, the unwritten part of a direct
// write, with the marks of its frames, to the writer goroutine, which must
// write rest first.
func (q *outQueue) handOff(rest *chunkbuf.Buffer, marks []*pubBatch) {
	q.mu.Lock()
	if q.closed { // close released what the queue held; these too
		q.mu.Unlock()
		releaseMarks(marks)
		return
	}
	q.handoff, q.handoffMarks = rest, marks
	q.mu.Unlock()
	q.signal()
}

// takeHandoff returns a handed-off rest, if any, with its marks; the
// caller then holds the write side.
func (q *outQueue) takeHandoff() (*chunkbuf.Buffer, []*pubBatch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	rest, marks := q.handoff, q.handoffMarks
	q.handoff, q.handoffMarks = nil, nil
	return rest, marks
}

// restoreOverflow puts back an overflow a direct write took but leaves to
// the writer goroutine.
func (q *outQueue) restoreOverflow() {
	q.mu.Lock()
	q.overflow = true
	q.mu.Unlock()
}

// close stops the queue accepting frames and frees what it held. The
// publishes it held are finished for this subscriber, which is gone.
func (q *outQueue) close() {
	q.mu.Lock()
	q.freeLocked(q.credit + q.inflight)
	q.credit, q.inflight = 0, 0
	q.closed = true
	q.buf.Reset()
	q.stamps, q.missedSubs = nil, nil
	marks, handoffMarks := q.marks, q.handoffMarks
	q.marks, q.handoffMarks = nil, nil
	q.mu.Unlock()
	// Outside the lock: a release may queue a CONFIRM on another queue.
	releaseMarks(marks)
	releaseMarks(handoffMarks)
}

// freeLocked gives n bytes of query memory back (atomics only: safe under
// the lock).
func (q *outQueue) freeLocked(n int64) {
	if n > 0 && q.free != nil {
		q.free(n)
	}
}

// queued reports the queued deliveries, for a queue group's least-loaded
// choice.
func (q *outQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs
}

// pending reports the queued deliveries and bytes, for stats.
func (q *outQueue) pending() (msgs, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.msgs, q.buf.Len()
}

// idle reports that nothing is queued or being written.
func (q *outQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.writing && q.handoff == nil && !q.hasWorkLocked()
}
