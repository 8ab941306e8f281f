package broker

import (
	"math/rand/v2"
	"sync"
	"time"

	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/wire"
)

// Requests and replies (PROTOCOL.md §5.9). A request is a PUBLISH with a
// request_id. The broker gives each one a random reply token, delivers it
// with the token to the responder subscriptions it matches, and accepts a
// REPLY naming the token only from a connection it delivered the request
// to. The reply goes to the requester's own connection as a RESPONSE: no
// topic carries it, so no other subscriber can read it.

// pendingRequest is a request waiting for its reply.
type pendingRequest struct {
	token uint64
	from  *conn  // the requester
	id    uint64 // the requester's request_id
	// recipient, if not "", is the only component whose responders may
	// hold it (a directed request).
	recipient string
	deadline  int64 // Unix ns, the broker's clock
	holders   []*conn
	// For a request given to a queue group: what to deliver to another
	// member if the one holding it goes (redeliver).
	group    *group
	topic    []byte
	delivery wire.Delivery // Head holds a copy of the envelope
	named    *corrDef
	meta     *correlation.Metadata // for the members' correlation filters
	attempts int
	bytes    int64 // counted in requests.bytes
}

// requests is the broker's table of pending requests.
type requests struct {
	mu      sync.Mutex
	byToken map[uint64]*pendingRequest
	bytes   int64 // held by redelivery copies, bounded by max_request_bytes
}

// maxRedeliveries bounds how often a request whose responder went away is
// given to another member of its group.
const maxRedeliveries = 3

// beginRequest registers the request v.RequestID of c, before it is
// routed (a responder may answer before route returns). It fails when c
// has max_pending_requests in flight.
func (c *conn) beginRequest(requestID uint64, deadline int64, recipient []byte) (*pendingRequest, error) {
	b := c.b
	now := time.Now().UnixNano()
	limit := now + int64(b.cfg.MaxRequestTimeout)
	if deadline == 0 || deadline > limit {
		deadline = limit
	}
	rs := &b.requests
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(c.requests) >= b.cfg.MaxPendingRequests {
		b.limits.hit(limitPendingRequests)
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_TOO_MANY_REQUESTS, "too many requests in flight: %d, limit %d (max_pending_requests)",
			len(c.requests), b.cfg.MaxPendingRequests)
	}
	pr := &pendingRequest{from: c, id: requestID, deadline: deadline, recipient: string(recipient)}
	for pr.token == 0 || rs.byToken[pr.token] != nil {
		pr.token = rand.Uint64()
	}
	if rs.byToken == nil {
		rs.byToken = make(map[uint64]*pendingRequest)
	}
	rs.byToken[pr.token] = pr
	if c.requests == nil {
		c.requests = make(map[uint64]*pendingRequest)
	}
	c.requests[pr.token] = pr
	return pr, nil
}

// hold records that sc may reply to pr. It is called before the request
// is queued for sc, so that a reply can never arrive before its holder is
// known; unhold undoes it if the request was not queued after all.
func (pr *pendingRequest) hold(b *Broker, sc *conn) {
	rs := &b.requests
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byToken[pr.token] != pr { // answered or gone already
		return
	}
	pr.holders = append(pr.holders, sc)
	if sc.holding == nil {
		sc.holding = make(map[uint64]*pendingRequest)
	}
	sc.holding[pr.token] = pr
	sc.inflight.Add(1)
}

// unhold undoes hold.
func (pr *pendingRequest) unhold(b *Broker, sc *conn) {
	rs := &b.requests
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if sc.holding[pr.token] != pr {
		return
	}
	delete(sc.holding, pr.token)
	sc.inflight.Add(-1)
	for i, h := range pr.holders {
		if h == sc {
			pr.holders = append(pr.holders[:i], pr.holders[i+1:]...)
			break
		}
	}
}

// keepForRedelivery copies what is needed to give pr to another member of
// g, within max_request_bytes; without room, pr is not redelivered.
func (pr *pendingRequest) keepForRedelivery(b *Broker, g *group, topicName []byte, d *wire.Delivery, named *corrDef, meta *correlation.Metadata) {
	n := int64(len(topicName) + len(d.Head) + len(d.Tail))
	rs := &b.requests
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byToken[pr.token] != pr || pr.group != nil {
		return // answered already, or kept before
	}
	if rs.bytes+n > int64(b.cfg.MaxRequestBytes) {
		b.limits.hit(limitRequestBytes)
		return
	}
	rs.bytes += n
	pr.bytes = n
	pr.group, pr.named = g, named
	if meta != nil {
		m := *meta
		pr.meta = &m
	}
	pr.topic = append([]byte(nil), topicName...)
	pr.delivery = wire.Delivery{Head: append(append([]byte(nil), d.Head...), d.Tail...), ReceivedAt: d.ReceivedAt,
		Publisher: d.Publisher, ReplyToken: pr.token, Redelivered: true}
}

