package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Version is the eventbus release, reported by `eventbus version` and in
// the handshake.
const Version = "0.1.0"

// Broker routes messages between connected clients. Create one with New,
// give it listeners with Serve (or ListenAndServe), and stop it with
// Shutdown or Close.
type Broker struct {
	cfg     Config
	policy  *acl.Policy
	denials *acl.DenialLog
	tracker *correlation.Tracker
	routes  *routes
	started time.Time
	epoch   uint64         // random at New (PROTOCOL.md §5.1)
	topics  *stats.Topics  // nil when statistics are off
	latency *stats.Latency // nil when statistics are off
	nextID  atomic.Uint64

	connsTotal     atomic.Uint64
	connsRefused   atomic.Uint64
	protocolErrors atomic.Uint64
	limits         limitCounts
	queryHeld      atomic.Int64 // query memory reserved (max_query_memory)
	queryHeldAnon  atomic.Int64 // the part anonymous peers reserved
	connLog        *lineLimiter // connection lines, per uid
	requests       requests     // pending requests (request.go)
	groups         groups       // queue groups (group.go)
	registry       registry     // registered collectors (registry.go)
	internal       internalPublisher
	replies        atomic.Uint64 // replies routed to their requester
	repliesDropped atomic.Uint64 // replies to no request the replier held
	noResponders   atomic.Uint64 // requests no responder took
	redelivered    atomic.Uint64 // requests given to another group member
	// groupDuplicates counts resent publishes a queue group had given to
	// a member already.
	groupDuplicates atomic.Uint64
	janitorOnce     sync.Once
	self            string // uidKey of the broker's own user

	mu             sync.Mutex
	listeners      map[net.Listener]struct{}
	conns          map[*conn]struct{}
	remote         int            // conns that count against MaxConnections
	perUID         map[string]int // remote conns by uidKey, exempt users not counted
	waitsPerUID    map[string]int // waits in progress by uidKey
	patternsPerUID map[string]int // subscription patterns by uidKey
	closed         connCounters   // totals of connections already gone
	closing        bool           // Shutdown or Close has begun
	done           chan struct{}  // closed when closing begins
	wg             sync.WaitGroup // every goroutine the broker started
}

// connCounters are per-connection message counts.
type connCounters struct{ published, delivered, dropped uint64 }

// New returns a broker configured by cfg; zero fields take the defaults
// documented on Config. cfg is copied, never modified.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	policy, err := loadPolicy(cfg)
	if err != nil {
		return nil, err
	}
	tracker, err := correlation.NewTracker(correlation.Config{
		MaxEvents:   cfg.HistoryMaxEvents,
		MaxBytes:    int64(cfg.HistoryMaxBytes),
		IdleTimeout: cfg.WorkflowIdleTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: correlation history: %w", err)
	}
	b := &Broker{
		cfg:            cfg,
		policy:         policy,
		denials:        acl.NewDenialLog(cfg.Logger, denialLogsPerSecond),
		tracker:        tracker,
		routes:         newRoutes(policy),
		started:        time.Now(),
		epoch:          rand.Uint64() | 1, // never 0, which a client reads as unknown
		listeners:      make(map[net.Listener]struct{}),
		conns:          make(map[*conn]struct{}),
		perUID:         make(map[string]int),
		waitsPerUID:    make(map[string]int),
		patternsPerUID: make(map[string]int),
		self:           uidKey(inProcessPeer()),
		done:           make(chan struct{}),
	}
	b.connLog = newLineLimiter(cfg.Logger, cfg.LogLinesPerSecond, &b.limits)
	if cfg.StatisticsEnabled() {
		b.topics = stats.NewTopics(stats.DefaultTopicLimit)
		b.latency = stats.NewLatency()
	}
	return b, nil
}

// denialLogsPerSecond bounds denial log lines per component; every denial
// is still counted.
const denialLogsPerSecond = 5

// loadPolicy returns the configured policy, or the built-in one, with the
// agent token loaded (and its file created if missing).
func loadPolicy(cfg Config) (*acl.Policy, error) {
	p := cfg.Policy
	if p == nil && cfg.PolicyFile != "" {
		var err error
		if p, err = acl.Load(cfg.PolicyFile); err != nil {
			return nil, err
		}
	}
	if p == nil {
		p = acl.DefaultFor(inProcessPeer()) // admits the broker's own user (uid, or SID on Windows)
	}
	tokenFile := p.TokenFile()
	if tokenFile == "" {
		tokenFile = cfg.AgentTokenFile
	}
	if tokenFile == "" {
		return p, nil
	}
	token, err := acl.EnsureTokenFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("eventbus: agent token: %w", err)
	}
	return p.WithAgentToken(token), nil
}

