package eventbus

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/wire"
)

// Message is one delivered message.
type Message struct {
	Topic   string
	Payload []byte
	// PublishedAt is the publisher's clock when it published.
	PublishedAt time.Time
	// ReceivedAt is the broker's clock when it received the message.
	ReceivedAt time.Time
	// Publisher identity as the broker's kernel reported it, not as the
	// publisher claimed.
	PublisherPID       int
	PublisherUID       uint32
	PublisherComponent string
	// Final marks the publisher's last result for the message's
	// correlation (see Correlation).
	Final bool
	// Missed is how many messages for this subscription were dropped just
	// before this one, by the broker (its queue for this subscriber was
	// full) or by this client (the subscription's channel was full).
	Missed uint64

	// The correlation metadata but the sequence number, shared by the
	// messages that repeat it and never handed out; nil: none.
	corrBase *correlation.Metadata
	corrSeq  uint64
	corrOnce sync.Once
	meta     *correlation.Metadata
}

// Correlation returns the message's correlation metadata, or nil if it
// has none. The first call builds it (a subscriber that never looks pays
// nothing) and later calls return the same value, which the caller may
// modify. Safe for concurrent use.
func (m *Message) Correlation() *correlation.Metadata {
	if m.corrBase != nil {
		m.corrOnce.Do(m.buildCorrelation)
	}
	return m.meta
}

func (m *Message) buildCorrelation() {
	meta := *m.corrBase
	meta.Sequence = m.corrSeq
	meta.Tags = maps.Clone(m.corrBase.Tags)
	m.meta = &meta
}

// Subscription receives the messages matching its patterns, on C or
// through its handler.
type Subscription struct {
	c        *Client
	id       uint64
	patterns []string
	filter   *wire.CorrelationFilter // nil: none
	handler  func(*Message)

	// C delivers messages for channel subscriptions; it is closed by
	// Unsubscribe and Close. Nil for handler subscriptions.
	C <-chan *Message

	mu      sync.Mutex
	ch      chan *Message
	closed  bool
	pending uint64 // missed count to attach to the next message

	missed atomic.Uint64
}

// Patterns returns the subscription's patterns.
func (s *Subscription) Patterns() []string { return append([]string(nil), s.patterns...) }

// Missed returns how many messages this subscription has missed in all.
func (s *Subscription) Missed() uint64 { return s.missed.Load() }

// Subscribe subscribes to patterns; messages arrive on the returned
// subscription's C, which holds up to the WithChannelSize bound. When it is
// full, messages are dropped and counted in Missed rather than stalling the
// connection.
func (c *Client) Subscribe(ctx context.Context, patterns ...string) (*Subscription, error) {
	ch := make(chan *Message, c.opts.channelSize)
	s := &Subscription{c: c, patterns: patterns, ch: ch, C: ch}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeFunc subscribes to patterns and calls handler for each
// message, on the client's reader goroutine: handler must return quickly
// and must not call the Client's blocking methods.
func (c *Client) SubscribeFunc(ctx context.Context, handler func(*Message), patterns ...string) (*Subscription, error) {
	s := &Subscription{c: c, patterns: patterns, handler: handler}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeOptions configures SubscribeWith.
type SubscribeOptions struct {
	Patterns []string
	// Filter, if set, has the broker deliver only messages whose
	// correlation metadata matches it (SPEC §5); others never cross the
	// socket. It is validated (limits) before sending.
	Filter *correlation.Filter
	// Handler, if set, receives messages as SubscribeFunc's does;
	// otherwise they arrive on the subscription's C.
	Handler func(*Message)
}

// SubscribeWith subscribes as Subscribe or SubscribeFunc does, with a
// correlation filter.
func (c *Client) SubscribeWith(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	s := &Subscription{c: c, patterns: o.Patterns, handler: o.Handler}
	if o.Handler == nil {
		ch := make(chan *Message, c.opts.channelSize)
		s.ch, s.C = ch, ch
	}
	if o.Filter != nil && !o.Filter.IsEmpty() {
		if _, err := o.Filter.Compile(); err != nil {
			return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "subscribe: %v", err)
		}
		s.filter = filterToWire(o.Filter)
	}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Client) subscribe(ctx context.Context, s *Subscription) error {
	for _, p := range s.patterns {
		if err := topic.ValidatePattern(p); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "subscribe: %v", err)
		}
	}
	if len(s.patterns) == 0 {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "subscribe: no patterns")
	}
	s.patterns = append([]string(nil), s.patterns...)
	c.mu.Lock()
	c.nextID++
	s.id = c.nextID
	c.subs[s.id] = s
	c.mu.Unlock()
	_, err := c.roundTrip(ctx, wire.TypeSubscribe, func(id uint64) wire.Message {
		return &wire.Subscribe{RequestId: id, SubscriptionId: s.id, Patterns: s.patterns, Filter: s.filter}
	})
	if err != nil {
		c.mu.Lock()
		delete(c.subs, s.id)
		c.mu.Unlock()
		s.close()
		return fmt.Errorf("eventbus: subscribe %v: %w", s.patterns, err)
	}
	return nil
}