// endRouting finishes routing pr: a request no responder took is answered
// at once with NO_RESPONDERS.
func (c *conn) endRouting(pr *pendingRequest) {
	rs := &c.b.requests
	rs.mu.Lock()
	empty := len(pr.holders) == 0 && rs.byToken[pr.token] == pr
	if empty {
		rs.forgetLocked(pr)
	}
	rs.mu.Unlock()
	if empty {
		c.b.noResponders.Add(1)
		c.reply(pr.id, wire.Errorf(wire.ErrorCode_ERROR_CODE_NO_RESPONDERS, "no responders for request %d", pr.id))
	}
}

// forgetLocked removes pr from every table.
func (rs *requests) forgetLocked(pr *pendingRequest) {
	delete(rs.byToken, pr.token)
	delete(pr.from.requests, pr.token)
	for _, h := range pr.holders {
		if h.holding[pr.token] == pr {
			delete(h.holding, pr.token)
			h.inflight.Add(-1)
		}
	}
	pr.holders = nil
	rs.bytes -= pr.bytes
	pr.bytes = 0
}

// handleReply routes a REPLY from c to the requester, if c holds the
// request; any other reply (late, a second one, or naming a request c was
// never given) is counted and dropped.
func (c *conn) handleReply(body []byte) error {
	var m wire.Reply
	if err := m.UnmarshalVT(body); err != nil {
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_MALFORMED_FRAME, "malformed REPLY: %v", err)
	}
	if err := wire.CheckUTF8(&m); err != nil {
		return err
	}
	rs := &c.b.requests
	rs.mu.Lock()
	pr := c.holding[m.ReplyToken]
	if pr != nil {
		rs.forgetLocked(pr)
	}
	rs.mu.Unlock()
	if pr == nil {
		c.b.repliesDropped.Add(1)
		return nil
	}
	c.b.replies.Add(1)
	c.b.replied(c, m.Error != nil)
	pr.from.sendReply(pr.id, wire.TypeResponse, &wire.Response{RequestId: pr.id, Payload: m.Payload, Error: m.Error,
		ResponderPid: int32(c.peer.PID), ResponderUid: c.peer.UID, ResponderComponent: c.component})
	return nil
}

// closeRequests ends c's part in pending requests when it closes: its own
// are forgotten; those it held go to another member of their group, or
// fail with REQUEST_TIMEOUT once no holder is left.
func (c *conn) closeRequests() {
	rs := &c.b.requests
	rs.mu.Lock()
	for _, pr := range c.requests {
		rs.forgetLocked(pr)
	}
	var orphans []*pendingRequest
	for token, pr := range c.holding {
		delete(c.holding, token)
		c.inflight.Add(-1)
		for i, h := range pr.holders {
			if h == c {
				pr.holders = append(pr.holders[:i], pr.holders[i+1:]...)
				break
			}
		}
		if len(pr.holders) == 0 {
			orphans = append(orphans, pr)
		}
	}
	rs.mu.Unlock()
	for _, pr := range orphans {
		c.b.redeliver(pr, c)
	}
}

// redeliver gives pr, whose last holder gone went away, to another member
// of its group, or fails it.
func (b *Broker) redeliver(pr *pendingRequest, gone *conn) {
	if pr.group != nil && pr.attempts < maxRedeliveries {
		pr.attempts++
		if sc := b.deliverToGroup(pr, gone); sc != nil {
			b.redelivered.Add(1)
			return
		}
	}
	rs := &b.requests
	rs.mu.Lock()
	live := rs.byToken[pr.token] == pr && len(pr.holders) == 0
	if live {
		rs.forgetLocked(pr)
	}
	rs.mu.Unlock()
	if live {
		pr.from.reply(pr.id, wire.Errorf(wire.ErrorCode_ERROR_CODE_REQUEST_TIMEOUT,
			"request %d: every responder that had it went away (%d redeliveries)", pr.id, pr.attempts))
	}
}

// expireRequests fails the requests past their deadline; the janitor
// calls it.
func (b *Broker) expireRequests(now time.Time) {
	rs := &b.requests
	var expired []*pendingRequest
	rs.mu.Lock()
	for _, pr := range rs.byToken {
		if pr.deadline <= now.UnixNano() {
			rs.forgetLocked(pr)
			expired = append(expired, pr)
		}
	}
	rs.mu.Unlock()
	for _, pr := range expired {
		pr.from.reply(pr.id, wire.Errorf(wire.ErrorCode_ERROR_CODE_REQUEST_TIMEOUT, "request %d reached its deadline without a reply", pr.id))
	}
}
