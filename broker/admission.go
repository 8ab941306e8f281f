package broker

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"daemoneye.dev/eventbus/transport"
	"daemoneye.dev/eventbus/wire"
)

// Connection admission and its limits (docs/SECURITY.md §7): the total
// (max_connections), one uid's share (max_connections_per_uid), the slots
// anonymous peers may not take (reserved_connections), the handshake and
// idle timeouts. In-process connections count against none of them.

// uidKey names a peer's user for the per-uid limits: its SID on Windows,
// its uid elsewhere.
func uidKey(p transport.Peer) string {
	if p.SID != "" {
		return p.SID
	}
	return strconv.FormatUint(uint64(p.UID), 10)
}

// exemptUser reports whether connections of key skip the per-uid limit:
// the broker's own user and root or LocalSystem, which run the agent and
// the collectors.
func (b *Broker) exemptUser(key string) bool {
	return key == b.self || key == "0" || key == "S-1-5-18"
}

// addConn registers c at accept. When every slot is taken it takes the
// slot of the oldest connection still in its handshake, which the caller
// must then close (evict), so connections that never say hello cannot
// lock anyone out.
func (b *Broker) addConn(c *conn) (evict *conn, _ *wire.Error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return nil, &wire.Error{Code: wire.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "broker is shutting down", Fatal: true}
	}
	if !c.inProcess {
		key := uidKey(c.peer)
		if !b.exemptUser(key) {
			if b.perUID[key] >= b.cfg.MaxConnectionsPerUID {
				b.limits.hit(limitConnectionsPerUID)
				return nil, tooManyConnections("too many connections from user %s: limit %d (max_connections_per_uid)", key, b.cfg.MaxConnectionsPerUID)
			}
			c.uidKey = key
		}
		if b.remote >= b.cfg.MaxConnections {
			if evict = b.oldestHandshakeLocked(); evict == nil {
				b.limits.hit(limitConnections)
				return nil, tooManyConnections("too many connections: limit %d (max_connections)", b.cfg.MaxConnections)
			}
			evict.evicted = true
			b.limits.hit(limitHandshakeEvicted)
		}
		b.remote++
		if c.uidKey != "" {
			b.perUID[c.uidKey]++
		}
	}
	b.conns[c] = struct{}{}
	b.connsTotal.Add(1)
	return evict, nil
}

func tooManyConnections(format string, args ...any) *wire.Error {
	e := wire.Errorf(wire.ErrorCode_ERROR_CODE_TOO_MANY_CONNECTIONS, format, args...)
	e.Fatal = true
	return e
}

// oldestHandshakeLocked is the socket connection longest in its
// handshake, or nil.
func (b *Broker) oldestHandshakeLocked() *conn {
	var oldest *conn
	for c := range b.conns {
		if !c.inProcess && !c.helloDone && !c.evicted && (oldest == nil || c.start.Before(oldest.start)) {
			oldest = c
		}
	}
	return oldest
}

// admitted records that c completed its hello as an anonymous peer or
// not; an anonymous one is refused while admitting it would leave fewer
// than reserved_connections slots free.
func (b *Broker) admitted(c *conn, anonymous bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if anonymous && !c.inProcess && b.remote > b.cfg.MaxConnections-b.cfg.ReservedConnections {
		b.limits.hit(limitReserved)
		return tooManyConnections("too many connections for anonymous peers: %d of max_connections %d are reserved for registered components (reserved_connections)",
			b.cfg.ReservedConnections, b.cfg.MaxConnections)
	}
	c.helloDone = true
	return nil
}

func (b *Broker) removeConn(c *conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.conns[c]; !ok {
		return
	}
	delete(b.conns, c)
	if !c.inProcess {
		b.remote--
		if c.uidKey != "" {
			if b.perUID[c.uidKey]--; b.perUID[c.uidKey] == 0 {
				delete(b.perUID, c.uidKey)
			}
		}
	}
	b.closed.published += c.published.Load()
	b.closed.delivered += c.delivered.Load()
	b.closed.dropped += c.dropped.Load()
}

// refuse tells a connection it was not accepted, without blocking the
// accept loop for long: the socket's send buffer is empty, so these small
// writes complete at once unless the peer is gone.
func (b *Broker) refuse(c *conn, err *wire.Error) {
	b.connsRefused.Add(1)
	b.connLog.log(slog.LevelWarn, uidKey(c.peer), "connection refused", "pid", c.peer.PID, "uid", c.peer.UID, "err", err)
	c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.nc.Write(wire.AppendRefusal(nil, err))
	c.nc.Close()
}

// janitorTick is how often the janitor looks for idle connections and
// reports suppressed log lines.
const janitorTick = time.Second

