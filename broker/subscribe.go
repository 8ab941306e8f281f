package broker

import (
	"daemoneye.dev/eventbus/acl"
	"daemoneye.dev/eventbus/topic"
	"daemoneye.dev/eventbus/wire"
)

// Subscribing: checking patterns against the policy, indexing them
// (routes), and taking them out again.

func (c *conn) subscribe(m *wire.Subscribe) error {
	patterns, err := checkPatterns(m.Patterns)
	if err != nil {
		return err
	}
	filtered, err := c.checkSubscribe(patterns)
	if err != nil {
		return err
	}
	filter, err := compileFilter(m.Filter)
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
		c.b.limits.hit(limitSubscriptions)
		return wire.Errorf(wire.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, "too many subscriptions: %d patterns, limit %d (max_subscriptions)",
			c.patterns+len(patterns), c.b.cfg.MaxSubscriptions)
	}
	var g *group
	if m.Group != "" {
		if g, err = c.b.groups.join(m.Group, m.Strategy); err != nil {
			return err
		}
	}
	if err := c.b.addPatterns(c, len(patterns)); err != nil {
		if g != nil {
			c.b.groups.leave(g)
		}
		return err
	}
	s := &subscription{c: c, id: m.SubscriptionId, patterns: patterns, filtered: filtered, class: c.identity.Class(), filter: filter,
		group: g, responder: m.Responder}
	c.b.routes.add(s)
	c.subs[s.id] = s
	c.patterns += len(patterns)
	return nil
}

// checkSubscribe applies the policy to each pattern: a pattern nothing
// allowed can match is refused; one that can match both allowed and
// restricted topics is accepted with every delivery checked (filtered), so
// no wildcard leaks a topic the subscriber may not see.
func (c *conn) checkSubscribe(patterns []string) (filtered bool, err error) {
	for _, p := range patterns {
		d, err := c.b.policy.CheckSubscribe(c.identity, p)
		if err != nil {
			return false, c.denied(err)
		}
		filtered = filtered || d == acl.Filter
	}
	return filtered, nil
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
	if s.group != nil {
		c.b.groups.leave(s.group)
	}
	c.b.routes.remove(s)
	c.b.removePatterns(c, len(s.patterns))
	delete(c.subs, s.id)
	c.patterns -= len(s.patterns)
}
