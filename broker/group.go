package broker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/correlation"
	"daemoneye.dev/eventbus/wire"
)

// Queue groups (PROTOCOL.md §5.9): subscriptions with the same group name
// share its messages, each going to one member, chosen by the group's
// strategy among the members whose patterns match it.

// group is one queue group.
type group struct {
	name     string
	strategy wire.GroupStrategy
	members  int           // subscriptions in it; guarded by groups.mu
	next     atomic.Uint64 // round-robin position

	// The highest sequence given to a member from each publisher session:
	// a publish resent after its publisher reconnected, and already given
	// to one member, is not given to another (its subscriber's client
	// cannot tell, since that member never saw it).
	mu   sync.Mutex
	seen map[sessionKey]uint64
}

// sessionKey is one publisher session: its kernel pid and its session.
type sessionKey struct {
	pid     int
	session uint64
}

// maxGroupSessions bounds the publisher sessions a group remembers.
const maxGroupSessions = 4096

// given reports whether the publish seq of session k was given to a
// member already, and records it if not.
func (g *group) given(k sessionKey, seq uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	last, ok := g.seen[k]
	if ok && seq <= last {
		return true
	}
	if !ok && len(g.seen) >= maxGroupSessions {
		for old := range g.seen { // any: a session that old is long done
			delete(g.seen, old)
			break
		}
	}
	if g.seen == nil {
		g.seen = make(map[sessionKey]uint64)
	}
	g.seen[k] = seq
	return false
}

// groups is the broker's queue groups by name.
type groups struct {
	mu     sync.Mutex
	byName map[string]*group
}

// maxGroupName bounds a group's name.
const maxGroupName = 128

// join adds a member to the group name, creating it with strategy; a group
// keeps the strategy its first member gave.
func (gs *groups) join(name string, strategy wire.GroupStrategy) (*group, error) {
	switch {
	case len(name) > maxGroupName:
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "group name too long: %d bytes, limit %d", len(name), maxGroupName)
	case wire.GroupStrategy_name[int32(strategy)] == "":
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "unknown group strategy %d", strategy)
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.byName[name]
	switch {
	case g == nil:
		g = &group{name: name, strategy: strategy}
		if gs.byName == nil {
			gs.byName = make(map[string]*group)
		}
		gs.byName[name] = g
	case g.strategy != strategy:
		return nil, wire.Errorf(wire.ErrorCode_ERROR_CODE_INVALID_PATTERN, "group %q uses strategy %s, not %s", name, strategyName(g.strategy), strategyName(strategy))
	}
	g.members++
	return g, nil
}

// leave removes a member; the last one removes the group.
func (gs *groups) leave(g *group) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if g.members--; g.members == 0 {
		delete(gs.byName, g.name)
	}
}

// strategyName is the strategy as the CLI and errors name it.
func strategyName(s wire.GroupStrategy) string {
	switch s {
	case wire.GroupStrategy_GROUP_STRATEGY_LEAST_LOADED:
		return "least-loaded"
	case wire.GroupStrategy_GROUP_STRATEGY_FIRST_AVAILABLE:
		return "first-available"
	case wire.GroupStrategy_GROUP_STRATEGY_RANDOM:
		return "random"
	}
	return "round-robin"
}

// first returns the index of the candidate to try first.
func (g *group) first(cands []*subscription) int {
	n := len(cands)
	switch g.strategy {
	case wire.GroupStrategy_GROUP_STRATEGY_LEAST_LOADED:
		best, load := 0, int64(-1)
		for i, s := range cands {
			l := int64(s.c.inflight.Load())<<32 + int64(s.c.out.queued())
			if load < 0 || l < load {
				best, load = i, l
			}
		}
		return best
	case wire.GroupStrategy_GROUP_STRATEGY_FIRST_AVAILABLE:
		return 0
	case wire.GroupStrategy_GROUP_STRATEGY_RANDOM:
		return rand.IntN(n)
	}
	return int((g.next.Add(1) - 1) % uint64(n))
}

// deliverGroups gives d to one member of each group in from.groupCands:
// the strategy's choice, or, if its queue is full, the next member with
// room; only when every candidate is full is the drop counted (at the
// last one tried).
func (b *Broker) deliverGroups(from *conn, d *wire.Delivery, topicName []byte, meta *correlation.Metadata, named *corrDef, pr *pendingRequest) {
	cands := from.groupCands
	for len(cands) > 0 {
		g := cands[0].group
		// Move g's candidates to the front.
		n := 0
		for i, s := range cands {
			if s.group == g {
				cands[n], cands[i] = cands[i], cands[n]
				n++
			}
		}
		members := cands[:n]
		cands = cands[n:]
		if d.Session != 0 && d.Sequence != 0 && g.given(sessionKey{from.peer.PID, d.Session}, d.Sequence) {
			b.groupDuplicates.Add(1)
			continue
		}
		if pr != nil {
			members = responders(members)
			if len(members) == 0 {
				continue
			}
		}
		start := g.first(members)
		for k := range members {
			s := members[(start+k)%len(members)]
			r := b.deliverOne(from, s, d, named, pr, k == len(members)-1)
			if r == enqueued || r == enqueuedFirst {
				if pr != nil {
					pr.keepForRedelivery(b, g, topicName, d, named, meta)
				}
				break
			}
		}
	}
	clear(from.groupCands)
	from.groupCands = from.groupCands[:0]
}

// responders keeps the responder subscriptions of members, in place.
func responders(members []*subscription) []*subscription {
	n := 0
	for _, s := range members {
		if s.responder {
			members[n] = s
			n++
		}
	}
	return members[:n]
}

// deliverToGroup gives pr to a member of its group other than gone, for
// redeliver; it returns the member, or nil if none took it.
func (b *Broker) deliverToGroup(pr *pendingRequest, gone *conn) *conn {
	var members []*subscription
	add := func(subs []*subscription) {
		for _, s := range subs {
			if s.group == pr.group && s.responder && s.c != gone && (s.filter == nil || s.filter.Match(pr.meta)) {
				members = append(members, s)
			}
		}
	}
	add(b.routes.main.MatchBytes(pr.topic))
	for _, cr := range *b.routes.classes.Load() {
		if cr.access.CheckBytes(acl.Subscribe, pr.topic) == nil {
			add(cr.index.MatchBytes(pr.topic))
		}
	}
	if len(members) == 0 {
		return nil
	}
	start := pr.group.first(members)
	for k := range members {
		s := members[(start+k)%len(members)]
		switch b.deliverOne(nil, s, &pr.delivery, pr.named, pr, false) {
		case enqueued, enqueuedFirst:
			s.c.out.signal()
			return s.c
		}
	}
	return nil
}
