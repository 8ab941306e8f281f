package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/internal/intern"
	"daemoneye.dev/eventbus/internal/nbwrite"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// readBufferSize holds many small frames, so one read syscall serves a
// burst.
const (
	readBufferSize = 32 << 10
	maxNameLen     = 256
)

// conn is one client connection, over a socket or in process. Its reader
// goroutine (serve) handles frames in order; its writer goroutine
// (writeFrames) sends what the out queue holds.
type conn struct {
	b         *Broker
	nc        net.Conn
	id        uint64
	peer      transport.Peer
	inProcess bool
	start     time.Time
	out       *outQueue
	done      chan struct{}   // closed by closeWith
	ctx       context.Context // canceled by closeWith: ends the connection's waits
	cancel    context.CancelFunc
	waits     atomic.Int32 // QUERY waits in progress

	// Set during the handshake, read-only afterwards. clientName,
	// component and identity are set under subsMu: Stats and closeWith may
	// read them from other goroutines while the handshake runs.
	clientName      string
	component       string
	publisherFields []byte // broker-owned envelope fields for this publisher
	identity        acl.Identity
	access          *acl.Cache // this connection's access decisions

	// Reader-goroutine state.
	r           *wire.Reader
	publishSeq  uint64
	readAt      int64   // when the frames being handled were read, Unix ns
	toWake      []*conn // subscribers whose queue this read batch made non-empty
	batchFrames int     // frames handled since the last wakeSubscribers
	direct      chunkbuf.Buffer
	directSpare batch
	// confirm numbers this connection's finished publishes (confirm.go);
	// nil when its HELLO asked for no confirmations. batch is the current
	// read batch's publishes.
	confirm *confirmer
	batch   *pubBatch
	session uint64 // the HELLO's session_id; read-only after the handshake
	// readIdle: the reader may be waiting for the peer (confirmQueued).
	readIdle atomic.Bool
	// groupCands collects a publish's queue group members (route).
	groupCands []*subscription

	// Requests (request.go), guarded by Broker.requests.mu: those this
	// connection made, and those it holds as a responder (inflight
	// counts them, for least-loaded groups).
	requests map[uint64]*pendingRequest
	holding  map[uint64]*pendingRequest
	inflight atomic.Int32

	strs intern.Table // topics and correlation strings
	corr publisherCorrelation

	raw syscall.RawConn // for direct writes to this connection; nil for pipes

	// Guarded by Broker.mu (admission.go).
	uidKey    string // the per-uid limit's key; "" when exempt or in process
	helloDone bool   // the handshake completed
	evicted   bool   // a newer connection took its slot

	lastRead atomic.Int64 // Unix ns of the last read from the peer, for idle_timeout

	published atomic.Uint64
	delivered atomic.Uint64
	dropped   atomic.Uint64
	draining  atomic.Bool
	slowWrite atomic.Bool   // a deadline bounds the writer: its queue overflowed under the disconnect policy
	reason    atomic.Uint32 // CloseReason; the first one set wins

	subsMu   sync.Mutex
	subs     map[uint64]*subscription
	patterns int  // patterns across subs
	subsDone bool // closed: no more subscriptions may be added

	closeOnce sync.Once
}

// subscription is one SUBSCRIBE: an id on its connection and its patterns.
type subscription struct {
	c        *conn
	id       uint64
	patterns []string
	filtered bool                  // its patterns may match topics its class may not read (routes)
	class    acl.Class             // the subscriber's access class
	filter   *correlation.Compiled // deliveries must match it; nil: no filter
	missed   uint64                // drops not yet reported; guarded by c.out.mu
	group    *group                // its queue group; nil: none
	// responder: requests delivered to it carry their reply token.
	responder bool
}

func newConn(b *Broker, nc net.Conn, peer transport.Peer, inProcess bool) *conn {
	c := &conn{
		b:         b,
		nc:        nc,
		id:        b.nextID.Add(1),
		peer:      peer,
		inProcess: inProcess,
		start:     time.Now(),
		out:       newOutQueue(b.cfg.MessageBufferSize, b.cfg.MaxPendingBytes, b.latency != nil),
		done:      make(chan struct{}),
		r:         wire.NewReader(bufio.NewReaderSize(nc, readBufferSize), b.cfg.MaxMessageSize+wire.FrameOverhead),
		subs:      make(map[uint64]*subscription),
		raw:       nbwrite.RawConn(nc),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.lastRead.Store(c.start.UnixNano())
	return c
}

// serve runs the connection: handshake, writer, then frames until EOF.
func (c *conn) serve() {
	if err := c.acceptHello(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.b.limits.hit(limitHandshakeTimeout)
		}
		c.b.connLog.log(slog.LevelDebug, uidKey(c.peer), "handshake failed", "conn", c.id, "pid", c.peer.PID, "err", err)
		c.closeWith(CloseHandshakeFailed, err)
		return
	}
	if !c.b.goFunc(c.writeFrames) {
		c.closeWith(CloseBrokerShutdown, nil)
		return
	}
	c.readFrames()
}

