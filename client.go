package eventbus

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/internal/chunkbuf"
	"daemoneye.dev/eventbus/internal/intern"
	"daemoneye.dev/eventbus/internal/nbwrite"
	"daemoneye.dev/eventbus/internal/wireconv"
	"daemoneye.dev/eventbus/stats"
	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Client limits.
const (
	// maxTrackedDefs is how many of its latest ref definitions a
	// connection remembers for a refusal to undo.
	maxTrackedDefs = 64
	// maxPendingWrite bounds the bytes a client buffers for the broker;
	// Publish waits for the writer beyond it.
	maxPendingWrite = 1 << 20
	// maxAsyncErrors bounds the refused-publish errors kept for Flush.
	maxAsyncErrors = 64
	clientReadBuf  = 64 << 10
)

// Client is a connection to a broker. It is safe for concurrent use.
// Publishes are buffered and written by a background goroutine; Flush
// proves they reached the broker. If the connection drops, the client
// reconnects with backoff and restores its subscriptions.
type Client struct {
	addr string
	opts clientOptions
	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // run, and the writer of each connection

	mu          sync.Mutex
	space       *sync.Cond // signalled when pending shrinks or the connection changes
	conn        *clientConn
	pending     chunkbuf.Buffer // frames waiting for the writer
	writing     bool            // the writer goroutine is writing a batch
	lastPublish int64           // Unix ns of the last Publish, to tell a trickle from a stream
	env         wire.Envelope
	seq         *correlation.Sequencer // numbers publishes per correlation
	limits      *wire.HelloOK
	subs        map[uint64]*Subscription
	requests    map[uint64]*request
	asyncErrs   []error
	// Confirmations (confirm.go): every publish up to doneSeq, of the
	// session's lastSeq, is confirmed, refused or lost.
	session uint64
	lastSeq uint64
	doneSeq uint64
	retain  retention
	waits   []*confirmWait
	lost    *LostError // losses since the last Flush
	// A registered collector's status and diagnostics, for its heartbeats.
	status      CollectorStatus
	diagnostics map[string]string
	nextID      uint64
	closed      bool
	closeErr    error // why operations fail once closed
}

// clientConn is one connection's state; a reconnect makes a new one.
type clientConn struct {
	nc    net.Conn
	wake  chan struct{} // capacity 1: frames are pending
	done  chan struct{} // closed when the connection is torn down
	r     *wire.Reader
	hello *wire.HelloOK
	raw   syscall.RawConn // for direct writes; nil for pipes
	// The correlations this connection's publishes named (PROTOCOL.md
	// §5.3.1); guarded by Client.mu.
	pubRefs wire.RefEncoder[*publishCorrelation]
	pubSeq  uint64 // PUBLISH frames sent, as the broker numbers them (publish_seq)
	// The session sequences of the PUBLISH frames sent: those resent at
	// connect (requests are not resent, so they need not be consecutive),
	// then firstNew, firstNew+1, ...
	resent   []uint64
	firstNew uint64
	// The most recent definitions, by publish_seq: a refused one is
	// forgotten, so the next publish defines the ref again.
	pubDefs [maxTrackedDefs]pubDef
	// Reader-goroutine state.
	view     wire.DeliverView
	corrView wire.CorrelationView
	corrRefs wire.RefTable[correlation.Metadata] // the broker's refs (§5.4.1); sequence 0
	// The last metadata delivered in full without a ref, and its decoding.
	anonShape wire.CorrelationShape
	anonBase  *correlation.Metadata
	names     intern.Table // topics, components and correlation strings
}

type request struct {
	ch chan response
}

type response struct {
	reply wire.Message // the decoded reply, for replies that carry data
	err   error
}

// Dial connects to the broker at addr (a socket path; empty means
// transport.DefaultPath()), or in process (InProcess), and completes the
// handshake before returning. Over a socket, it first checks that the
// broker runs as the expected user (WithBrokerUID, WithBrokerSID), and
// sends nothing to one that does not.
func Dial(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	o := defaultClientOptions()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.inProcess != nil:
		addr = "in-process broker"
	case addr == "":
		addr = transport.DefaultPath()
	}
	c := &Client{
		addr:     addr,
		opts:     o,
		done:     make(chan struct{}),
		subs:     make(map[uint64]*Subscription),
		requests: make(map[uint64]*request),
		seq:      correlation.NewSequencer(0),
		session:  rand.Uint64() | 1, // never 0, which asks for no confirmations
		status:   StatusStarting,
	}
	if o.noConfirm {
		c.session, c.opts.resendBuffer = 0, 0
	}
	c.space = sync.NewCond(&c.mu)
	cc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.install(cc)
	c.wg.Add(1)
	go c.run(cc)
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if c.opts.inProcess != nil {
		return c.opts.inProcess.InProcessConn(ctx)
	}
	// transport.Dial verifies the broker before returning, so before the
	// hello (and token) is written.
	return transport.Dial(ctx, c.addr, c.opts.dialOpts...)
}

