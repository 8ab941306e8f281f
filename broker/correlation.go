package broker

import (
	"log/slog"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

// corrDef is one correlation a publisher sends: metadata decoded and
// validated once, which its publishes repeat but for the sequence number.
// Only the publisher's reader uses it, but for base, which is immutable:
// subscribers' queues name a corrDef defined by ref by pointer
// (outQueue.correlationLocked).
type corrDef struct {
	meta correlation.Metadata // Sequence is the publish being handled's
	base []byte               // meta as the publisher encoded it, without the sequence; nil without a ref
	rec  *correlation.Recorder
	// ev is the event to record: what does not change from publish to
	// publish is set once, the rest by stageEvent.
	ev correlation.Event
	// recorded: rec's last event had this metadata, but the sequence.
	recorded bool
	// size is what the definition counts against max_correlation_bytes.
	size int
}

// corrDefOverhead is what a ref's definition counts beyond its encoding
// (held twice: decoded and as the base): the corrDef, its recorder and
// map.
const corrDefOverhead = 512

// publisherCorrelation is a connection's state for its correlated
// publishes (PROTOCOL.md §5.3.1): the correlations it named by ref, and
// the last one it sent in full without a ref.
type publisherCorrelation struct {
	refs      wire.RefTable[corrDef]
	refBytes  int                   // what the defined refs count against max_correlation_bytes
	anon      *corrDef              // the last correlation sent in full without a ref...
	anonShape wire.CorrelationShape // ...and its encoding, to recognize a repeat
	corrView  wire.CorrelationView
	strip     []byte // scratch for PublishView.Uncorrelated
}

// correlationOf returns the correlation of the publish v, which the
// broker admitted, defining it first if v carries it in full
// (PROTOCOL.md §5.3 rule 7). Its Sequence is v's, until the connection's
// next publish. Invalid metadata is refused, never truncated; a ref it was
// to define is then undefined.
// A repeat needs no decoding and no checks, so this touches as little as
// it can before the message is delivered.
func (c *conn) correlationOf(v *wire.PublishView) (*corrDef, error) {
	pc := &c.corr
	ref := v.CorrelationRef
	switch {
	case v.Correlation == nil: // by reference
		d, err := pc.refs.Lookup(ref)
		if err != nil {
			return nil, err
		}
		d.meta.Sequence = v.CorrelationSeq
		return d, nil
	case ref == 0:
		// In full without a ref: the message is delivered as published,
		// so no subscriber's queue names the corrDef, and the next new
		// metadata may reuse it once this publish is recorded.
		if seq, ok := pc.anonShape.Match(v.Correlation); ok {
			pc.anon.meta.Sequence = seq
			return pc.anon, nil
		}
		pc.anonShape.Reset()
		if pc.anon == nil {
			pc.anon = &corrDef{rec: c.b.tracker.NewRecorder()}
		}
		if err := c.defineCorrelation(v, pc.anon); err != nil {
			return nil, err
		}
		pc.anonShape.Set(v.Correlation)
		return pc.anon, nil
	}
	c.undefine(ref) // undefined unless the definition holds
	size := 2*len(v.Correlation) + corrDefOverhead
	if pc.refBytes+size > c.b.cfg.MaxCorrelationBytes {
		c.b.limits.hit(limitCorrelationRefBytes)
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
			"correlation ref %d not defined: this connection's refs would hold %d bytes, limit %d (max_correlation_bytes)",
			ref, pc.refBytes+size, c.b.cfg.MaxCorrelationBytes)
	}
	d := &corrDef{rec: c.b.tracker.NewRecorder(), size: size}
	if err := c.defineCorrelation(v, d); err != nil {
		return nil, err
	}
	d.base = wire.AppendWithoutSequence(make([]byte, 0, len(v.Correlation)), v.Correlation)
	pc.refs.Define(ref, d) // cannot fail: ScanPublish checked the range
	pc.refBytes += size
	return d, nil
}

// undefine leaves ref undefined, as a refused definition must (PROTOCOL.md
// §5.3.1): a later publish by it is refused rather than given the
// metadata of an earlier definition.
func (c *conn) undefine(ref uint64) {
	pc := &c.corr
	if old, err := pc.refs.Lookup(ref); err == nil {
		pc.refBytes -= old.size
		pc.refs.Define(ref, nil)
	}
}

// defineCorrelation decodes and validates into d the correlation v
// carries in full, with v's payload: an event too large for the history
// is refused here, before it is delivered.
func (c *conn) defineCorrelation(v *wire.PublishView, d *corrDef) error {
	if err := wireconv.DecodeMetadata(v.Correlation, &c.corr.corrView, &c.strs, d.meta.Tags, &d.meta); err != nil {
		return err
	}
	d.ev = correlation.Event{
		PublisherPID:       c.peer.PID,
		PublisherUID:       c.peer.UID,
		PublisherComponent: c.component,
		Metadata:           d.meta,
	}
	d.recorded = false
	c.stageEvent(v, d)
	err := d.rec.Check(&d.ev, false)
	d.ev.Payload = nil // do not pin the read buffer
	if err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err)
	}
	return nil
}

// stageEvent sets the fields of d.ev that vary to the publish v's.
func (c *conn) stageEvent(v *wire.PublishView, d *corrDef) {
	ev := &d.ev
	ev.Topic = c.strs.Get(v.Topic)
	ev.Payload = v.Payload
	ev.PublishedAt = time.Unix(0, v.PublishedAt)
	ev.ReceivedAt = time.Unix(0, c.readAt)
	ev.Metadata.Sequence = d.meta.Sequence
	ev.Final = v.Final
}

// recordCorrelation records the publish v of correlation d, before it is
// routed: no subscriber can receive a message, and answer it, before the
// history holds it, so the history never puts an answer before its cause.
// It cannot be refused: its metadata passed the checks when it was
// defined, and Config.Validate makes the history large enough for any
// message. It can fail only once the broker is shutting down; the
// message is delivered all the same.
func (c *conn) recordCorrelation(d *corrDef, v *wire.PublishView) {
	c.stageEvent(v, d)
	err := d.rec.Check(&d.ev, d.recorded)
	if err == nil {
		err = d.rec.Record(&d.ev)
	}
	d.recorded = err == nil
	if err != nil {
		c.b.connLog.log(slog.LevelWarn, uidKey(c.peer), "correlated publish not recorded", "conn", c.id, "pid", c.peer.PID, "err", err)
	}
	d.ev.Payload = nil // do not pin the read buffer
}

// compileFilter validates a SUBSCRIBE's filter; nil means none.
func compileFilter(wf *wire.CorrelationFilter) (*correlation.Compiled, error) {
	if wf == nil {
		return nil, nil
	}
	f := wireconv.FilterFromWire(wf)
	if f.IsEmpty() {
		return nil, nil
	}
	c, err := f.Compile()
	if err != nil {
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "subscribe filter: %v", err)
	}
	return c, nil
}