// acceptHello exchanges preambles and HELLO/HELLO_OK (PROTOCOL.md §2) within
// the handshake timeout, writing directly since the writer is not running.
func (c *conn) acceptHello() error {
	c.nc.SetDeadline(time.Now().Add(c.b.cfg.HandshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})
	hello, err := wire.ReadHello(c.r)
	if err == nil {
		err = checkHello(hello)
	}
	var id acl.Identity
	if err == nil {
		id, err = c.admit(hello)
	}
	if err == nil && hello.Capabilities != nil {
		if err = checkCapabilities(hello.Capabilities); err == nil && (!id.Registered || id.Agent) {
			err = wire.Errorf(wire.ErrorCode_ERROR_CODE_FORBIDDEN, "only a collector component the policy admits may register capabilities (claimed %q)", hello.Component)
		}
	}
	if err == nil {
		err = c.b.admitted(c, !id.Registered && !id.Agent)
	}
	if err != nil {
		return c.refuseHandshake(err)
	}
	c.access = acl.NewCache(c.b.policy, id, 0)
	c.subsMu.Lock()
	c.clientName, c.component, c.identity = hello.ClientName, id.Component, id
	c.subsMu.Unlock()
	if id.Agent {
		c.out.setTrusted()
	}
	if c.anonymous() {
		c.out.setMaxBytes(c.b.cfg.MaxPendingBytesAnonymous)
	}
	c.out.setFree(c.releaseQueryMemory)
	c.publisherFields = wire.AppendPublisherFields(nil, int32(c.peer.PID), c.peer.UID, c.component, hello.SessionId)
	if hello.SessionId != 0 {
		c.confirm = newConfirmer(c)
	}
	c.session = hello.SessionId
	ok := &wire.HelloOK{
		ConnectionId:     c.id,
		BrokerVersion:    Version,
		MaxMessageSize:   uint32(c.b.cfg.MaxMessageSize),
		MaxFrameSize:     uint32(c.b.cfg.MaxMessageSize + wire.FrameOverhead),
		MaxSubscriptions: uint32(c.b.cfg.MaxSubscriptions),
		BrokerEpoch:      c.b.epoch,
	}
	if hello.Capabilities != nil {
		ok.HeartbeatIntervalMs = uint32(c.b.cfg.HeartbeatInterval / time.Millisecond)
	}
	if _, err = c.nc.Write(wire.AppendOpening(nil, wire.TypeHelloOK, ok)); err != nil {
		return err
	}
	if hello.Capabilities != nil {
		c.b.register(c, hello.Capabilities)
	}
	return nil
}

func checkHello(h *wire.Hello) error {
	if len(h.ClientName) > maxNameLen {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "client name too long: %d bytes, limit %d", len(h.ClientName), maxNameLen)
	}
	return nil
}

// admit decides who the peer is (docs/SECURITY.md §3): the in-process client is the
// agent; a socket peer's claimed component is checked against the policy
// with the kernel's view of the peer.
func (c *conn) admit(h *wire.Hello) (acl.Identity, error) {
	if c.inProcess {
		return acl.InProcessIdentity(c.peer), nil
	}
	id, err := c.b.policy.Admit(c.peer, c.peer.Exe, h.Component, h.Token)
	if err != nil {
		c.b.denials.Record(err)
		return id, wire.Errorf(wire.ErrorCode_ERROR_CODE_FORBIDDEN, "%v", err)
	}
	return id, nil
}

// refuseHandshake sends our preamble and a fatal error, if the error is
// one the peer should hear about, and returns err.
func (c *conn) refuseHandshake(err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		c.nc.Write(wire.AppendRefusal(nil, we))
	}
	return err
}