// Unsubscribe ends the subscription and closes C. Messages the broker had
// already queued for it are discarded.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	_, live := c.subs[s.id]
	delete(c.subs, s.id)
	c.mu.Unlock()
	s.close()
	if !live {
		return nil
	}
	_, err := c.roundTrip(ctx, wire.TypeUnsubscribe, func(id uint64) wire.Message {
		return &wire.Unsubscribe{RequestId: id, SubscriptionId: s.id}
	})
	if err != nil {
		return fmt.Errorf("eventbus: unsubscribe %v: %w", s.patterns, err)
	}
	return nil
}

func (s *Subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.ch != nil {
		close(s.ch)
	}
	s.closed = true
}

// dispatch hands m to the subscription without ever blocking the reader.
func (s *Subscription) dispatch(m *Message) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	m.Missed, s.pending = s.pending, 0
	if s.handler != nil {
		s.mu.Unlock()
		s.handler(m)
		return
	}
	select {
	case s.ch <- m:
	default:
		s.pending++
		s.missed.Add(1)
	}
	s.mu.Unlock()
}

// addMissed records drops the broker reported.
func (s *Subscription) addMissed(n uint64) {
	s.mu.Lock()
	s.pending += n
	s.mu.Unlock()
	s.missed.Add(n)
}

func (c *Client) closeSubs() {
	c.mu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
}

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
	case wire.TypeError:
		return c.handleError(body)
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
	m := &Message{
		Topic:              cc.names.get(v.Topic),
		Payload:            append([]byte(nil), v.Payload...),
		PublishedAt:        time.Unix(0, v.PublishedAt),
		ReceivedAt:         time.Unix(0, v.ReceivedAt),
		PublisherPID:       int(v.PublisherPID),
		PublisherUID:       v.PublisherUID,
		PublisherComponent: cc.names.get(v.Component),
		Final:              v.Final,
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
	if ref > wire.MaxCorrelationRef {
		return nil, 0, fmt.Errorf("correlation ref %d out of range 1-%d", ref, wire.MaxCorrelationRef)
	}
	if v.Correlation == nil {
		if int(ref) > len(cc.corrRefs) || cc.corrRefs[ref-1] == nil {
			return nil, 0, fmt.Errorf("correlation ref %d was never defined", ref)
		}
		return cc.corrRefs[ref-1], v.CorrelationSeq, nil
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
	if err := decodeCorrelation(v.Correlation, &cc.corrView, &cc.names, nil, base); err != nil {
		return nil, 0, err
	}
	seq := base.Sequence
	base.Sequence = 0
	if ref == 0 {
		cc.anonBase = base
		cc.anonShape.Set(v.Correlation)
	} else {
		for int(ref) > len(cc.corrRefs) {
			cc.corrRefs = append(cc.corrRefs, nil)
		}
		cc.corrRefs[ref-1] = base
	}
	return base, seq, nil
}

func (c *Client) handleError(body []byte) error {
	var f wire.ErrorFrame
	if err := f.UnmarshalVT(body); err != nil {
		return fmt.Errorf("eventbus: malformed ERROR from broker: %w", err)
	}
	e := wire.FromProto(&f)
	switch {
	case f.RequestId != 0:
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
	if r != nil {
		r.ch <- resp
	} else if resp.err != nil {
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
