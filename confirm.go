package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/wire"
)

// Confirmed publishing (docs/PROTOCOL.md §5.3.2). Every publish gets the
// next number of the client's session, which survives reconnects. The
// broker confirms, cumulatively, the publishes it has finished with:
// written into the socket of every matching subscriber, or counted as
// dropped for it. Until then the client keeps each publish's frame
// (within the resend buffer) and sends it again after a reconnect;
// subscribers drop the copies they already have. What can be neither
// confirmed nor resent is reported as lost, with its count and range.

// DefaultResendBuffer bounds the bytes of unconfirmed publishes a client
// keeps for resending unless WithResendBuffer says otherwise.
const DefaultResendBuffer = 4 << 20

// maxRetained bounds the unconfirmed publishes kept for resending, however
// small: the per-publish record costs memory too.
const maxRetained = 1 << 16

// LostError reports publishes that were not confirmed and will not be:
// the connection failed before the broker confirmed them and they could
// not be resent (resending off, the resend buffer full, or the client
// closed). errors.Is(err, ErrPublishLost) matches it. Each of them may or
// may not have been delivered; every other publish was confirmed.
type LostError struct {
	// Count is how many publishes were lost; First and Last are the
	// lowest and highest of their sequence numbers (Message.Sequence).
	Count       uint64
	First, Last uint64
	// Err is why: the connection's failure, or ErrClientClosed.
	Err error
}

// Error says how many publishes were lost, their range and why.
func (e *LostError) Error() string {
	what := "publishes"
	if e.Count == 1 {
		what = "publish"
	}
	return fmt.Sprintf("eventbus: %d %s not confirmed (sequence %d-%d): %v", e.Count, what, e.First, e.Last, e.Err)
}

// Is makes errors.Is(err, ErrPublishLost) true.
func (e *LostError) Is(target error) bool { return target == ErrPublishLost }

// Unwrap returns why they were lost.
func (e *LostError) Unwrap() error { return e.Err }

// add merges the range first..last into e.
func (e *LostError) add(first, last uint64, err error) {
	if e.Count == 0 {
		e.First, e.Err = first, err
	}
	e.Count += last - first + 1
	e.First, e.Last = min(e.First, first), max(e.Last, last)
}

// retention is the unconfirmed publishes kept for resending, oldest first.
type retention struct {
	buf  chunkbuf.Buffer
	recs []retained // recs[head:] are live
	head int
}

// retained is one publish kept for resending.
type retained struct {
	seq   uint64
	frame []byte // its PUBLISH frame, in buf
	pc    *publishCorrelation
	cseq  uint64 // its correlation sequence
}

func (r *retention) live() []retained { return r.recs[r.head:] }

// first returns the sequence of the oldest publish kept, or next if none is.
func (r *retention) first(next uint64) uint64 {
	if live := r.live(); len(live) > 0 {
		return live[0].seq
	}
	return next
}

// add keeps a copy of frame.
func (r *retention) add(seq uint64, frame []byte, pc *publishCorrelation, cseq uint64) {
	t := r.buf.Tail(len(frame))
	n := len(t)
	t = append(t, frame...)
	r.buf.Commit(t)
	if r.head > 0 && r.head == len(r.recs) {
		r.recs, r.head = r.recs[:0], 0
	}
	r.recs = append(r.recs, retained{seq: seq, frame: t[n:], pc: pc, cseq: cseq})
}

// dropThrough forgets the publishes numbered up to seq.
func (r *retention) dropThrough(seq uint64) {
	for r.head < len(r.recs) && r.recs[r.head].seq <= seq {
		r.buf.Discard(len(r.recs[r.head].frame))
		r.recs[r.head] = retained{}
		r.head++
	}
	if r.head > len(r.recs)/2 && r.head > 64 { // compact, so recs stops growing
		n := copy(r.recs, r.recs[r.head:])
		clear(r.recs[n:])
		r.recs, r.head = r.recs[:n], 0
	}
}

// trim forgets the oldest publishes while more than maxBytes or
// maxRetained are kept.
func (r *retention) trim(maxBytes int) {
	for live := r.live(); len(live) > 0 && (r.buf.Len() > maxBytes || len(live) > maxRetained); live = r.live() {
		r.dropThrough(live[0].seq)
	}
}

func (r *retention) reset() {
	r.buf.Reset()
	clear(r.recs)
	r.recs, r.head = r.recs[:0], 0
}

// confirmWait is a Publish with Confirm waiting for its publish.
type confirmWait struct {
	seq  uint64
	ch   chan struct{} // closed when seq is confirmed or lost
	lost *LostError    // set before ch closes if seq was lost
}

// retainLocked keeps the publish just appended to pending, numbered
// c.lastSeq, for resending.
func (c *Client) retainLocked(frame []byte, pc *publishCorrelation, cseq uint64) {
	if c.opts.resendBuffer <= 0 {
		return
	}
	c.retain.add(c.lastSeq, frame, pc, cseq)
	c.retain.trim(c.opts.resendBuffer)
}

// confirmedLocked handles a CONFIRM for cc's first n publishes.
func (c *Client) confirmedLocked(cc *clientConn, n uint64) error {
	if n > cc.pubSeq {
		return fmt.Errorf("eventbus: CONFIRM from broker for %d publishes; %d were sent", n, cc.pubSeq)
	}
	if c.conn != cc || n == 0 {
		return nil
	}
	seq := cc.firstNew + (n - uint64(len(cc.resent))) - 1
	if n <= uint64(len(cc.resent)) {
		seq = cc.resent[n-1]
	}
	if seq <= c.doneSeq {
		return nil
	}
	c.doneSeq = seq
	c.retain.dropThrough(seq)
	c.wakeLocked()
	return nil
}