// Tracker returns the broker's correlation tracker: the history of every
// correlated message, workflows, forensic queries and Wait (docs/CORRELATION.md).
func (b *Broker) Tracker() *correlation.Tracker { return b.tracker }

// Policy returns the access-control policy in force.
func (b *Broker) Policy() *acl.Policy { return b.policy }

// Config returns the broker's effective configuration.
func (b *Broker) Config() Config { return b.cfg }

// ListenAndServe listens on the configured socket path (default
// transport.DefaultPath()) and serves it until the broker stops.
func (b *Broker) ListenAndServe() error {
	path := b.cfg.SocketPath
	if path == "" {
		path = transport.DefaultPath()
	}
	ln, err := transport.Listen(path, b.cfg.ListenOptions()...)
	if err != nil {
		return err
	}
	return b.Serve(ln)
}

// Serve accepts connections on ln until the broker stops, and then closes
// ln. It always returns a non-nil error: ErrBrokerClosed after Shutdown or
// Close.
func (b *Broker) Serve(ln net.Listener) error {
	if !b.trackListener(ln, true) {
		ln.Close()
		return ErrBrokerClosed
	}
	defer b.trackListener(ln, false)
	b.janitorOnce.Do(func() { b.goFunc(b.janitor) }) // socket peers need it; in-process ones do not
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if b.isClosing() {
				return ErrBrokerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than spin or give up.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.cfg.Logger.Warn("accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-b.done:
			}
			continue
		}
		delay = 0
		b.accept(nc)
	}
}

func (b *Broker) accept(nc net.Conn) {
	peer, err := transport.PeerOf(nc)
	if err != nil {
		b.cfg.Logger.Warn("refusing connection: no peer credentials", "err", err)
		nc.Close()
		return
	}
	c := newConn(b, nc, peer, false)
	evict, refusal := b.addConn(c)
	if refusal != nil {
		b.refuse(c, refusal)
		return
	}
	if evict != nil {
		evict.closeWith(CloseEvicted, nil)
	}
	if !b.goFunc(c.serve) {
		c.closeWith(CloseBrokerShutdown, nil)
	}
}

// goFunc runs f on a goroutine the broker waits for at shutdown. It
// refuses once shutdown has begun, so no goroutine outlives the broker.
func (b *Broker) goFunc(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

func (b *Broker) trackListener(ln net.Listener, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		if b.closing {
			return false
		}
		b.listeners[ln] = struct{}{}
	} else {
		delete(b.listeners, ln)
	}
	return true
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// beginClose stops the listeners and returns the live connections, or
// nil if closing had already begun.
func (b *Broker) beginClose() []*conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return nil
	}
	b.closing = true
	close(b.done)
	for ln := range b.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown stops accepting connections, tells every client the broker is
// shutting down, lets each connection write what is queued for it, and
// returns when all are closed or ctx ends; then it closes what is left and
// returns ctx's error.
func (b *Broker) Shutdown(ctx context.Context) error {
	for _, c := range b.beginClose() {
		c.drain()
	}
	finished := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(finished)
	}()
	defer b.tracker.Close() // wakes Wait callers; the history stays readable
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		b.cut()
		<-finished
		return ctx.Err()
	}
}

// Close stops the broker at once: listeners and connections are closed
// and queued messages discarded. It waits for the broker's goroutines.
func (b *Broker) Close() error {
	b.beginClose()
	b.cut()
	b.wg.Wait()
	b.tracker.Close() // wakes Wait callers; the history stays readable
	return nil
}

func (b *Broker) cut() {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.closeWith(CloseBrokerShutdown, nil)
	}
}

// route delivers one published message to every matching subscription
// whose correlation filter, if any, meta matches (nil: the message has no
// correlation); named, if not nil, is the correlation to name by ref in
// each DELIVER (PROTOCOL.md §5.4.1), else d carries it as published.
// It runs on the publisher's reader goroutine and never blocks on a
// subscriber: a full queue drops (docs/PROTOCOL.md §7). Subscribers whose queue was
// empty are appended to from.wake so the caller can wake them in a batch.
//
// pr, if not nil, is the request d is: responders get it with its reply
// token and become its holders. Queue group members are collected and
// given d one per group, after every index is consulted (deliverGroups).
func (b *Broker) route(from *conn, d *wire.Delivery, topicName []byte, meta *correlation.Metadata, named *corrDef, pr *pendingRequest) {
	b.deliverAll(from, b.routes.main.MatchBytes(topicName), d, meta, named, pr)
	for _, cr := range *b.routes.classes.Load() {
		if cr.access.CheckBytes(acl.Subscribe, topicName) == nil {
			b.deliverAll(from, cr.index.MatchBytes(topicName), d, meta, named, pr)
		}
	}
	if len(from.groupCands) > 0 {
		b.deliverGroups(from, d, topicName, meta, named, pr)
	}
	from.published.Add(1)
	if b.topics != nil {
		b.topics.Inc(topicName)
	}
}

