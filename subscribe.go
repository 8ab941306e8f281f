package eventbus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/wire"
)

// Subscription receives the messages matching its patterns, on C or
// through its handler.
type Subscription struct {
	c        *Client
	id       uint64
	patterns []string
	filter   *wire.CorrelationFilter // nil: none
	handler  func(*Message)
	// Its queue group, the group's strategy, and whether it answers
	// requests (SubscribeOptions).
	group     string
	strategy  GroupStrategy
	responder bool

	// C delivers messages for channel subscriptions; it is closed by
	// Unsubscribe and Close. Nil for handler subscriptions.
	C <-chan *Message

	mu      sync.Mutex
	ch      chan *Message
	closed  bool
	pending uint64 // missed count to attach to the next message

	missed atomic.Uint64

	// The highest sequence delivered from each publisher session, to drop
	// resent duplicates (duplicate); used by the reader goroutine only.
	seen       map[publisherKey]*seenSession
	lastKey    publisherKey
	lastSeen   *seenSession
	deliveries uint64 // deliveries checked, the clock of seenSession.used
	duplicates atomic.Uint64
	gaps       chan Gap
	onGap      func(Gap)
}

// publisherKey is one publisher session: the pid the kernel reported for
// the publisher, so that no other process can pass for it, and the session
// it chose.
type publisherKey struct {
	pid     int32
	session uint64
}

// seenSession is what a subscription remembers of one publisher session.
type seenSession struct {
	seq  uint64 // the highest sequence delivered
	used uint64 // when, in deliveries, it last delivered
}

// maxSeenPublishers bounds the publisher sessions a subscription
// remembers for duplicate suppression; past it, the one silent longest is
// forgotten, so a peer opening many sessions cannot push out a session
// that is still publishing.
const maxSeenPublishers = 4096

// duplicate reports whether a delivery numbered seq from the publisher
// session (pid, session) was delivered before: one publisher's messages
// reach a subscription in sequence order, so anything not above the
// highest seen is a copy resent after a reconnect.
func (s *Subscription) duplicate(pid int32, session, seq uint64) bool {
	s.deliveries++
	k := publisherKey{pid, session}
	if s.lastSeen == nil || k != s.lastKey {
		p := s.seen[k]
		if p == nil {
			if s.seen == nil {
				s.seen = make(map[publisherKey]*seenSession)
			}
			if len(s.seen) >= maxSeenPublishers {
				s.forgetOldest()
			}
			p = new(seenSession)
			s.seen[k] = p
		}
		s.lastKey, s.lastSeen = k, p
	}
	p := s.lastSeen
	p.used = s.deliveries
	if seq <= p.seq {
		s.duplicates.Add(1)
		return true
	}
	p.seq = seq
	return false
}

// forgetOldest forgets the session silent longest: a scan, paid only when
// a new session arrives with the table full.
func (s *Subscription) forgetOldest() {
	var oldest publisherKey
	var at uint64
	first := true
	for k, p := range s.seen {
		if first || p.used < at {
			oldest, at, first = k, p.used, false
		}
	}
	delete(s.seen, oldest)
	if oldest == s.lastKey {
		s.lastSeen = nil
	}
}

// Duplicates returns how many resent copies of messages it had already
// delivered this subscription dropped.
func (s *Subscription) Duplicates() uint64 { return s.duplicates.Load() }

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
	s := &Subscription{c: c, patterns: patterns, ch: ch, C: ch, gaps: make(chan Gap, gapBuffer)}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeFunc subscribes to patterns and calls handler for each