// lostLocked records the publishes numbered after c.doneSeq up to last
// as lost with why, counts them finished, and returns the loss for the
// error handler (nil: none), to be called once mu is released.
func (c *Client) lostLocked(last uint64, why error) *LostError {
	first := c.doneSeq + 1
	if last < first {
		return nil
	}
	if c.lost == nil {
		c.lost = &LostError{}
	}
	c.lost.add(first, last, why)
	for _, w := range c.waits {
		if w.seq >= first && w.seq <= last {
			w.lost = &LostError{Count: 1, First: w.seq, Last: w.seq, Err: why}
		}
	}
	c.doneSeq = last
	c.retain.dropThrough(last)
	c.wakeLocked()
	return &LostError{Count: last - first + 1, First: first, Last: last, Err: why}
}

// reportLost passes a loss lostLocked returned to the error handler.
func (c *Client) reportLost(e *LostError) {
	if e != nil && c.opts.onError != nil {
		c.opts.onError(e)
	}
}

// wakeLocked ends the waits whose publish is finished and wakes Flush.
func (c *Client) wakeLocked() {
	waits := c.waits[:0]
	for _, w := range c.waits {
		if w.seq <= c.doneSeq {
			close(w.ch)
		} else {
			waits = append(waits, w)
		}
	}
	clear(c.waits[len(waits):])
	c.waits = waits
	c.space.Broadcast()
}

// resendLocked queues the kept publishes on cc, the new connection, each
// naming its correlation by cc's refs.
func (c *Client) resendLocked(cc *clientConn) {
	cc.firstNew = c.lastSeq + 1
	for _, r := range c.retain.live() {
		cc.pubSeq++
		cc.resent = append(cc.resent, r.seq)
		if r.pc == nil {
			t := c.pending.Tail(len(r.frame))
			c.pending.Commit(append(t, r.frame...))
			continue
		}
		body := r.frame[wire.HeaderSize:]
		v, err := wire.ScanPublish(body)
		if err != nil {
			panic("eventbus: a kept publish does not scan: " + err.Error()) // this client encoded it
		}
		fields := cc.publishFields(r.pc, r.cseq)
		size := wire.HeaderSize + len(body) + 32 + len(r.pc.base) // at most: the new fields replace the old
		c.pending.Commit(wire.AppendRepublish(c.pending.Tail(size), body, &v, &fields))
	}
}

// waitConfirmed waits until the publish numbered seq is confirmed, lost,
// or ctx ends.
func (c *Client) waitConfirmed(ctx context.Context, seq uint64) error {
	c.mu.Lock()
	if seq <= c.doneSeq {
		c.mu.Unlock()
		return nil
	}
	w := &confirmWait{seq: seq, ch: make(chan struct{})}
	c.waits = append(c.waits, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		if w.lost != nil {
			return w.lost
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		for i, x := range c.waits {
			if x == w {
				c.waits = append(c.waits[:i], c.waits[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return fmt.Errorf("%w: publish %d: %w", ErrUnconfirmed, seq, ctx.Err())
	}
}

// Flush waits until every publish made before it is confirmed (see
// Publish) and, while connected, until the broker has processed
// everything else sent before it and this client has read what the
// broker sent before that (a PING round trip). It returns what went wrong
// since the previous Flush, joined: a *LostError counting the publishes
// that will not be confirmed, and the broker's refusals. If ctx ends
// first, it returns ctx's error with the number still unconfirmed; a
// later Flush reports their fate.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.Lock()
	connected := c.conn != nil
	c.mu.Unlock()
	if connected {
		if _, err := c.Ping(ctx); err != nil && ctx.Err() != nil {
			return fmt.Errorf("eventbus: flush: %w", ctx.Err())
		}
		// Any other failure is the connection's, reported with what it lost.
	}
	c.mu.Lock()
	target := c.lastSeq
	if c.closed {
		target = c.doneSeq // shut counted everything unconfirmed as lost
	}
	if target > c.doneSeq {
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			c.space.Broadcast()
			c.mu.Unlock()
		})
		for target > c.doneSeq && ctx.Err() == nil {
			c.space.Wait()
		}
		stop()
		if target > c.doneSeq {
			n := target - c.doneSeq
			c.mu.Unlock()
			return fmt.Errorf("eventbus: flush: %w: %d publishes: %w", ErrUnconfirmed, n, ctx.Err())
		}
	}
	var errs []error
	if c.lost != nil {
		errs = append(errs, c.lost)
		c.lost = nil
	}
	errs = append(errs, c.asyncErrs...)
	c.asyncErrs = nil
	if c.closed && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("eventbus: flush: %w", c.closeErr))
	}
	c.mu.Unlock()
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0] // errors.As without unwrapping a join
	}
	return errors.Join(errs...)
}

// Ping sends a PING and waits for its PONG, returning the round-trip
// time: the broker has then processed everything this client sent before
// it (routed the publishes, which Flush waits for subscribers to take),
// and this client has read everything the broker sent before the PONG.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if _, err := c.roundTrip(ctx, wire.TypePing, func(id uint64) wire.Message { return &wire.Ping{Id: id} }); err != nil {
		return 0, fmt.Errorf("eventbus: ping: %w", err)
	}
	return time.Since(start), nil
}