func (c *conn) readFrames() {
	for {
		fresh := !c.r.HasFrame() // ReadFrame will read from the connection
		if fresh && c.confirm != nil {
			c.readIdle.Store(true)
			if c.out.confirmDue() { // queued by a subscriber's writer meanwhile
				c.flushOwn()
			}
		}
		t, body, err := c.r.ReadFrame()
		if fresh && c.confirm != nil {
			c.readIdle.Store(false)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if fresh {
			// Every frame of one read arrived together: one clock reading
			// serves them all as their receive time.
			c.readAt = time.Now().UnixNano()
			c.lastRead.Store(c.readAt)
		}
		c.batchFrames++
		if err := c.handleFrame(t, body); err != nil {
			c.fail(err)
			return
		}
		c.frameDone(!c.r.HasFrame())
	}
}

// frameDone ends the handling of a frame: at the end of a read batch it
// wakes the subscribers and lets go of the batch's publishes.
func (c *conn) frameDone(batchEnd bool) {
	if batchEnd {
		c.wakeSubscribers()
		c.endBatch()
	}
}

// endBatch releases the reader's hold on the read batch's publishes. When
// that finishes them (no subscriber, or direct writes took everything),
// the CONFIRM is written at once, as a direct write to this connection.
func (c *conn) endBatch() {
	b := c.batch
	if b == nil {
		return
	}
	c.batch = nil
	b.last = c.publishSeq
	if b.release() {
		c.flushOwn()
	}
}

// flushOwn writes c's own queue from its reader, as a direct write.
func (c *conn) flushOwn() {
	if nbwrite.Supported {
		c.flushSubscriber(c)
	} else {
		c.out.signal()
	}
}

// wakeSubscribers wakes, once per read batch, the writers whose queues
// this batch filled from empty: fewer wakeups, bigger writes.
func (c *conn) wakeSubscribers() {
	direct := nbwrite.Supported && c.batchFrames <= directMaxFrames && len(c.toWake) <= directMaxSubscribers
	for i, sc := range c.toWake {
		if direct {
			c.flushSubscriber(sc)
		} else {
			sc.out.signal()
		}
		c.toWake[i] = nil
	}
	c.toWake = c.toWake[:0]
	c.batchFrames = 0
}

func (c *conn) readFailed(err error) {
	c.wakeSubscribers()
	c.endBatch()
	switch {
	case c.draining.Load():
		// Shutdown set a read deadline; the writer finishes the connection.
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		c.closeWith(CloseClientClosed, nil)
	default:
		c.fail(err)
	}
}

// fail ends the connection on a protocol violation, telling the client why.
func (c *conn) fail(err error) {
	c.b.protocolErrors.Add(1)
	var we *wire.Error
	if !errors.As(err, &we) {
		c.closeWith(CloseProtocolError, err)
		return
	}
	we.Fatal = true
	c.out.control(wire.TypeError, we.ToProto(0, c.publishSeq))
	c.draining.Store(true) // the writer sends the error, then closes
	c.reason.CompareAndSwap(0, uint32(CloseProtocolError))
	c.out.signal()
}

// handleFrame processes one frame. A returned error is a protocol violation
// that ends the connection; refused requests are answered and return nil.
func (c *conn) handleFrame(t wire.Type, body []byte) error {
	switch t {
	case wire.TypePublish:
		c.handlePublish(body)
	case wire.TypeSubscribe:
		var m wire.Subscribe
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed SUBSCRIBE: %v", err)
		}
		if err := wire.CheckUTF8(&m); err != nil {
			return err
		}
		c.reply(m.RequestId, c.subscribe(&m))
	case wire.TypeUnsubscribe:
		var m wire.Unsubscribe
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed UNSUBSCRIBE: %v", err)
		}
		c.reply(m.RequestId, c.unsubscribe(m.SubscriptionId))
	case wire.TypeReply:
		return c.handleReply(body)
	case wire.TypeHeartbeat:
		return c.heartbeat(body)
	case wire.TypePing:
		var m wire.Ping
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed PING: %v", err)
		}
		c.sendReply(m.Id, wire.TypePong, &wire.Pong{Id: m.Id})
	case wire.TypeQuery:
		return c.handleQuery(body)
	case wire.TypeStatsRequest:
		var m wire.StatsRequest
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed STATS_REQUEST: %v", err)
		}
		snap := c.b.Stats()
		if c.anonymous() {
			snap = c.anonymousView(snap)
		}
		c.sendReply(m.RequestId, wire.TypeStatsResponse, &wire.StatsResponse{RequestId: m.RequestId, Stats: wireconv.StatsToWire(&snap)})
	default:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "a client may not send %v frames", t)
	}
	return nil
}

