package eventbus

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"daemoneye.dev/eventbus/internal/chunkbuf"
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
// (writeLoop) sends what the out queue holds.
type conn struct {
	b         *Broker
	nc        net.Conn
	id        uint64
	peer      transport.Peer
	inProcess bool
	start     time.Time
	out       *outQueue
	done      chan struct{} // closed by closeWith

	// Set during the handshake, read-only afterwards. clientName and
	// component are set under subsMu: Stats and closeWith may read them
	// from other goroutines while the handshake runs.
	clientName      string
	component       string
	publisherFields []byte // broker-owned envelope fields for this publisher

	// Reader-goroutine state.
	r            *wire.Reader
	publishSeq   uint64
	readAt       int64   // when the frames being handled were read, Unix ns
	toWake       []*conn // subscribers whose queue this read batch made non-empty
	batchFrames  int     // frames handled since the last wakeSubscribers
	direct       chunkbuf.Buffer
	directStamps []int64

	raw syscall.RawConn // for direct writes to this connection; nil for pipes

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
	missed   uint64 // drops not yet reported; guarded by c.out.mu
}

func newConn(b *Broker, nc net.Conn, peer transport.Peer, inProcess bool) *conn {
	return &conn{
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
		raw:       rawConn(nc),
	}
}

func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// serve runs the connection: handshake, writer, then frames until EOF.
func (c *conn) serve() {
	if err := c.handshake(); err != nil {
		c.b.cfg.Logger.Debug("handshake failed", "conn", c.id, "pid", c.peer.PID, "err", err)
		c.closeWith(CloseHandshakeFailed, err)
		return
	}
	if !c.b.goFunc(c.writeLoop) {
		c.closeWith(CloseBrokerShutdown, nil)
		return
	}
	c.readLoop()
}

// handshake exchanges preambles and HELLO/HELLO_OK (PROTOCOL.md §2) within
// the handshake timeout, writing directly since the writer is not running.
func (c *conn) handshake() error {
	c.nc.SetDeadline(time.Now().Add(c.b.cfg.HandshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})
	version, err := c.r.ReadPreamble()
	if err != nil {
		return c.refuseHandshake(err)
	}
	if version != wire.Version {
		return c.refuseHandshake(wire.Errorf(wire.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION,
			"unsupported protocol version %d; this broker speaks %d", version, wire.Version))
	}
	t, body, err := c.r.ReadFrame()
	if err != nil {
		return c.refuseHandshake(err)
	}
	if t != wire.TypeHello {
		return c.refuseHandshake(wire.Errorf(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "expected HELLO, got %v", t))
	}
	var hello wire.Hello
	if err := hello.UnmarshalVT(body); err != nil {
		return c.refuseHandshake(wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed HELLO: %v", err))
	}
	if err := checkHello(&hello); err != nil {
		return c.refuseHandshake(err)
	}
	c.subsMu.Lock()
	c.clientName, c.component = hello.ClientName, hello.Component
	c.subsMu.Unlock()
	c.publisherFields = wire.AppendPublisherFields(nil, int32(c.peer.PID), c.peer.UID, c.component)
	ok := &wire.HelloOK{
		ConnectionId:     c.id,
		BrokerVersion:    Version,
		MaxMessageSize:   uint32(c.b.cfg.MaxMessageSize),
		MaxFrameSize:     uint32(c.b.cfg.MaxMessageSize + wire.FrameOverhead),
		MaxSubscriptions: uint32(c.b.cfg.MaxSubscriptions),
	}
	buf := wire.AppendFrame(wire.AppendPreamble(nil, wire.Version), wire.TypeHelloOK, ok)
	_, err = c.nc.Write(buf)
	return err
}

func checkHello(h *wire.Hello) error {
	if len(h.ClientName) > maxNameLen {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "client name too long: %d bytes, limit %d", len(h.ClientName), maxNameLen)
	}
	if h.Component != "" && !validComponent(h.Component) {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "invalid component name %q: want 1-64 bytes of a-z 0-9 - _", h.Component)
	}
	return nil
}

// validComponent reports whether name is one topic segment: component
// names appear in topics and policy files.
func validComponent(name string) bool {
	return !strings.ContainsAny(name, ".$") && len(name) <= topic.MaxSegmentBytes && topic.Validate(name) == nil
}

// refuseHandshake sends our preamble and a fatal error, if the error is
// one the peer should hear about, and returns err.
func (c *conn) refuseHandshake(err error) error {
	var we *wire.Error
	if errors.As(err, &we) {
		we.Fatal = true
		buf := wire.AppendPreamble(nil, wire.Version)
		buf = wire.AppendFrame(buf, wire.TypeError, we.ToProto(0, 0))
		c.nc.Write(buf)
	}
	return err
}

