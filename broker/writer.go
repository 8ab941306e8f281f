package broker

import (
	"errors"
	"os"
	"time"

	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/wire"
)

// A connection's writer goroutine.

// writeFrames writes queued frames until the connection closes.
func (c *conn) writeFrames() {
	var frames chunkbuf.Buffer
	var spare batch
	for {
		select {
		case <-c.out.wake:
		case <-c.done:
			return
		}
		if rest, marks := c.out.takeHandoff(); rest != nil {
			_, err := c.write(rest)
			releaseMarks(marks)
			if err != nil {
				c.writeFailed(err)
				return
			}
			c.out.release()
		}
		for {
			b, ok := c.out.acquire(&frames, spare)
			if !ok {
				break
			}
			if b.overflow && c.b.cfg.SlowSubscriberPolicy == SlowDisconnect {
				c.slowConsumer(&frames)
				releaseMarks(b.marks)
				return
			}
			_, err := c.write(&frames)
			b.marks = releaseMarks(b.marks)
			if err != nil {
				c.writeFailed(err)
				return
			}
			c.wrote(b)
			spare = b.reuse()
			if !c.out.release() {
				break
			}
		}
		if c.draining.Load() && c.out.idle() {
			c.closeWith(c.drainReason(), nil)
			return
		}
	}
}

// write writes frames within write_timeout: a peer that takes nothing
// for that long holds up the confirmations of every publisher whose
// messages wait for it, so it is closed as a slow consumer (writeFailed).
// Under the disconnect policy, slowOverflow's earlier deadline stands.
func (c *conn) write(frames *chunkbuf.Buffer) (int64, error) {
	if !c.slowWrite.Load() {
		c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.WriteTimeout))
		if c.slowWrite.Load() { // slowOverflow ran meanwhile: its deadline wins
			c.nc.SetWriteDeadline(time.Now().Add(slowWriteDeadline))
		}
	}
	return frames.WriteTo(c.nc)
}

// wrote accounts for a written batch.
func (c *conn) wrote(b batch) {
	c.delivered.Add(uint64(b.msgs))
	if len(b.stamps) > 0 {
		c.b.latency.RecordSince(time.Now().UnixNano(), b.stamps)
	}
}

// slowWriteDeadline bounds a write to a subscriber over its queue under
// the disconnect policy.
const slowWriteDeadline = time.Second

// slowOverflow is called on each drop under the disconnect policy. The
// writer closes the connection when it next takes frames, but it may be
// stuck in a write to a peer that stopped reading and never get there: the
// first drop gives that write a deadline, so the connection closes whether
// or not the peer reads again.
func (c *conn) slowOverflow() {
	if c.slowWrite.CompareAndSwap(false, true) {
		c.nc.SetWriteDeadline(time.Now().Add(slowWriteDeadline))
	}
}

// writeFailed closes the connection after a failed write, as a slow
// consumer if slowOverflow's deadline ended the write.
func (c *conn) writeFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if !c.slowWrite.Load() {
			c.b.limits.hit(limitWriteTimeout)
		}
		c.closeWith(CloseSlowConsumer, err)
		return
	}
	c.closeWith(CloseWriteError, err)
}

// slowConsumer ends a connection under the disconnect policy: what was
// queued is sent, then a fatal SLOW_CONSUMER error, within a short time.
func (c *conn) slowConsumer(frames *chunkbuf.Buffer) {
	err := wire.Errorf(wire.ErrorCode_ERROR_CODE_SLOW_CONSUMER, "slow consumer: queue full (message_buffer_size %d, max_pending_bytes %d)",
		c.b.cfg.MessageBufferSize, c.b.cfg.MaxPendingBytes)
	err.Fatal = true
	// Set the reason first: the client hangs up on reading the error, and
	// the reader's EOF must not record the close as the client's doing.
	c.reason.CompareAndSwap(0, uint32(CloseSlowConsumer))
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	m := err.ToProto(0, 0)
	frames.Commit(wire.AppendFrame(frames.Tail(wire.HeaderSize+m.SizeVT()), wire.TypeError, m))
	frames.WriteTo(c.nc)
	c.closeWith(CloseSlowConsumer, err)
}
