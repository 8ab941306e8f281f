package eventbus

import (
	"errors"
	"fmt"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/wire"
)

func (c *Client) lookupSub(id uint64) *Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[id]
}

// readLoop handles frames from the broker until the connection fails.
func (c *Client) readLoop(cc *clientConn) error {
	for {
		t, body, err := cc.r.ReadFrame()
		if err != nil {
			return err
		}
		if err := c.handle(cc, t, body); err != nil {
			return err
		}
	}
}

func (c *Client) handle(cc *clientConn, t wire.Type, body []byte) error {
	switch t {
	case wire.TypeDeliver:
		return c.handleDeliver(cc, body)
	case wire.TypeMissed:
		var m wire.Missed
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed MISSED from broker: %w", err)
		}
		if s := c.lookupSub(m.SubscriptionId); s != nil {
			s.addMissed(m.Count)
		}
	case wire.TypeOK:
		var m wire.OK
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed OK from broker: %w", err)
		}
		c.resolve(m.RequestId, response{})
	case wire.TypePong:
		var m wire.Pong
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed PONG from broker: %w", err)
		}
		c.resolve(m.Id, response{})
	case wire.TypeStatsResponse:
		// Decoded once here; the generated code copies what it keeps, so
		// the reply outlives the read buffer.
		m := new(wire.StatsResponse)
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed STATS_RESPONSE from broker: %w", err)
		}
		c.resolve(m.RequestId, response{reply: m})
	case wire.TypeQueryResult:
		m := new(wire.QueryResult)
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed QUERY_RESULT from broker: %w", err)
		}
		c.resolve(m.RequestId, response{reply: m})
	case wire.TypeResponse:
		m := new(wire.Response)
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed RESPONSE from broker: %w", err)
		}
		c.resolve(m.RequestId, response{reply: m})
	case wire.TypeConfirm:
		var m wire.Confirm
		if err := m.UnmarshalVT(body); err != nil {
			return fmt.Errorf("eventbus: malformed CONFIRM from broker: %w", err)
		}
		c.mu.Lock()
		err := c.confirmedLocked(cc, m.PublishSeq)
		c.mu.Unlock()
		return err
	case wire.TypeError:
		return c.handleError(cc, body)
	default:
		return fmt.Errorf("eventbus: unexpected %v frame from broker", t)
	}
	return nil
}

func (c *Client) handleDeliver(cc *clientConn, body []byte) error {
	v := &cc.view
	if err := wire.DecodeDeliver(body, v); err != nil {
		return fmt.Errorf("eventbus: malformed DELIVER from broker: %w", err)
	}
	s := c.lookupSub(v.SubscriptionID)
	if s == nil {
		return nil // unsubscribed; the broker had already queued it
	}
	if v.Session != 0 && !v.Redelivered && s.duplicate(v.PublisherPID, v.Session, v.Sequence) {
		return nil
	}
	m := &Message{
		Topic:              cc.names.Get(v.Topic),
		Payload:            append([]byte(nil), v.Payload...),
		PublishedAt:        time.Unix(0, v.PublishedAt),
		ReceivedAt:         time.Unix(0, v.ReceivedAt),
		PublisherPID:       int(v.PublisherPID),
		PublisherUID:       v.PublisherUID,
		PublisherComponent: cc.names.Get(v.Component),
		Final:              v.Final,
		Sequence:           v.Sequence,
		PublisherSession:   v.Session,
		RequestID:          v.RequestID,
	}
	if v.Deadline != 0 {
		m.Deadline = time.Unix(0, v.Deadline)
	}
	if v.ReplyToken != 0 {
		m.replyToken, m.client, m.conn = v.ReplyToken, c, cc
	}
	if v.Correlation != nil || v.CorrelationRef != 0 {
		base, seq, err := cc.correlation(v)
		if err != nil {
			return fmt.Errorf("eventbus: DELIVER from broker: %w", err)
		}
		m.corrBase, m.corrSeq = base, seq
	}
	s.dispatch(m)
	return nil
}

// correlation returns the metadata of the DELIVER v, but its sequence,
// and the sequence (PROTOCOL.md §5.4.1). Metadata the broker defined a ref
// for is decoded once and shared by the messages that name the ref; so is
// metadata sent in full that repeats the last such but the sequence.
func (cc *clientConn) correlation(v *wire.DeliverView) (*correlation.Metadata, uint64, error) {
	ref := v.CorrelationRef
	if v.Correlation == nil {
		base, err := cc.corrRefs.Lookup(ref)
		return base, v.CorrelationSeq, err
	}
	if ref == 0 {
		// Metadata the publisher sent in full without a ref, delivered as
		// published: a stream usually repeats it but the sequence.
		if seq, ok := cc.anonShape.Match(v.Correlation); ok {
			return cc.anonBase, seq, nil
		}
		cc.anonShape.Reset()
	}
	base := new(correlation.Metadata)
	if err := wireconv.DecodeMetadata(v.Correlation, &cc.corrView, &cc.names, nil, base); err != nil {
		return nil, 0, err
	}
	seq := base.Sequence
	base.Sequence = 0
	if ref == 0 {
		cc.anonBase = base
		cc.anonShape.Set(v.Correlation)
	} else if err := cc.corrRefs.Define(ref, base); err != nil {
		return nil, 0, err
	}
	return base, seq, nil
}

func (c *Client) handleError(cc *clientConn, body []byte) error {
	var f wire.ErrorFrame
	if err := f.UnmarshalVT(body); err != nil {
		return fmt.Errorf("eventbus: malformed ERROR from broker: %w", err)
	}
	e := wire.FromProto(&f)
	if f.PublishSeq != 0 && !f.Fatal {
		c.mu.Lock()
		if c.conn == cc {
			cc.refused(f.PublishSeq)
		}
		c.mu.Unlock()
	}
	switch {
	case f.RequestId != 0: // a request's answer; for a refused request, its publish's too
		c.resolve(f.RequestId, response{err: e})
	case f.Fatal:
		return e
	default:
		c.reportAsync(fmt.Errorf("eventbus: publish #%d to %s refused: %w", f.PublishSeq, f.Topic, e))
	}
	return nil
}

func (c *Client) resolve(id uint64, resp response) {
	c.mu.Lock()
	r := c.requests[id]
	delete(c.requests, id)
	c.mu.Unlock()
	switch {
	case r != nil:
		r.ch <- resp
	case errors.Is(resp.err, ErrRequestTimeout), errors.Is(resp.err, ErrNoResponders), errors.Is(resp.err, ErrTooManyRequests):
		// The fate of a request whose Request already returned at ctx's end.
	case resp.err != nil:
		c.reportAsync(resp.err) // a restored subscription the broker refused
	}
}

// reportAsync keeps err for Flush and passes it to the error handler.
func (c *Client) reportAsync(err error) {
	c.mu.Lock()
	if len(c.asyncErrs) < maxAsyncErrors {
		c.asyncErrs = append(c.asyncErrs, err)
	}
	c.mu.Unlock()
	if c.opts.onError != nil {
		c.opts.onError(err)
	}
}