func (c *conn) readLoop() {
	for {
		fresh := !c.r.HasFrame() // ReadFrame will read from the connection
		t, body, err := c.r.ReadFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if fresh {
			// Every frame of one read arrived together: one clock reading
			// serves them all as their receive time.
			c.readAt = time.Now().UnixNano()
		}
		c.batchFrames++
		if err := c.handle(t, body); err != nil {
			c.fail(err)
			return
		}
		if !c.r.HasFrame() {
			c.wakeSubscribers()
		}
	}
}

// wakeSubscribers wakes, once per read batch, the writers whose queues
// this batch filled from empty: fewer wakeups, bigger writes.
func (c *conn) wakeSubscribers() {
	direct := directWriteSupported && c.batchFrames <= directMaxFrames && len(c.toWake) <= directMaxSubscribers
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

// handle processes one frame. A returned error is a protocol violation
// that ends the connection; refused requests are answered and return nil.
func (c *conn) handle(t wire.Type, body []byte) error {
	switch t {
	case wire.TypePublish:
		c.handlePublish(body)
	case wire.TypeSubscribe:
		var m wire.Subscribe
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed SUBSCRIBE: %v", err)
		}
		c.reply(m.RequestId, c.subscribe(&m))
	case wire.TypeUnsubscribe:
		var m wire.Unsubscribe
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed UNSUBSCRIBE: %v", err)
		}
		c.reply(m.RequestId, c.unsubscribe(m.SubscriptionId))
	case wire.TypePing:
		var m wire.Ping
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed PING: %v", err)
		}
		c.out.control(wire.TypePong, &wire.Pong{Id: m.Id})
	case wire.TypeStatsRequest:
		var m wire.StatsRequest
		if err := m.UnmarshalVT(body); err != nil {
			return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed STATS_REQUEST: %v", err)
		}
		snap := c.b.Stats()
		c.out.control(wire.TypeStatsResponse, &wire.StatsResponse{RequestId: m.RequestId, Stats: statsToWire(&snap)})
	default:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_UNEXPECTED_FRAME, "a client may not send %v frames", t)
	}
	return nil
}

// handlePublish checks a PUBLISH and routes it (PROTOCOL.md §5.3).
func (c *conn) handlePublish(body []byte) {
	c.publishSeq++
	v, err := wire.ScanPublish(body)
	if err == nil {
		err = c.checkPublish(v)
	}
	if err != nil {
		c.refusePublish(v.Topic, err)
		return
	}
	c.b.route(c, body, v.Topic)
}

func (c *conn) checkPublish(v wire.PublishView) error {
	if v.PayloadLen > c.b.cfg.MaxMessageSize {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE, "message too large: %d bytes, limit %d", v.PayloadLen, c.b.cfg.MaxMessageSize)
	}
	if err := topic.ValidateBytes(v.Topic); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_TOPIC, "%v", err)
	}
	if topic.IsReservedBytes(v.Topic) {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_RESERVED_TOPIC, "topic %q is reserved for the broker", v.Topic)
	}
	return nil
}

func (c *conn) refusePublish(topicName []byte, err error) {
	we := asWireError(err)
	if len(topicName) <= topic.MaxTopicBytes {
		we.Topic = string(topicName)
	}
	c.b.cfg.Logger.Debug("publish refused", "conn", c.id, "pid", c.peer.PID, "err", we)
	c.out.control(wire.TypeError, we.ToProto(0, c.publishSeq))
}

func (c *conn) reply(requestID uint64, err error) {
	if err != nil {
		c.out.control(wire.TypeError, asWireError(err).ToProto(requestID, 0))
		return
	}
	c.out.control(wire.TypeOK, &wire.OK{RequestId: requestID})
}

// asWireError returns err as a *wire.Error the caller may modify: a copy,
// so an exported sentinel is never changed.
func asWireError(err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		cp := *we
		return &cp
	}
	return &wire.Error{Code: wire.ErrorCode_ERROR_CODE_INTERNAL, Message: err.Error()}
}

func (c *conn) subscribe(m *wire.Subscribe) error {
	patterns, err := checkPatterns(m.Patterns)
	if err != nil {
		return err
	}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	switch {
	case c.subsDone:
		return wire.ErrShuttingDown
	case c.subs[m.SubscriptionId] != nil:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "subscription id %d is already in use on this connection", m.SubscriptionId)
	case c.patterns+len(patterns) > c.b.cfg.MaxSubscriptions:
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, "too many subscriptions: %d patterns, limit %d (max_subscriptions)",
			c.patterns+len(patterns), c.b.cfg.MaxSubscriptions)
	}
	s := &subscription{c: c, id: m.SubscriptionId, patterns: patterns}
	for _, p := range patterns {
		c.b.index.Insert(p, s) // cannot fail: checkPatterns validated p
	}
	c.subs[s.id] = s
	c.patterns += len(patterns)
	return nil
}