// message, on the client's reader goroutine: handler must return quickly
// and must not call the Client's blocking methods.
func (c *Client) SubscribeFunc(ctx context.Context, handler func(*Message), patterns ...string) (*Subscription, error) {
	s := &Subscription{c: c, patterns: patterns, handler: handler, gaps: make(chan Gap, gapBuffer)}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeOptions configures SubscribeWith.
type SubscribeOptions struct {
	Patterns []string
	// Filter, if set, has the broker deliver only messages whose
	// correlation metadata matches it; others never cross the
	// socket. It is validated (limits) before sending.
	Filter *correlation.Filter
	// Handler, if set, receives messages as SubscribeFunc's does;
	// otherwise they arrive on the subscription's C.
	Handler func(*Message)
	// OnGap, if set, receives the gap notices (Gap) on the client's
	// goroutine, as Handler does; otherwise they arrive on Gaps.
	OnGap func(Gap)
	// Group, if set, makes the subscription a member of that queue group:
	// each message the group's members match goes to one of them, chosen
	// by Strategy, which the group's first member sets (a member asking
	// for another one is refused).
	Group    string
	Strategy GroupStrategy
	// Responder makes the subscription answer requests (Client.Request):
	// the requests it receives can be answered with Message.Reply, and it
	// counts as a responder, so a request it matches does not fail with
	// ErrNoResponders. Other subscriptions see requests as plain messages.
	Responder bool
}

// GroupStrategy chooses which member of a queue group gets a message.
type GroupStrategy int32

// Queue group strategies.
const (
	// RoundRobin takes the members in turn (the default).
	RoundRobin = GroupStrategy(wire.GroupStrategy_GROUP_STRATEGY_ROUND_ROBIN)
	// LeastLoaded takes the member with the fewest requests in flight,
	// then the fewest messages queued.
	LeastLoaded = GroupStrategy(wire.GroupStrategy_GROUP_STRATEGY_LEAST_LOADED)
	// FirstAvailable takes the first member whose queue has room.
	FirstAvailable = GroupStrategy(wire.GroupStrategy_GROUP_STRATEGY_FIRST_AVAILABLE)
	// Random takes a member at random.
	Random = GroupStrategy(wire.GroupStrategy_GROUP_STRATEGY_RANDOM)
)

// SubscribeWith subscribes as Subscribe or SubscribeFunc does, with a
// correlation filter.
func (c *Client) SubscribeWith(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	s := &Subscription{c: c, patterns: o.Patterns, handler: o.Handler, onGap: o.OnGap, gaps: make(chan Gap, gapBuffer),
		group: o.Group, strategy: o.Strategy, responder: o.Responder}
	if o.Handler == nil {
		ch := make(chan *Message, c.opts.channelSize)
		s.ch, s.C = ch, ch
	}
	if o.Filter != nil && !o.Filter.IsEmpty() {
		if _, err := o.Filter.Compile(); err != nil {
			return nil, fmt.Errorf("eventbus: subscribe: %w", wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "%v", err))
		}
		s.filter = wireconv.FilterToWire(o.Filter)
	}
	if err := c.subscribe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Client) subscribe(ctx context.Context, s *Subscription) error {
	for _, p := range s.patterns {
		if err := topic.ValidatePattern(p); err != nil {
			return fmt.Errorf("eventbus: subscribe: %w", wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "%v", err))
		}
	}
	if len(s.patterns) == 0 {
		return fmt.Errorf("eventbus: subscribe: %w", wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "no patterns"))
	}
	s.patterns = append([]string(nil), s.patterns...)
	c.mu.Lock()
	c.nextID++
	s.id = c.nextID
	c.subs[s.id] = s
	c.mu.Unlock()
	_, err := c.roundTrip(ctx, wire.TypeSubscribe, func(id uint64) wire.Message { return s.wire(id) })
	if err != nil {
		c.mu.Lock()
		delete(c.subs, s.id)
		c.mu.Unlock()
		s.close()
		return fmt.Errorf("eventbus: subscribe %v: %w", s.patterns, err)
	}
	return nil
}

// wire is the SUBSCRIBE frame of s, as request requestID.
func (s *Subscription) wire(requestID uint64) *wire.Subscribe {
	return &wire.Subscribe{RequestId: requestID, SubscriptionId: s.id, Patterns: s.patterns, Filter: s.filter,
		Group: s.group, Strategy: wire.GroupStrategy(s.strategy), Responder: s.responder}
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

var strategyNames = map[GroupStrategy]string{RoundRobin: "round-robin", LeastLoaded: "least-loaded", FirstAvailable: "first-available", Random: "random"}

// String is the strategy's name: round-robin, least-loaded,
// first-available or random.
func (s GroupStrategy) String() string {
	if n, ok := strategyNames[s]; ok {
		return n
	}
	return fmt.Sprintf("GroupStrategy(%d)", int32(s))
}

// ParseGroupStrategy returns the strategy String names.
func ParseGroupStrategy(name string) (GroupStrategy, error) {
	for s, n := range strategyNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("eventbus: unknown group strategy %q (round-robin, least-loaded, first-available, random)", name)
}