// janitor closes idle connections, fails requests past their deadline and
// flushes the connection log's
// suppression counts, until the broker closes.
func (b *Broker) janitor() {
	t := time.NewTicker(min(janitorTick, b.cfg.IdleTimeout/4, b.cfg.HeartbeatInterval/2))
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			b.connLog.flush()
			b.closeIdle(now)
			b.expireRequests(now)
			b.checkHeartbeats(now)
		}
	}
}

// closeIdle closes the socket connections that have sent nothing, held no
// subscription and waited for nothing for idle_timeout.
func (b *Broker) closeIdle(now time.Time) {
	b.mu.Lock()
	var idle []*conn
	for c := range b.conns {
		if !c.inProcess && c.helloDone && now.Sub(time.Unix(0, c.lastRead.Load())) >= b.cfg.IdleTimeout && c.waits.Load() == 0 {
			idle = append(idle, c)
		}
	}
	b.mu.Unlock()
	for _, c := range idle {
		c.subsMu.Lock()
		busy := len(c.subs) > 0
		c.subsMu.Unlock()
		if !busy {
			b.limits.hit(limitIdle)
			c.closeWith(CloseIdle, fmt.Errorf("idle for %v (idle_timeout)", b.cfg.IdleTimeout))
		}
	}
}

// startWaitSlot takes one of c's waits and one of its user's, or says
// which limit is reached.
func (b *Broker) startWaitSlot(c *conn) error {
	key := uidKey(c.peer)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case int(c.waits.Load()) >= b.cfg.MaxWaits:
		b.limits.hit(limitWaits)
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "too many waits in progress on this connection: limit %d (max_waits)", b.cfg.MaxWaits)
	case b.waitsPerUID[key] >= b.cfg.MaxWaitsPerUID:
		b.limits.hit(limitWaitsPerUID)
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION, "too many waits in progress for user %s: limit %d (max_waits_per_uid)", key, b.cfg.MaxWaitsPerUID)
	}
	c.waits.Add(1)
	b.waitsPerUID[key]++
	return nil
}

// endWaitSlot gives back what startWaitSlot took.
func (b *Broker) endWaitSlot(c *conn) {
	key := uidKey(c.peer)
	b.mu.Lock()
	defer b.mu.Unlock()
	c.waits.Add(-1)
	if b.waitsPerUID[key]--; b.waitsPerUID[key] <= 0 {
		delete(b.waitsPerUID, key)
	}
}

// addPatterns counts n more patterns for c's user, or says the user holds
// max_subscriptions_per_uid already. The caller holds c.subsMu (lock
// order: conn.subsMu, then Broker.mu).
func (b *Broker) addPatterns(c *conn, n int) error {
	key := uidKey(c.peer)
	b.mu.Lock()
	defer b.mu.Unlock()
	if have := b.patternsPerUID[key]; have+n > b.cfg.MaxSubscriptionsPerUID {
		b.limits.hit(limitSubscriptionsPerUID)
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS,
			"too many subscriptions for user %s: %d patterns, limit %d (max_subscriptions_per_uid)", key, have+n, b.cfg.MaxSubscriptionsPerUID)
	}
	b.patternsPerUID[key] += n
	return nil
}

// removePatterns gives back what addPatterns counted.
func (b *Broker) removePatterns(c *conn, n int) {
	key := uidKey(c.peer)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.patternsPerUID[key] -= n; b.patternsPerUID[key] <= 0 {
		delete(b.patternsPerUID, key)
	}
}

// reserveQueryMemory takes n bytes of the memory all history queries and
// waits in progress may hold together (max_query_memory), of which
// anonymous peers may hold a quarter; the agent, the operator, is exempt
// and gets 0. The reply that answers the request gives it back once
// written (outQueue.replyHolding), or releaseQueryMemory on a refusal.
func (c *conn) reserveQueryMemory(n int64) (int64, error) {
	b := c.b
	if c.identity.Agent {
		return 0, nil
	}
	limit := int64(b.cfg.MaxQueryMemory)
	if total := b.queryHeld.Add(n); total > limit {
		b.queryHeld.Add(-n)
		b.limits.hit(limitQueryMemory)
		return 0, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
			"query memory exhausted: queries and waits in progress hold %d bytes, limit %d (max_query_memory)", total-n, limit)
	}
	if c.anonymous() {
		if anon := b.queryHeldAnon.Add(n); anon > limit/4 {
			b.queryHeldAnon.Add(-n)
			b.queryHeld.Add(-n)
			b.limits.hit(limitQueryMemory)
			return 0, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_CORRELATION,
				"query memory exhausted for anonymous peers: they hold %d bytes, limit %d (a quarter of max_query_memory)", anon-n, limit/4)
		}
	}
	return n, nil
}

// releaseQueryMemory gives back what reserveQueryMemory took.
func (c *conn) releaseQueryMemory(n int64) {
	if n <= 0 {
		return
	}
	c.b.queryHeld.Add(-n)
	if c.anonymous() {
		c.b.queryHeldAnon.Add(-n)
	}
}