// checkPatterns validates patterns and removes duplicates.
func checkPatterns(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "subscribe needs at least one pattern")
	}
	out := make([]string, 0, len(patterns))
	seen := make(map[string]bool, len(patterns))
	for _, p := range patterns {
		if err := topic.ValidatePattern(p); err != nil {
			return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "%v", err)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *conn) unsubscribe(id uint64) error {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	s := c.subs[id]
	if s == nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_UNKNOWN_SUBSCRIPTION, "no subscription %d on this connection", id)
	}
	c.removeSubLocked(s)
	return nil
}

func (c *conn) removeSubLocked(s *subscription) {
	for _, p := range s.patterns {
		c.b.index.Remove(p, s)
	}
	delete(c.subs, s.id)
	c.patterns -= len(s.patterns)
}

// writeLoop writes queued frames until the connection closes.
func (c *conn) writeLoop() {
	var frames chunkbuf.Buffer
	var stamps []int64
	for {
		select {
		case <-c.out.wake:
		case <-c.done:
			return
		}
		if rest := c.out.takeHandoff(); rest != nil {
			_, err := rest.WriteTo(c.nc)
			if err != nil {
				c.writeFailed(err)
				return
			}
			c.out.release()
		}
		for {
			b, ok := c.out.acquire(&frames, stamps)
			if !ok {
				break
			}
			if b.overflow && c.b.cfg.SlowSubscriberPolicy == SlowDisconnect {
				c.slowConsumer(&frames)
				return
			}
			if _, err := frames.WriteTo(c.nc); err != nil {
				c.writeFailed(err)
				return
			}
			c.wrote(b)
			stamps = b.stamps[:0]
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

// wrote accounts for a written batch.
func (c *conn) wrote(b batch) {
	c.delivered.Add(uint64(b.msgs))
	if len(b.stamps) > 0 {
		c.b.latency.RecordSince(time.Now().UnixNano(), b.stamps)
	}
}

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
	b, ok := sc.out.acquire(&c.direct, c.directStamps)
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
	n, err := tryWrite(sc.raw, c.direct.Chunks())
	switch {
	case err != nil:
		c.direct.Reset()
		sc.out.release()
		sc.closeWith(CloseWriteError, err)
	case n < c.direct.Len():
		c.direct.Discard(n)
		c.handOff(sc, b)
	default:
		c.direct.Reset()
		sc.wrote(b)
		if sc.out.release() {
			sc.out.signal()
		}
	}
	c.directStamps = b.stamps[:0]
}

// handOff gives c.direct's frames and the write side to sc's writer.
func (c *conn) handOff(sc *conn, b batch) {
	rest := c.direct
	c.direct = chunkbuf.Buffer{}
	sc.wrote(b)
	sc.out.handOff(&rest)
}

// slowOverflow is called on each drop under the disconnect policy. The
// writer closes the connection when it next takes frames, but it may be
// stuck in a write to a peer that stopped reading and never get there: the
// first drop gives that write a deadline, so the connection closes whether
// or not the peer reads again.
func (c *conn) slowOverflow() {
	if c.slowWrite.CompareAndSwap(false, true) {
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	}
}

// writeFailed closes the connection after a failed write, as a slow
// consumer if slowOverflow's deadline ended the write.
func (c *conn) writeFailed(err error) {
	if c.slowWrite.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
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
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	m := err.ToProto(0, 0)
	frames.Commit(wire.AppendFrame(frames.Tail(wire.HeaderSize+m.SizeVT()), wire.TypeError, m))
	frames.WriteTo(c.nc)
	c.closeWith(CloseSlowConsumer, err)
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
		c.nc.Close()
		c.subsMu.Lock()
		for _, s := range c.subs {
			c.removeSubLocked(s)
		}
		c.subsDone = true
		component := c.component
		c.subsMu.Unlock()
		c.b.removeConn(c)
		level := slog.LevelInfo
		if errors.Is(err, io.EOF) && CloseReason(c.reason.Load()) == CloseHandshakeFailed {
			level = slog.LevelDebug // a dial that sent nothing, such as a liveness probe
		}
		c.b.cfg.Logger.Log(context.Background(), level, "connection closed", "conn", c.id, "pid", c.peer.PID, "uid", c.peer.UID,
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
	name, component := c.clientName, c.component
	c.subsMu.Unlock()
	msgs, bytes := c.out.pending()
	return stats.Connection{
		ID: c.id, ClientName: name, Component: component,
		UID: c.peer.UID, GID: c.peer.GID, PID: c.peer.PID, InProcess: c.inProcess,
		ConnectedAt: c.start, Subscriptions: nsubs,
		Published: c.published.Load(), Delivered: c.delivered.Load(), Dropped: c.dropped.Load(),
		QueuedMessages: msgs, QueuedBytes: bytes,
	}
}

// inProcessPeer is the identity of the broker's own process.
func inProcessPeer() transport.Peer {
	return transport.Peer{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), PID: os.Getpid()}
}