// connect dials and handshakes (PROTOCOL.md §2).
func (c *Client) connect(ctx context.Context) (*clientConn, error) {
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	cc, err := c.handshake(nc)
	if err != nil {
		nc.Close()
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("eventbus: handshake with %s: %w", c.addr, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The I/O deadline is ctx's, reached a moment before ctx says so.
			return nil, fmt.Errorf("eventbus: handshake with %s: %w", c.addr, context.DeadlineExceeded)
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return cc, nil
}

func (c *Client) handshake(nc net.Conn) (*clientConn, error) {
	hello := &wire.Hello{ClientName: c.opts.name, Component: c.opts.component, Token: c.opts.token, SessionId: c.session,
		Capabilities: c.opts.capabilities}
	// A broker refusing the connection (max_connections, shutting down)
	// may close it before our hello arrives, failing this write; its
	// reason is still waiting to be read, so read before giving up.
	_, werr := nc.Write(wire.AppendOpening(nil, wire.TypeHello, hello))
	r := wire.NewReader(bufio.NewReaderSize(nc, clientReadBuf), wire.MaxMessageSize+wire.FrameOverhead)
	ok, err := wire.ReadHelloOK(r)
	var refused *wire.Error
	switch {
	case errors.As(err, &refused): // the broker's refusal says why
		return nil, fmt.Errorf("eventbus: %w", err)
	case werr != nil || err != nil:
		return nil, fmt.Errorf("eventbus: handshake with %s: %w", c.addr, cmp.Or(werr, err))
	}
	return &clientConn{nc: nc, wake: make(chan struct{}, 1), done: make(chan struct{}), r: r, hello: ok,
		raw: nbwrite.RawConn(nc)}, nil
}

// install makes cc the current connection and queues SUBSCRIBE frames
// restoring every subscription ahead of anything else.
func (c *Client) install(cc *clientConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn, c.limits = cc, cc.hello
	for _, s := range c.subs {
		c.nextID++
		c.requests[c.nextID] = &request{ch: make(chan response, 1)}
		c.appendLocked(wire.TypeSubscribe, s.wire(c.nextID))
	}
	c.resendLocked(cc)
	if c.pending.Len() > 0 {
		cc.signal()
	}
	c.space.Broadcast()
}

func (cc *clientConn) signal() {
	select {
	case cc.wake <- struct{}{}:
	default:
	}
}

// run owns the connection goroutines: it reads until the connection
// fails, then reconnects, until Close.
func (c *Client) run(cc *clientConn) {
	defer c.wg.Done()
	for {
		c.wg.Add(1)
		go c.writeLoop(cc)
		if cc.hello.HeartbeatIntervalMs > 0 {
			c.wg.Add(1)
			go c.heartbeats(cc)
		}
		err := c.readLoop(cc)
		c.teardown(cc, err)
		if !c.opts.reconnect || c.isClosed() {
			c.shut(err)
			return
		}
		down, prevEpoch := time.Now(), cc.hello.BrokerEpoch
		if c.opts.onDisconnect != nil {
			c.opts.onDisconnect(err)
		}
		if cc = c.reconnect(); cc == nil {
			return
		}
		c.install(cc)
		epoch := cc.hello.BrokerEpoch
		c.notifyGap(Gap{BrokerRestarted: epoch != prevEpoch, PrevEpoch: prevEpoch, Epoch: epoch, Down: time.Since(down)})
		if c.opts.onReconnect != nil {
			c.opts.onReconnect()
		}
	}
}

// reconnect dials with jittered exponential backoff until it succeeds or
// the client closes.
func (c *Client) reconnect() *clientConn {
	delay := c.opts.minBackoff
	for {
		select {
		case <-c.done:
			return nil
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		cc, err := c.connectUntilClosed(5 * time.Second)
		if err == nil {
			return cc
		}
		if errors.Is(err, net.ErrClosed) { // an in-process broker that stopped
			c.shut(err)
			return nil
		}
		c.opts.logger.Debug("reconnect failed", "addr", c.addr, "err", err, "retry_in", delay)
		delay = min(2*delay, c.opts.maxBackoff)
	}
}

// connectUntilClosed connects with a timeout, abandoning the attempt if
// the client is closed meanwhile.
func (c *Client) connectUntilClosed(timeout time.Duration) (*clientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() { // ends with ctx, at the latest when this function returns
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return c.connect(ctx)
}

// teardown ends a connection: unconfirmed publishes that cannot be
// resent are reported lost, and waiting requests fail.
func (c *Client) teardown(cc *clientConn, err error) {
	cc.nc.Close()
	close(cc.done)
	c.mu.Lock()
	// The kept ones are resent after the reconnect (resendLocked).
	lost := c.lostLocked(c.retain.first(c.lastSeq+1)-1, fmt.Errorf("%w (%v)", ErrDisconnected, err))
	c.pending.Reset()
	for id, r := range c.requests {
		r.ch <- response{err: fmt.Errorf("%w (%v)", ErrDisconnected, err)}
		delete(c.requests, id)
	}
	c.conn = nil
	c.space.Broadcast()
	c.mu.Unlock()
	c.reportLost(lost)
}

// shut marks the client unusable after its last connection ended: what
// was kept for resending is lost.
func (c *Client) shut(err error) {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.closeErr = fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	lost := c.lostLocked(c.lastSeq, c.closeErr)
	c.space.Broadcast()
	c.mu.Unlock()
	c.reportLost(lost)
	c.closeSubs()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// writeLoop writes pending frames for one connection.
func (c *Client) writeLoop(cc *clientConn) {
	defer c.wg.Done()
	var frames chunkbuf.Buffer
	for {
		select {
		case <-cc.wake:
		case <-cc.done:
			return
		}
		c.mu.Lock()
		if c.conn != cc {
			c.mu.Unlock()
			return
		}
		frames, c.pending = c.pending, frames
		c.writing = frames.Len() > 0
		c.space.Broadcast()
		c.mu.Unlock()
		if frames.Len() == 0 {
			continue
		}
		_, err := frames.WriteTo(cc.nc)
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
		if err != nil {
			cc.nc.Close()
			return
		}
	}
}

// directSpacing: a publish this long after the previous one is written at
// once rather than left for the writer goroutine. A trickle gets the
// lowest latency; a stream still goes out in batches.
const directSpacing = 20 * time.Microsecond

// enqueueLocked appends a frame for the writer, waiting while the buffer
// is over its bound, and writes it at once if direct and nothing else is
// being written. It fails if there is no connection.
func (c *Client) enqueueLocked(ctx context.Context, t wire.Type, m wire.Message, direct bool) error {
	return c.enqueueWith(ctx, direct, func() { c.appendLocked(t, m) })
}

// enqueuePublishLocked is enqueueLocked for c.env with pc's metadata, if
// not nil, numbered cseq, as the session's next publish, kept for
// resending until confirmed if keep (a request is never resent: its
// requester failed with the connection).
func (c *Client) enqueuePublishLocked(ctx context.Context, pc *publishCorrelation, cseq uint64, direct, keep bool) error {
	return c.enqueueWith(ctx, direct, func() {
		c.conn.pubSeq++
		c.lastSeq++
		c.env.Sequence = c.lastSeq
		var corr *wire.CorrelationFields
		var fields wire.CorrelationFields
		if pc != nil {
			fields = c.conn.publishFields(pc, cseq)
			corr = &fields
		}
		size := wire.PublishSize(c.env.SizeVT(), corr)
		t := c.pending.Tail(size)
		n := len(t)
		t = wire.AppendPublish(t, &c.env, corr)
		c.pending.Commit(t)
		if keep {
			c.retainLocked(t[n:], pc, cseq)
		}
		if c.session == 0 { // no confirmations will come
			c.doneSeq = c.lastSeq
		}
	})
}

// publishFields returns how a publish on cc sends pc's metadata
// (PROTOCOL.md §5.3.1): in full the first time, defining a ref for it,
// then by that ref. The caller holds Client.mu.
func (cc *clientConn) publishFields(pc *publishCorrelation, seq uint64) wire.CorrelationFields {
	f := cc.pubRefs.Fields(pc, pc.base, seq)
	if f.Define {
		cc.pubRefs.Defined(pc, f.Ref) // the frame is written or the connection torn down
		cc.pubDefs[cc.pubSeq%maxTrackedDefs] = pubDef{seq: cc.pubSeq, pc: pc}
	}
	return f
}

// pubDef is a publish that defined a ref.
type pubDef struct {
	seq uint64
	pc  *publishCorrelation
}

// refused undoes the definition the publish numbered seq made, if it
// made one: the broker left that ref undefined (PROTOCOL.md §5.3.1). The
// caller holds Client.mu.
func (cc *clientConn) refused(seq uint64) {
	if d := &cc.pubDefs[seq%maxTrackedDefs]; d.pc != nil && d.seq == seq {
		cc.pubRefs.Forget(d.pc)
		*d = pubDef{}
	}
}

// enqueueWith waits for room in the write buffer, until ctx ends,
// appends a frame with add, and starts its write.
func (c *Client) enqueueWith(ctx context.Context, direct bool, add func()) error {
	if c.pending.Len() >= maxPendingWrite {
		// Wake the wait below when ctx ends: a full buffer must not hold a
		// caller past its deadline.
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			c.space.Broadcast()
			c.mu.Unlock()
		})
		defer stop()
	}
	for {
		if err := c.usableLocked(); err != nil {
			return err
		}
		if c.pending.Len() < maxPendingWrite {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.space.Wait()
	}
	wasEmpty := c.pending.Len() == 0
	add()
	if wasEmpty && !(direct && c.writeDirectLocked()) {
		c.conn.signal()
	}
	return nil
}

// writeDirectLocked writes the pending frames now, without blocking; it
// reports whether nothing is left for the writer goroutine. Holding mu
// keeps the writer goroutine off the connection meanwhile.
func (c *Client) writeDirectLocked() bool {
	if c.writing || c.conn.raw == nil {
		return false
	}
	n, err := nbwrite.TryWrite(c.conn.raw, c.pending.Chunks())
	if err != nil {
		return false // the writer goroutine meets the error and tears down
	}
	c.pending.Discard(n)
	return c.pending.Len() == 0
}

func (c *Client) appendLocked(t wire.Type, m wire.Message) {
	c.pending.Commit(wire.AppendFrame(c.pending.Tail(wire.HeaderSize+m.SizeVT()), t, m))
}

func (c *Client) usableLocked() error {
	switch {
	case c.closed:
		return c.closeErr
	case c.conn == nil:
		return ErrDisconnected
	}
	return nil
}

// roundTrip sends a request frame built for a fresh id and waits for its
// reply.
func (c *Client) roundTrip(ctx context.Context, t wire.Type, build func(id uint64) wire.Message) (wire.Message, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	r := &request{ch: make(chan response, 1)}
	if err := c.enqueueLocked(ctx, t, build(id), true); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.requests[id] = r
	c.mu.Unlock()
	select {
	case resp := <-r.ch:
		return resp.reply, resp.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.requests, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// MaxMessageSize is the largest payload the broker accepts, as it said in
// the handshake.
func (c *Client) MaxMessageSize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.limits.MaxMessageSize)
}

// BrokerEpoch is the epoch of the broker this client is connected to, as
// it said in the handshake: random, drawn when the broker started, so a
// different epoch after a reconnect means the broker restarted and what
// was published while none ran was not delivered. 0: not known.
func (c *Client) BrokerEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limits == nil {
		return 0
	}
	return c.limits.BrokerEpoch
}

// Stats asks the broker for its statistics.
func (c *Client) Stats(ctx context.Context) (stats.Snapshot, error) {
	reply, err := c.roundTrip(ctx, wire.TypeStatsRequest, func(id uint64) wire.Message { return &wire.StatsRequest{RequestId: id} })
	if err != nil {
		return stats.Snapshot{}, fmt.Errorf("eventbus: stats: %w", err)
	}
	resp, ok := reply.(*wire.StatsResponse)
	if !ok || resp.Stats == nil {
		return stats.Snapshot{}, errors.New("eventbus: stats: empty reply")
	}
	return wireconv.StatsFromWire(resp.Stats), nil
}

// Close closes the connection and every subscription's channel.
// Publishes not yet confirmed are discarded, and returned as a *LostError
// (nil if there are none): call Flush first to keep them.
func (c *Client) Close() error {
	c.mu.Lock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	if !c.closed {
		c.closed = true
		c.closeErr = ErrClientClosed
	}
	lost := c.lostLocked(c.lastSeq, ErrClientClosed)
	c.lost = nil // returned here, not by a later Flush
	cc := c.conn
	c.space.Broadcast()
	c.mu.Unlock()
	if cc != nil {
		cc.nc.Close()
	}
	c.wg.Wait()
	if lost != nil {
		return lost
	}
	return nil
}