// deliverAll queues d for each of subs whose correlation filter, if any,
// meta matches; members of queue groups are left to deliverGroups.
func (b *Broker) deliverAll(from *conn, subs []*subscription, d *wire.Delivery, meta *correlation.Metadata, named *corrDef, pr *pendingRequest) {
	for _, s := range subs {
		switch {
		case s.filter != nil && !s.filter.Match(meta):
			continue // correlation filter: never crosses the socket
		case s.group != nil:
			from.groupCands = append(from.groupCands, s)
			continue
		}
		b.deliverOne(from, s, d, named, pr, true)
	}
}

// deliverOne queues d for s. A request's reply token goes only to a
// responder, which becomes a holder of the request. from, the publisher
// whose reader routes (nil when redelivering), wakes the subscriber at the
// end of its read batch; a drop, if countDrop, is counted for s.
func (b *Broker) deliverOne(from *conn, s *subscription, d *wire.Delivery, named *corrDef, pr *pendingRequest, countDrop bool) enqueueResult {
	if pr != nil && pr.recipient != "" && s.responder && s.c.component != pr.recipient {
		return discarded // a directed request, for another component's responders
	}
	if d.ReplyToken != 0 && !s.responder {
		plain := *d
		plain.ReplyToken = 0
		d = &plain
	}
	var pb *pubBatch
	if from != nil {
		pb = from.batch
	}
	sc := s.c
	holds := pr != nil && s.responder
	if holds {
		pr.hold(b, sc)
	}
	r := sc.out.deliver(s, d, named, pb, countDrop)
	if holds && (r == dropped || r == discarded) {
		pr.unhold(b, sc)
	}
	switch r {
	case enqueuedFirst:
		if from != nil {
			from.toWake = append(from.toWake, sc)
		}
	case dropped:
		if !countDrop {
			return r
		}
		// Wake the writer so the MISSED report (or, under the
		// disconnect policy, the close) happens even if nothing more
		// is published to this subscriber.
		sc.dropped.Add(1)
		sc.out.signal()
		if b.cfg.SlowSubscriberPolicy == SlowDisconnect {
			sc.slowOverflow()
		}
		return r
	}
	return r
}

// Stats returns a snapshot of the broker's statistics.
func (b *Broker) Stats() stats.Snapshot {
	b.mu.Lock()
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	totals := b.closed
	b.mu.Unlock()

	s := stats.Snapshot{
		StartedAt:          b.started,
		TakenAt:            time.Now(),
		StatisticsEnabled:  b.topics != nil,
		MaxConnections:     b.cfg.MaxConnections,
		ConnectionsTotal:   b.connsTotal.Load(),
		ConnectionsRefused: b.connsRefused.Load(),
		ProtocolErrors:     b.protocolErrors.Load(),
		Connections:        len(conns),
		Topics:             []stats.TopicCount{},
		ConnectionList:     []stats.Connection{},
	}
	patterns := make(map[string]int)
	for _, c := range conns {
		cs := c.snapshot(patterns)
		totals.published += cs.Published
		totals.delivered += cs.Delivered
		totals.dropped += cs.Dropped
		s.ConnectionList = append(s.ConnectionList, cs)
	}
	s.Published, s.Delivered, s.Dropped = totals.published, totals.delivered, totals.dropped
	s.Patterns = sortedPatterns(patterns)
	s.Denials = sortedDenials(b.denials.Snapshot())
	s.Limits = b.limits.snapshot()
	s.RSSBytes, s.HeapBytes = rssBytes(), heapBytes()
	s.Epoch = b.epoch
	b.requests.mu.Lock()
	s.Requests.Pending = uint64(len(b.requests.byToken))
	b.requests.mu.Unlock()
	s.Requests.Replies, s.Requests.RepliesDropped = b.replies.Load(), b.repliesDropped.Load()
	s.Requests.NoResponders, s.Requests.Redelivered = b.noResponders.Load(), b.redelivered.Load()
	s.Requests.GroupDuplicates = b.groupDuplicates.Load()
	sortConnections(s.ConnectionList)
	if b.topics != nil {
		s.Topics, s.PublishedUntracked = b.topics.Snapshot()
		s.DeliveryLatency = b.latency.Snapshot()
	}
	return s
}
