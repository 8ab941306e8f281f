package acl

import (
	"errors"
	"strings"
	"sync"

	"daemoneye.dev/eventbus/topic"
)

const (
	// DefaultCacheSize is the number of topics per action whose decisions
	// a Cache keeps unless NewCache is told otherwise.
	DefaultCacheSize = 1024

	// cacheEvictDiv sets how much of a full cache is dropped at once (1/8),
	// so eviction cost is spread over many misses.
	cacheEvictDiv = 8
)

// Cache remembers one identity's decisions per (action, topic), so the
// broker's steady-state check is one map lookup: one Cache per connection,
// asked with Publish for what the connection publishes and with Subscribe
// for what is delivered to it through a Filter subscription. It is safe for
// concurrent use, as deliveries are checked from publishers' goroutines.
//
// The Authorizer's decisions must depend only on (identity, action,
// topic); after a policy reload, make new caches. Each action keeps at
// most size topics, dropping arbitrary ones when full. A topic the
// Authorizer refuses as invalid (its error wraps a *topic.Error, as
// [Policy]'s does) is not cached, so a hit needs no validation: the
// broker validates a published topic once, in the check on a miss, and
// not at all on a hit.
type Cache struct {
	auth Authorizer
	id   Identity
	max  int

	mu sync.RWMutex
	m  [2]map[string]error // by Action: topic -> nil (allowed) or the shared denial
}

// NewCache returns a Cache of auth's decisions for id; size <= 0 means
// [DefaultCacheSize].
func NewCache(auth Authorizer, id Identity, size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{auth: auth, id: id, max: size, m: [2]map[string]error{{}, {}}}
}

// Identity returns the identity whose decisions c caches.
func (c *Cache) Identity() Identity { return c.id }

// Check is the Authorizer's decision for c's identity, cached. A denial is
// the same error value on every hit: do not modify it.
func (c *Cache) Check(action Action, topicName string) error {
	if action > Subscribe {
		return c.auth.Authorize(c.id, action, topicName)
	}
	c.mu.RLock()
	err, ok := c.m[action][topicName]
	c.mu.RUnlock()
	if ok {
		return err
	}
	return c.miss(action, topicName)
}

// CheckBytes is Check for a topic in a byte slice. It does not allocate
// on a hit.
func (c *Cache) CheckBytes(action Action, topicName []byte) error {
	if action > Subscribe {
		return c.auth.Authorize(c.id, action, string(topicName))
	}
	c.mu.RLock()
	err, ok := c.m[action][string(topicName)] // no allocation for the lookup
	c.mu.RUnlock()
	if ok {
		return err
	}
	return c.miss(action, string(topicName))
}

// miss asks the Authorizer and caches its answer, unless it refused the
// topic as invalid.
func (c *Cache) miss(action Action, topicName string) error {
	err := c.auth.Authorize(c.id, action, topicName)
	var invalid *topic.Error
	if errors.As(err, &invalid) {
		return err // an invalid topic: not worth a slot
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.m[action]
	if _, ok := m[topicName]; ok {
		return err
	}
	if len(m) >= c.max {
		drop := c.max/cacheEvictDiv + 1
		for k := range m { // map order is random enough
			delete(m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	m[strings.Clone(topicName)] = err
	return err
}

// Len returns the number of cached decisions, both actions together.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m[Publish]) + len(c.m[Subscribe])
}