// handlePublish checks a PUBLISH and routes it (PROTOCOL.md §5.3).
func (c *conn) handlePublish(body []byte) {
	c.publishSeq++
	if c.confirm != nil && c.batch == nil {
		c.batch = c.confirm.begin()
	}
	v, err := wire.ScanPublish(body)
	if err == nil {
		err = c.checkPublish(v)
	}
	var corr *corrDef
	if err == nil && v.HasCorrelation() {
		// Only for an admitted publish: a refused one defines no ref
		// (PROTOCOL.md §5.3.1).
		corr, err = c.correlationOf(&v)
	}
	if err != nil {
		if v.Correlation != nil && v.CorrelationRef != 0 {
			c.undefine(v.CorrelationRef)
		}
		c.refusePublish(v.Topic, v.RequestID, err)
		return
	}
	d := wire.Delivery{Head: body, ReceivedAt: c.readAt, Publisher: c.publisherFields, Session: c.session, Sequence: v.Sequence}
	var meta *correlation.Metadata
	var named *corrDef // to name by a ref of each subscriber's
	if corr != nil {
		meta = &corr.meta
		if v.CorrelationRef != 0 {
			named = corr
			d.Head, d.Tail, c.corr.strip = v.Uncorrelated(body, c.corr.strip)
		}
	}
	var pr *pendingRequest
	if v.RequestID != 0 {
		if pr, err = c.beginRequest(v.RequestID, v.Deadline, v.Recipient); err != nil {
			c.reply(v.RequestID, err)
			return
		}
		d.ReplyToken = pr.token
	}
	if corr != nil {
		c.recordCorrelation(corr, &v)
	}
	c.b.route(c, &d, v.Topic, meta, named, pr)
	if pr != nil {
		c.endRouting(pr)
	}
}

// checkPublish applies the size limit and the access check to v. The
// check validates the topic on a cache miss, and a hit is a topic
// validated before: so the topic is validated once, and only on a miss.
func (c *conn) checkPublish(v wire.PublishView) error {
	if v.PayloadLen > c.b.cfg.MaxMessageSize {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE, "message too large: %d bytes, limit %d", v.PayloadLen, c.b.cfg.MaxMessageSize)
	}
	if err := c.access.CheckBytes(acl.Publish, v.Topic); err != nil {
		return c.publishRefused(v.Topic, err)
	}
	if topic.IsReservedBytes(v.Topic) {
		return reservedTopic(v.Topic)
	}
	return nil
}

// publishRefused is the error for a publish to topicName that the access
// check refused with err: the topic is invalid, reserved or denied.
func (c *conn) publishRefused(topicName []byte, err error) error {
	var invalid *topic.Error
	switch {
	case errors.As(err, &invalid):
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_TOPIC, "%v", invalid)
	case topic.IsReservedBytes(topicName):
		return reservedTopic(topicName)
	}
	return c.denied(err)
}

func reservedTopic(topicName []byte) error {
	return wire.Errorf(wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "topic %q is reserved for the broker", topicName)
}

// refusePublish answers a refused publish with an ERROR naming its
// publish_seq and, for a request, its request_id, so that the requester's
// wait ends too.
func (c *conn) refusePublish(topicName []byte, requestID uint64, err error) {
	we := wire.AsError(err)
	if len(topicName) <= topic.MaxTopicBytes && utf8.Valid(topicName) { // never echo what a decoder would refuse
		we.Topic = string(topicName)
	}
	c.b.connLog.log(slog.LevelDebug, uidKey(c.peer), "publish refused", "conn", c.id, "pid", c.peer.PID, "err", we)
	if !c.out.control(wire.TypeError, we.ToProto(requestID, c.publishSeq)) {
		c.b.limits.hit(limitPendingBytes)
	}
}

// denied counts and logs an access denial and returns it for the wire.
func (c *conn) denied(err error) *wire.Error {
	c.b.denials.Record(err)
	return wire.Errorf(wire.ErrorCode_ERROR_CODE_FORBIDDEN, "%v", err)
}

func (c *conn) reply(requestID uint64, err error) {
	if err != nil {
		c.sendReply(requestID, wire.TypeError, wire.AsError(err).ToProto(requestID, 0))
		return
	}
	c.sendReply(requestID, wire.TypeOK, &wire.OK{RequestId: requestID})
}

// sendReplyHolding queues a query's answer, which holds credit bytes of
// query memory until it is written; one that does not fit gives them
// back at once and is replaced by an error (replyDropped).
func (c *conn) sendReplyHolding(res *wire.QueryResult, credit int64) {
	if !c.out.replyHolding(wire.TypeQueryResult, res, credit) {
		c.releaseQueryMemory(credit)
		c.replyDropped(res.RequestId)
	}
}

// sendReply queues the answer to request requestID (outQueue.reply); one
// that does not fit is replaced by an error (replyDropped).
func (c *conn) sendReply(requestID uint64, t wire.Type, m wire.Message) {
	if !c.out.reply(t, m) {
		c.replyDropped(requestID)
	}
}

