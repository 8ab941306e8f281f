package broker

import (
	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/internal/nbwrite"
)

// Direct writes: at the end of a small read batch the publisher's reader
// writes to an idle subscriber itself, sparing a goroutine handoff per
// message at low rates. Bigger batches leave the writing to the
// subscribers' writer goroutines, which batch and run in parallel.
const (
	directMaxFrames      = 8 // frames in the read batch
	directMaxSubscribers = 8 // subscribers woken by the batch
	directMaxChunks      = 4 // chunks to write: a small write, far below IOV_MAX
)

// flushSubscriber writes sc's queue from the publisher's reader goroutine
// if sc's write side is free, without ever blocking: what the socket does
// not take now goes to sc's writer goroutine with the write side.
func (c *conn) flushSubscriber(sc *conn) {
	if sc.raw == nil {
		sc.out.signal()
		return
	}
	b, ok := sc.out.acquire(&c.direct, c.directSpare)
	if !ok {
		return // the current writer will see the new frames when it releases
	}
	if (b.overflow && c.b.cfg.SlowSubscriberPolicy == SlowDisconnect) || len(c.direct.Chunks()) > directMaxChunks {
		if b.overflow {
			sc.out.restoreOverflow()
		}
		c.handOff(sc, b)
		return
	}
	n, err := nbwrite.TryWrite(sc.raw, c.direct.Chunks())
	switch {
	case err != nil:
		c.direct.Reset()
		sc.out.release()
		b.marks = releaseMarks(b.marks)
		sc.closeWith(CloseWriteError, err)
	case n < c.direct.Len():
		c.direct.Discard(n)
		c.handOff(sc, b)
		return
	default:
		c.direct.Reset()
		sc.wrote(b)
		b.marks = releaseMarks(b.marks)
		if sc.out.release() {
			sc.out.signal()
		}
	}
	c.directSpare = b.reuse()
}

// handOff gives c.direct's frames, with their marks, and the write side to
// sc's writer.
func (c *conn) handOff(sc *conn, b batch) {
	rest := c.direct
	c.direct = chunkbuf.Buffer{}
	sc.wrote(b)
	sc.out.handOff(&rest, b.marks)
	c.directSpare = batch{stamps: b.stamps[:0]} // the marks slice went with the frames
}