// replyDropped tells the client that the answer to requestID did not fit
// its queue, so no request goes unanswered: a small SLOW_CONSUMER error,
// which may take the queue up to twice max_pending_bytes. Past that the
// client reads nothing at all, and the connection is closed as a slow
// consumer: its requests then fail with the connection.
func (c *conn) replyDropped(requestID uint64) {
	c.b.limits.hit(limitPendingBytes)
	e := wire.Errorf(wire.ErrorCode_ERROR_CODE_SLOW_CONSUMER, "reply to request %d dropped: this connection's queue is full (max_pending_bytes)", requestID)
	f := e.ToProto(requestID, 0)
	if !c.out.queueControl(wire.TypeError, f, c.out.bound(), 0) {
		c.closeWith(CloseSlowConsumer, e)
	}
}

// drain begins a graceful close for Shutdown: no more frames are read,
// the client is told why, and the writer closes once its queue is empty.
func (c *conn) drain() {
	c.reason.CompareAndSwap(0, uint32(CloseBrokerShutdown))
	c.draining.Store(true)
	c.out.control(wire.TypeError, &wire.ErrorFrame{Code: wire.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "broker is shutting down", Fatal: true})
	c.nc.SetReadDeadline(time.Now())
	c.out.signal()
}

func (c *conn) drainReason() CloseReason { return CloseReason(c.reason.Load()) }

// closeWith closes the connection once; later calls do nothing.
func (c *conn) closeWith(reason CloseReason, err error) {
	c.closeOnce.Do(func() {
		c.reason.CompareAndSwap(0, uint32(reason))
		c.out.close()
		close(c.done)
		c.cancel()
		c.nc.Close()
		c.subsMu.Lock()
		for _, s := range c.subs {
			c.removeSubLocked(s)
		}
		c.subsDone = true
		component := c.component
		c.subsMu.Unlock()
		c.closeRequests()
		c.b.deregister(c, "deregistered")
		c.b.removeConn(c)
		level := slog.LevelInfo
		if errors.Is(err, io.EOF) && CloseReason(c.reason.Load()) == CloseHandshakeFailed {
			level = slog.LevelDebug // a dial that sent nothing, such as a liveness probe
		}
		c.b.connLog.log(level, uidKey(c.peer), "connection closed", "conn", c.id, "pid", c.peer.PID, "uid", c.peer.UID,
			"component", component, "reason", CloseReason(c.reason.Load()), "err", err)
	})
}

// snapshot reports the connection's stats and adds its patterns to counts.
func (c *conn) snapshot(counts map[string]int) stats.Connection {
	c.subsMu.Lock()
	for _, s := range c.subs {
		for _, p := range s.patterns {
			counts[p]++
		}
	}
	nsubs := len(c.subs)
	name, component, agent := c.clientName, c.component, c.identity.Agent
	c.subsMu.Unlock()
	msgs, bytes := c.out.pending()
	return stats.Connection{
		ID: c.id, ClientName: name, Component: component,
		UID: c.peer.UID, GID: c.peer.GID, PID: c.peer.PID, SID: c.peer.SID, InProcess: c.inProcess,
		Exe: c.peer.Exe, Agent: agent,
		ConnectedAt: c.start, Subscriptions: nsubs,
		Published: c.published.Load(), Delivered: c.delivered.Load(), Dropped: c.dropped.Load(),
		QueuedMessages: msgs, QueuedBytes: bytes,
	}
}

// inProcessPeer is the identity of the broker's own process (with its SID
// on Windows; without one in the unlikely case the token is unreadable).
func inProcessPeer() transport.Peer {
	self, _ := transport.Self()
	return self
}

// anonymousView is what an anonymous peer may see of the statistics
// (docs/SECURITY.md §7): the totals, its own connection and the topics it
// may read; not the other connections, their patterns or the denials.
func (c *conn) anonymousView(s stats.Snapshot) stats.Snapshot {
	own := s.ConnectionList[:0:0]
	for _, cs := range s.ConnectionList {
		if cs.ID == c.id {
			own = append(own, cs)
		}
	}
	topics := s.Topics[:0:0]
	for _, tc := range s.Topics {
		if c.mayRead(tc.Topic) {
			topics = append(topics, tc)
		}
	}
	s.ConnectionList, s.Topics = own, topics
	s.Patterns, s.Denials = []stats.PatternCount{}, []stats.DenialCount{}
	return s
}

// anonymous reports whether the peer claimed no component the policy
// admitted. Set at hello, read-only after.
func (c *conn) anonymous() bool { return !c.identity.Registered && !c.identity.Agent }
